"""CANVAS_ZOOM_MEETINGS: courses with a Zoom tab and their previous Zoom meetings.

The entry function only wires the job's steps: settings (online_meetings.settings) -> collect
(online_meetings.collect over clients.canvas + clients.zoom_lti; the stored meetings of courses whose launch
failed) -> transform (online_meetings.transform, pure: such a course keeps its stored meetings) -> load
(online_meetings.load: CSV copies under CREATE_CSVS, then one transaction) -> status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clients.canvas import CanvasClient
from clients.retry import stoppable_sleep
from clients.zoom_lti import ZoomLtiClient
from db.csv_export import DATA_DIR
from db.engine import inventory_engine
from environ import job_env
from online_meetings import transform
from online_meetings.collect import collect_zoom_meetings, stored_meetings
from online_meetings.load import load_meetings
from online_meetings.settings import settings_from_env
from vocab import DataSourceStatus, JobReport, ValidDataSourceName, ValidJobName, previous_data_kept

logger = logging.getLogger(__name__)


def main(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None,
         canvas: CanvasClient | None = None, zoom: ZoomLtiClient | None = None,
         data_dir: Path | None = None, report: JobReport | None = None,
         stop: threading.Event | None = None) -> list[DataSourceStatus]:
    started = time.monotonic()
    settings = settings_from_env(job_env(env))
    with ExitStack() as resources, previous_data_kept(ValidJobName.CANVAS_ZOOM_MEETINGS):
        canvas = canvas or resources.enter_context(CanvasClient(settings.canvas, sleep=stoppable_sleep(stop)))
        zoom = zoom or resources.enter_context(ZoomLtiClient(settings.zoom, sleep=stoppable_sleep(stop)))
        engine = engine or resources.enter_context(inventory_engine(settings.inventory_db))
        if report is not None:
            report.track(canvas.stats)
            report.track(zoom.stats)
        collection = collect_zoom_meetings(canvas, zoom, settings.canvas.account_id, settings.canvas.term_ids,
                                           settings.canvas.add_course_ids)
        status = DataSourceStatus(ValidDataSourceName.CANVAS_ZOOM_MEETINGS)
        transform.check_launches(collection)
        frames = transform.build_frames(collection, stored_meetings(engine, collection.failed_course_ids))
        counts = load_meetings(engine, frames, (data_dir or DATA_DIR) if settings.create_csvs else None)
        if report is not None:
            report.add_rows(counts)
    logger.info("CANVAS_ZOOM_MEETINGS: %d course(s) scanned, %d Zoom placement(s) in %d course(s), "
                "%d skipped (no Zoom page), %d failed after retries (previous meetings kept for %d course(s)); "
                "loaded %s in %.1fs",
                len(collection.scanned), collection.placements, len(collection.zoom_courses),
                len(collection.skipped_launches), len(collection.failed_launches),
                len(collection.failed_course_ids), ", ".join(f"{t} {n}" for t, n in counts.items()),
                time.monotonic() - started)
    return [status]
