"""When a course's published date can be taken from the last run instead of Canvas's audit log (pure).

A course's published date is the `created_at` of the newest `published` event of its audit log. A course that was
`available` with a date in the stored `course` table (the last successful run) and is `available` again now can
only have a newer `published` event if it was unpublished and published again between the two runs; Canvas gives
no cheaper sign of that than the audit log itself, so that case is the documented miss (README, COURSE_INVENTORY):
the stored, older date is kept. Every other available course (new, not available then, or without a date) is
looked up. REUSE_PUBLISHED_DATES false (run_jobs.py --full-lookup) looks every one up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StoredCourse:
    """A course's row in the stored `course` table, as far as published dates are concerned."""

    workflow_state: str
    published_at: datetime | None     # naive UTC, as stored


def reusable_published_at(stored: StoredCourse | None, listed_state: str | None) -> datetime | None:
    """The stored date a course keeps without an audit-log request, or None when it must be looked up."""
    if stored is None or stored.published_at is None or listed_state != "available":
        return None
    return stored.published_at if stored.workflow_state == "available" else None


def reusable_dates(stored: Mapping[int, StoredCourse]) -> dict[int, datetime]:
    """The stored dates that a course available now may keep (those of courses stored as available, dated)."""
    dates = {}
    for course_id, row in stored.items():
        date = reusable_published_at(row, "available")
        if date is not None:
            dates[course_id] = date
    return dates
