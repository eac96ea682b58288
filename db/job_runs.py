"""Recording a successful job run and the data-source statuses it returned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from db.loader import LoadError
from vocab import DataSourceStatus


def naive_utc(moment: datetime) -> datetime:
    """DATETIME columns hold naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def record_job_run(engine: sa.Engine, job_name: str, started_at: datetime, finished_at: datetime,
                   statuses: Sequence[DataSourceStatus]) -> int:
    """Insert one job_run row and its data_source_status rows in one transaction; returns the job_run id."""
    for status in statuses:
        if not isinstance(status, DataSourceStatus):
            raise TypeError(f"job {job_name} returned {type(status).__name__}, not DataSourceStatus")
    try:
        with engine.begin() as conn:
            result = conn.execute(
                sa.text("INSERT INTO job_run (job_name, started_at, finished_at) VALUES (:name, :started, :finished)"),
                {"name": job_name, "started": naive_utc(started_at), "finished": naive_utc(finished_at)},
            )
            job_run_id = result.lastrowid  # the row this connection inserted, not "the last row of the table"
            if statuses:
                conn.execute(
                    sa.text("INSERT INTO data_source_status (data_source_name, data_updated_at, job_run_id) "
                            "VALUES (:name, :updated, :job_run_id)"),
                    [{"name": str(s.data_source_name), "updated": naive_utc(s.data_updated_at),
                      "job_run_id": job_run_id} for s in statuses],
                )
    except sa.exc.SQLAlchemyError as exc:
        raise LoadError(f"could not record the run of {job_name}: {getattr(exc, 'orig', exc)}") from exc
    return int(job_run_id)
