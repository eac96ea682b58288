"""Pure transformations of Canvas/UDW JSON into rows of the inventory tables.

No I/O and no configuration here: parsed JSON in, DataFrames with the warehouse's columns out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from vocab import TransformError

if TYPE_CHECKING:                     # collect builds its records with this module's helpers
    from course_inventory.collect import RawInventory

# Column contracts: DataFrame columns equal warehouse columns, in this order.
TERM_COLUMNS = ["canvas_id", "name", "sis_id", "start_at", "end_at"]
ACCOUNT_COLUMNS = ["canvas_id", "sis_id", "name"]
COURSE_COLUMNS = ["canvas_id", "sis_id", "name", "account_id", "term_id", "created_at", "published_at",
                  "workflow_state"]
SECTION_COLUMNS = ["canvas_id", "sis_id", "name"]
ENROLLMENT_COLUMNS = ["canvas_id", "course_id", "course_section_id", "user_id", "workflow_state", "role_type"]
USAGE_COLUMNS = ["course_id", "views", "participations", "date"]

_DTYPES = {
    "canvas_id": "Int64", "account_id": "Int64", "term_id": "Int64", "course_id": "Int64",
    "course_section_id": "Int64", "user_id": "Int64", "views": "Int64", "participations": "Int64",
    "created_at": "datetime64[s]", "published_at": "datetime64[s]", "start_at": "datetime64[s]",
    "end_at": "datetime64[s]",
}


def canvas_time(value: Any) -> datetime | None:
    """Canvas ISO 8601 timestamp (`2020-01-15T14:03:22Z`, or with an offset) -> naive UTC; None stays None."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise TransformError(f"not a Canvas timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None)


def sis_text(value: Any) -> str | None:
    """SIS ids are stored as text; absent or blank ids are NULL (never the string "None")."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def canvas_int(value: Any, what: str) -> int:
    """Canvas ids arrive as numbers in REST and as strings in GraphQL."""
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise TransformError(f"{what} is not a Canvas id: {value!r}") from exc


def _frame(records: Sequence[Mapping[str, Any]], columns: list[str], key: str | None = "canvas_id") -> pd.DataFrame:
    df = pd.DataFrame.from_records(list(records), columns=columns)
    for column in columns:
        if column in _DTYPES:
            df[column] = df[column].astype(_DTYPES[column])
    if key is not None and df[key].isna().any():
        raise TransformError(f"{key} missing in {len(df[df[key].isna()])} row(s)")
    return df


def _deduplicated(df: pd.DataFrame, key: str = "canvas_id") -> pd.DataFrame:
    return df.drop_duplicates(subset=[key], keep="first").sort_values(key, ignore_index=True)


def terms_to_df(terms: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = [{"canvas_id": canvas_int(t.get("id"), "term id"), "name": t.get("name") or "",
             "sis_id": sis_text(t.get("sis_term_id")), "start_at": canvas_time(t.get("start_at")),
             "end_at": canvas_time(t.get("end_at"))} for t in terms]
    return _deduplicated(_frame(rows, TERM_COLUMNS))


def keep_courses_with_students(courses: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """Courses whose `total_students` > 0 (missing or null counts as 0), and how many were dropped."""
    kept, dropped = [], 0
    for course in courses:
        students = course.get("total_students")
        if students is not None and (isinstance(students, bool) or not isinstance(students, int)):
            raise TransformError(f"course {course.get('id')!r}: total_students is not a count: {students!r}")
        if (students or 0) > 0:
            kept.append(course)
        else:
            dropped += 1
    return kept, dropped


# The course fields the inventory stores: two listing pages that disagree about one of them contradict each other.
COURSE_LISTING_FIELDS = ("id", "sis_course_id", "name", "account_id", "enrollment_term_id", "created_at",
                         "workflow_state")


def listing_conflict(seen: Mapping[str, Any], again: Mapping[str, Any]) -> str | None:
    """The first stored field on which two listings of one course disagree, or None."""
    return next((name for name in COURSE_LISTING_FIELDS if seen.get(name) != again.get(name)), None)


def courses_to_df(courses: Iterable[Mapping[str, Any]], published_at: Mapping[int, datetime | None]) -> pd.DataFrame:
    rows = []
    for course in courses:
        canvas_id = canvas_int(course.get("id"), "course id")
        rows.append({
            "canvas_id": canvas_id, "sis_id": sis_text(course.get("sis_course_id")), "name": course.get("name") or "",
            "account_id": canvas_int(course.get("account_id"), "course account_id"),
            "term_id": canvas_int(course.get("enrollment_term_id"), "course enrollment_term_id"),
            "created_at": canvas_time(course.get("created_at")), "published_at": published_at.get(canvas_id),
            "workflow_state": course.get("workflow_state") or "",
        })
    return _deduplicated(_frame(rows, COURSE_COLUMNS))


def first_published_event(page: Mapping[str, Any]) -> tuple[bool, datetime | None]:
    """Scan one audit-log page (events newest first): (found, created_at of the first `published` event)."""
    for event in page.get("events") or []:
        if event.get("event_type") == "published":
            return True, canvas_time(event.get("created_at"))
    return False, None


def activity_rows(course_id: int, days: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Analytics activity (`[{date, views, participations, id}]`) -> usage rows; unknown keys ignored."""
    rows = []
    for day in days:
        raw_date = day.get("date")
        try:
            day_date = date.fromisoformat(str(raw_date)[:10])
        except ValueError as exc:
            raise TransformError(f"course {course_id}: activity date {raw_date!r} is not a date") from exc
        rows.append({"course_id": course_id, "views": int(day.get("views") or 0),
                     "participations": int(day.get("participations") or 0), "date": day_date})
    return rows


