"""Canvas GraphQL simulator: schema validation, paging across pages, aliases, errors, auth, cost records, and the
compiled completion of plain-dict lists answering exactly like graphql-core."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from graphql import Executor, GraphQLSchema, build_schema, execute, parse, validate

from course_inventory.gql_queries import enrollments_query, enrollments_variables
from sandbox.canvas_graphql import (
    GraphQLEndpoint,
    PlainDataExecutor,
    QueryContext,
    encode_cursor,
    relay_id,
    result_json,
)
from sandbox.canvas_rest import CanvasOptions, build_canvas_app
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from tests.sandbox.test_canvas_rest import TOKEN, tiny_university

QUERY = """
query Enrollments($courseID: ID!, $size: Int, $cursor: String) {
  course(id: $courseID) {
    _id
    name
    enrollmentsConnection(first: $size, after: $cursor) {
      nodes { _id state type section { _id name } user { _id name } course { _id name } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""


@pytest.fixture(scope="module")
def university():
    return tiny_university()


@pytest.fixture(scope="module")
def canvas(university):
    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN})))
    options = ServerOptions(cost=CostModel(overhead_ms=0, per_record_ms=0))
    with SimServer(app, name="canvas", options=options) as server:
        yield server


def post(server: SimServer, payload: dict, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{server.url}/api/graphql", json=payload, headers=headers, timeout=10)


def fetch_all(server: SimServer, course_id: str, size: int) -> tuple[list[dict], int]:
    nodes, cursor, pages = [], "", 0
    while True:
        data = post(server, {"query": QUERY, "variables": {"courseID": course_id, "size": size, "cursor": cursor}})
        connection = data.json()["data"]["course"]["enrollmentsConnection"]
        nodes += connection["nodes"]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, pages
        cursor = connection["pageInfo"]["endCursor"]


def test_paging_across_pages_returns_every_non_deleted_enrollment_once(canvas, university):
    nodes, pages = fetch_all(canvas, "101", 75)
    expected = university.graphql_enrollments(101)
    assert [n["_id"] for n in nodes] == [str(e.id) for e in expected]
    assert pages == -(-len(expected) // 75)
    first = nodes[0]
    enrollment = expected[0]
    assert first["state"] == enrollment.state and first["type"] == enrollment.type
    assert first["section"] == {"_id": str(enrollment.section_id),
                                "name": university.section_by_id[enrollment.section_id].name}
    assert first["user"]["_id"] == str(enrollment.user_id) and first["course"]["_id"] == "101"


def test_first_is_capped_at_100(canvas, university):
    connection = post(canvas, {"query": QUERY, "variables": {"courseID": "101", "size": 500}}).json()[
        "data"]["course"]["enrollmentsConnection"]
    assert len(connection["nodes"]) == 100 and connection["pageInfo"]["hasNextPage"] is True


def test_aliases_fetch_several_courses_and_records_count_nodes(canvas, university):
    query = """{
      a: course(id: "101") { _id enrollmentsConnection(first: 10) { nodes { _id } } }
      b: course(id: "102") { _id enrollmentsConnection(first: 10) { edges { cursor node { _id } } } }
      c: course(id: "424242") { _id }
    }"""
    before = canvas.stats.snapshot()["records"]
    data = post(canvas, {"query": query}).json()["data"]
    assert data["a"]["_id"] == "101" and len(data["a"]["enrollmentsConnection"]["nodes"]) == 10
    expected_b = university.graphql_enrollments(102)
    assert [e["node"]["_id"] for e in data["b"]["enrollmentsConnection"]["edges"]] == [str(e.id) for e in expected_b]
    assert data["c"] is None                                  # unknown course -> null, not an error
    assert canvas.stats.snapshot()["records"] - before == 2 + 10 + len(expected_b)


def test_filter_by_states(canvas, university):
    query = """{ course(id: "101") { enrollmentsConnection(filter: {states: [deleted, completed]}) {
                 nodes { _id state } } } }"""
    nodes = post(canvas, {"query": query}).json()["data"]["course"]["enrollmentsConnection"]["nodes"]
    expected = university.graphql_enrollments(101, {"deleted", "completed"})
    assert expected and [n["_id"] for n in nodes] == [str(e.id) for e in expected]


@pytest.mark.parametrize("query", [
    "{ course(id: \"101\") { _id ",                              # parse error
    "{ course(id: \"101\") { noSuchField } }",                   # validation error
    "{ course(id: 101) { enrollmentsConnection(first: \"x\") { nodes { _id } } } }",
])
def test_invalid_queries_get_errors_and_no_data(canvas, query):
    got = post(canvas, {"query": query})
    assert got.status_code == 200
    body = got.json()
    assert "data" not in body and body["errors"] and "message" in body["errors"][0]


def test_variable_errors_and_bad_cursor(canvas):
    body = post(canvas, {"query": QUERY, "variables": {"size": 5}}).json()   # courseID missing
    assert "data" not in body and body["errors"]
    body = post(canvas, {"query": QUERY, "variables": {"courseID": "101", "cursor": "!!"}}).json()
    assert body["data"]["course"]["enrollmentsConnection"] is None
    assert "Invalid cursor" in body["errors"][0]["message"]


def test_auth_401s_and_body_token(canvas):
    missing = post(canvas, {"query": "{ course(id: \"101\") { _id } }"}, token=None)
    assert missing.status_code == 401 and missing.json()["status"] == "unauthenticated"
    assert post(canvas, {"query": "{ course(id: \"101\") { _id } }"}, token="bad").status_code == 401
    in_body = post(canvas, {"query": "{ course(id: \"101\") { _id } }", "access_token": TOKEN}, token=None)
    assert in_body.json() == {"data": {"course": {"_id": "101"}}}


def test_relay_id_is_accepted(canvas):
    relay = post(canvas, {"query": "{ course(id: \"101\") { id } }"}).json()["data"]["course"]["id"]
    assert post(canvas, {"query": f"{{ course(id: \"{relay}\") {{ _id }} }}"}).json()["data"]["course"]["_id"] == "101"


# ---- the compiled completion of plain-dict lists answers exactly as graphql-core does ----
TOY_SCHEMA = build_schema("""
type Query { items: [Item] strict: [Item!]! words: [String] }
type Item {
  id: ID!
  name: String
  flag: Boolean
  count: Int
  color: Color
  tags: [String!]
  child: Item
  children(first: Int): [Item]
}
enum Color { RED GREEN }
""")
TOY_QUERY = """
query Toy($skipName: Boolean!) {
  items { __typename id label: name @skip(if: $skipName) ...More child { id child { name } } }
  strict { id tags }
  words
}
fragment More on Item { flag count color tags }
"""


def toy_item(n: int, **changes: Any) -> dict[str, Any]:
    return {"id": str(n), "name": f"item {n}", "flag": n % 2 == 0, "count": n, "color": "RED", "tags": ["a", "b"],
            "child": {"id": n * 10, "name": None, "child": None}, **changes}


def both_executors(root: dict[str, Any], query: str = TOY_QUERY, variables: dict | None = None,
                   schema: GraphQLSchema = TOY_SCHEMA) -> tuple[str, str]:
    """The response body graphql-core's executor leads to, and the one PlainDataExecutor's result gives."""
    document = parse(query)
    assert not validate(schema, document)
    variables = {"skipName": False} if variables is None else variables
    reference = execute(schema, document, root_value=root, variable_values=variables)
    fast = execute(schema, document, root_value=root, variable_values=variables, executor_class=PlainDataExecutor)
    return json.dumps(reference.formatted, separators=(",", ":")), result_json(fast.formatted)


@pytest.mark.parametrize(("root", "plain"), [
    ({"items": [toy_item(n) for n in range(5)], "strict": [toy_item(7)], "words": ["x", None, "y"]}, True),
    ({"items": [], "strict": [], "words": None}, True),
    ({"items": [toy_item(1, id=None), toy_item(2)], "strict": [toy_item(3)], "words": []}, False),    # null in ID!
    ({"items": [toy_item(1, tags=["a", None])], "strict": [toy_item(2)], "words": []}, False),  # null in String!
    ({"items": [toy_item(1, count=2**40, color="BLUE")], "strict": [], "words": [1.5, True]}, False),  # coercion
    ({"items": [toy_item(1, child=["not", "an", "object"])], "strict": [], "words": []}, False),
    ({"items": [toy_item(1, name=lambda _info, **_args: "called")], "strict": [], "words": []}, False),  # resolver
    ({"items": [None, toy_item(2)], "strict": [toy_item(3, id=None)], "words": "not a list"}, False),
])
def test_plain_data_executor_answers_like_graphql_core(root, plain, monkeypatch):
    per_item = []
    original = Executor.complete_list_item_value
    monkeypatch.setattr(Executor, "complete_list_item_value",
                        lambda self, *args: per_item.append(type(self)) or original(self, *args))
    reference, fast = both_executors(root)
    assert fast == reference                                   # byte for byte: values, key order, escaping
    # The compiled pass did the work, or handed it to graphql-core when the data needed its error handling.
    assert (PlainDataExecutor in per_item) is not plain


def test_plain_data_executor_honours_directives_and_arguments():
    root = {"items": [{**toy_item(1), "children": [toy_item(2)]}], "strict": [], "words": []}
    for skip in (True, False):
        reference, fast = both_executors(root, variables={"skipName": skip})
        assert fast == reference and ("label" in fast) is not skip
    query = "{ items { children(first: 1) { id } } }"   # a field with arguments takes graphql-core's own path
    reference, fast = both_executors(root, query, variables={})
    assert fast == reference == '{"data":{"items":[{"children":[{"id":"2"}]}]}}'


def test_serialization_matches_json_dumps_for_awkward_values():
    root = {"items": [toy_item(1, name='quote " backslash \\ tab \t émoji 🎓 \u2028'), toy_item(-2, count=-7)],
            "strict": [], "words": ["ünïcode", "", "\x00"]}
    reference, fast = both_executors(root)
    assert fast == reference and "\\u00e9" in fast


def test_enrollment_page_is_answered_like_graphql_core(university):
    endpoint = GraphQLEndpoint(university, [TOKEN])
    query = enrollments_query(3)
    variables = enrollments_variables([(101, None), (102, encode_cursor(2)), (424242, None)], page_size=5)
    body = endpoint.run(query, variables, None).body
    reference = execute(endpoint.schema, parse(query), context_value=QueryContext(university),
                        variable_values=variables)
    assert body == json.dumps(reference.formatted, separators=(",", ":")).encode()
    fast = json.loads(body)
    assert len(fast["data"]["c0"]["enrollmentsConnection"]["nodes"]) == 5 and fast["data"]["c2"] is None


def test_queries_are_validated_once_per_text(university, monkeypatch):
    endpoint = GraphQLEndpoint(university, [TOKEN])
    calls = []
    monkeypatch.setattr("sandbox.canvas_graphql.validate", lambda *args: calls.append(1) or validate(*args))
    bad = "{ course(id: \"101\") { noSuchField } }"
    for _ in range(3):
        assert json.loads(endpoint.run(QUERY, {"courseID": "101", "size": 2}, None).body)["data"]["course"]
        assert "data" not in json.loads(endpoint.run(bad, None, None).body)
    assert len(calls) == 2                                     # each text validated once, errors remembered


def test_fields_selected_only_through_fragments_are_answered(canvas, university):
    # The resolver builds only the keys a query selects; selections reached through fragments count too.
    query = """
    query($id: ID!) { course(id: $id) { enrollmentsConnection(first: 3) {
        edges { cursor node { ...Who } }
        pageInfo { startCursor endCursor }
    } } }
    fragment Who on Enrollment { id userId courseSectionId ... on Enrollment { user { id name } section { id sisId } } }
    """
    connection = post(canvas, {"query": query, "variables": {"id": "101"}}).json()["data"]["course"][
        "enrollmentsConnection"]
    expected = university.graphql_enrollments(101)[:3]
    assert [edge["node"] for edge in connection["edges"]] == [{
        "id": relay_id("Enrollment", e.id), "userId": str(e.user_id), "courseSectionId": str(e.section_id),
        "user": {"id": relay_id("User", e.user_id), "name": university.user_by_id[e.user_id].name},
        "section": {"id": relay_id("Section", e.section_id),
                    "sisId": university.section_by_id[e.section_id].sis_source_id},
    } for e in expected]
    assert connection["pageInfo"] == {"startCursor": connection["edges"][0]["cursor"],
                                      "endCursor": connection["edges"][-1]["cursor"]}
