"""Canvas GraphQL simulator: `POST /api/graphql` validated against Canvas's published schema.

Queries are parsed and validated with graphql-core against canvas-schema.graphql (loaded once per process);
each distinct query text is parsed and validated once, and analysed once per value of the variables the
analysis reads (sandbox.graphql_limits: Canvas's token, alias, directive, depth and complexity limits).
Parse, validation and analysis errors answer HTTP 200 with `errors` and no `data`, as graphql-ruby does.
Execution is graphql-core's, except that lists of plain dicts are serialized by a compiled projection
(sandbox.graphql_execution) to keep the simulator's CPU low.
Resolved: `course(id:)` (legacy or Relay id; unknown -> null) with `_id id name courseCode state sisId
createdAt account term`, and `enrollmentsConnection(first, after, last, before, filter)` with `nodes`,
`edges {cursor node}` and `pageInfo`; Enrollment `_id id state type userId courseSectionId section user
course`. Unresolved fields come back null. Page size: `default_page_size` 20 when neither `first` nor `last` is
given, at most `default_max_page_size` 100 (canvas-lms plugin_setup.rb); cursors are graphql-ruby style (base64
of the 1-based offset) over a row order that may drift (sandbox.graphql_roster). Without the `read_roster`
permission a course's `enrollmentsConnection` is null, without an error (course_type.rb).
`records` = courses + enrollments returned.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    build_schema,
    execute,
    validate,
)

from sandbox.graphql_execution import PlainDataExecutor, never_awaitable, result_json
from sandbox.graphql_limits import GraphQLLimits, analysis_variables, analyze, parse_within_limits
from sandbox.graphql_roster import RosterOrder
from sandbox.graphql_workers import GraphQLWorkers
from sandbox.httpapp import App, Request, Response, json_response
from sandbox.university import Course, Enrollment, University

__all__ = ["GraphQLEndpoint", "PlainDataExecutor", "QueryContext", "encode_cursor", "graphql_throttle_key",
           "install_graphql_route", "load_schema", "relay_id", "result_json"]

_ROOT = Path(__file__).resolve().parents[1]
# Canvas's published GraphQL schema, kept in the repository so the sandbox works anywhere.
SCHEMA_CANDIDATES = (_ROOT / "sandbox" / "canvas-schema.graphql",)
UNAUTHENTICATED_BODY = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
INVALID_TOKEN_BODY = {"errors": [{"message": "Invalid access token."}]}
JSON_CONTENT_TYPE = "application/json; charset=utf-8"            # as json_response writes it
# Canvas's GraphQL reports DB course states; the API's "unpublished" is a created/claimed course.
_COURSE_STATE = {"unpublished": "claimed", "available": "available", "completed": "completed", "deleted": "deleted"}


@dataclass
class QueryContext:
    university: University
    records: int = 0                           # objects returned, for the cost model
    limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    roster: RosterOrder | None = None          # None = ascending id, never drifting
    roster_allowed: bool = True                # the token may read rosters
    pages: dict[str, str] = field(default_factory=dict)   # top-level alias -> its roster page's logical key


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


def enrollment_object(university: University, enrollment: Enrollment,
                      shared: dict[tuple[str, int], dict[str, Any] | None] | None = None,
                      names: frozenset[str] | None = None) -> dict[str, Any]:
    """The Enrollment node. `shared` caches course and section objects across the nodes of one page; `names`
    (field names selected anywhere below the connection; None = all) skips keys no selection can read."""
    shared = {} if shared is None else shared
    def wanted(key: str) -> bool:
        return names is None or key in names
    node: dict[str, Any] = {"_id": str(enrollment.id), "state": enrollment.state, "type": enrollment.type}
    if wanted("id"):
        node["id"] = relay_id("Enrollment", enrollment.id)
    if wanted("userId"):
        node["userId"] = str(enrollment.user_id)
    if wanted("courseSectionId"):
        node["courseSectionId"] = str(enrollment.section_id)
    if wanted("section"):
        key = ("section", enrollment.section_id)
        if key not in shared:
            section = university.section_by_id.get(enrollment.section_id)
            shared[key] = None if section is None else {
                "_id": str(section.id), "id": relay_id("Section", section.id), "name": section.name,
                "sisId": section.sis_source_id}
        node["section"] = shared[key]
    if wanted("user"):
        user = university.user_by_id.get(enrollment.user_id)
        node["user"] = None if user is None else {"_id": str(user.id), "name": user.name}
        if user is not None and wanted("id"):
            node["user"]["id"] = relay_id("User", user.id)
    if wanted("course"):
        key = ("course", enrollment.course_id)
        if key not in shared:
            course = university.course_by_id.get(enrollment.course_id)
            shared[key] = None if course is None else course_object(university, course)
        node["course"] = shared[key]
    return node


def selected_names(info: GraphQLResolveInfo) -> frozenset[str]:
    """Every field name selected anywhere below the current field (fragments included): a superset of the
    keys the default resolvers will read from the objects this field returns."""
    names: set[str] = set()
    visited: set[str] = set()
    pending = [node.selection_set for node in info.field_nodes]
    while pending:
        selection_set = pending.pop()
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
                pending.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in visited:
                visited.add(selection.name.value)
                fragment = info.fragments.get(selection.name.value)
                pending.append(fragment.selection_set if fragment else None)
    return frozenset(names)


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
                        filter: dict[str, Any] | None = None) -> dict[str, Any] | None:  # noqa: A002 - schema name
    context: QueryContext = info.context
    if not context.roster_allowed:             # course_type.rb: nil unless read_roster (or grades rights)
        return None
    university = context.university
    visible = _visible(filter or {})
    offset = decode_cursor(after) if after else 0
    roster = context.roster or RosterOrder(university)
    items = roster.rows(course["course_id"], visible, offset)
    start, end = page_bounds(len(items), after=after, before=before, first=first, last=last, limits=context.limits)
    page = items[start:end]
    context.records += len(page)
    path = info.path.as_list()
    if len(path) == 2:                         # course(id:) under an alias: a journal may compare it on its own
        context.pages[str(path[0])] = (f"course {course['course_id']} enrollmentsConnection first={first} "
                                       f"after={after} last={last} before={before} "
                                       f"filter={json.dumps(filter, sort_keys=True)}")
    # Only what the query can read: building 1,000 unread relay ids, cursors and edges is most of the work.
    names, shared = selected_names(info), {}
    nodes = [enrollment_object(university, e, shared, names) for e in page] if names & {"nodes", "edges"} else []
    edges = [{"cursor": encode_cursor(start + i + 1), "node": node} for i, node in enumerate(nodes)] \
        if "edges" in names else []
    return {
        "nodes": nodes, "edges": edges,
        "pageInfo": {"startCursor": encode_cursor(start + 1) if page else None,
                     "endCursor": encode_cursor(end) if page else None,
                     "hasNextPage": end < len(items), "hasPreviousPage": start > 0},
    }


def _visible(filter: dict[str, Any]) -> Callable[[Enrollment], bool]:  # noqa: A002 - schema name
    """The rows the connection selects: all but deleted, or exactly `states`; then types and user ids."""
    states = set(filter.get("states") or ()) or None
    types = set(filter.get("types") or ())
    user_ids = {str(u) for u in filter.get("userIds") or ()}

    def visible(e: Enrollment) -> bool:
        return ((e.state in states) if states is not None else e.state != "deleted") \
            and (not types or e.type in types) and (not user_ids or str(e.user_id) in user_ids)
    return visible


def page_bounds(total: int, *, after: str | None, before: str | None, first: int | None,
                last: int | None, limits: GraphQLLimits | None = None) -> tuple[int, int]:
    """[start, end) of a Relay connection slice: default page size 20, at most 100 (Canvas's graphql_tuning)."""
    limits = limits or GraphQLLimits()
    start = decode_cursor(after) if after else 0
    end = min(decode_cursor(before) - 1, total) if before else total
    start = min(start, end)
    if first is None and last is None:
        first = limits.default_page_size
    cap = limits.default_max_page_size
    if first is not None:
        end = min(end, start + min(max(first, 0), cap))
    if last is not None:
        start = max(start, end - min(max(last, 0), cap))
    return start, end


# ---- HTTP ----
class GraphQLEndpoint:
    def __init__(self, university: University, tokens: Iterable[str], schema: GraphQLSchema | None = None, *,
                 limits: GraphQLLimits | None = None, roster_churn: float = 0.0, seed: int = 42,
                 roster_allowed: bool = True) -> None:
        self.university = university
        self.tokens = frozenset(tokens)
        self.schema = schema or load_schema()
        self.limits = limits or GraphQLLimits()
        self.roster = RosterOrder(university, roster_churn, seed)
        self.roster_allowed = roster_allowed
        # Clients repeat a few query texts: parse and validate each once (the AST is not changed by execution),
        # and analyse each once per value of the variables the analysis reads.
        self._prepare = functools.lru_cache(maxsize=256)(self._parse_and_validate)
        self._analyze = functools.lru_cache(maxsize=1024)(self._analysis)
        self.workers: GraphQLWorkers | None = None   # copies in other processes that run queries (use_workers)

    def use_workers(self, processes: int, *, journal_parts: bool) -> None:
        """Run queries in `processes` forked copies of this endpoint (sandbox.graphql_workers)."""
        if self.roster.churn:
            raise ValueError("GraphQL worker processes cannot copy roster churn's per-course state; use churn 0")
        self.close()
        self.workers = GraphQLWorkers(self, processes, journal_parts=journal_parts)

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self.workers is not None:
            self.workers.close()
            self.workers = None

    def set_university(self, university: University) -> None:
        """Serve `university` from now on; rows drift in a new order from then (a day's updates)."""
        self.university = university
        self.roster = RosterOrder(university, self.roster.churn, self.roster.seed)
        if self.workers is not None:
            self.workers.restart()             # copies of the new day's data

    def _parse_and_validate(self, query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...],
                                                        frozenset[str]]:
        """(document, (), analysis variables) for a valid query, else (None, formatted errors, ())."""
        try:
            document = parse_within_limits(query, self.limits)
        except GraphQLError as error:
            return None, (error.formatted,), frozenset()
        problems = validate(self.schema, document)
        if problems:
            return None, tuple(problem.formatted for problem in problems), frozenset()
        return document, (), analysis_variables(document)

    def _analysis(self, query: str, operation_name: str | None,
                  values: tuple[tuple[str, str], ...]) -> tuple[dict[str, Any], ...]:
        document = self._prepare(query)[0]
        raw = {name: json.loads(value) for name, value in values}
        return tuple(analyze(self.schema, document, operation_name, raw, self.limits)) if document else ()

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
        run = self.run if self.workers is None else self.workers.run
        return run(payload["query"], payload.get("variables"), payload.get("operationName"))

    def run(self, query: str, variables: Any, operation_name: str | None) -> Response:
        if isinstance(variables, str):             # some clients send variables as a JSON string
            try:
                variables = json.loads(variables) if variables else None
            except ValueError:
                return json_response({"errors": [{"message": "Variables are invalid JSON"}]})
        variables = variables if isinstance(variables, dict) else None
        document, problems, used = self._prepare(query)
        if document is None:
            return json_response({"errors": list(problems)})
        values = tuple(sorted((name, json.dumps(variables[name], sort_keys=True))
                              for name in used if variables and name in variables))
        analysis = self._analyze(query, operation_name if isinstance(operation_name, str) else None, values)
        if analysis:
            return json_response({"errors": list(analysis)})
        context = QueryContext(self.university, limits=self.limits, roster=self.roster,
                               roster_allowed=self.roster_allowed)
        result = execute(self.schema, document, context_value=context, variable_values=variables,
                         operation_name=operation_name, executor_class=PlainDataExecutor,
                         is_awaitable=never_awaitable)
        body: dict[str, Any] = {}
        if result.data is not None:
            body["data"] = result.data
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return Response(200, result_json(body).encode(), {"Content-Type": JSON_CONTENT_TYPE}, context.records,
                        parts=_course_parts(result.data, context.pages))


def _course_parts(data: dict[str, Any] | None, pages: dict[str, str]
                  ) -> Callable[[], list[tuple[str, bytes]]] | None:
    """Each aliased course's answer on its own (serialized only when a journal asks)."""
    if not data or not pages:
        return None
    return lambda: [(key, result_json(data[alias]).encode()) for alias, key in pages.items() if alias in data]


def graphql_throttle_key(request: Request) -> str | None:
    """The access token a request carries (a GraphQL client may send it inside the JSON body), or None."""
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
