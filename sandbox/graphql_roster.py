"""The order in which `course.enrollmentsConnection` pages a course's enrollments, and how it drifts.

canvas-lms `app/graphql/types/course_type.rb#enrollments_connection` returns a scope with no ORDER BY, and
graphql-ruby's relation connection pages it by offset (LIMIT/OFFSET, the cursor being the offset). PostgreSQL
then returns rows in their physical order, and an UPDATE writes a new version of a row elsewhere in the heap,
so between two requests a row already paged past may move behind the others: the next page repeats one row
and the row it displaced is never returned. `roster_churn` is the chance that, when a follow-up page of a course
is asked for (offset k > 0), one row at a position < k moves to the end first. The set of enrollments never
changes. Draws are seeded per course and follow-up, so a run is reproducible whatever the thread interleaving.
With churn 0 (the default) every course keeps ascending id order and nothing is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sandbox.faults import draw
from sandbox.university import Enrollment, University


class RosterOrder:
    def __init__(self, university: University, churn: float = 0.0, seed: int = 42) -> None:
        if not 0.0 <= churn <= 1.0:
            raise ValueError("roster churn is a probability (0..1)")
        self.university = university
        self.churn = churn
        self.seed = seed
        self._lock = threading.Lock()
        self._orders: dict[int, list[Enrollment]] = {}
        self._follow_ups: dict[int, int] = {}
        self.moves = 0                                 # rows moved so far, for tests and statistics

    def rows(self, course_id: int, visible: Callable[[Enrollment], bool], offset: int) -> list[Enrollment]:
        """The course's rows that `visible` selects, in the order this request sees them."""
        if self.churn == 0.0:
            return [e for e in self.university.enrollments_by_course.get(course_id, []) if visible(e)]
        with self._lock:
            order = self._orders.get(course_id)
            if order is None:
                order = sorted(self.university.enrollments_by_course.get(course_id, []), key=lambda e: e.id)
                self._orders[course_id] = order
            rows = [e for e in order if visible(e)]
            if offset > 0 and rows:
                follow_up = self._follow_ups.get(course_id, 0)
                self._follow_ups[course_id] = follow_up + 1
                if draw(self.seed, f"roster-churn:{course_id}", follow_up) < self.churn:
                    seen = min(offset, len(rows))
                    moved = rows[int(draw(self.seed, f"roster-row:{course_id}", follow_up) * seen)]
                    order.remove(moved)
                    order.append(moved)
                    self.moves += 1
                    rows = [e for e in order if visible(e)]
            return rows
