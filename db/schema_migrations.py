"""Apply the yoyo migrations in db/migrations/: one migrator at a time, and a dead one never blocks the next.

yoyo serialises migrators with a row in its `yoyo_lock` table; a process killed while migrating leaves that row
behind, and every later run would wait for it and give up (yoyo's LockTimeout). So a migrator here first takes the
server-side named lock `course_inventory.<database>.migrations` (db/locks.py), which dies with its holder: while
it is held no other run of this program migrates, and once we hold it any `yoyo_lock` row was left by a run that
is gone, so it is removed (yoyo's `break_lock`). Apply migrations through run_jobs.py or create_db.py, not with
the yoyo command line, which does not take the named lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pymysql
import sqlalchemy as sa
from yoyo import read_migrations
from yoyo.backends.core.mysql import MySQLBackend
from yoyo.connections import parse_uri
from yoyo.migrations import MigrationList

from db.engine import connect_dedicated, yoyo_uri
from db.locks import NamedLock, lock_name
from vocab import DatabaseUnavailableError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_TABLE = "_yoyo_migration"
YOYO_TABLES = frozenset({MIGRATION_TABLE, "_yoyo_log", "_yoyo_version", "yoyo_lock"})
MIGRATION_LOCK_WAIT_S = 600   # another run's migrations (an ALTER of a big table can take minutes)
YOYO_LOCK_WAIT_S = 10         # yoyo's own lock, free by then unless someone uses the yoyo command line
# MySQL/MariaDB error codes meaning "this user may not do that" (ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR,
# ER_COLUMNACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR).
PRIVILEGE_ERRORS = frozenset({1044, 1142, 1143, 1227})
NEEDED_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP and REFERENCES"


def _backend(db_params: Mapping[str, Any]) -> MySQLBackend:
    """yoyo's MySQL backend, connected like the rest of the program (timeouts, strict mode, UTC)."""

    class InventoryBackend(MySQLBackend):   # yoyo copies backends through their class: params live in it
        def connect(self, dburi: Any) -> pymysql.Connection:
            return connect_dedicated(db_params, autocommit=False)

    backend = InventoryBackend(parse_uri(yoyo_uri(db_params)), MIGRATION_TABLE)
    backend.init_database()
    return backend


def read_migration_list(migrations_dir: Path = MIGRATIONS_DIR, only: Collection[str] | None = None) -> MigrationList:
    migrations = read_migrations(str(migrations_dir))
    if only is not None:
        migrations = migrations.filter(lambda migration: migration.id in only)
    return migrations


def apply_migrations(db_params: Mapping[str, Any], *, migrations_dir: Path = MIGRATIONS_DIR,
                     only: Collection[str] | None = None, lock_wait: float = MIGRATION_LOCK_WAIT_S,
                     around_apply: Callable[[], AbstractContextManager[Any]] = nullcontext) -> list[str]:
    """Apply every outstanding migration (or only those whose ids are in `only`); returns the ids applied.

    `around_apply` is entered while migrations are applied (the runner defers stop signals there, so a migration
    is never cut between its steps). Raises DatabaseUnavailableError with a one-line reason.
    """
    migrations = read_migration_list(migrations_dir, only)
    name = lock_name(db_params["dbname"], "migrations")
    try:
        with NamedLock(db_params, name) as lock:
            if not lock.acquire(lock_wait):
                raise DatabaseUnavailableError(
                    f"another run is migrating {db_params['dbname']} (it holds the lock {name}; waited "
                    f"{lock_wait:.0f}s); try again later")
            backend = _backend(db_params)
            try:
                return _migrate(backend, migrations, around_apply)
            finally:
                backend.connection.close()
    except DatabaseUnavailableError:
        raise
    except Exception as exc:  # yoyo raises driver errors and its own exceptions
        raise DatabaseUnavailableError(f"migrating the inventory database {db_params['dbname']} failed: "
                                       f"{describe_error(exc)}") from None


def _migrate(backend: MySQLBackend, migrations: MigrationList,
             around_apply: Callable[[], AbstractContextManager[Any]]) -> list[str]:
    _ensure_lock_table(backend)
    _break_stale_lock(backend)
    with backend.lock(timeout=YOYO_LOCK_WAIT_S):
        outstanding = backend.to_apply(migrations)
        ids = [migration.id for migration in outstanding]
        if ids:
            logger.info("applying %d migration(s): %s", len(ids), ", ".join(ids))
            with around_apply():
                backend.apply_migrations(outstanding)
        else:
            logger.info("database schema is up to date")
        return ids


def _ensure_lock_table(backend: MySQLBackend) -> None:
    """yoyo creates its lock table ignoring any error, then waits for a lock it can never take: create it here so
    a missing privilege is reported at once."""
    if backend.lock_table in backend.list_tables():
        return
    with backend.transaction():
        backend.execute(backend.format_sql(backend.create_lock_table_sql))


def _break_stale_lock(backend: MySQLBackend) -> None:
    """We hold the named lock, so no live run of ours is migrating: a yoyo_lock row is a dead run's."""
    rows = backend.execute(f"SELECT pid, ctime FROM {backend.lock_table_quoted}").fetchall()
    backend.rollback()  # end the read's transaction; break_lock opens its own
    for pid, since in rows:
        logger.warning("removing yoyo's migration lock left by process %s at %s (that run ended without releasing "
                       "it)", pid, since)
    if rows:
        backend.break_lock()


def describe_error(exc: BaseException) -> str:
    """One line: what went wrong, and for a missing privilege which one and what to grant."""
    code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
    if code in PRIVILEGE_ERRORS:
        return (f"the database user lacks a privilege: {exc.args[1]} (the migrations need {NEEDED_PRIVILEGES} "
                "on the database)")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def pending_migrations(engine: sa.Engine, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Ids of the migrations a run would apply, read without writing anything (yoyo's backend creates tables)."""
    migrations = read_migration_list(migrations_dir)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        applied: set[str] = set()
        if MIGRATION_TABLE in tables:
            applied = set(conn.exec_driver_sql(f"SELECT migration_hash FROM `{MIGRATION_TABLE}`").scalars())
    return [migration.id for migration in migrations if migration.hash not in applied]


def migration_ids(migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    return sorted(path.stem for path in migrations_dir.glob("*.py"))
