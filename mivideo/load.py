"""MIVIDEO's load step: appends that leave rows already stored alone (an overlapping run may have added them)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from db.loader import MergeCounts, insert_new_rows_many, merge_rows
from mivideo.transform import MediaFrames

HOURLY_TABLE = "mivideo_media_started_hourly"
# An hour and course already stored (an overlapping run appended it) keeps the greater count and latest time.
HOURLY_REFRESHED = ("event_count", "event_time_utc_latest")
CREATED_TABLE = "mivideo_media_created"
COURSES_TABLE = "mivideo_media_courses"


def append_media_started(engine: sa.Engine, rows: pd.DataFrame) -> MergeCounts:
    return merge_rows(engine, HOURLY_TABLE, rows, greatest=HOURLY_REFRESHED)


def insert_media_page(engine: sa.Engine, frames: MediaFrames) -> dict[str, int]:
    """One page's entries and their course links, in one transaction; rows inserted per table."""
    return insert_new_rows_many(engine, {CREATED_TABLE: frames.created, COURSES_TABLE: frames.courses})
