"""Canvas GraphQL simulator: `POST /api/graphql` validated against Canvas's published schema (§C.12).

Queries are parsed and validated with graphql-core against canvas-schema.graphql (loaded once per
process; each distinct query text is parsed and validated once); parse/validation errors answer HTTP 200
with `errors` and no `data`, as graphql-ruby does. Execution is graphql-core's, except that lists of plain
dicts are serialized by a compiled projection (`PlainDataExecutor`) to keep the simulator's CPU low.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    Executor,
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    Undefined,
    build_schema,
    default_field_resolver,
    execute,
    is_leaf_type,
    parse,
    validate,
)
from graphql.execution.collect_fields import FieldDetailsList

from sandbox.httpapp import App, Request, Response, json_response
from sandbox.university import Course, Enrollment, University

MAX_PAGE_SIZE = 100
_ROOT = Path(__file__).resolve().parents[1]
# Where the published schema may live: a copy inside the repo first, then the shared reference folder.
# Canvas's published GraphQL schema, kept in the repository so the sandbox works anywhere.
SCHEMA_CANDIDATES = (_ROOT / "sandbox" / "canvas-schema.graphql",)
UNAUTHENTICATED_BODY = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
INVALID_TOKEN_BODY = {"errors": [{"message": "Invalid access token."}]}
# Canvas's GraphQL reports DB course states; the API's "unpublished" is a created/claimed course.
JSON_CONTENT_TYPE = "application/json; charset=utf-8"            # as json_response writes it
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
                        filter: dict[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002 - schema name
    context: QueryContext = info.context
    university = context.university
    states = set(filter["states"]) if filter and filter.get("states") else None
    items = university.graphql_enrollments(course["course_id"], states)
    items = _filter_enrollments(items, filter or {})
    start, end = page_bounds(len(items), after=after, before=before, first=first, last=last)
    page = items[start:end]
    context.records += len(page)
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


# ---- execution: graphql-core, with lists of plain dicts serialized in one compiled pass ----
_Serialize = Callable[[Any], str]
# (JSON text of `"response key":`, field name, serializer, a Python type the field's scalar returns unchanged)
_FieldPlan = tuple[str, str, _Serialize, type | None]
# Built-in scalars whose output coercion returns values of these types as they are (graphql-core's serializers).
_UNCHANGED = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool}


class _NotPlain(Exception):
    """The compiled pass met something only graphql-core's own completion reproduces (an error, an object)."""


@dataclass(frozen=True, slots=True)
class RawJSON:
    """A completed list already serialized; `result_json` splices the text in as it is."""

    text: str


