"""Canvas GraphQL simulator: `POST /api/graphql` validated against Canvas's published schema (§C.12).

Queries are parsed and validated with graphql-core against canvas-schema.graphql (loaded once per
process); parse/validation errors answer HTTP 200 with `errors` and no `data`, as graphql-ruby does.
Resolved: `course(id:)` (legacy or Relay id; unknown -> null) with `_id id name courseCode state sisId
createdAt account term`, and `enrollmentsConnection(first, after, last, before, filter)` with `nodes`,
`edges {cursor node}` and `pageInfo`; Enrollment `_id id state type userId courseSectionId section user
course`. Unresolved fields come back null. Page size is capped at 100 like Canvas; cursors are
graphql-ruby style (base64 of the 1-based position). `records` = courses + enrollments returned.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    execute,
    parse,
    validate,
)

from sandbox.httpserver import App, Request, Response, json_response
from sandbox.university import Course, Enrollment, University

MAX_PAGE_SIZE = 100
_ROOT = Path(__file__).resolve().parents[1]
# Where the published schema may live: a copy inside the repo first, then the shared reference folder.
# Canvas's published GraphQL schema, kept in the repository so the sandbox works anywhere.
SCHEMA_CANDIDATES = (_ROOT / "sandbox" / "canvas-schema.graphql",)
UNAUTHENTICATED_BODY = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
INVALID_TOKEN_BODY = {"errors": [{"message": "Invalid access token."}]}
# Canvas's GraphQL reports DB course states; the API's "unpublished" is a created/claimed course.
_COURSE_STATE = {"unpublished": "claimed", "available": "available", "completed": "completed", "deleted": "deleted"}


@dataclass
class QueryContext:
    university: University
    records: int = 0                           # objects returned, for the cost model


def default_schema_path() -> Path:
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"canvas-schema.graphql not found in {[str(c) for c in SCHEMA_CANDIDATES]}")


@functools.cache
def load_schema(path: Path | None = None) -> GraphQLSchema:
    """Build the schema once per path and attach the simulator's resolvers."""
    schema = build_schema((path or default_schema_path()).read_text(encoding="utf-8"))
    _field(schema, "Query", "course").resolve = resolve_course
    _field(schema, "Course", "enrollmentsConnection").resolve = resolve_enrollments
    return schema


def _field(schema: GraphQLSchema, type_name: str, field_name: str) -> Any:
    graphql_type = schema.get_type(type_name)
    if not isinstance(graphql_type, GraphQLObjectType):
        raise TypeError(f"{type_name} is not an object type in the Canvas schema")
    return graphql_type.fields[field_name]


# ---- ids and cursors ----
def relay_id(type_name: str, legacy_id: int) -> str:
    return base64.b64encode(f"{type_name}-{legacy_id}".encode()).decode()


def legacy_id(raw: str, type_name: str) -> int | None:
    """A numeric legacy id, or a Relay id of `type_name`, as an int (None when neither)."""
    if raw.isdigit():
        return int(raw)
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, number = decoded.partition("-")
    return int(number) if kind == type_name and number.isdigit() else None


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.isdigit():
        raise GraphQLError(f"Invalid cursor: {cursor!r}")
    return int(text)


