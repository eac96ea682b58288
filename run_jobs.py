"""Run the configured ETL jobs: load configuration, migrate the inventory database, run each job, record it.

Exit codes: 0 every job succeeded; 1 a job failed (or JOB_NAMES named an unknown job, skipped); 2 the configuration
or the database is unusable (nothing ran), or --check-config found a problem; 3 nothing failed but a job was
skipped because another run of it held its lock; 128 + N stopped by signal N (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

import environ
from db.availability import ensure_database, wait_for_database
from db.engine import create_inventory_engine
from db.loader import LoadPolicy, with_load_policy
from db.schema_migrations import apply_migrations
from log_setup import LOG_FORMATS, Redactor, configure_logging
from runner import preflight
from runner.attempt import AttemptResult, RunContext, run_attempt, settle_heap
from runner.entrypoints import load_entrypoint
from runner.stopping import Stopper
from vocab import ConfigError, DatabaseUnavailableError, StopRequested, ValidJobName

logger = logging.getLogger("run_jobs")

EXIT_OK, EXIT_JOB_FAILED, EXIT_UNUSABLE, EXIT_SKIPPED, EXIT_SIGNAL_BASE = 0, 1, 2, 3, 128
DEFAULT_REGISTRY: Mapping[str, str] = {job.name: job.value for job in ValidJobName}
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
__all__ = ["load_entrypoint", "main", "settle_heap"]   # settle_heap: bench/ applies it like a run does


def parse_args(argv: Sequence[str] | None, registry: Mapping[str, str], *, prog: str = "run_jobs.py",
               mode: str | None = None) -> argparse.Namespace:
    """run_jobs.py's options; with `mode` (a `course-inventory` subcommand: "run", "check-config" or "list-jobs")
    that mode is fixed and the options choosing one are not offered."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Collect Canvas, MiVideo and Zoom data into the course-inventory MySQL database.",
        epilog="Configuration: config/secrets/env.hjson, or $ENV_DIR/$ENV_FILE, plus $ENV_SECRETS_DIR; keys can be "
               "overridden by environment variables (CANVAS__CANVAS_TOKEN). Exit codes: 0 ok, 1 a job failed, "
               "2 configuration or database unusable, 3 a job skipped (another run held its lock), 128+N stopped "
               "by signal N.",
    )
    parser.add_argument("--jobs", nargs="+", metavar="NAME", type=str.upper,
                        help=f"jobs to run, overriding JOB_NAMES (known: {', '.join(registry)})")
    if mode is None:
        parser.add_argument("--list-jobs", action="store_true", help="list the known jobs and exit")
        parser.add_argument("--check-config", action="store_true",
                            help="validate the configuration, reach the database and every source of the selected "
                                 "jobs once, list pending migrations; writes nothing")
    parser.set_defaults(list_jobs=mode == "list-jobs", check_config=mode == "check-config")
    parser.add_argument("--strict", action="store_true", help="treat unknown configuration keys as errors")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="for this run, accept replacements that empty or shrink a table below "
                             "MIN_SNAPSHOT_SHARE of its rows")
    parser.add_argument("--full-lookup", action="store_true",
                        help="for this run, look up every available course's published date in Canvas instead of "
                             "keeping the stored one (REUSE_PUBLISHED_DATES false)")
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, help="override LOG_LEVEL")
    parser.add_argument("--log-format", type=str.lower, choices=LOG_FORMATS,
                        help="override LOG_FORMAT: text lines, or one JSON object per line (log aggregation)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.jobs or [] if name not in registry]
    if unknown:
        parser.error(f"unknown job name(s): {', '.join(unknown)} (known: {', '.join(registry)})")
    return args


def early_log_format(option: str | None, environment: Mapping[str, str]) -> str:
    """The log format before the configuration is read (pure): the option, else a valid LOG_FORMAT variable, so
    that configuration errors already come out as JSON on OpenShift; else text."""
    if option:
        return option
    value = environment.get("LOG_FORMAT", "").strip().lower()
    return value if value in LOG_FORMATS else "text"


def select_jobs(names: Sequence[str], registry: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(known job names in order, unknown ones), case-insensitively (pure)."""
    upper = [str(name).upper() for name in names]
    return [n for n in upper if n in registry], [n for n in upper if n not in registry]


def exit_code(results: Sequence[AttemptResult], unknown: Sequence[str]) -> int:
    """The process's exit code once every selected job was attempted (pure)."""
    if unknown or any(result.status == "failed" for result in results):
        return EXIT_JOB_FAILED
    if any(result.status == "skipped" for result in results):
        return EXIT_SKIPPED
    return EXIT_OK


def prepare_database(db_params: Mapping[str, str], stopper: Stopper) -> sa.Engine:
    """Wait (under docker-compose), make sure the database exists, migrate it; DatabaseUnavailableError if not."""
    if os.environ.get("HOW_STARTED") == "DOCKER_COMPOSE":
        wait_for_database(db_params)
    else:
        ensure_database(db_params)
    apply_migrations(db_params, around_apply=stopper.deferred)
    return create_inventory_engine(db_params)


def _report_unknown(unknown: Sequence[str], registry: Mapping[str, str]) -> None:
    for name in unknown:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        logger.error("unknown job name %s in JOB_NAMES (%sknown: %s): skipped", name, hint, ", ".join(registry))


def run(env: Mapping[str, object], names: Sequence[str], registry: Mapping[str, str], stopper: Stopper,
        allow_shrink: bool) -> tuple[list[AttemptResult], StopRequested | None]:
    """Prepare the database and attempt each job in order; stops after a job interrupted by a signal."""
    engine = prepare_database(env["INVENTORY_DB"], stopper)  # type: ignore[arg-type]
    policy = LoadPolicy(float(env["MIN_SNAPSHOT_SHARE"]), bool(env["ALLOW_SHRINK"]) or allow_shrink)
    ctx = RunContext(env, with_load_policy(engine, policy), stopper, Redactor(environ.secret_values(env)),
                     float(env["JOB_LOCK_WAIT_SECONDS"]), float(env["JOB_TIMEOUT_MINUTES"]) * 60)  # type: ignore[arg-type]
    results: list[AttemptResult] = []
    try:
        for name in names:
            results.append(run_attempt(ctx, name, registry[name]))
            if results[-1].stop is not None:
                return results, results[-1].stop
    finally:
        engine.dispose()
    return results, None


def main(argv: Sequence[str] | None = None, *, registry: Mapping[str, str] | None = None, prog: str = "run_jobs.py",
         mode: str | None = None) -> int:
    registry = dict(registry or DEFAULT_REGISTRY)
    args = parse_args(argv, registry, prog=prog, mode=mode)
    if args.list_jobs:
        for name, path in registry.items():
            print(f"{name:<24} {path}")  # noqa: T201 - command output
        return EXIT_OK
    os.environ.setdefault("USER", "course-inventory")  # yoyo records getpass.getuser(): no passwd entry on OpenShift
    configure_logging(args.log_level or "INFO", fmt=early_log_format(args.log_format, os.environ))
    try:
        overrides = {**os.environ, "REUSE_PUBLISHED_DATES": "false"} if args.full_lookup else os.environ
        env = environ.load_env(environ.config_path(), environ.SCHEMA_PATH, overrides, secrets=environ.secrets_dir(),
                               job_names=args.jobs, strict=args.strict)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return EXIT_UNUSABLE
    configure_logging(args.log_level or env["LOG_LEVEL"], environ.secret_values(env),
                      fmt=args.log_format or env["LOG_FORMAT"])
    names, unknown = select_jobs(env["JOB_NAMES"], registry)
    _report_unknown(unknown, registry)
    if args.check_config:
        return preflight.check(env, names, environ.config_dir(), unknown=unknown)
    with Stopper() as stopper:
        try:
            results, stop = run(env, names, registry, stopper, args.allow_shrink)
        except DatabaseUnavailableError as exc:
            logger.error("%s", exc)
            return EXIT_UNUSABLE
        except StopRequested as exc:
            results, stop = [], exc
    if stop is not None:
        logger.error("run stopped by %s; the remaining jobs did not run", stop.signal_name)
        return EXIT_SIGNAL_BASE + stop.signum
    failed = [r.name for r in results if r.status == "failed"] + list(unknown)
    if failed:
        logger.error("%d job(s) failed: %s", len(failed), ", ".join(failed))
    elif any(r.status == "skipped" for r in results):
        logger.warning("job(s) skipped: %s", ", ".join(r.name for r in results if r.status == "skipped"))
    else:
        logger.info("all jobs succeeded")
    return exit_code(results, unknown)


if __name__ == "__main__":
    sys.exit(main())
