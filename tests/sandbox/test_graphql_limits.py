"""Canvas's GraphQL limits (graphql_tuning defaults, CanvasAntiabuseAnalyzer, graphql-ruby's analyzers), the default
page size, rosters hidden without read_roster, and the drifting row order of enrollmentsConnection.

Expected complexities are worked out by hand from graphql-ruby's rule (field 1 + children; a connection
1 + page size x (children - metadata) + metadata) in the comments next to them.
"""

from __future__ import annotations

import json

import pytest
import requests

from course_inventory.gql_queries import enrollments_query, enrollments_variables
from sandbox.canvas_graphql import GraphQLEndpoint, encode_cursor
from sandbox.canvas_rest import CanvasOptions, build_canvas_app
from sandbox.graphql_limits import GraphQLLimits
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from tests.sandbox.test_canvas_rest import TOKEN, tiny_university


@pytest.fixture(scope="module")
def university():
    return tiny_university()


@pytest.fixture(scope="module")
def endpoint(university):
    return GraphQLEndpoint(university, [TOKEN])


def answer(endpoint: GraphQLEndpoint, query: str, variables: dict | None = None) -> dict:
    response = endpoint.run(query, variables, None)
    assert response.status == 200
    return json.loads(response.body)


def product_variables(count: int, page_size: int = 100) -> dict:
    return enrollments_variables([(101 + i, None) for i in range(count)], page_size=page_size)


@pytest.mark.parametrize("count", [10, 20])
def test_the_product_s_query_passes_at_10_and_20_aliases(endpoint, university, count):
    body = answer(endpoint, enrollments_query(count), product_variables(count))
    assert "errors" not in body
    assert len(body["data"]["c0"]["enrollmentsConnection"]["nodes"]) == 100      # course 101: 227 rows


def test_21_aliases_are_refused_with_canvas_s_message(endpoint):
    body = answer(endpoint, enrollments_query(21), product_variables(21))
    assert body == {"errors": [{"message": "max query aliases exceeded"}]}


def test_complexity_of_the_product_s_query_follows_graphql_ruby(university):
    # Per course: course 1 + _id 1 + connection. Connection children: nodes 1 + (_id, state, type 3 + section 4
    # + user 2 + course 2) = 12, pageInfo 1 + 2 = 3 -> 15; metadata: nodes 1 + pageInfo 1 + its 2 fields = 4.
    # first = 100: 1 + 100 x (15 - 4) + 4 = 1105 -> 1107 per course; no first: page size 20 -> 1 + 220 + 4 + 2.
    strict = GraphQLEndpoint(university, [TOKEN], limits=GraphQLLimits(max_complexity=0))
    body = answer(strict, enrollments_query(10), product_variables(10))
    assert body == {"errors": [{"message": "Query has complexity of 11070, which exceeds max complexity of 0"}]}
    variables = product_variables(3)
    del variables["first"]
    body = answer(strict, enrollments_query(3), variables)
    assert body["errors"][0]["message"].startswith(f"Query has complexity of {3 * 227},")


def nested(levels: int, first: int) -> str:
    """course { enrollmentsConnection { nodes { course { ... { _id } } } } } with `levels` connections."""
    inner = "_id"
    for _ in range(levels):
        inner = f"course {{ enrollmentsConnection(first: {first}) {{ nodes {{ {inner} }} }} }}"
    return "{ " + inner.replace("course {", 'course(id: "101") {', 1) + " }"


def test_a_complex_query_is_refused_with_graphql_ruby_s_message(endpoint):
    # Innermost connection: nodes{_id} = 2, metadata 1 -> 1 + 100 x 1 + 1 = 102, its course 103; middle:
    # nodes 104 -> 1 + 100 x 103 + 1 = 10302, course 10303; outer: nodes 10304 -> 1 + 100 x 10303 + 1 = 1030302.
    body = answer(endpoint, nested(3, 100))
    assert body == {"errors": [{"message": "Query has complexity of 1030303, which exceeds max complexity of 375000"}]}
    assert "errors" not in answer(endpoint, nested(2, 100))                # 10303


def test_a_deep_query_is_refused_with_graphql_ruby_s_message(endpoint):
    # Each level nests course > enrollmentsConnection > nodes (3 fields), then _id: depth 3 x levels + 1.
    assert "errors" not in answer(endpoint, nested(4, 1))                  # depth 13
    body = answer(endpoint, nested(5, 1))
    assert body == {"errors": [{"message": "Query has depth of 16, which exceeds max depth of 15"}]}


def test_errors_come_in_graphql_ruby_s_analyzer_order(endpoint):
    aliases = " ".join(f"a{i}: _id" for i in range(21))
    query = nested(5, 1).replace("{ _id }", "{ " + aliases + " }")
    messages = [e["message"] for e in answer(endpoint, query)["errors"]]
    assert messages == ["max query aliases exceeded", "Query has depth of 16, which exceeds max depth of 15"]


def test_directives_on_fields_are_limited_with_the_aliases_message(endpoint):
    def with_directives(count: int) -> str:
        fields = " ".join(["_id @include(if: true)"] * count)
        return '{ course(id: "101") { ' + fields + " } }"

    assert answer(endpoint, with_directives(5)) == {"data": {"course": {"_id": "101"}}}
    assert answer(endpoint, with_directives(6)) == {"errors": [{"message": "max query aliases exceeded"}]}


def test_aliases_in_fragments_count_at_every_spread(endpoint):
    query = ('query { course(id: "101") { ...A ...A ...A } } fragment A on Course { '
             + " ".join(f"x{i}: _id" for i in range(7)) + " }")
    assert answer(endpoint, query) == {"errors": [{"message": "max query aliases exceeded"}]}   # 3 x 7 = 21
    assert "errors" not in answer(endpoint, query.replace("...A ...A ...A", "...A ...A"))     # 14


