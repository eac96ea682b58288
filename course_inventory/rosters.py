"""One course's enrollment pages, read again until a pass sees every row once (pure: no I/O, no clock).

Canvas's `enrollmentsConnection` has no ORDER BY (canvas-lms app/graphql/types/course_type.rb) and graphql-ruby's
relation connection pages by offset, so a row that moves while the roster is read (an update, an enrollment
added or dropped) shifts the pages: one row comes twice and, when the set did not change, another is skipped.
A pass that saw no row twice, over an unchanged set, saw every row. So a course whose pass repeated a row is read
again from its first page, keeping every row seen in any pass (the latest version of each), until a pass repeats
nothing; a roster that keeps shifting for `max_passes` passes is an error, never a silent gap.
"""

from __future__ import annotations

from collections.abc import Iterable

from course_inventory.transform import EnrollmentRecord
from vocab import SourceFormatError

MAX_PASSES = 6


class CoursePages:
    def __init__(self, course_id: int, max_passes: int = MAX_PASSES) -> None:
        self.course_id, self.max_passes = course_id, max_passes
        self.passes = 1
        self.repeated = 0                    # rows seen twice within a pass, over all passes
        self._records: dict[int, EnrollmentRecord] = {}
        self._seen_in_pass: set[int] = set()
        self._cursors: set[str] = set()
        self._repeated_in_pass = 0

    def add_page(self, records: Iterable[EnrollmentRecord], next_cursor: str | None) -> tuple[bool, str | None]:
        """Take one page; returns (finished, cursor of the page to ask next: None = the first page again)."""
        for record in records:
            enrollment_id = record[0]
            if enrollment_id in self._seen_in_pass:
                self._repeated_in_pass += 1
                self.repeated += 1
            self._seen_in_pass.add(enrollment_id)
            self._records[enrollment_id] = record
        if next_cursor is not None:
            if next_cursor in self._cursors:
                raise SourceFormatError(f"Canvas GraphQL repeats the cursor of an earlier enrollment page of course "
                                        f"{self.course_id} (paging would never end)", source="canvas")
            self._cursors.add(next_cursor)
            return False, next_cursor
        if self._repeated_in_pass == 0:
            return True, None
        if self.passes >= self.max_passes:
            raise SourceFormatError(f"course {self.course_id}: its roster kept shifting while it was read "
                                    f"({self.passes} passes each saw rows twice); run the job again later",
                                    source="canvas")
        self.passes += 1
        self._seen_in_pass, self._cursors, self._repeated_in_pass = set(), set(), 0
        return False, None

    def records(self) -> list[EnrollmentRecord]:
        return list(self._records.values())
