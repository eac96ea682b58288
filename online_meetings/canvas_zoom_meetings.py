"""CANVAS_ZOOM_MEETINGS: courses with a Zoom tab and their previous Zoom meetings.

Orchestration only: fetch (online_meetings.zoom_fetch over clients.canvas + clients.zoom_lti) -> rows
(online_meetings.parse; a course whose launch failed keeps its stored meetings) -> CSV copies (CREATE_CSVS)
-> load (db.loader.replace_tables, one transaction) -> status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from clients.canvas import CanvasClient, CanvasSettings
from clients.retry import stoppable_sleep
from clients.zoom_lti import ZoomLtiClient, ZoomSettings
from db.csv_export import DATA_DIR, write_csvs
from db.engine import create_inventory_engine
from db.loader import replace_tables
from db.snapshot_rows import stored_rows
from online_meetings import parse
from online_meetings.zoom_fetch import ZoomCollection, collect_zoom_meetings
from vocab import DataSourceStatus, EtlError, JobError, JobReport, ValidDataSourceName

logger = logging.getLogger(__name__)

# Parents first: replace_tables deletes in reverse and inserts in this order (meetings refer to courses).
TABLES = ("zoom_course", "zoom_course_meeting")
CSV_NAMES = {"zoom_course": "zoom_courses", "zoom_course_meeting": "zoom_courses_meetings"}
# More failed launches than this share means Zoom or Canvas changed their pages: keep the previous data.
MAX_FAILED_LAUNCH_SHARE = 0.5


def build_frames(collection: ZoomCollection,
                 previous_meetings: Mapping[int, list[dict[str, Any]]]) -> dict[str, pd.DataFrame]:
    """Both tables' rows from the collected data, and the stored meetings of courses whose launch failed (pure)."""
    meetings = {course_id: parse.meeting_rows(course_id, items)
                for course_id, items in collection.meetings_by_course().items()}
    for course_id in collection.failed_course_ids & set(collection.zoom_courses):
        meetings[course_id] = list(previous_meetings.get(course_id, []))
    return {"zoom_course": parse.zoom_courses_df(collection.zoom_courses.values()),
            "zoom_course_meeting": parse.zoom_meetings_df(meetings)}


def check_launches(collection: ZoomCollection, max_failed_share: float = MAX_FAILED_LAUNCH_SHARE) -> None:
    """Refuse to replace good data when most launches failed: that is a broken flow, not missing meetings."""
    failures = collection.failed_launches + collection.skipped_launches
    if collection.placements and len(failures) / collection.placements > max_failed_share:
        raise JobError(f"{len(failures)} of {collection.placements} Zoom launches failed or found no Zoom page "
                       f"(first: {failures[0][1]})")


def stored_meetings(engine: sa.Engine, course_ids: frozenset[int]) -> dict[int, list[dict[str, Any]]]:
    """The meeting rows loaded by an earlier run for these courses, by course, in their stored order."""
    columns = [c for c in parse.ZOOM_MEETING_COLUMNS if c != "id"]
    by_course: dict[int, list[dict[str, Any]]] = {}
    for row in stored_rows(engine, "zoom_course_meeting", columns, "course_id", course_ids):
        by_course.setdefault(int(row["course_id"]), []).append(row)
    return by_course


def main(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None,
         canvas: CanvasClient | None = None, zoom: ZoomLtiClient | None = None,
         data_dir: Path | None = None, report: JobReport | None = None,
         stop: threading.Event | None = None) -> list[DataSourceStatus]:
    if env is None:
        from environ import get_env  # the runner's configuration (documented `from environ import ENV`)
        env = get_env()
    started = time.monotonic()
    own_canvas, own_zoom, own_engine = canvas is None, zoom is None, engine is None
    try:
        settings = CanvasSettings.from_env(env)
        canvas = canvas or CanvasClient(settings, sleep=stoppable_sleep(stop))
        zoom = zoom or ZoomLtiClient(ZoomSettings.from_env(env), sleep=stoppable_sleep(stop))
        if report is not None:
            report.track(canvas.stats)
            report.track(zoom.stats)
        engine = engine or create_inventory_engine(env["INVENTORY_DB"])
        collection = collect_zoom_meetings(canvas, zoom, settings.account_id, settings.term_ids,
                                           settings.add_course_ids)
        status = DataSourceStatus(ValidDataSourceName.CANVAS_ZOOM_MEETINGS)
        check_launches(collection)
        frames = build_frames(collection, stored_meetings(engine, collection.failed_course_ids))
        if env.get("CREATE_CSVS"):
            write_csvs({CSV_NAMES[table]: df for table, df in frames.items()}, data_dir or DATA_DIR)
        counts = replace_tables(engine, frames)
        if report is not None:
            report.add_rows(counts)
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
                "%d skipped (no Zoom page), %d failed after retries (previous meetings kept for %d course(s)); "
                "loaded %s in %.1fs",
                len(collection.scanned), collection.placements, len(collection.zoom_courses),
                len(collection.skipped_launches), len(collection.failed_launches),
                len(collection.failed_course_ids), ", ".join(f"{t} {n}" for t, n in counts.items()),
                time.monotonic() - started)
    return [status]
