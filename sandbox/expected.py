"""What the inventory tables must hold after a correct COURSE_INVENTORY run.

Derived from the generated university with the Canvas rules in `sandbox.university` only — never
with product code — so tests can compare the product's output with it row for row.
Datetimes are naive UTC (the inventory database's convention); SIS ids are text or None.
Section SIS ids are Canvas's (`Section.sis_source_id`) unless the warehouse's are stored: then they are
what the lagging UDW holds (`warehouse_section_sis_ids`), and `sis_id_disagreements` lists the sections
where the two differ.
A published date is the newest `published` audit event of an available course, except on a run after another
(`previous_courses`: the course rows that run stored): a course available then, with a date, and available now
keeps that date, as COURSE_INVENTORY promises (README) — so a course unpublished and published again in between
keeps its older date; `republished_since` lists those courses from the audit logs alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sandbox.udw_lag import UdwLag, warehouse_sis_ids
from sandbox.university import Course, University

# The fixed column contract of each inventory table, in load order (parents first).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "term": ("canvas_id", "name", "sis_id", "start_at", "end_at"),
    "account": ("canvas_id", "name", "sis_id"),
    "course": ("canvas_id", "sis_id", "name", "account_id", "term_id", "created_at", "published_at",
               "workflow_state"),
    "course_section": ("canvas_id", "name", "sis_id"),
    "enrollment": ("canvas_id", "course_id", "course_section_id", "user_id", "workflow_state", "role_type"),
    "canvas_course_usage": ("course_id", "views", "participations", "date"),
}

# `enrollment_type[]` the job asks the accounts/courses listing for.
LISTED_ENROLLMENT_TYPES = frozenset({"student", "teacher"})


def expected_inventory(u: University, term_ids: Sequence[int], *,
                       section_sis_ids: Mapping[int, str | None] | None = None,
                       previous_courses: Iterable[Mapping[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Rows of every inventory table, each table sorted by its natural key.

    `section_sis_ids`: the section SIS ids the job stores when they are not Canvas's own (the warehouse's,
    `warehouse_section_sis_ids`); a section absent from it gets None.
    `previous_courses`: the `course` rows of the run before (e.g. this function's for the day before) when the
    job keeps stored published dates; None when it looks every date up (a first run, REUSE_PUBLISHED_DATES false).
    """
    kept_dates = _kept_dates(previous_courses)
    courses = kept_courses(u, term_ids)
    enrollments = [e for c in courses for e in u.graphql_enrollments(c.id)]
    section_ids = sorted({e.section_id for e in enrollments})
    account_ids = sorted({c.account_id for c in courses})
    return {
        "term": [_term_row(u, t) for t in sorted(set(term_ids))],
        "account": [_account_row(u, a) for a in account_ids],
        "course": [_course_row(u, c, kept_dates) for c in courses],
        "course_section": [_section_row(u, s, section_sis_ids) for s in section_ids],
        "enrollment": [
            {"canvas_id": e.id, "course_id": e.course_id, "course_section_id": e.section_id,
             "user_id": e.user_id, "workflow_state": e.state, "role_type": e.type}
            for e in sorted(enrollments, key=lambda e: e.id)
        ],
        "canvas_course_usage": _usage_rows(u, courses),
    }


def kept_courses(u: University, term_ids: Iterable[int]) -> list[Course]:
    """Courses the accounts/courses listing returns for those terms, with total_students > 0, by id."""
    wanted_terms = set(term_ids)
    unknown = sorted(wanted_terms - set(u.term_by_id))
    if unknown:
        raise ValueError(f"terms not in the university: {unknown}")
    subtree = u.subaccount_ids.get(u.root_account_id, frozenset())
    return sorted(
        (c for c in u.courses
         if c.term_id in wanted_terms
         and c.workflow_state != "deleted"
         and c.account_id in subtree
         and u.has_enrollment_of_type(c.id, set(LISTED_ENROLLMENT_TYPES))
         and u.total_students(c.id) > 0),
        key=lambda c: c.id,
    )


def published_at(u: University, course: Course) -> datetime | None:
    """created_at of the newest "published" audit event of an available course, else None (tz-aware)."""
    if course.workflow_state != "available":
        return None
    for event in u.audit_by_course.get(course.id, []):   # newest first
        if event.event_type == "published":
            return event.created_at
    return None


