"""Empty every application table of the inventory database and apply outstanding migrations — only when confirmed.

Without --yes it says which database and how many rows per table it would delete, and asks for "yes" on a
terminal; anywhere else it changes nothing. Exit codes: 0 done; 1 not confirmed (nothing changed); 2 the
configuration or the database is unusable.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import sqlalchemy as sa

import environ
from db.availability import database_exists, describe_database, ensure_database
from db.db_creator import DBCreator
from log_setup import configure_logging
from vocab import ConfigError, DatabaseUnavailableError

logger = logging.getLogger("create_db")

EXIT_DONE, EXIT_NOT_CONFIRMED, EXIT_UNUSABLE = 0, 1, 2


def parse_args(argv: Sequence[str] | None, prog: str = "create_db.py") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="DELETE every row of every application table of the configured inventory database (yoyo's "
                    "bookkeeping is kept), then apply outstanding migrations. Without --yes, shows what it would "
                    "delete and asks for confirmation on a terminal.",
        epilog="Configuration as for run_jobs.py (ENV_DIR, ENV_FILE, ENV_SECRETS_DIR, environment overrides). "
               "Exit codes: 0 done, 1 not confirmed (nothing changed), 2 configuration or database unusable.")
    parser.add_argument("--yes", action="store_true", help="do it without asking")
    return parser.parse_args(argv)


def plan(db_params: Mapping[str, Any], counts: Mapping[str, int] | None) -> list[str]:
    """What would happen, one line each (pure); `counts` None when the database does not exist yet."""
    where = describe_database(db_params)
    if counts is None:
        return [f"database {where} does not exist: it would be created and migrated (no data to delete)"]
    lines = [f"this would DELETE {sum(counts.values())} row(s) from {len(counts)} table(s) of {where}, "
             "then apply outstanding migrations:"]
    lines += [f"  {table:<32} {rows:>10} row(s)" for table, rows in counts.items()]
    return lines


def confirmed(stdin: TextIO, stdout: TextIO) -> bool:
    """An interactive "yes"; False without a terminal to ask on."""
    if not stdin.isatty():
        print("nothing changed: no terminal to confirm on; run with --yes to do it", file=stdout)  # noqa: T201
        return False
    print("type yes to continue: ", end="", file=stdout, flush=True)  # noqa: T201 - interactive prompt
    answer = stdin.readline().strip()
    if answer != "yes":
        print("nothing changed", file=stdout)  # noqa: T201 - command output
    return answer == "yes"


def reset(db_params: Mapping[str, Any], *, yes: bool, stdin: TextIO, stdout: TextIO) -> int:
    exists = database_exists(db_params)
    counts = DBCreator(db_params).count_rows() if exists else None
    for line in plan(db_params, counts):
        print(line, file=stdout)  # noqa: T201 - command output
    if not yes and not confirmed(stdin, stdout):
        return EXIT_NOT_CONFIRMED
    if not exists:
        ensure_database(db_params)
    DBCreator(db_params).reset_database()
    logger.info("inventory database %s emptied and migrated", describe_database(db_params))
    return EXIT_DONE


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
         prog: str = "create_db.py") -> int:
    args = parse_args(argv, prog)
    os.environ.setdefault("USER", "course-inventory")  # yoyo records getpass.getuser(): no passwd entry on OpenShift
    configure_logging("INFO")
    try:
        env = environ.load_env(environ.config_path(), environ.SCHEMA_PATH, os.environ, secrets=environ.secrets_dir())
        configure_logging(env["LOG_LEVEL"], environ.secret_values(env))
        return reset(env["INVENTORY_DB"], yes=args.yes, stdin=stdin or sys.stdin, stdout=stdout or sys.stdout)
    except (ConfigError, DatabaseUnavailableError) as exc:
        logger.error("%s", exc)
    except sa.exc.SQLAlchemyError as exc:
        logger.error("cannot use the inventory database: %s", getattr(exc, "orig", exc))
    return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
