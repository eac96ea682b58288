"""Recording runs: `job_run` (one row per successful run, with its data-source statuses) and `job_run_log`
(one row per attempt whatever its outcome, inserted as `running` when the attempt starts)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from vocab import DataSourceStatus, LoadError, RequestTotals

MAX_REASON = 1000              # job_run_log.reason is VARCHAR(1000)
ABANDONED_REASON = ("its process ended without finishing (killed, e.g. SIGKILL or an evicted pod); found by the "
                    "next run of the job")


def naive_utc(moment: datetime) -> datetime:
    """DATETIME columns hold naive UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """A reason for job_run_log: whitespace folded into one line, cut to the column (pure)."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[:limit - 3] + "..."


@dataclass(frozen=True)
class AttemptEnd:
    status: str                                   # succeeded, failed, interrupted
    finished_at: datetime
    reason: str | None = None
    rows_loaded: Mapping[str, int] = field(default_factory=dict)
    requests: RequestTotals = field(default_factory=RequestTotals)


def _check_statuses(job_name: str, statuses: Sequence[DataSourceStatus]) -> None:
    for status in statuses:
        if not isinstance(status, DataSourceStatus):
            raise TypeError(f"job {job_name} returned {type(status).__name__}, not DataSourceStatus")


def insert_job_run(conn: sa.Connection, job_name: str, started_at: datetime, finished_at: datetime,
                   statuses: Sequence[DataSourceStatus]) -> int:
    _check_statuses(job_name, statuses)
    result = conn.execute(
        sa.text("INSERT INTO job_run (job_name, started_at, finished_at) VALUES (:name, :started, :finished)"),
        {"name": job_name, "started": naive_utc(started_at), "finished": naive_utc(finished_at)},
    )
    job_run_id = result.lastrowid  # the row this connection inserted, not "the last row of the table"
    if statuses:
        conn.execute(
            sa.text("INSERT INTO data_source_status (data_source_name, data_updated_at, job_run_id) "
                    "VALUES (:name, :updated, :job_run_id)"),
            [{"name": str(s.data_source_name), "updated": naive_utc(s.data_updated_at), "job_run_id": job_run_id}
             for s in statuses],
        )
    return int(job_run_id)


def record_job_run(engine: sa.Engine, job_name: str, started_at: datetime, finished_at: datetime,
                   statuses: Sequence[DataSourceStatus], *, attempt_id: int | None = None,
                   end: AttemptEnd | None = None) -> int:
    """Insert one job_run row and its data_source_status rows — and close the attempt's job_run_log row when given
    — in one transaction; returns the job_run id."""
    _check_statuses(job_name, statuses)
    try:
        with engine.begin() as conn:
            job_run_id = insert_job_run(conn, job_name, started_at, finished_at, statuses)
            if attempt_id is not None and end is not None:
                _finish(conn, attempt_id, end, job_run_id)
    except sa.exc.SQLAlchemyError as exc:
        raise LoadError(f"could not record the run of {job_name}: {getattr(exc, 'orig', exc)}") from exc
    return job_run_id


def _write(engine: sa.Engine, what: str, sql: str, params: Mapping[str, object]) -> sa.CursorResult:
    try:
        with engine.begin() as conn:
            return conn.execute(sa.text(sql), params)
    except sa.exc.SQLAlchemyError as exc:
        raise LoadError(f"could not {what} in job_run_log: {getattr(exc, 'orig', exc)}") from exc


def start_attempt(engine: sa.Engine, job_name: str, started_at: datetime) -> int:
    """Insert the attempt as `running` and commit at once (a killed run leaves it so); returns its id."""
    result = _write(engine, "record the start", "INSERT INTO job_run_log (job_name, status, started_at, host, pid) "
                    "VALUES (:name, 'running', :started, :host, :pid)",
                    {"name": job_name, "started": naive_utc(started_at), "host": socket.gethostname()[:255],
                     "pid": os.getpid()})
    return int(result.lastrowid)


def mark_abandoned(engine: sa.Engine, job_name: str, now: datetime) -> int:
    """Attempts still `running` whose holder is gone: only call while holding the job's lock (it proves that)."""
    result = _write(engine, "mark abandoned attempts", "UPDATE job_run_log SET status = 'abandoned', "
                    "finished_at = :now, reason = :reason WHERE job_name = :name AND status = 'running'",
                    {"now": naive_utc(now), "reason": ABANDONED_REASON, "name": job_name})
    return result.rowcount


def record_skipped(engine: sa.Engine, job_name: str, at: datetime, reason: str) -> None:
    _write(engine, "record a skipped attempt", "INSERT INTO job_run_log (job_name, status, started_at, finished_at, "
           "reason, host, pid) VALUES (:name, 'skipped', :at, :at, :reason, :host, :pid)",
           {"name": job_name, "at": naive_utc(at), "reason": one_line(reason), "host": socket.gethostname()[:255],
            "pid": os.getpid()})


def finish_attempt(engine: sa.Engine, attempt_id: int, end: AttemptEnd) -> None:
    try:
        with engine.begin() as conn:
            _finish(conn, attempt_id, end, None)
    except sa.exc.SQLAlchemyError as exc:
        raise LoadError(f"could not record the end of the attempt in job_run_log: {getattr(exc, 'orig', exc)}"
                        ) from exc


def _finish(conn: sa.Connection, attempt_id: int, end: AttemptEnd, job_run_id: int | None) -> None:
    conn.execute(sa.text(
        "UPDATE job_run_log SET status = :status, finished_at = :finished, reason = :reason, rows_loaded = :rows, "
        "requests = :requests, retries = :retries, throttled = :throttled, job_run_id = :job_run_id WHERE id = :id"),
        {"status": end.status, "finished": naive_utc(end.finished_at),
         "reason": one_line(end.reason) if end.reason else None,
         "rows": json.dumps(dict(end.rows_loaded), sort_keys=True), "requests": end.requests.requests,
         "retries": end.requests.retries, "throttled": end.requests.throttled, "job_run_id": job_run_id,
         "id": attempt_id})
