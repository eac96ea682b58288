"""CANVAS_ZOOM_MEETINGS' load step: CSV copies when asked, then both tables replaced in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from db.csv_export import write_csvs
from db.loader import replace_tables

# Parents first: replace_tables deletes in reverse and inserts in this order (meetings refer to courses).
TABLES = ("zoom_course", "zoom_course_meeting")
CSV_NAMES = {"zoom_course": "zoom_courses", "zoom_course_meeting": "zoom_courses_meetings"}


def load_meetings(engine: sa.Engine, frames: Mapping[str, pd.DataFrame], csv_dir: Path | None) -> dict[str, int]:
    """Rows loaded per table. The CSVs come first: a CSV that cannot be written fails the job before the load."""
    if csv_dir is not None:
        write_csvs({CSV_NAMES[table]: frames[table] for table in TABLES}, csv_dir)
    return replace_tables(engine, {table: frames[table] for table in TABLES})