# ---- object builders (plain dicts: graphql-core's default resolver reads keys by field name) ----
def _iso(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def course_object(university: University, course: Course) -> dict[str, Any]:
    account = university.account_by_id.get(course.account_id)
    term = university.term_by_id.get(course.term_id)
    return {
        "_id": str(course.id), "id": relay_id("Course", course.id), "name": course.name,
        "courseCode": course.course_code, "state": _COURSE_STATE.get(course.workflow_state, "created"),
        "sisId": course.sis_course_id, "createdAt": _iso(course.created_at), "course_id": course.id,
        "account": None if account is None else {"_id": str(account.id), "id": relay_id("Account", account.id),
                                                 "name": account.name, "sisId": account.sis_account_id},
        "term": None if term is None else {"_id": str(term.id), "id": relay_id("Term", term.id), "name": term.name,
                                           "sisId": term.sis_term_id, "sisTermId": term.sis_term_id,
                                           "startAt": _iso(term.start_at), "endAt": _iso(term.end_at)},
    }


def enrollment_object(university: University, enrollment: Enrollment) -> dict[str, Any]:
    section = university.section_by_id.get(enrollment.section_id)
    user = university.user_by_id.get(enrollment.user_id)
    course = university.course_by_id.get(enrollment.course_id)
    return {
        "_id": str(enrollment.id), "id": relay_id("Enrollment", enrollment.id), "state": enrollment.state,
        "type": enrollment.type, "userId": str(enrollment.user_id), "courseSectionId": str(enrollment.section_id),
        "section": None if section is None else {"_id": str(section.id), "id": relay_id("Section", section.id),
                                                 "name": section.name, "sisId": section.sis_source_id},
        "user": None if user is None else {"_id": str(user.id), "id": relay_id("User", user.id), "name": user.name},
        "course": None if course is None else course_object(university, course),
    }


# ---- resolvers ----
def resolve_course(_root: Any, info: GraphQLResolveInfo, id: str | None = None,  # noqa: A002 - schema name
                   sisId: str | None = None) -> dict[str, Any] | None:  # noqa: N803 - schema name
    context: QueryContext = info.context
    university = context.university
    course = None
    if id is not None:
        number = legacy_id(id, "Course")
        course = university.course_by_id.get(number) if number is not None else None
    elif sisId is not None:
        course = next((c for c in university.courses if c.sis_course_id == sisId), None)
    if course is None:
        return None
    context.records += 1
    return course_object(university, course)


def resolve_enrollments(course: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                        before: str | None = None, first: int | None = None, last: int | None = None,
                        filter: dict[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002 - schema name
    context: QueryContext = info.context
    university = context.university
    states = set(filter["states"]) if filter and filter.get("states") else None
    items = university.graphql_enrollments(course["course_id"], states)
    items = _filter_enrollments(items, filter or {})
    start, end = page_bounds(len(items), after=after, before=before, first=first, last=last)
    page = items[start:end]
    context.records += len(page)
    nodes = [enrollment_object(university, e) for e in page]
    edges = [{"cursor": encode_cursor(start + i + 1), "node": node} for i, node in enumerate(nodes)]
    return {
        "nodes": nodes, "edges": edges,
        "pageInfo": {"startCursor": edges[0]["cursor"] if edges else None,
                     "endCursor": edges[-1]["cursor"] if edges else None,
                     "hasNextPage": end < len(items), "hasPreviousPage": start > 0},
    }


def _filter_enrollments(items: list[Enrollment], filter: dict[str, Any]) -> list[Enrollment]:  # noqa: A002
    types = set(filter.get("types") or ())
    user_ids = {str(u) for u in filter.get("userIds") or ()}
    return [e for e in items if (not types or e.type in types) and (not user_ids or str(e.user_id) in user_ids)]


def page_bounds(total: int, *, after: str | None, before: str | None, first: int | None,
                last: int | None) -> tuple[int, int]:
    """[start, end) of a Relay connection slice; page size capped at MAX_PAGE_SIZE like Canvas."""
    start = decode_cursor(after) if after else 0
    end = min(decode_cursor(before) - 1, total) if before else total
    start = min(start, end)
    if first is None and last is None:
        first = MAX_PAGE_SIZE
    if first is not None:
        end = min(end, start + min(max(first, 0), MAX_PAGE_SIZE))
    if last is not None:
        start = max(start, end - min(max(last, 0), MAX_PAGE_SIZE))
    return start, end


# ---- HTTP ----
class GraphQLEndpoint:
    def __init__(self, university: University, tokens: Iterable[str], schema: GraphQLSchema | None = None) -> None:
        self.university = university
        self.tokens = frozenset(tokens)
        self.schema = schema or load_schema()

    def handle(self, request: Request) -> Response:
        try:
            payload = request.json()
        except ValueError:
            payload = None
        token = request.bearer_token() or request.last("access_token")
        if token is None and isinstance(payload, dict):
            token = payload.get("access_token")
        if token is None:
            return json_response(UNAUTHENTICATED_BODY, status=401)
        if token not in self.tokens:
            return json_response(INVALID_TOKEN_BODY, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return json_response({"errors": [{"message": "No query string was present"}]}, status=400)
        return self.run(payload["query"], payload.get("variables"), payload.get("operationName"))

    def run(self, query: str, variables: Any, operation_name: str | None) -> Response:
        if isinstance(variables, str):             # some clients send variables as a JSON string
            try:
                variables = json.loads(variables) if variables else None
            except ValueError:
                return json_response({"errors": [{"message": "Variables are invalid JSON"}]})
        try:
            document = parse(query)
        except GraphQLError as error:
            return json_response({"errors": [error.formatted]})
        problems = validate(self.schema, document)
        if problems:
            return json_response({"errors": [problem.formatted for problem in problems]})
        context = QueryContext(self.university)
        result = execute(self.schema, document, context_value=context,
                         variable_values=variables if isinstance(variables, dict) else None,
                         operation_name=operation_name)
        body: dict[str, Any] = {}
        if result.data is not None:
            body["data"] = result.data
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return json_response(body, records=context.records)


def graphql_throttle_key(request: Request) -> str | None:
    """Canvas throttles by access token, which GraphQL clients may send inside the JSON body."""
    token = request.bearer_token() or request.last("access_token")
    if token is None and request.path == "/api/graphql" and request.body:
        try:
            payload = request.json()
        except ValueError:
            return None
        token = payload.get("access_token") if isinstance(payload, dict) else None
    return token if isinstance(token, str) else None


def install_graphql_route(app: App, endpoint: GraphQLEndpoint) -> None:
    app.add_route("POST", "/api/graphql", endpoint.handle)
