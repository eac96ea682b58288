"""COURSE_INVENTORY: current-term Canvas courses, enrollments, sections, accounts, terms and activity.

The entry function only wires the job's steps: settings (course_inventory.settings) -> collect
(course_inventory.collect: Canvas, then the UDW when configured) -> transform (course_inventory.transform,
pure) -> load (course_inventory.load: one transaction) -> data source statuses. Section SIS ids come from
Canvas; with a UDW configured, also from the warehouse, and SECTION_SIS_IDS_FROM picks which are stored. With
REUSE_PUBLISHED_DATES (the default) courses available in the stored `course` table and still available keep
their stored published date (course_inventory.published_dates).
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
from clients.udw import UdwClient
from course_inventory import transform
from course_inventory.collect import collect_canvas, collect_warehouse
from course_inventory.load import TABLES, load_inventory
from course_inventory.settings import settings_from_env
from db.csv_export import DATA_DIR
from db.engine import inventory_engine
from environ import job_env
from vocab import DataSourceStatus, JobReport, ValidDataSourceName, ValidJobName, previous_data_kept

__all__ = ["TABLES", "run_course_inventory"]

logger = logging.getLogger(__name__)


def run_course_inventory(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None,
                         canvas: CanvasClient | None = None, udw: UdwClient | None = None,
                         data_dir: Path | None = None, report: JobReport | None = None,
                         stop: threading.Event | None = None) -> list[DataSourceStatus]:
    """CANVAS_API status, plus UNIZIN_DATA_WAREHOUSE (its canvasdatadate) when a UDW is configured."""
    started = time.monotonic()
    settings = settings_from_env(job_env(env))
    with ExitStack() as resources, previous_data_kept(ValidJobName.COURSE_INVENTORY):
        canvas = canvas or resources.enter_context(CanvasClient(settings.canvas, sleep=stoppable_sleep(stop)))
        engine = engine or resources.enter_context(inventory_engine(settings.inventory_db))
        udw = udw or (UdwClient(settings.udw) if settings.udw else None)
        if report is not None:
            report.track(canvas.stats)
        raw = collect_canvas(settings, canvas, engine)
        statuses = [DataSourceStatus(ValidDataSourceName.CANVAS_API)]
        warehouse = collect_warehouse(raw, udw, settings.sis_ids_from)
        frames = transform.build_frames(raw, warehouse.section_sis_ids)
        if udw is not None:
            statuses.append(DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_WAREHOUSE,
                                             transform.warehouse_time(warehouse.canvasdatadate)))
        load_started = time.monotonic()
        counts = load_inventory(engine, frames, (data_dir or DATA_DIR) if settings.create_csvs else None)
        if report is not None:
            report.add_rows(counts)
    stats = canvas.stats.snapshot()
    logger.info("COURSE_INVENTORY loaded %s in %.1fs (load %.1fs); %d requests, %d retries, %d throttled",
                ", ".join(f"{t} {n}" for t, n in counts.items()), time.monotonic() - started,
                time.monotonic() - load_started, stats.total_requests, stats.retries, stats.throttled)
    return statuses
