"""One attempt at one job: its lock, its job_run_log row, its deadline, the call, and what is recorded.

    lock (GET_LOCK course_inventory.<db>.job.<NAME>, bounded wait; else `skipped`)
    -> earlier `running` rows of the job marked `abandoned` (the lock proves their holder is gone)
    -> a `running` row, committed at once
    -> the entry function, under JOB_TIMEOUT_MINUTES (retries and slow responses rolled up in the log meanwhile)
    -> job_run + data_source_status + the row `succeeded` in one transaction, or the row `failed`/`interrupted`
    -> the job's summary (runner.summary)
Every record logged meanwhile, from any thread, carries the job's name (log_setup.job_context).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql
import sqlalchemy as sa

from clients.rollup import ROLLUP, KindWindow, RequestRollup, RollupReporter
from db.job_runs import AttemptEnd, finish_attempt, mark_abandoned, record_job_run, record_skipped, start_attempt
from db.locks import NamedLock, lock_name
from log_setup import job_context
from runner.entrypoints import call_entrypoint, load_entrypoint
from runner.stopping import Stopper
from runner.summary import log_summary
from vocab import DeadlineExceeded, EtlError, JobInterrupted, JobReport, StopRequested

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    env: Mapping[str, Any]
    engine: sa.Engine
    stopper: Stopper
    redact: Callable[[str], str]            # the log's secret scrubbing, applied to recorded reasons too
    lock_wait_s: float
    timeout_s: float
    report_interval_s: float = 10.0         # retries and slow responses are rolled up over this many seconds
    rollup: RequestRollup = ROLLUP


@dataclass(frozen=True)
class AttemptResult:
    name: str
    status: str                             # succeeded, failed, interrupted, skipped
    reason: str | None = None
    stop: StopRequested | None = None       # set when the run must stop (a signal)


def outcome(error: BaseException | None) -> tuple[str, str | None]:
    """(status, one-line reason) of an attempt that ended with `error` (pure)."""
    if error is None:
        return "succeeded", None
    if isinstance(error, StopRequested):
        return "interrupted", str(error)
    if isinstance(error, DeadlineExceeded):
        return "failed", str(error)
    if isinstance(error, EtlError):
        return "failed", error.message
    return "failed", f"crashed: {type(error).__name__}: {error}"


def settle_heap() -> None:
    """Collect garbage, exempt every survivor (imported modules, caches) from later passes, collect less often.

    A job's working set grows for minutes; without this each full collection re-scans all of it plus every
    imported library, pauses of ~100 ms that stall all request threads at once. Parsing JSON allocates fast, so
    the youngest generation is collected every 20,000 allocations instead of 700: most parsed pages are already
    gone by then, instead of being promoted and re-scanned (measured in README "Benchmarks").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def run_attempt(ctx: RunContext, name: str, dotted_path: str) -> AttemptResult:
    """Run one job under its lock and record the attempt; never raises for the job's own failures."""
    with job_context(name):
        return _attempt(ctx, name, dotted_path)


def _attempt(ctx: RunContext, name: str, dotted_path: str) -> AttemptResult:
    db_params = ctx.env["INVENTORY_DB"]
    try:
        name_of_lock = lock_name(db_params["dbname"], f"job.{name}")
        with NamedLock(db_params, name_of_lock, hold_seconds=ctx.timeout_s) as lock:
            if not lock.acquire(ctx.lock_wait_s):
                return _skip(ctx, name)
            with ctx.stopper.deferred():
                abandoned = mark_abandoned(ctx.engine, name, datetime.now(UTC))
                if abandoned:
                    logger.warning("job %s: %d earlier attempt(s) still marked running were abandoned (their "
                                   "process is gone)", name, abandoned)
                started_at = datetime.now(UTC)
                attempt_id = start_attempt(ctx.engine, name, started_at)
            return _run(ctx, name, dotted_path, attempt_id, started_at)
    except (EtlError, pymysql.MySQLError, sa.exc.SQLAlchemyError) as exc:   # the lock or the log unusable
        reason = ctx.redact(f"cannot take the job's lock or record it: {getattr(exc, 'orig', exc)}")
        logger.error("job %s failed: %s", name, reason)
        return AttemptResult(name, "failed", reason)


