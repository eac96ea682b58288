"""The enrollment query stays within Canvas's GraphQL limits, measured the way graphql-ruby measures them.

Canvas's limits: canvas-lms config/initializers/plugin_setup.rb (graphql_tuning defaults: max_depth 15,
max_complexity 375,000, max_query_aliases 20, max_query_string_tokens 5,000, default_page_size 20).
Complexity follows graphql-ruby's default (lib/graphql/schema/field.rb `calculate_complexity`): a field
costs 1 plus its selections; a connection costs 1 + page size x (its selections minus `nodes`/`edges`
and `pageInfo` with its fields) + those, the page size being `first`/`last` or the default page size.
"""

from __future__ import annotations

from pathlib import Path

import graphql
import pytest
from graphql.language import FieldNode, Lexer, OperationDefinitionNode, SelectionSetNode, Source, TokenKind

from course_inventory.gql_queries import (
    COURSES_PER_REQUEST,
    ENROLLMENT_PAGE_SIZE,
    enrollments_query,
    enrollments_variables,
)

SCHEMA = graphql.build_schema((Path(__file__).resolve().parents[2] / "sandbox" / "canvas-schema.graphql").read_text())
MAX_DEPTH, MAX_COMPLEXITY, MAX_ALIASES, MAX_TOKENS, DEFAULT_PAGE_SIZE = 15, 375_000, 20, 5_000, 20


def _fields(selection_set: SelectionSetNode | None) -> list[FieldNode]:
    selections = selection_set.selections if selection_set else ()
    if any(not isinstance(s, FieldNode) for s in selections):
        raise NotImplementedError("fragments are not needed by these queries")
    return list(selections)


def _page_size(field: FieldNode, variables: dict) -> int:
    sizes = []
    for argument in field.arguments or ():
        if argument.name.value in ("first", "last"):
            value = argument.value
            sizes.append(variables[value.name.value] if isinstance(value, graphql.VariableNode) else int(value.value))
    sizes = [s for s in sizes if s is not None]
    return max(sizes) if sizes else DEFAULT_PAGE_SIZE


def complexity(field: FieldNode, parent: graphql.GraphQLObjectType, variables: dict) -> int:
    definition = parent.fields[field.name.value]
    named = graphql.get_named_type(definition.type)
    children = _fields(field.selection_set)
    child_costs = {child.name.value: complexity(child, named, variables) for child in children}
    child_total = sum(child_costs.values())
    if not named.name.endswith("Connection"):
        return 1 + child_total
    metadata = 0
    for child in children:
        if child.name.value == "pageInfo":
            metadata += 1 + len(_fields(child.selection_set))
        elif child.name.value in ("total", "totalCount", "count"):
            metadata += 1
    nodes_edges = sum(1 for child in children if child.name.value in ("nodes", "edges"))
    items = child_total - metadata - nodes_edges
    return 1 + _page_size(field, variables) * items + metadata + nodes_edges


def query_complexity(text: str, variables: dict) -> int:
    operation = next(d for d in graphql.parse(text).definitions if isinstance(d, OperationDefinitionNode))
    return sum(complexity(field, SCHEMA.query_type, variables) for field in _fields(operation.selection_set))


def depth(selection_set: SelectionSetNode | None) -> int:
    return max((1 + depth(field.selection_set) for field in _fields(selection_set)), default=0)


def aliases(selection_set: SelectionSetNode | None) -> int:
    return sum((field.alias is not None) + aliases(field.selection_set) for field in _fields(selection_set))


def tokens(text: str) -> int:
    lexer, count = Lexer(Source(text)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def test_the_complexity_rule_on_a_hand_counted_query():
    text = '{ course(id: "1") { _id enrollmentsConnection(first: 3) { nodes { _id user { _id } } ' \
           'pageInfo { hasNextPage endCursor } } } }'
    # nodes' children: _id 1 + user (1 + _id 1) = 3; pageInfo 1 + 2 fields; connection 1 + 3 x 3 + 3 + 1 (nodes).
    assert query_complexity(text, {}) == 1 + 1 + (1 + 3 * 3 + 3 + 1)
    assert query_complexity(text.replace("(first: 3)", ""), {}) == 1 + 1 + (1 + DEFAULT_PAGE_SIZE * 3 + 3 + 1)
    assert query_complexity(text.replace("first: 3", "first: $n"), {"n": 7}) == 1 + 1 + (1 + 7 * 3 + 3 + 1)


@pytest.mark.parametrize(("count", "expected"), [(10, 11_070), (20, 22_140)])
def test_enrollment_query_is_within_canvas_limits(count, expected):
    text = enrollments_query(count)
    variables = enrollments_variables([(i, None) for i in range(count)])
    operation = graphql.parse(text).definitions[0]
    # Per course: course 1 + _id 1 + connection (1 + 100 x nodes' children 11 + pageInfo 3 + nodes 1);
    # nodes' children: _id, state, type 1 each, section 1 + 3 (with sisId), user 2, course 2.
    assert query_complexity(text, variables) == expected == count * (1 + 1 + (1 + ENROLLMENT_PAGE_SIZE * 11 + 3 + 1))
    assert expected <= MAX_COMPLEXITY
    assert depth(operation.selection_set) == 5 <= MAX_DEPTH
    assert aliases(operation.selection_set) == count <= MAX_ALIASES
    assert tokens(text) <= MAX_TOKENS


def test_sis_id_adds_one_per_enrollment_to_the_complexity():
    variables = enrollments_variables([(i, None) for i in range(COURSES_PER_REQUEST)])
    text = enrollments_query(COURSES_PER_REQUEST)
    without = text.replace("section { _id name sisId }", "section { _id name }")
    assert query_complexity(text, variables) - query_complexity(without, variables) == (
        COURSES_PER_REQUEST * ENROLLMENT_PAGE_SIZE)
    assert tokens(text) - tokens(without) == COURSES_PER_REQUEST
