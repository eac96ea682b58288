"""CANVAS_ZOOM_MEETINGS: courses with a Zoom tab and their previous Zoom meetings (SPEC §9).

Orchestration only: fetch (online_meetings.zoom_fetch over clients.canvas + clients.zoom_lti) -> rows
(online_meetings.parse) -> load (db.loader.replace_tables, one transaction) -> CSV copies -> status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from clients.canvas import CanvasClient, CanvasSettings
from clients.zoom_lti import ZoomLtiClient, ZoomSettings
from db.csv_export import DATA_DIR, write_csvs
from db.engine import create_inventory_engine
from db.loader import replace_tables
from online_meetings import parse
from online_meetings.zoom_fetch import ZoomCollection, collect_zoom_meetings
from vocab import DataSourceStatus, EtlError, JobError, JobReport, ValidDataSourceName

logger = logging.getLogger(__name__)

# Parents first: replace_tables deletes in reverse and inserts in this order (meetings refer to courses).
TABLES = ("zoom_course", "zoom_course_meeting")
CSV_NAMES = {"zoom_course": "zoom_courses", "zoom_course_meeting": "zoom_courses_meetings"}
# More failed launches than this share means Zoom or Canvas changed their pages: keep the previous data.
MAX_FAILED_LAUNCH_SHARE = 0.5


def build_frames(collection: ZoomCollection) -> dict[str, pd.DataFrame]:
    """Both tables' rows from the collected data (pure)."""
    meetings = {course_id: parse.meeting_rows(course_id, items)
                for course_id, items in collection.meetings_by_course().items()}
    return {"zoom_course": parse.zoom_courses_df(collection.zoom_courses.values()),
            "zoom_course_meeting": parse.zoom_meetings_df(meetings)}


def check_launches(collection: ZoomCollection, max_failed_share: float = MAX_FAILED_LAUNCH_SHARE) -> None:
    """Refuse to replace good data when most launches failed: that is a broken flow, not missing meetings."""
    failed = len(collection.failed_launches)
    if collection.placements and failed / collection.placements > max_failed_share:
        first = collection.failed_launches[0][1]
        raise JobError(f"{failed} of {collection.placements} Zoom launches failed (first: {first})")


def main(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None,
         canvas: CanvasClient | None = None, zoom: ZoomLtiClient | None = None,
         data_dir: Path | None = None, report: JobReport | None = None) -> list[DataSourceStatus]:
    if env is None:
        from environ import get_env  # the runner's configuration (documented `from environ import ENV`)
        env = get_env()
    started = time.monotonic()
    own_canvas, own_zoom, own_engine = canvas is None, zoom is None, engine is None
    try:
        settings = CanvasSettings.from_env(env)
        canvas = canvas or CanvasClient(settings)
        zoom = zoom or ZoomLtiClient(ZoomSettings.from_env(env))
        if report is not None:
            report.track(canvas.stats)
            report.track(zoom.stats)
        engine = engine or create_inventory_engine(env["INVENTORY_DB"])
        collection = collect_zoom_meetings(canvas, zoom, settings.account_id, settings.term_ids,
                                           settings.add_course_ids)
        status = DataSourceStatus(ValidDataSourceName.CANVAS_ZOOM_MEETINGS)
        check_launches(collection)
        frames = build_frames(collection)
        counts = replace_tables(engine, frames)
        if report is not None:
            report.add_rows(counts)
        write_csvs({CSV_NAMES[table]: df for table, df in frames.items()}, data_dir or DATA_DIR)
    except EtlError as exc:
        raise JobError(f"CANVAS_ZOOM_MEETINGS failed, previous data kept: {exc}") from exc
    finally:
        if own_canvas and canvas is not None:
            canvas.close()
        if own_zoom and zoom is not None:
            zoom.close()
        if own_engine and engine is not None:
            engine.dispose()
    logger.info("CANVAS_ZOOM_MEETINGS: %d course(s) scanned, %d Zoom placement(s) in %d course(s), "
                "%d launch(es) failed, %d meeting(s) found; loaded %s in %.1fs",
                len(collection.scanned), collection.placements, len(collection.zoom_courses),
                len(collection.failed_launches), counts["zoom_course_meeting"],
                ", ".join(f"{t} {n}" for t, n in counts.items()), time.monotonic() - started)
    return [status]