class PlainDataExecutor(Executor):
    """graphql-core's executor, completing lists of plain dicts straight to JSON text in one compiled pass.

    graphql-core completes every field of every list item through its general machinery (resolver call,
    info object, argument and awaitable checks, error bookkeeping), and the result is then serialized: a page
    of 1,000 enrollments with ten fields each cost ~150 ms of CPU, which stalled every other request of the
    simulator. When everything selected under a list is resolved by the default resolver (no field
    resolvers, arguments, abstract types or is_type_of), its answer is a pure projection of the dicts, so a
    serializer of that projection is compiled once per field position (as graphql-core memoizes collected
    subfields) and the list becomes a `RawJSON` in the result. Anything the projection cannot reproduce
    exactly (a null in a non-null field, a value a scalar refuses, a non-dict object, a callable) makes it
    give up and hand the list back to graphql-core, which produces its usual answer and errors. graphql-core
    documents `executor_class` for such customisation; the overridden method is internal, so the version is
    pinned and tests compare both executors' answers byte for byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (id of list type, id of field list) -> (the field list, kept alive so its id stays unique; plan)
        self._plans: dict[tuple[int, int], tuple[FieldDetailsList, _Serialize | None]] = {}

    def complete_list_value(self, return_type: GraphQLList[GraphQLOutputType], field_details_list: FieldDetailsList,
                            info: GraphQLResolveInfo, path: Any, result: Any, position_context: Any) -> Any:
        serialize = self._plan(return_type, field_details_list)
        if serialize is not None:
            try:
                return RawJSON(serialize(result))
            except _NotPlain:
                pass                           # graphql-core's way, errors and all
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _plan(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList) -> _Serialize | None:
        key = (id(return_type), id(field_details_list))
        cached = self._plans.get(key)
        if cached is None:
            plain = self.field_resolver is default_field_resolver and not self.middleware_manager
            cached = (field_details_list, self._compile(return_type, field_details_list) if plain else None)
            self._plans[key] = cached
        return cached[1]

    def _compile(self, type_: GraphQLOutputType, details: FieldDetailsList) -> _Serialize | None:
        if isinstance(type_, GraphQLNonNull):
            inner = self._compile(type_.of_type, details)
            return None if inner is None else _non_null(inner)
        if isinstance(type_, GraphQLList):
            item = self._compile(type_.of_type, details)
            return None if item is None else _list_of(item)
        if is_leaf_type(type_):
            return _leaf(type_.coerce_output_value)  # type: ignore[union-attr]
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            fields = self._compile_fields(type_, details)
            return None if fields is None else _object_of(fields)
        return None                            # interfaces and unions need type resolution

    def _compile_fields(self, type_: GraphQLObjectType, details: FieldDetailsList) -> list[_FieldPlan] | None:
        grouped, defer_usages, _ = self.collect_subfields(type_, details)   # fragments, @skip/@include
        if defer_usages:
            return None
        fields: list[_FieldPlan] = []
        for response_key, sub_details in grouped.items():
            key = encode_basestring_ascii(response_key) + ":"
            node = sub_details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((key, name, _constant(encode_basestring_ascii(type_.name)), None))
                continue
            field = type_.fields.get(name)
            if field is None or field.resolve is not None or any(d.node.arguments for d in sub_details):
                return None
            serialize = self._compile(field.type, sub_details)
            if serialize is None:
                return None
            named = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            fields.append((key, name, serialize, _UNCHANGED.get(named)))  # type: ignore[call-overload]
        return fields


def _non_null(inner: _Serialize) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            raise _NotPlain
        return inner(value)
    return serialize


def _list_of(item: _Serialize) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        if not isinstance(value, list | tuple):
            raise _NotPlain
        return "[" + ",".join([item(v) for v in value]) + "]"
    return serialize


def _leaf(coerce: Callable[[Any], Any]) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        try:
            coerced = coerce(value)
            if coerced is None or coerced is Undefined:
                raise _NotPlain
            return json_scalar(coerced)
        except Exception as exc:               # graphql-core reports it as a field error
            raise _NotPlain from exc
    return serialize


def _object_of(fields: list[_FieldPlan]) -> _Serialize:
    def serialize(value: Any) -> str:
        if value is None:
            return "null"
        if type(value) is not dict:
            raise _NotPlain
        parts = []
        for key, name, serialize_field, unchanged in fields:
            field_value = value.get(name)
            if type(field_value) is unchanged:       # the hot case: a str for a String/ID field
                parts.append(key + (encode_basestring_ascii(field_value) if unchanged is str
                                    else "true" if field_value else "false"))
                continue
            if callable(field_value) or isinstance(field_value, BaseException):
                raise _NotPlain                # the default resolver would call it / raise it
            parts.append(key + serialize_field(field_value))
        return "{" + ",".join(parts) + "}"
    return serialize


def _constant(text: str) -> _Serialize:
    return lambda _ignored: text


def json_scalar(value: Any) -> str:
    """A leaf as `json.dumps(value, separators=(",", ":"))` writes it."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)                   # floats (NaN, Infinity as json writes them), anything else


def result_json(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))` of a result whose lists may be `RawJSON` already."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, dict) and all(type(key) is str for key in value):
        return "{" + ",".join([encode_basestring_ascii(k) + ":" + result_json(v) for k, v in value.items()]) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([result_json(v) for v in value]) + "]"
    return json.dumps(value, separators=(",", ":"))


def _never_awaitable(_value: Any) -> bool:
    return False                               # every resolver here is synchronous: skip graphql-core's probe


# ---- HTTP ----
class GraphQLEndpoint:
    def __init__(self, university: University, tokens: Iterable[str], schema: GraphQLSchema | None = None) -> None:
        self.university = university
        self.tokens = frozenset(tokens)
        self.schema = schema or load_schema()
        # Clients repeat a few query texts: parse and validate each once (the AST is not changed by execution).
        self._prepare = functools.lru_cache(maxsize=256)(self._parse_and_validate)

    def _parse_and_validate(self, query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
        """(document, ()) for a valid query, else (None, formatted errors) as graphql-ruby reports them."""
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, (error.formatted,)
        problems = validate(self.schema, document)
        if problems:
            return None, tuple(problem.formatted for problem in problems)
        return document, ()

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
        document, problems = self._prepare(query)
        if document is None:
            return json_response({"errors": list(problems)})
        context = QueryContext(self.university)
        result = execute(self.schema, document, context_value=context,
                         variable_values=variables if isinstance(variables, dict) else None,
                         operation_name=operation_name, executor_class=PlainDataExecutor,
                         is_awaitable=_never_awaitable)
        body: dict[str, Any] = {}
        if result.data is not None:
            body["data"] = result.data
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return Response(200, result_json(body).encode(), {"Content-Type": JSON_CONTENT_TYPE}, context.records)


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
