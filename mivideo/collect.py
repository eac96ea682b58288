"""MIVIDEO's collect step: where each procedure resumes (the newest stored time) and what the sources give after it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from clients.bigquery import BigQueryReader
from clients.kaltura import KalturaMediaClient
from db.loader import max_value
from mivideo import queries
from mivideo.settings import MivideoSettings


def stored_max(engine: sa.Engine, table: str, column: str) -> datetime | None:
    """The newest stored value of a DATETIME column (naive UTC in the DB), as an aware datetime."""
    value = max_value(engine, table, column)
    return None if value is None else value.replace(tzinfo=UTC)


def media_started_events(reader: BigQueryReader, settings: MivideoSettings, start: datetime) -> pd.DataFrame:
    """The hourly "media started" counts of the Caliper events after `start`, as BigQuery returns them."""
    return reader.query_df(queries.media_started_hourly(settings.udp_events_project),
                           {"startTime": start, "kafApps": list(settings.kaf_ed_apps)}, label="media started hourly")


def media_created_pages(kaltura: KalturaMediaClient, settings: MivideoSettings, created_from: int
                        ) -> Iterator[Sequence[Mapping[str, Any]]]:
    """Kaltura's media entries created at or after `created_from` (epoch seconds), a page at a time."""
    return kaltura.iter_media_pages(created_from=created_from,
                                    categories_full_name_in=settings.categories_full_name_in)
