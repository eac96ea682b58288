"""Job MIVIDEO: MiVideo (Kaltura) usage from UDP Caliper events and media created from the Kaltura API.

Two independent, incremental procedures, each collect (mivideo.collect) -> transform (mivideo.transform,
pure) -> load (mivideo.load):
1. media started hourly: BigQuery rows after the newest stored `event_time_utc_latest` (or the configured
   default), appended for the hours not stored yet;
2. media created: Kaltura entries created at or after the newest stored `created_at`, page by page; each
   page's entries and their course links are inserted in one transaction, rows already present left alone.
A failure in one procedure does not stop or undo the other; the job then raises JobError naming it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import environ
from clients.bigquery import BigQueryReader, create_bigquery_client
from clients.kaltura import KalturaMediaClient
from db.engine import inventory_engine
from mivideo.collect import media_created_pages, media_started_events, stored_max
from mivideo.load import COURSES_TABLE, CREATED_TABLE, HOURLY_TABLE, append_media_started, insert_media_page
from mivideo.settings import MivideoSettings, settings_from_env
from mivideo.transform import hourly_to_df, media_to_frames, split_prefixes
from vocab import DataSourceStatus, EtlError, JobError, JobReport, ValidDataSourceName

logger = logging.getLogger(__name__)


def load_media_started(reader: BigQueryReader, engine: sa.Engine, settings: MivideoSettings,
                       report: JobReport | None = None) -> DataSourceStatus:
    """Append the hourly "media started" counts of every hour that is complete and not stored yet."""
    stored = stored_max(engine, HOURLY_TABLE, "event_time_utc_latest")
    start = stored or settings.default_last_timestamp
    logger.info("media started: events after %s", start.isoformat())
    rows, already = hourly_to_df(media_started_events(reader, settings, start), stored_latest=stored)
    if already:
        # Normal: the stored time is whole seconds, so the newest stored hour's last events come back.
        logger.info("media started: %d rows of hours already stored not appended", already)
    merged = append_media_started(engine, rows)
    if report is not None:
        report.add_rows({HOURLY_TABLE: merged.inserted})
    logger.info("media started: appended %d rows to %s (%d already there refreshed)", merged.inserted, HOURLY_TABLE,
                merged.refreshed)
    return DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_PLATFORM_EVENTS)


def load_media_created(kaltura: KalturaMediaClient, engine: sa.Engine, settings: MivideoSettings,
                       report: JobReport | None = None) -> DataSourceStatus:
    """Insert every media entry created since the newest stored one (inclusive), with its course links."""
    stored = stored_max(engine, CREATED_TABLE, "created_at")
    created_from = int((stored or settings.default_last_timestamp).timestamp())
    prefixes = split_prefixes(settings.categories_full_name_in)
    seen = new_media = new_links = skipped = 0
    logger.info("media created: entries created at or after %s", datetime.fromtimestamp(created_from, UTC).isoformat())
    for page in media_created_pages(kaltura, settings, created_from):
        frames = media_to_frames(page, prefixes)
        inserted = insert_media_page(engine, frames)
        if report is not None:
            report.add_rows(inserted)
        seen += len(page)
        new_media += inserted[CREATED_TABLE]
        new_links += inserted[COURSES_TABLE]
        skipped += frames.skipped_categories
        logger.debug("media created: page of %d entries, %d new (%d seen so far)", len(page),
                     inserted[CREATED_TABLE], seen)
    if skipped:
        logger.info("media created: skipped %d categories without a numeric Canvas course id", skipped)
    logger.info("media created: %d entries listed, %d new rows in %s, %d new rows in %s (%d 10,000-match restarts)",
                seen, new_media, CREATED_TABLE, new_links, COURSES_TABLE, kaltura.restarts)
    return DataSourceStatus(ValidDataSourceName.KALTURA_API)


def _run_procedures(procedures: Sequence[tuple[str, Callable[[], DataSourceStatus]]]) -> list[DataSourceStatus]:
    statuses, failures = [], []
    for name, procedure in procedures:
        started = time.monotonic()
        try:
            statuses.append(procedure())
        except EtlError as exc:
            logger.error("MIVIDEO %s failed: %s", name, exc)
            failures.append(f"{name}: {exc.message}")
        except Exception as exc:         # a bug; keep the other procedure's chance to run, then fail the job
            logger.exception("MIVIDEO %s crashed", name)
            failures.append(f"{name}: unexpected {type(exc).__name__}")
        logger.info("MIVIDEO %s took %.1fs", name, time.monotonic() - started)
    if failures:
        raise JobError(f"MIVIDEO: {len(failures)} of {len(procedures)} procedures failed", details=failures)
    return statuses


def main(env: Mapping[str, Any] | None = None, *, engine: sa.Engine | None = None, config_dir: Path | None = None,
         bigquery: BigQueryReader | None = None, kaltura: KalturaMediaClient | None = None,
         report: JobReport | None = None) -> list[DataSourceStatus]:
    """Run both procedures; returns the UNIZIN_DATA_PLATFORM_EVENTS and KALTURA_API statuses."""
    settings = settings_from_env(environ.job_env(env), environ.config_dir() if config_dir is None else config_dir)
    with ExitStack() as resources:
        engine = engine or resources.enter_context(inventory_engine(settings.inventory_db))

        def media_started() -> DataSourceStatus:
            with ExitStack() as own:
                reader = bigquery or own.enter_context(closing(
                    BigQueryReader(create_bigquery_client(settings.bigquery), settings.bigquery)))
                return load_media_started(reader, engine, settings, report)

        def media_created() -> DataSourceStatus:
            client = kaltura or KalturaMediaClient(settings.kaltura)
            try:
                return load_media_created(client, engine, settings, report)
            finally:
                if report is not None:
                    report.add_requests(client.calls)

        return _run_procedures([("media started hourly", media_started), ("media created", media_created)])
