"""Pure transformations of the MIVIDEO job: query rows and Kaltura entries in, table rows out.

Column contracts equal the warehouse tables (`mivideo_media_started_hourly`, `mivideo_media_created`,
`mivideo_media_courses`); datetimes leave here as naive UTC, whole seconds (the columns are DATETIME).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from vocab import TransformError

HOURLY_SCHEMA = {"event_hour_utc": "string", "course_id": "Int64", "event_time_utc_latest": "datetime64[us]",
                 "event_count": "Int64"}
MEDIA_CREATED_SCHEMA = {"id": "string", "created_at": "datetime64[us]", "name": "string", "duration": "Int64"}
MEDIA_COURSES_SCHEMA = {"media_id": "string", "course_id": "Int64", "in_context": "bool"}

IN_CONTEXT = "InContext"
MAX_COURSE_ID = 2**31 - 1            # mivideo_media_courses.course_id is INT
HOUR_FORMAT = "%Y-%m-%d %H"


# ---------------------------------------------------------------- media started, per hour
def hourly_to_df(rows: pd.DataFrame, *, stored_latest: datetime | None = None) -> tuple[pd.DataFrame, int]:
    """Hourly query rows -> table rows, and how many rows were dropped as already stored.

    Rows of hours up to and including the hour of `stored_latest` (the table's newest event time) are
    dropped: those hours were stored complete by an earlier run, and the table keeps one row per hour and
    course. The newest event time is floored to whole seconds so that what is stored never lies after
    what was seen, whatever the server does with fractions.
    """
    missing = set(HOURLY_SCHEMA) - set(rows.columns)
    if missing:
        raise TransformError(f"hourly query result lacks columns {sorted(missing)}")
    df = rows[list(HOURLY_SCHEMA)].copy()
    if df["course_id"].isna().any() or df["event_hour_utc"].isna().any():
        raise TransformError("hourly query returned rows without hour or course id")
    latest = pd.to_datetime(df["event_time_utc_latest"], utc=True)
    df["event_time_utc_latest"] = latest.dt.floor("s").dt.tz_convert(None)
    dropped = 0
    if stored_latest is not None:
        keep = df["event_hour_utc"] > stored_latest.astimezone(UTC).strftime(HOUR_FORMAT)
        dropped = int((~keep).sum())
        df = df[keep]
    if df.duplicated(["event_hour_utc", "course_id"]).any():
        raise TransformError("hourly query returned the same hour and course twice")
    return df.astype(HOURLY_SCHEMA).reset_index(drop=True), dropped


# ---------------------------------------------------------------- media created and their courses
def in_category_tree(full_name: str, prefixes: Sequence[str]) -> bool:
    """Kaltura's category matching: the category itself or any sub-category (`Canvas_UMichX` is another tree).

    A name ending with `>` matches its sub-categories only.
    """
    return any(full_name.startswith(p) if p.endswith(">") else full_name == p or full_name.startswith(p + ">")
               for p in prefixes)


def course_link(full_name: str) -> tuple[int, bool] | None:
    """(course id, in context) from `...>12345` or `...>12345>InContext`; None without a numeric course id."""
    segments = full_name.split(">")
    in_context = len(segments) > 1 and segments[-1] == IN_CONTEXT
    candidate = segments[-2] if in_context else segments[-1]
    if not (candidate.isascii() and candidate.isdigit()) or not 0 < int(candidate) <= MAX_COURSE_ID:
        return None
    return int(candidate), in_context


@dataclass(frozen=True)
class MediaFrames:
    created: pd.DataFrame             # MEDIA_CREATED_SCHEMA
    courses: pd.DataFrame             # MEDIA_COURSES_SCHEMA
    skipped_categories: int           # categories under the prefix without a numeric course id


def media_to_frames(entries: Sequence[Mapping[str, Any]], prefixes: Sequence[str]) -> MediaFrames:
    """Kaltura media entries (id, name, createdAt, duration, categories) -> rows of the two media tables."""
    created, courses, skipped = [], [], 0
    for entry in entries:
        media_id, created_at = entry.get("id"), entry.get("createdAt")
        if not media_id or not isinstance(created_at, int):
            raise TransformError("Kaltura entry without id or createdAt")
        created.append((media_id, datetime.fromtimestamp(created_at, UTC).replace(tzinfo=None),
                        entry.get("name") or "", entry.get("duration") or 0))
        for category in str(entry.get("categories") or "").split(","):
            category = category.strip()
            if not category or not in_category_tree(category, prefixes):
                continue
            link = course_link(category)
            if link is None:
                skipped += 1
            else:
                courses.append((media_id, *link))
    created_df = pd.DataFrame(created, columns=list(MEDIA_CREATED_SCHEMA)).astype(MEDIA_CREATED_SCHEMA)
    courses_df = pd.DataFrame(courses, columns=list(MEDIA_COURSES_SCHEMA)).astype(MEDIA_COURSES_SCHEMA)
    return MediaFrames(created_df.drop_duplicates("id").reset_index(drop=True),
                       courses_df.drop_duplicates().reset_index(drop=True), skipped)


def split_prefixes(categories_full_name_in: str) -> list[str]:
    """The configured `categoriesFullNameIn` value as a list of category full names."""
    return [name.strip() for name in categories_full_name_in.split(",") if name.strip()]