def _skip(ctx: RunContext, name: str) -> AttemptResult:
    reason = (f"another run of {name} still held its lock after {ctx.lock_wait_s:.0f}s "
              "(JOB_LOCK_WAIT_SECONDS); skipped so the two never interleave")
    logger.warning("job %s skipped: %s", name, reason)
    with ctx.stopper.deferred():
        record_skipped(ctx.engine, name, datetime.now(UTC), reason)
    return AttemptResult(name, "skipped", reason)


def _run(ctx: RunContext, name: str, dotted_path: str, attempt_id: int, started_at: datetime) -> AttemptResult:
    logger.info("job %s starting", name)
    clock, report = time.monotonic(), JobReport()
    offered = {"env": ctx.env, "engine": ctx.engine, "report": report, "stop": ctx.stopper.new_job_event()}
    statuses: Sequence[Any] = []
    error: BaseException | None = None
    rollup = RollupReporter(ctx.rollup, logging.getLogger("clients.rollup"), interval=ctx.report_interval_s)
    rollup.start()
    try:
        with ctx.stopper.deadline(ctx.timeout_s, f"stopped after exceeding JOB_TIMEOUT_MINUTES "
                                                 f"({ctx.timeout_s / 60:g} min)"):
            entrypoint = load_entrypoint(dotted_path)
            settle_heap()
            statuses = call_entrypoint(entrypoint, offered) or []
    except (Exception, JobInterrupted) as exc:
        error = _stopped_instead(exc, ctx.stopper.requested)
    with ctx.stopper.deferred():
        rollup.close()
        return _record(ctx, name, (attempt_id, started_at, clock), statuses, report, error, rollup.totals())


def _stopped_instead(error: BaseException, stop: StopRequested | None) -> BaseException:
    """The stop, when one arrived before the job ended with another error: a library cleaning up after the
    interruption can raise its own error over it (PyMySQL ends an interrupted LOAD DATA upload in a `finally`,
    and the broken connection's error is what surfaces), and the attempt was still stopped, not failed."""
    if stop is None or isinstance(error, JobInterrupted):
        return error
    logger.debug("error after the stop request, recorded as the stop: %s", error)
    stop.__cause__ = error
    return stop


def _record(ctx: RunContext, name: str, attempt: tuple[int, datetime, float], statuses: Sequence[Any],
            report: JobReport, error: BaseException | None, kinds: Sequence[KindWindow] = ()) -> AttemptResult:
    attempt_id, started_at, clock = attempt
    stop = error if isinstance(error, StopRequested) else None
    status, reason = outcome(error)
    reason = ctx.redact(reason) if reason else None
    end = AttemptEnd(status, datetime.now(UTC), reason, report.rows_loaded, report.request_totals())
    job_run_id = None
    try:
        if status == "succeeded":
            job_run_id = record_job_run(ctx.engine, name, started_at, end.finished_at, statuses,
                                        attempt_id=attempt_id, end=end)
        else:
            finish_attempt(ctx.engine, attempt_id, end)
    except (EtlError, TypeError) as exc:
        status, reason = outcome(exc)
        error = exc
        try:
            finish_attempt(ctx.engine, attempt_id, AttemptEnd(status, datetime.now(UTC), ctx.redact(reason or "")))
        except EtlError as again:
            logger.error("job %s: %s", name, again)
    seconds = time.monotonic() - clock
    _log(name, status, reason, error, seconds, job_run_id, len(statuses))
    log_summary(name, status, seconds, report, kinds)
    return AttemptResult(name, status, reason, stop)


def _log(name: str, status: str, reason: str | None, error: BaseException | None, seconds: float,
         job_run_id: int | None, statuses: int) -> None:
    if status == "succeeded":
        logger.info("job %s finished in %.1fs (job_run id %d, %d data source status(es))", name, seconds,
                    job_run_id, statuses)
    elif status == "interrupted":
        logger.error("job %s interrupted after %.1fs: %s; previous data kept", name, seconds, reason)
    elif isinstance(error, EtlError | JobInterrupted):  # expected failure: the reason, no traceback
        logger.error("job %s failed after %.1fs: %s", name, seconds, error)
    else:  # a bug: keep the traceback
        logger.error("job %s crashed after %.1fs", name, seconds, exc_info=error)
