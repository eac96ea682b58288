"""`course_inventory.collect`: the activity of courses the last run stored as available is asked before the listing
returns them, and counts exactly when the listing returns them as available, whichever comes first."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from clients.canvas import GraphQLResult
from course_inventory.collect import collect_inventory
from vocab import FatalSourceError

TERM = 5
WAIT = 10.0                      # seconds a gate may hold a request before the test fails instead of hanging


class ListingCanvas:
    """One term's listing of `courses` (one page); analytics answered per course, optionally held at a gate."""

    def __init__(self, courses: list[dict[str, Any]], analytics: Mapping[int, Any]) -> None:
        self.settings = SimpleNamespace(num_workers=4)
        self.stats = None
        self.courses, self.analytics = courses, analytics
        self.asked: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.listing_gate = threading.Event()      # the listing's page waits for it
        self.analytics_gate = threading.Event()    # the analytics answers wait for it
        self.listing_gate.set()
        self.analytics_gate.set()
        self.listed = threading.Event()

    def gateway_get(self, path: str, *, kind: str) -> dict[str, Any]:
        return {"id": TERM, "name": "Fall"}

    def gateway_paginate(self, path: str, params: Mapping[str, Any], *, kind: str) -> Iterator[list[dict]]:
        assert self.listing_gate.wait(WAIT), "the early requests never ended"
        yield self.courses
        self.listed.set()

    def get(self, path: str, *, kind: str) -> dict[str, Any]:
        return {"id": 1, "name": "Root", "parent_account_id": None}

    def paginate(self, path: str, params: Mapping[str, Any] | None = None, *, kind: str) -> Iterator[Any]:
        yield {"events": []} if kind == "audit" else []              # no published event; no sub-accounts

    def get_unless_missing(self, path: str, *, kind: str) -> Any:
        course_id = int(path.split("/")[1])
        with self._lock:
            self.asked[course_id] += 1
        assert self.analytics_gate.wait(WAIT), "the listing never ended"
        answer = self.analytics[course_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def graphql(self, query: str, variables: Mapping[str, Any], *, urgent: bool = False,
                expected_rows: int | None = None) -> GraphQLResult:
        data = {}
        for i in range(len(variables) // 2):
            course_id = int(variables[f"id{i}"])
            node = {"_id": str(course_id * 10), "course": {"_id": str(course_id)},
                    "section": {"_id": str(course_id), "name": "S", "sisId": None}, "user": {"_id": "1"},
                    "state": "active", "type": "StudentEnrollment"}
            data[f"c{i}"] = {"enrollmentsConnection": {"nodes": [node], "pageInfo": {"hasNextPage": False}}}
        return GraphQLResult(data)


def course(course_id: int, state: str = "available", students: int = 3) -> dict[str, Any]:
    return {"id": course_id, "account_id": 1, "workflow_state": state, "total_students": students,
            "name": f"Course {course_id}", "created_at": "2026-08-01T00:00:00Z", "enrollment_term_id": TERM}


def day(course_id: int) -> list[dict[str, Any]]:
    return [{"date": "2026-11-30", "views": course_id, "participations": 1}]


GONE = FatalSourceError("course 2: HTTP 403", source="canvas", status=403)
# Stored as available yesterday: 1 (still available), 2 (deleted: its analytics fail), 3 (unpublished today),
# 6 (available, no students now). Course 4 is new.
LISTING = [course(1), course(3, state="unpublished"), course(4), course(6, students=0)]
ANALYTICS = {1: day(1), 2: GONE, 3: day(3), 4: day(4), 6: day(6)}


def run(canvas: ListingCanvas) -> Any:
    return collect_inventory(canvas, 1, [TERM], early_activity=[1, 2, 3, 6])   # type: ignore[arg-type]


def usage(raw: Any) -> dict[int, int]:
    return {row["course_id"]: row["views"] for row in raw.usage_rows}


def test_early_answers_in_before_the_listing_count_only_for_courses_it_returns_as_available():
    canvas = ListingCanvas(LISTING, ANALYTICS)
    canvas.listing_gate.clear()

    def open_listing_when_early_answers_are_in() -> None:
        while sum(canvas.asked[c] for c in (1, 2, 3, 6)) < 4:
            threading.Event().wait(0.005)
        canvas.listing_gate.set()

    threading.Thread(target=open_listing_when_early_answers_are_in, daemon=True).start()
    raw = run(canvas)
    assert usage(raw) == {1: 1, 4: 4}                  # 2's failure and 3's and 6's answers are dropped
    assert canvas.asked == {1: 1, 2: 1, 3: 1, 4: 1, 6: 1}  # nothing asked twice


def test_early_requests_still_on_their_way_when_the_listing_ends_count_the_same():
    canvas = ListingCanvas(LISTING, ANALYTICS)
    canvas.analytics_gate.clear()
    threading.Thread(target=lambda: canvas.listed.wait(WAIT) and canvas.analytics_gate.set(), daemon=True).start()
    raw = run(canvas)
    assert usage(raw) == {1: 1, 4: 4}
    assert all(n == 1 for n in canvas.asked.values()) and {1, 4} <= set(canvas.asked)


def test_the_early_error_of_a_course_the_listing_returns_fails_the_run_as_a_request_in_order_would():
    canvas = ListingCanvas([course(1), course(2)], ANALYTICS)
    with pytest.raises(FatalSourceError) as raised:
        run(canvas)
    assert raised.value is GONE
