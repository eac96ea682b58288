"""GraphQL text for Canvas (validated against Canvas's published schema in the tests).

Canvas's limits (canvas-lms config/initializers/plugin_setup.rb, graphql_tuning defaults): depth 15,
complexity 375,000, 20 aliases, 5,000 tokens. With graphql-ruby's default complexity
(lib/graphql/schema/field.rb: every field 1; a connection 1 + `first` x its nodes' children + its
nodes/pageInfo fields) one course of `enrollments_query` costs 1,107 at 100 enrollments per page
(`sisId` adds 100): 10 courses 11,070, 20 courses 22,140; depth 5; 600 and 1,190 tokens.
tests/unit/test_inventory_query_limits.py recomputes these. `sisId` made the first enrollment pages of the
`medium` sandbox 11 % larger in bytes and left requests and charged cost unchanged (the sandbox charges per
record); real Canvas charges CPU and database time, so it costs there a little: a batched course lookup and
a read_sis permission check per section (canvas-lms app/graphql/types/section_type.rb).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ENROLLMENT_PAGE_SIZE = 100        # Canvas's maximum page size
# Aliases per request, Canvas's limit (20): each request's fixed cost is shared by twice as many courses as at 10
# (a bigger request holds its up-front reservation longer, but one request for 20 courses spends no more server time
# than two for 10 each). Measured in README "Benchmarks".
COURSES_PER_REQUEST = 20


def expected_page_rows(students_left: Iterable[int]) -> int:
    """The rows one enrollment page of several courses should hold, given each course's students not yet read (the
    listing's total_students less the rows read so far): a course object each plus a page of its rows, at least
    one, since a course is asked for only while it has a page to come. An estimate for the Canvas limiter (a
    page's server time grows with its rows), never a count anything is checked against."""
    return sum(1 + min(max(left, 1), ENROLLMENT_PAGE_SIZE) for left in students_left)

_ENROLLMENT_FIELDS = """
      nodes {
        _id
        state
        type
        section { _id name sisId }
        user { _id }
        course { _id }
      }
      pageInfo { endCursor hasNextPage }"""


def enrollments_query(count: int) -> str:
    """A query fetching one enrollment page of `count` courses, aliased c0..c{count-1}.

    Variables: $id<i>: ID!, $after<i>: String (null for the first page), $first: Int.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    params = ", ".join(f"$id{i}: ID!, $after{i}: String" for i in range(count))
    blocks = "".join(
        f"""
  c{i}: course(id: $id{i}) {{
    _id
    enrollmentsConnection(first: $first, after: $after{i}) {{{_ENROLLMENT_FIELDS}
    }}
  }}""" for i in range(count))
    return f"query CourseEnrollments($first: Int, {params}) {{{blocks}\n}}\n"


def enrollments_variables(pages: Sequence[tuple[int, str | None]], page_size: int = ENROLLMENT_PAGE_SIZE) -> dict:
    variables: dict[str, object] = {"first": page_size}
    for i, (course_id, cursor) in enumerate(pages):
        variables[f"id{i}"] = str(course_id)
        variables[f"after{i}"] = cursor
    return variables
