"""MIVIDEO's typed settings, read from the validated configuration (config/env_schema.hjson holds every key's
type, default and pattern; nothing here adds one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clients.bigquery import BigQuerySettings
from clients.kaltura import KalturaSettings
from source_settings import bigquery_settings, kaltura_settings


@dataclass(frozen=True)
class MivideoSettings:
    default_last_timestamp: datetime
    udp_events_project: str
    kaf_ed_apps: tuple[str, ...]
    categories_full_name_in: str
    bigquery: BigQuerySettings
    kaltura: KalturaSettings
    inventory_db: Mapping[str, Any] | None = field(repr=False)      # None: the caller brings an engine


def settings_from_env(env: Mapping[str, Any], config_dir: Path) -> MivideoSettings:
    """`config_dir` holds the service-account key file the configuration names."""
    mivideo = env["MIVIDEO"]
    return MivideoSettings(
        # The schema's date-time format requires the offset; stored times are compared in UTC.
        default_last_timestamp=datetime.fromisoformat(mivideo["default_last_timestamp"]).astimezone(UTC),
        udp_events_project=mivideo["udp_events_project"], kaf_ed_apps=tuple(mivideo["kaf_ed_apps"]),
        categories_full_name_in=mivideo["kaltura_categories_full_name_in"],
        bigquery=bigquery_settings(env, config_dir), kaltura=kaltura_settings(env),
        inventory_db=env.get("INVENTORY_DB"))
