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


class RecordingTasks:
    """A TaskGroup stand-in that records what is submitted, with its priority, and runs nothing."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, Any, int]] = []

    def submit(self, fn: Any, *args: Any, priority: int = 0) -> None:
        self.submitted.append((fn.__name__, args[0], priority))

    def check(self) -> None:
        pass


class Expect(Count):
    def expect(self, n: int) -> None:
        pass


def test_a_batch_expecting_several_pages_is_queued_ahead_by_its_page_count():
    tasks = RecordingTasks()
    progress = {phase: Expect() for phase in ("enrollments", "published dates", "activity")}
    collector = _Collector(RosterCanvas({}), 1, tasks, progress, {})   # type: ignore[arg-type]
    courses = [{"id": 1, "account_id": 1, "workflow_state": "available", "total_students": 30},
               {"id": 2, "account_id": 1, "workflow_state": "available", "total_students": 2450}]
    collector._schedule(courses)
    enrollments = [(ids, priority) for name, ids, priority in tasks.submitted if name == "enrollments"]
    # Both courses fit one batch, largest first; its 25 pages (100 enrollments a page) put it 24 ahead.
    assert enrollments == [([2, 1], 24)]
    assert {priority for name, _, priority in tasks.submitted if name != "enrollments"} == {0}
