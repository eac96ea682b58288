"""Pure transformations of CANVAS_ZOOM_MEETINGS: Zoom placements among a course's tabs, and the two output tables.

No I/O and no configuration: parsed JSON in, rows or DataFrames with a fixed column contract out. The launch
pages and Zoom's JSON are read by `clients.zoom_pages`, next to the client that fetches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from vocab import JobError, SourceFormatError, TransformError

if TYPE_CHECKING:                     # collect finds the placements with this module's zoom_placements
    from online_meetings.collect import ZoomCollection

ZOOM = "zoom"
ZOOM_TAB_LABEL = "Zoom"
# More failed launches than this share means Zoom or Canvas changed their pages: keep the previous data.
MAX_FAILED_LAUNCH_SHARE = 0.5
ZOOM_COURSE_COLUMNS = ["id", "account_id", "course_id", "course_name"]
ZOOM_MEETING_COLUMNS = ["id", "course_id", "meeting_id", "meeting_number", "host_id", "topic", "join_url",
                        "start_time", "status", "timezone"]
_INT_COLUMNS = ("id", "account_id", "course_id", "meeting_number")


# ---- Canvas ----
def zoom_placements(tabs: Any) -> list[dict[str, Any]]:
    """Tabs labelled exactly "Zoom" that are not hidden (Canvas sends `hidden` only when true) and can launch."""
    if not isinstance(tabs, list):
        raise SourceFormatError("course tabs are not a JSON list", source="canvas")
    return [tab for tab in tabs
            if isinstance(tab, dict) and tab.get("label") == ZOOM_TAB_LABEL and tab.get("hidden") is not True
            and isinstance(tab.get("url"), str) and tab["url"]]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def meeting_number(value: Any) -> int | None:
    """Zoom meeting numbers are digits (a number, or a string perhaps with spaces/dashes); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    digits = re.sub(r"[\s-]", "", str(value or ""))
    return int(digits) if digits.isdigit() else None


def meeting_rows(course_id: int, meetings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History items -> zoom_course_meeting rows without `id`; a meeting listed twice (two placements) counts once."""
    rows, seen = [], set()
    for item in meetings:
        meeting_id = _text(item.get("meetingId"))
        if meeting_id is None:
            raise TransformError(f"course {course_id}: a Zoom meeting has no meetingId")
        if meeting_id in seen:
            continue
        seen.add(meeting_id)
        rows.append({"course_id": course_id, "meeting_id": meeting_id,
                     "meeting_number": meeting_number(item.get("meetingNumber")),
                     "host_id": _text(item.get("hostId")), "topic": _text(item.get("topic")),
                     "join_url": _text(item.get("joinUrl")), "start_time": _text(item.get("startTime")),
                     "status": _text(item.get("status")), "timezone": _text(item.get("timezone"))})
    return rows


# ---- output tables ----
def _numbered(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame.from_records([{**row, "id": n} for n, row in enumerate(rows, start=1)], columns=columns)
    for column in _INT_COLUMNS:
        if column in df.columns:
            df[column] = df[column].astype("Int64")
    for column in df.columns:
        if column not in _INT_COLUMNS:
            df[column] = df[column].astype("object")
    return df


def zoom_courses_df(courses: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Canvas course objects -> zoom_course rows ordered by course id; `id` is the running row number."""
    rows: dict[int, dict[str, Any]] = {}
    for course in courses:
        try:
            course_id, account_id = int(course["id"]), int(course["account_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TransformError(f"course without a usable id/account_id: {course.get('id')!r}") from exc
        rows.setdefault(course_id, {"account_id": account_id, "course_id": course_id,
                                    "course_name": course.get("name") or ""})
    return _numbered([rows[k] for k in sorted(rows)], ZOOM_COURSE_COLUMNS)


def zoom_meetings_df(rows_by_course: Mapping[int, Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """Per-course meeting rows -> zoom_course_meeting, by course id then Zoom's order; `id` = running number."""
    ordered = [row for course_id in sorted(rows_by_course) for row in rows_by_course[course_id]]
    return _numbered(ordered, ZOOM_MEETING_COLUMNS)


def check_launches(collection: ZoomCollection, max_failed_share: float = MAX_FAILED_LAUNCH_SHARE) -> None:
    """Refuse to replace good data when most launches failed: that is a broken flow, not missing meetings."""
    failures = collection.failed_launches + collection.skipped_launches
    if collection.placements and len(failures) / collection.placements > max_failed_share:
        raise JobError(f"{len(failures)} of {collection.placements} Zoom launches failed or found no Zoom page "
                       f"(first: {failures[0][1]})")


def build_frames(collection: ZoomCollection,
                 previous_meetings: Mapping[int, list[dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """Both tables' rows from the collected data, and the stored meetings of courses whose launch failed."""
    meetings = {course_id: meeting_rows(course_id, items)
                for course_id, items in collection.meetings_by_course().items()}
    for course_id in collection.failed_course_ids & set(collection.zoom_courses):
        meetings[course_id] = list(previous_meetings.get(course_id, []))
    return {"zoom_course": zoom_courses_df(collection.zoom_courses.values()),
            "zoom_course_meeting": zoom_meetings_df(meetings)}
