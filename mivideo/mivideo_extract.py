"""Job MIVIDEO: MiVideo (Kaltura) usage from UDP Caliper events and media created from the Kaltura API.

Two independent, incremental procedures:
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import environ
from clients.bigquery import BigQueryReader, BigQuerySettings, create_bigquery_client
from clients.kaltura import KalturaMediaClient, KalturaSettings
from clients.retry import RetryPolicy
from db.engine import create_inventory_engine
from db.loader import insert_new_rows_many, max_value, merge_rows
from mivideo import queries
from mivideo.transform import hourly_to_df, media_to_frames, split_prefixes
from vocab import ConfigError, DataSourceStatus, EtlError, JobError, JobReport, ValidDataSourceName

logger = logging.getLogger(__name__)

HOURLY_TABLE = "mivideo_media_started_hourly"
# An hour and course already stored (an overlapping run appended it) keeps the greater count and latest time.
HOURLY_REFRESHED = ("event_count", "event_time_utc_latest")
CREATED_TABLE = "mivideo_media_created"
COURSES_TABLE = "mivideo_media_courses"
DEFAULT_KAF_APPS = (
    "https://aakaf.mivideo.it.umich.edu/caliper/info/app/KafEdApp",
    "https://1038472-1.kaf.kaltura.com/caliper/info/app/KafEdApp",
)


@dataclass(frozen=True)
class MivideoSettings:
    default_last_timestamp: datetime
    udp_events_project: str
    kaf_ed_apps: tuple[str, ...]
    categories_full_name_in: str
    bigquery: BigQuerySettings
    kaltura: KalturaSettings

    @classmethod
    def from_env(cls, env: Mapping[str, Any], config_dir: Path) -> MivideoSettings:
        """Settings from the validated configuration; problems are named by key, values never shown."""
        section = env.get("MIVIDEO")
        if not isinstance(section, Mapping):
            raise ConfigError("MIVIDEO section missing from the configuration")
        for key in ("udp_service_account_json_filename", "kaltura_partner_id", "kaltura_user_secret"):
            if section.get(key) is None:
                raise ConfigError(f"MIVIDEO.{key} is required")
        default = _setting(section, "default_last_timestamp", "2020-03-01T00:00:00+00:00", _aware_datetime)
        project = _setting(section, "udp_events_project", "udp-umich-prod", _project_id)
        policy = RetryPolicy(max_attempts=_setting(env, "MAX_REQ_ATTEMPTS", 3, int),
                             budget_seconds=_setting(env, "RETRY_BUDGET_SECONDS", 300, float))
        return cls(
            default_last_timestamp=default,
            udp_events_project=project,
            kaf_ed_apps=tuple(str(app) for app in section.get("kaf_ed_apps") or DEFAULT_KAF_APPS),
            categories_full_name_in=str(section.get("kaltura_categories_full_name_in") or "Canvas_UMich"),
            bigquery=BigQuerySettings(key_file=config_dir / str(section["udp_service_account_json_filename"]),
                                      api_endpoint=str(section.get("bigquery_api_endpoint") or ""),
                                      policy=policy),
            kaltura=KalturaSettings(service_url=str(section.get("kaltura_service_url") or "https://www.kaltura.com"),
                                    partner_id=_setting(section, "kaltura_partner_id", None, int),
                                    secret=str(section["kaltura_user_secret"]), policy=policy),
        )


def _setting(section: Mapping[str, Any], key: str, default: Any, convert: Callable[[Any], Any]) -> Any:
    value = section.get(key)
    try:
        return convert(default if value in (None, "") else value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} is invalid: {exc}") from None


def _aware_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.utcoffset() is None:
        raise ValueError("an ISO 8601 timestamp with a UTC offset is expected")
    return parsed.astimezone(UTC)


def _project_id(value: Any) -> str:
    if not queries.PROJECT_ID.match(str(value)):
        raise ValueError("not a BigQuery project id")
    return str(value)


def _stored_max(engine: sa.Engine, table: str, column: str) -> datetime | None:
    """The newest stored value of a DATETIME column (naive UTC in the DB), as an aware datetime."""
    value = max_value(engine, table, column)
    return None if value is None else value.replace(tzinfo=UTC)


def load_media_started(reader: BigQueryReader, engine: sa.Engine, settings: MivideoSettings,
                       report: JobReport | None = None) -> DataSourceStatus:
    """Append the hourly "media started" counts of every hour that is complete and not stored yet."""
    stored = _stored_max(engine, HOURLY_TABLE, "event_time_utc_latest")
    start = stored or settings.default_last_timestamp
    logger.info("media started: events after %s", start.isoformat())
    raw = reader.query_df(queries.media_started_hourly(settings.udp_events_project),
                          {"startTime": start, "kafApps": list(settings.kaf_ed_apps)}, label="media started hourly")
    rows, already = hourly_to_df(raw, stored_latest=stored)
    if already:
        # Normal: the stored time is whole seconds, so the newest stored hour's last events come back.
        logger.info("media started: %d rows of hours already stored not appended", already)
    merged = merge_rows(engine, HOURLY_TABLE, rows, greatest=HOURLY_REFRESHED)
    added = merged.inserted
    if report is not None:
        report.add_rows({HOURLY_TABLE: added})
    logger.info("media started: appended %d rows to %s (%d already there refreshed)", added, HOURLY_TABLE,
                merged.refreshed)
    return DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_PLATFORM_EVENTS)


def load_media_created(kaltura: KalturaMediaClient, engine: sa.Engine, settings: MivideoSettings,
                       report: JobReport | None = None) -> DataSourceStatus:
    """Insert every media entry created since the newest stored one (inclusive), with its course links."""
    stored = _stored_max(engine, CREATED_TABLE, "created_at")
    created_from = int((stored or settings.default_last_timestamp).timestamp())
    prefixes = split_prefixes(settings.categories_full_name_in)
    seen = new_media = new_links = skipped = 0
    logger.info("media created: entries created at or after %s", datetime.fromtimestamp(created_from, UTC).isoformat())
    for page in kaltura.iter_media_pages(created_from=created_from,
                                         categories_full_name_in=settings.categories_full_name_in):
        frames = media_to_frames(page, prefixes)
        inserted = insert_new_rows_many(engine, {CREATED_TABLE: frames.created, COURSES_TABLE: frames.courses})
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
    if env is None:
        env = environ.ENV                # loaded (and validated) on first use, not at import
    config_dir = environ.config_dir() if config_dir is None else config_dir
    settings = MivideoSettings.from_env(env, config_dir)
    own_engine = engine is None
    engine = engine or create_inventory_engine(env["INVENTORY_DB"])

    def media_started() -> DataSourceStatus:
        reader = bigquery or BigQueryReader(create_bigquery_client(settings.bigquery), settings.bigquery)
        try:
            return load_media_started(reader, engine, settings, report)
        finally:
            if bigquery is None:
                reader.close()

    def media_created() -> DataSourceStatus:
        client = kaltura or KalturaMediaClient(settings.kaltura)
        try:
            return load_media_created(client, engine, settings, report)
        finally:
            if report is not None:
                report.add_requests(client.calls)

    try:
        return _run_procedures([("media started hourly", media_started), ("media created", media_created)])
    finally:
        if own_engine:
            engine.dispose()