def distinct_days(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """One row per (course_id, date), the first; and how many repeated rows were dropped."""
    kept: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for row in rows:
        kept.setdefault((row["course_id"], row["date"]), row)
    return list(kept.values()), len(rows) - len(kept)


def usage_to_df(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    df = _frame(list(rows), USAGE_COLUMNS, key="course_id")
    return df.drop_duplicates(subset=["course_id", "date"], keep="first").sort_values(
        ["course_id", "date"], ignore_index=True)


def accounts_to_df(accounts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    rows = [{"canvas_id": canvas_int(a.get("id"), "account id"), "sis_id": sis_text(a.get("sis_account_id")),
             "name": a.get("name") or ""} for a in accounts]
    return _deduplicated(_frame(rows, ACCOUNT_COLUMNS))


# One enrollment row in ENROLLMENT_COLUMNS order; a large university has ~500,000 of them in memory at once.
# A plain tuple, not a NamedTuple: the garbage collector stops tracking an exact tuple of ints and strings
# after one pass, but keeps re-scanning every NamedTuple in each full collection (~100 ms pauses at large).
EnrollmentRecord = tuple[int, int, int, int, str, str]
# A section seen in enrollments: (name, Canvas's `Section.sisId` as text or None).
SectionInfo = tuple[str, str | None]


def enrollment_records(course_id: int, nodes: Iterable[Mapping[str, Any]],
                       sections: dict[int, SectionInfo]) -> list[EnrollmentRecord]:
    """GraphQL enrollment nodes of one course -> records; each new section's (name, sisId) is added to `sections`.

    Converted as pages arrive so the nested JSON (several dicts per enrollment) is not kept for the whole run.
    """
    records = []
    for node in nodes:
        section = node.get("section") or {}
        if not section.get("_id"):
            raise TransformError(f"enrollment {node.get('_id')} of course {course_id} has no section")
        section_id = canvas_int(section["_id"], "section id")
        if section_id not in sections:
            sections[section_id] = (section.get("name") or "", sis_text(section.get("sisId")))
        records.append((
            canvas_int(node.get("_id"), "enrollment id"),
            canvas_int((node.get("course") or {}).get("_id", course_id), "enrollment course"),
            section_id,
            canvas_int((node.get("user") or {}).get("_id"), "enrollment user"),
            # A handful of distinct values repeated ~500,000 times: share one string object each.
            sys.intern(node.get("state") or ""), sys.intern(node.get("type") or "")))
    return records


def enrollments_to_df(records: Sequence[EnrollmentRecord]) -> pd.DataFrame:
    return _deduplicated(_frame(records, ENROLLMENT_COLUMNS))


def sections_to_df(sections: Mapping[int, SectionInfo],
                   sis_ids: Mapping[int, str | None] | None = None) -> pd.DataFrame:
    """Sections seen in enrollments; sis_id is Canvas's `Section.sisId` unless `sis_ids` (chosen elsewhere,
    e.g. the warehouse's) is given: then it is the value there, NULL for a section it lacks."""
    rows = [{"canvas_id": section_id, "name": name,
             "sis_id": canvas_sis if sis_ids is None else sis_text(sis_ids.get(section_id))}
            for section_id, (name, canvas_sis) in sections.items()]
    df = _deduplicated(_frame(rows, SECTION_COLUMNS))
    df["sis_id"] = df["sis_id"].astype(object).where(df["sis_id"].notna(), None)   # NULL, never NaN
    return df


def warehouse_time(value: Any) -> datetime:
    """UDW `canvasdatadate` (e.g. `2020-01-15 04:12:33.123456+00:00`, or `+00` / no zone) -> aware UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace(" ", "T", 1)
        if text[-3:-2] in "+-" and text[-3:].lstrip("+-").isdigit():  # "+00" as Postgres prints it
            text += ":00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise TransformError(f"canvasdatadate is not a timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def build_frames(raw: RawInventory, section_sis_ids: Mapping[int, str | None] | None = None
                 ) -> dict[str, pd.DataFrame]:
    """Every table's rows from the raw Canvas data; `section_sis_ids` replaces Canvas's section SIS ids when
    given (collect.section_sis_ids). Fails before loading if a row would point at a parent not collected."""
    frames = {
        "term": terms_to_df(raw.terms),
        "account": accounts_to_df(raw.accounts),
        "course": courses_to_df(raw.courses, raw.published_at),
        "course_section": sections_to_df(raw.sections, section_sis_ids),
        "enrollment": enrollments_to_df(raw.enrollments),
        "canvas_course_usage": usage_to_df(raw.usage_rows),
    }
    _check_references(frames)
    return frames


_REFERENCES = [("course", "account_id", "account"), ("course", "term_id", "term"),
               ("enrollment", "course_id", "course"), ("enrollment", "course_section_id", "course_section"),
               ("canvas_course_usage", "course_id", "course")]


def _check_references(frames: Mapping[str, pd.DataFrame]) -> None:
    for child, column, parent in _REFERENCES:
        missing = set(frames[child][column].dropna()) - set(frames[parent]["canvas_id"])
        if missing:
            raise TransformError(f"{child}.{column} refers to {len(missing)} {parent} id(s) not "
                                 f"collected, e.g. {sorted(missing)[:5]}")
