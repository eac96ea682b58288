"""The enrollment chains of `course_inventory.collect`: later pages go ahead of the queue, every row is kept."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.canvas import GraphQLResult
from clients.tasks import TaskGroup
from course_inventory.collect import _Collector

PAGE = 2


class RosterCanvas:
    """Answers enrollment queries from fixed rosters, `PAGE` rows a page, and notes which requests were urgent."""

    def __init__(self, rosters: Mapping[int, int]) -> None:
        self.rosters = rosters                   # course id -> number of students
        self.calls: list[tuple[tuple[str | None, ...], bool]] = []

    def graphql(self, query: str, variables: Mapping[str, Any], *, urgent: bool = False) -> GraphQLResult:
        data, cursors = {}, []
        for i in range(len(variables) // 2):
            course_id, after = int(variables[f"id{i}"]), variables[f"after{i}"]
            cursors.append(after)
            start = int(after or 0)
            end = min(start + PAGE, self.rosters[course_id])
            nodes = [{"_id": str(course_id * 100 + n), "course": {"_id": str(course_id)},
                      "section": {"_id": str(course_id), "name": "S", "sisId": None}, "user": {"_id": str(n)},
                      "state": "active", "type": "StudentEnrollment"} for n in range(start, end)]
            more = end < self.rosters[course_id]
            data[f"c{i}"] = {"enrollmentsConnection": {"nodes": nodes, "pageInfo": {
                "hasNextPage": more, "endCursor": str(end) if more else None}}}
        self.calls.append((tuple(cursors), urgent))
        return GraphQLResult(data)


class Count:
    def advance(self, n: int = 1) -> None:
        pass


def test_later_pages_of_a_chain_are_urgent_and_every_row_is_kept():
    canvas = RosterCanvas({1: 5, 2: 1})
    with TaskGroup(1) as tasks:
        collector = _Collector(canvas, 1, tasks, {"enrollments": Count()}, {})   # type: ignore[arg-type]
        collector.enrollments([1, 2])
    # The first request asks both courses' first pages; course 2 is done, course 1 has two pages more.
    assert canvas.calls == [((None, None), False), (("2",), True), (("4",), True)]
    assert sorted(record[0] for record in collector.raw.enrollments) == [100, 101, 102, 103, 104, 200]
