"""Run the configured ETL jobs: load configuration, migrate the inventory database, run each job, record it.

Exit codes: 0 all jobs succeeded; 1 at least one job failed; 2 configuration or database unusable.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

import environ
from db.availability import ensure_database, wait_for_database
from db.engine import create_inventory_engine
from db.job_runs import record_job_run
from db.schema_migrations import apply_migrations
from log_setup import configure_logging
from vocab import ConfigError, DatabaseUnavailableError, EtlError, ValidJobName

logger = logging.getLogger("run_jobs")

EXIT_OK, EXIT_JOB_FAILED, EXIT_UNUSABLE = 0, 1, 2
DEFAULT_REGISTRY: Mapping[str, str] = {job.name: job.value for job in ValidJobName}


def parse_args(argv: Sequence[str] | None, registry: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_jobs.py",
        description="Collect Canvas, MiVideo and Zoom data into the course-inventory MySQL database.",
        epilog="Configuration: config/secrets/env.hjson, or $ENV_DIR/$ENV_FILE; top-level keys can be "
               "overridden by environment variables. Exit codes: 0 ok, 1 a job failed, 2 configuration "
               "or database unusable.",
    )
    parser.add_argument("--jobs", nargs="+", metavar="NAME", type=str.upper,
                        help=f"jobs to run, overriding JOB_NAMES (known: {', '.join(registry)})")
    parser.add_argument("--list-jobs", action="store_true", help="list the known jobs and exit")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and database connectivity, then exit")
    parser.add_argument("--log-level", choices=["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"],
                        help="override LOG_LEVEL")
    args = parser.parse_args(argv)
    unknown = [name for name in args.jobs or [] if name not in registry]
    if unknown:
        parser.error(f"unknown job name(s): {', '.join(unknown)} (known: {', '.join(registry)})")
    return args


def load_entrypoint(dotted_path: str) -> Callable[[], list]:
    module_name, _, function_name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


def settle_heap() -> None:
    """Collect garbage, exempt every survivor (imported modules, caches) from later passes, collect less often.

    A job's working set grows for minutes; without this each full collection re-scans all of it plus every
    imported library, pauses of ~100 ms that stall all request threads at once. Parsing JSON allocates fast, so
    the youngest generation is collected every 20,000 allocations instead of 700: most parsed pages are already
    gone by then, instead of being promoted and re-scanned (bench/, large: GC 2.3 s -> 0.4 s of a 66 s run).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def prepare_database(db_params: Mapping[str, str]) -> sa.Engine:
    """Wait (under docker-compose), make sure the database exists, migrate it; DatabaseUnavailableError if not."""
    if os.environ.get("HOW_STARTED") == "DOCKER_COMPOSE":
        wait_for_database(db_params)
    else:
        ensure_database(db_params)
    try:
        apply_migrations(db_params)
    except Exception as exc:  # yoyo raises driver errors and its own LockTimeout
        reason = f"{type(exc).__name__}: {exc}"
        raise DatabaseUnavailableError(f"migrating the inventory database failed: {reason}") from None
    return create_inventory_engine(db_params)


def run_job(engine: sa.Engine, name: str, dotted_path: str) -> bool:
    """Run one job and record it; False when it failed (already logged)."""
    logger.info("job %s starting", name)
    started_at, clock = datetime.now(UTC), time.monotonic()
    try:
        entrypoint = load_entrypoint(dotted_path)
        settle_heap()
        statuses = entrypoint()
        finished_at = datetime.now(UTC)
        job_run_id = record_job_run(engine, name, started_at, finished_at, statuses or [])
    except EtlError as exc:  # expected failure: the reason, no traceback
        logger.error("job %s failed after %.1fs: %s", name, time.monotonic() - clock, exc)
        return False
    except Exception:  # a bug: keep the traceback
        logger.exception("job %s crashed after %.1fs", name, time.monotonic() - clock)
        return False
    logger.info("job %s finished in %.1fs (job_run id %d, %d data source status(es))",
                name, time.monotonic() - clock, job_run_id, len(statuses or []))
    return True


def main(argv: Sequence[str] | None = None, *, registry: Mapping[str, str] | None = None) -> int:
    registry = dict(registry or DEFAULT_REGISTRY)
    args = parse_args(argv, registry)
    if args.list_jobs:
        for name, path in registry.items():
            print(f"{name:<24} {path}")  # noqa: T201 - command output
        return EXIT_OK

    configure_logging(args.log_level or "INFO")
    try:
        env = environ.load_env(environ.config_path(), environ.SCHEMA_PATH, os.environ)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return EXIT_UNUSABLE
    configure_logging(args.log_level or env["LOG_LEVEL"], environ.secret_values(env))

    try:
        engine = prepare_database(env["INVENTORY_DB"])
    except DatabaseUnavailableError as exc:
        logger.error("%s", exc)
        return EXIT_UNUSABLE
    if args.check_config:
        logger.info("configuration is valid and the inventory database is reachable and migrated")
        return EXIT_OK

    failed: list[str] = []
    for name in args.jobs or [name.upper() for name in env["JOB_NAMES"]]:
        if name not in registry:
            logger.error("unknown job name %s: skipped", name)
            failed.append(name)
            continue
        if not run_job(engine, name, registry[name]):
            failed.append(name)
    engine.dispose()
    if failed:
        logger.error("%d job(s) failed: %s", len(failed), ", ".join(failed))
        return EXIT_JOB_FAILED
    logger.info("all jobs succeeded")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