def token_query(states: int, comment: bool = False) -> str:
    # Tokens: { course ( id : "101" ) { enrollmentsConnection ( filter : { states : [ (16), one per state,
    # then ] } ) { nodes { _id } } } } (11): 27 + states.
    listed = " ".join(["active"] * states)
    return (("# a comment is a token too\n" if comment else "") + '{ course(id: "101") { enrollmentsConnection('
            f"filter: {{states: [{listed}]}}) {{ nodes {{ _id }} }} }} }}")


def test_huge_queries_are_refused_past_5000_tokens_comments_included(endpoint):
    fits = answer(endpoint, token_query(4973))
    assert len(fits["data"]["course"]["enrollmentsConnection"]["nodes"]) == 20
    for query in (token_query(4974), token_query(4973, comment=True)):
        body = answer(endpoint, query)
        assert [e["message"] for e in body["errors"]] == ["This query is too large to execute."]
        assert "data" not in body and body["errors"][0]["locations"]


def test_analysis_runs_once_per_text_and_page_size(university, monkeypatch):
    calls = []
    import sandbox.canvas_graphql as module

    original = module.analyze
    monkeypatch.setattr(module, "analyze", lambda *args: calls.append(args[3]) or original(*args))
    endpoint = GraphQLEndpoint(university, [TOKEN])
    for cursor in (None, encode_cursor(10), encode_cursor(20)):          # cursors do not matter to the analysis
        endpoint.run(enrollments_query(2), enrollments_variables([(101, cursor), (103, None)], 50), None)
    endpoint.run(enrollments_query(2), enrollments_variables([(101, None), (103, None)], 100), None)
    assert calls == [{"first": 50}, {"first": 100}]


def test_the_default_page_size_is_20_and_the_maximum_100(endpoint):
    query = '{ course(id: "101") { enrollmentsConnection { nodes { _id } pageInfo { hasNextPage } } } }'
    connection = answer(endpoint, query)["data"]["course"]["enrollmentsConnection"]
    assert len(connection["nodes"]) == 20 and connection["pageInfo"]["hasNextPage"]
    big = answer(endpoint, query.replace("enrollmentsConnection", "enrollmentsConnection(first: 500)"))
    assert len(big["data"]["course"]["enrollmentsConnection"]["nodes"]) == 100


def test_without_read_roster_the_connection_is_null_without_an_error(university):
    endpoint = GraphQLEndpoint(university, [TOKEN], roster_allowed=False)
    body = answer(endpoint, enrollments_query(2), product_variables(2))
    assert body == {"data": {"c0": {"_id": "101", "enrollmentsConnection": None},
                             "c1": {"_id": "102", "enrollmentsConnection": None}}}
    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN}),
                                                        token_permissions=frozenset({"view_analytics"})))
    with SimServer(app, options=ServerOptions(cost=CostModel(0, 0))) as server:
        got = requests.post(f"{server.url}/api/graphql", json={"query": enrollments_query(1),
                                                               "variables": product_variables(1)},
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
    assert got == {"data": {"c0": {"_id": "101", "enrollmentsConnection": None}}}


def page_through(endpoint: GraphQLEndpoint, course_id: int, size: int) -> list[str]:
    ids, cursor = [], None
    while True:
        data = answer(endpoint, enrollments_query(1), enrollments_variables([(course_id, cursor)], size))
        connection = data["data"]["c0"]["enrollmentsConnection"]
        ids += [node["_id"] for node in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return ids
        cursor = connection["pageInfo"]["endCursor"]


def test_without_churn_offset_paging_returns_every_row_once_in_id_order(endpoint, university):
    expected = [str(e.id) for e in university.graphql_enrollments(101)]
    assert page_through(endpoint, 101, 50) == expected == sorted(expected, key=int)


def test_churn_moves_returned_rows_so_offset_paging_repeats_and_skips(university):
    expected = {str(e.id) for e in university.graphql_enrollments(101)}         # 227 rows, 5 pages of 50

    def run(seed: int) -> tuple[list[str], int]:
        churning = GraphQLEndpoint(university, [TOKEN], roster_churn=1.0, seed=seed)
        return page_through(churning, 101, 50), churning.roster.moves

    ids, moves = run(3)
    assert moves == 4                                   # every follow-up page found one returned row moved
    assert len(ids) == len(expected) and set(ids) <= expected
    assert len(set(ids)) == len(expected) - 4          # four rows repeated, four never seen
    assert run(3) == (ids, moves) and run(4)[0] != ids  # seeded: reproducible, and the seed matters
    # The rows are still the course's rows: a fresh first page sees the moved order, same set.
    assert set(page_through(GraphQLEndpoint(university, [TOKEN], roster_churn=0.5), 101, 100)) <= expected


def test_roster_churn_reaches_the_endpoint_from_canvas_options(university):
    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN}), roster_churn=1.0))
    with SimServer(app, options=ServerOptions(cost=CostModel(0, 0))) as server:
        def page(cursor: str | None) -> list[str]:
            got = requests.post(f"{server.url}/api/graphql", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
                                json={"query": enrollments_query(1),
                                      "variables": enrollments_variables([(101, cursor)], 100)}).json()
            return [n["_id"] for n in got["data"]["c0"]["enrollmentsConnection"]["nodes"]]
        first, second = page(None), page(encode_cursor(100))
    ids = [str(e.id) for e in university.graphql_enrollments(101)]
    # One row of the first page moved to the end: the second page starts one row later, skipping ids[100].
    assert first == ids[:100] and second == ids[101:201]
