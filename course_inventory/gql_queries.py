"""GraphQL text for Canvas (validated against Canvas's published schema in the tests)."""

from __future__ import annotations

from collections.abc import Sequence

ENROLLMENT_PAGE_SIZE = 100        # Canvas's maximum page size
COURSES_PER_REQUEST = 10          # aliases per request: fewer, fuller requests save throttle budget

_ENROLLMENT_FIELDS = """
      nodes {
        _id
        state
        type
        section { _id name }
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
