"""The enrollment chains of `course_inventory.collect`: later pages go ahead of the queue, every row is kept."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
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
        self.expected_rows: list[int | None] = []

    def graphql(self, query: str, variables: Mapping[str, Any], *, urgent: bool = False,
                expected_rows: int | None = None) -> GraphQLResult:
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
        self.expected_rows.append(expected_rows)
        return GraphQLResult(data)


class Count:
    def advance(self, n: int = 1) -> None:
        pass


def test_later_pages_of_a_chain_are_urgent_and_every_row_is_kept():
    canvas = RosterCanvas({1: 5, 2: 1})
    with TaskGroup(1) as tasks:
        collector = _Collector(canvas, 1, tasks, {"enrollments": Count()}, {})   # type: ignore[arg-type]
        collector.enrollments({1: 5, 2: 1})                 # course id: total_students
    # The first request asks both courses' first pages; course 2 is done, course 1 has two pages more.
    assert canvas.calls == [((None, None), False), (("2",), True), (("4",), True)]
    assert sorted(record[0] for record in collector.raw.enrollments) == [100, 101, 102, 103, 104, 200]
    # The limiter is told each page's rows as the listing's counts forecast them: a course object each, plus the
    # students not read yet (at least one while a page is to come): (1 + 5) + (1 + 1), then 1 + 3, then 1 + 1.
    assert canvas.expected_rows == [8, 4, 2]


def test_a_roster_read_again_is_expected_in_full_again():
    class ShiftingCanvas(RosterCanvas):
        """Course 1's second page repeats a row of the first (a row moved): its pass ends, and it starts over."""

        def graphql(self, query: str, variables: Mapping[str, Any], **kwargs: Any) -> GraphQLResult:
            result = super().graphql(query, variables, **kwargs)
            if len(self.calls) == 2:
                nodes = result.data["c0"]["enrollmentsConnection"]["nodes"]
                nodes[0] = {**nodes[0], "_id": "100"}
            return result

    canvas = ShiftingCanvas({1: 3})
    with TaskGroup(1) as tasks:
        collector = _Collector(canvas, 1, tasks, {"enrollments": Count()}, {})   # type: ignore[arg-type]
        collector.enrollments({1: 3})
    assert [cursors for cursors, _ in canvas.calls][:3] == [(None,), ("2",), (None,)]
    assert canvas.expected_rows[:3] == [4, 2, 4]          # the new pass is expected as large as the first


class RecordingTasks:
    """A TaskGroup stand-in that records what is submitted, and how far ahead, and runs nothing."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, Any, int]] = []

    def submit(self, fn: Any, *args: Any, ahead: int = 0) -> None:
        self.submitted.append((fn.__name__, args[0], ahead))

    def check(self) -> None:
        pass


class Expect(Count):
    def expect(self, n: int) -> None:
        pass


def test_a_batch_expecting_several_pages_is_queued_ahead_by_the_requests_its_chain_takes():
    tasks = RecordingTasks()
    progress = {phase: Expect() for phase in ("enrollments", "published dates", "activity")}
    canvas = RosterCanvas({})
    canvas.settings = SimpleNamespace(num_workers=8)                  # type: ignore[attr-defined]
    collector = _Collector(canvas, 1, tasks, progress, {})             # type: ignore[arg-type]
    courses = [{"id": n, "account_id": 1, "workflow_state": "available", "total_students": 30} for n in range(1, 22)]
    courses.append({"id": 99, "account_id": 1, "workflow_state": "available", "total_students": 250})
    collector._schedule(courses)
    enrollments = [(list(ids), ahead) for name, ids, ahead in tasks.submitted if name == "enrollments"]
    # Largest first: the first batch's 3 pages (100 enrollments a page) put it 2 x 8 workers x 2 later pages
    # ahead; the second batch fits one page and keeps its place.
    assert enrollments == [([99, *range(1, 20)], 32), ([20, 21], 0)]
    assert {ahead for name, _, ahead in tasks.submitted if name != "enrollments"} == {0}
