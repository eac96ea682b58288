"""COURSE_INVENTORY: current-term Canvas courses, enrollments, sections, accounts, terms and activity.

Orchestration only: fetch (course_inventory.collect, optionally clients.udw) -> transform
(course_inventory.transform, section_sis) -> load (db.loader.replace_tables, one transaction) -> data
source statuses. Section SIS ids come from Canvas; with a UDW configured, also from the warehouse, and
SECTION_SIS_IDS_FROM picks which are stored. With REUSE_PUBLISHED_DATES (the default) the stored `course` table
is read first: courses available then and now keep their stored published date (course_inventory.published_dates).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from clients.canvas import CanvasClient, CanvasSettings
from clients.udw import UdwClient
from course_inventory import transform
from course_inventory.collect import RawInventory, collect_inventory
from course_inventory.published_dates import StoredCourse, reusable_dates
from course_inventory.section_sis import (
    SisIdSource,
    chosen_sis_ids,
    compare_section_sis_ids,
    comparison_summary,
    none_readable,
)
from db.csv_export import DATA_DIR, write_csvs
from db.engine import create_inventory_engine
from db.loader import replace_tables
from db.stored_courses import stored_course_states
from vocab import DataSourceStatus, EtlError, JobError, JobReport, ValidDataSourceName

logger = logging.getLogger(__name__)

# Parents first: replace_tables deletes in reverse and inserts in this order, so foreign keys hold.
TABLES = ("term", "account", "course", "course_section", "enrollment", "canvas_course_usage")


def build_frames(raw: RawInventory, section_sis_ids: Mapping[int, str | None] | None = None
                 ) -> dict[str, pd.DataFrame]:
    """Every table's rows from the raw Canvas data (pure); `section_sis_ids` replaces Canvas's section SIS
    ids when given (see `section_sis_ids`)."""
    frames = {
        "term": transform.terms_to_df(raw.terms),
        "account": transform.accounts_to_df(raw.accounts),
        "course": transform.courses_to_df(raw.courses, raw.published_at),
        "course_section": transform.sections_to_df(raw.sections, section_sis_ids),
        "enrollment": transform.enrollments_to_df(raw.enrollments),
        "canvas_course_usage": transform.usage_to_df(raw.usage_rows),
    }
    _check_references(frames)
    return frames


def section_sis_ids(raw: RawInventory, udw: UdwClient | None, source: SisIdSource
                    ) -> dict[int, str | None] | None:
    """The section SIS ids to store: None (Canvas's own) without a UDW; else both sources compared, the
    differences logged, and `source`'s values returned."""
    canvas = {section_id: sis for section_id, (_, sis) in raw.sections.items()}
    if none_readable(canvas):
        logger.warning("Canvas returned no SIS id for any of the %d section(s); if sections do have SIS ids, "
                       "the CANVAS_TOKEN user lacks the read_sis permission (Canvas answers null then)",
                       len(canvas))
    if udw is None:
        logger.info("no UDW configured: section SIS ids come from Canvas (Section.sisId); SECTION_SIS_IDS_FROM "
                    "applies only with a UDW, and no UNIZIN_DATA_WAREHOUSE status is recorded")
        return None
    warehouse = udw.section_sis_ids(canvas)
    logger.info("%s", comparison_summary(compare_section_sis_ids(canvas, warehouse), source))
    return chosen_sis_ids(canvas, warehouse, source)


def reusable_published(env: Mapping[str, Any], engine: sa.Engine) -> dict[int, datetime]:
    """The stored published dates available courses may keep; {} under REUSE_PUBLISHED_DATES false (an env
    built without the key, as tests do, gets the schema's default: true)."""
    if not env.get("REUSE_PUBLISHED_DATES", True):
        logger.info("REUSE_PUBLISHED_DATES is false: every available course's published date is looked up")
        return {}
    stored = {course_id: StoredCourse(state, published_at)
              for course_id, (state, published_at) in stored_course_states(engine).items()}
    return reusable_dates(stored)


def _check_references(frames: Mapping[str, pd.DataFrame]) -> None:
    """Fail before loading if a row would point at a parent the run did not collect."""
    checks = [("course", "account_id", "account"), ("course", "term_id", "term"),
              ("enrollment", "course_id", "course"), ("enrollment", "course_section_id", "course_section"),
              ("canvas_course_usage", "course_id", "course")]
    for child, column, parent in checks:
        missing = set(frames[child][column].dropna()) - set(frames[parent]["canvas_id"])
        if missing:
            raise transform.TransformError(f"{child}.{column} refers to {len(missing)} {parent} id(s) not "
                                           f"collected, e.g. {sorted(missing)[:5]}")


def run_course_inventory(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None,
                         canvas: CanvasClient | None = None, udw: UdwClient | None = None,
                         data_dir: Path | None = None, report: JobReport | None = None) -> list[DataSourceStatus]:
    """CANVAS_API status, plus UNIZIN_DATA_WAREHOUSE (its canvasdatadate) when a UDW is configured."""
    if env is None:
        from environ import get_env  # the runner's configuration (documented `from environ import ENV`)
        env = get_env()
    started = time.monotonic()
    settings = CanvasSettings.from_env(env)
    own_canvas, own_engine = canvas is None, engine is None
    canvas = canvas or CanvasClient(settings)
    if report is not None:
        report.track(canvas.stats)
    udw = udw or (UdwClient(env["UDW"]) if env.get("UDW") else None)
    source = SisIdSource(env.get("SECTION_SIS_IDS_FROM") or SisIdSource.UDW)
    engine = engine or create_inventory_engine(env["INVENTORY_DB"])
    try:
        raw = collect_inventory(canvas, settings.account_id, settings.term_ids, reusable_published(env, engine))
        statuses = [DataSourceStatus(ValidDataSourceName.CANVAS_API)]
        frames = build_frames(raw, section_sis_ids(raw, udw, source))
        if udw is not None:
            statuses.append(DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_WAREHOUSE,
                                             transform.warehouse_time(udw.canvasdatadate())))
        if env.get("CREATE_CSVS"):
            write_csvs(frames, data_dir or DATA_DIR)
        load_started = time.monotonic()
        counts = replace_tables(engine, frames)
        if report is not None:
            report.add_rows(counts)
    except EtlError as exc:
        raise JobError(f"COURSE_INVENTORY failed, previous data kept: {exc}") from exc
    finally:
        if own_canvas:
            canvas.close()
        if own_engine:
            engine.dispose()
    stats = canvas.stats.snapshot()
    logger.info("COURSE_INVENTORY loaded %s in %.1fs (load %.1fs); %d requests, %d retries, %d throttled",
                ", ".join(f"{t} {n}" for t, n in counts.items()), time.monotonic() - started,
                time.monotonic() - load_started, stats.total_requests, stats.retries, stats.throttled)
    return statuses