def rows_as_sorted_tuples(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Rows projected on `columns` and sorted (None before any value), for row-for-row comparison."""
    projected = [tuple(row[column] for column in columns) for row in rows]
    return sorted(projected, key=lambda values: tuple((v is not None, v) for v in values))


def naive_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _term_row(u: University, term_id: int) -> dict[str, Any]:
    term = u.term_by_id[term_id]
    return {"canvas_id": term.id, "name": term.name, "sis_id": term.sis_term_id,
            "start_at": naive_utc(term.start_at), "end_at": naive_utc(term.end_at)}


def _account_row(u: University, account_id: int) -> dict[str, Any]:
    account = u.account_by_id[account_id]
    return {"canvas_id": account.id, "name": account.name, "sis_id": account.sis_account_id}


def _kept_dates(previous: Iterable[Mapping[str, Any]] | None) -> dict[int, datetime]:
    """Course id -> the stored date a course available now keeps: rows stored as available, with a date."""
    return {row["canvas_id"]: row["published_at"] for row in previous or ()
            if row["workflow_state"] == "available" and row["published_at"] is not None}


def _course_row(u: University, course: Course, kept_dates: Mapping[int, datetime]) -> dict[str, Any]:
    date = naive_utc(published_at(u, course))
    if course.workflow_state == "available" and course.id in kept_dates:
        date = kept_dates[course.id]
    return {"canvas_id": course.id, "sis_id": course.sis_course_id, "name": course.name,
            "account_id": course.account_id, "term_id": course.term_id,
            "created_at": naive_utc(course.created_at), "published_at": date,
            "workflow_state": course.workflow_state}


def republished_since(before: University, after: University, term_ids: Sequence[int]) -> list[int]:
    """Kept courses available on both days, dated on the first, whose newest `published` event is newer on the
    second: unpublished and published again in between (the courses a run keeping stored dates gets wrong)."""
    earlier = {c.id: c for c in kept_courses(before, term_ids)}
    return [c.id for c in kept_courses(after, term_ids)
            if c.id in earlier and published_at(before, earlier[c.id]) is not None
            and published_at(after, c) not in (None, published_at(before, earlier[c.id]))]


def inventory_section_ids(u: University, term_ids: Sequence[int]) -> list[int]:
    """The sections the inventory holds: those of the kept courses' enrollments, by id."""
    return sorted({e.section_id for c in kept_courses(u, term_ids) for e in u.graphql_enrollments(c.id)})


def warehouse_section_sis_ids(u: University, lag: UdwLag) -> dict[int, str | None]:
    """What the UDW's course_section_dim holds under `lag` (section id -> sis_source_id; no key, no row)."""
    return warehouse_sis_ids(u.sections, lag, u.seed)


def sis_id_disagreements(u: University, term_ids: Sequence[int], lag: UdwLag
                         ) -> list[tuple[int, str | None, str | None]]:
    """(section id, Canvas's SIS id, the warehouse's) for each inventory section where they differ; a
    section the warehouse lacks has None there, so it differs only when Canvas has an id."""
    warehouse = warehouse_section_sis_ids(u, lag)
    rows = []
    for section_id in inventory_section_ids(u, term_ids):
        canvas = u.section_by_id[section_id].sis_source_id
        if canvas != warehouse.get(section_id):
            rows.append((section_id, canvas, warehouse.get(section_id)))
    return rows


def _section_row(u: University, section_id: int, sis_ids: Mapping[int, str | None] | None) -> dict[str, Any]:
    section = u.section_by_id[section_id]
    sis_id = section.sis_source_id if sis_ids is None else sis_ids.get(section_id)
    return {"canvas_id": section.id, "name": section.name, "sis_id": sis_id}


def _usage_rows(u: University, courses: Sequence[Course]) -> list[dict[str, Any]]:
    """Activity of the available courses (the ones the job asks about) that Canvas has analytics for: the
    analytics API answers 404 for a course without an active or completed student (instructure/analytics
    lib/analytics/permissions.rb, course.rb#available?; University.has_analytics_students)."""
    rows: dict[tuple[int, Any], dict[str, Any]] = {}
    for course in courses:
        if course.workflow_state != "available" or not u.has_analytics_students(course.id):
            continue
        for day in u.activity_by_course.get(course.id, []):
            # The job removes duplicate (course, date) rows; keep the first like it does.
            rows.setdefault((course.id, day.date), {"course_id": course.id, "views": day.views,
                                                    "participations": day.participations, "date": day.date})
    return [rows[key] for key in sorted(rows)]
