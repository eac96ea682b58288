"""Migrations: a dead migrator's yoyo_lock never blocks, a live one is waited for, missing privileges are named."""

import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from db.availability import ensure_database
from db.engine import create_inventory_engine
from db.locks import NamedLock, lock_name
from db.schema_migrations import apply_migrations, migration_ids, pending_migrations
from sandbox.databases import drop_mysql_database, mysql_admin
from vocab import DatabaseUnavailableError

FIRST = migration_ids()[:3]


def scalar(params, sql):
    engine = create_inventory_engine(params)
    with engine.connect() as conn:
        value = conn.exec_driver_sql(sql).scalar()
    engine.dispose()
    return value


def test_a_dead_runs_yoyo_lock_is_removed_and_migrations_go_on(inventory_db_params, caplog):
    apply_migrations(inventory_db_params, only=set(FIRST))
    with mysql_admin() as conn, conn.cursor() as cursor:  # what a run killed while migrating leaves behind
        cursor.execute(f"INSERT INTO `{inventory_db_params['dbname']}`.yoyo_lock (locked, ctime, pid) "
                       "VALUES (1, NOW(), 424242)")
    started = time.monotonic()
    applied = apply_migrations(inventory_db_params)
    assert time.monotonic() - started < 8            # not yoyo's wait for a lock nobody will release
    assert applied == [m for m in migration_ids() if m not in FIRST]
    assert scalar(inventory_db_params, "SELECT COUNT(*) FROM yoyo_lock") == 0
    assert "left by process 424242" in caplog.text


def test_a_live_migrator_is_waited_for(inventory_db_params):
    name = lock_name(inventory_db_params["dbname"], "migrations")
    holder = NamedLock(inventory_db_params, name)
    assert holder.acquire(0)
    releaser = threading.Timer(1.5, holder.release)
    releaser.start()
    started = time.monotonic()
    try:
        applied = apply_migrations(inventory_db_params, lock_wait=30)
    finally:
        releaser.join()
    assert time.monotonic() - started >= 1.4
    assert applied == migration_ids()


def test_a_migrator_that_does_not_finish_in_time_is_reported(inventory_db_params):
    with NamedLock(inventory_db_params, lock_name(inventory_db_params["dbname"], "migrations")) as holder:
        assert holder.acquire(0)
        with pytest.raises(DatabaseUnavailableError, match=r"another run is migrating .* waited 1s"):
            apply_migrations(inventory_db_params, lock_wait=1)
    assert scalar(inventory_db_params, "SELECT COUNT(*) FROM information_schema.tables "
                                       "WHERE table_schema = DATABASE()") == 0


@pytest.fixture
def reader_user(inventory_db_params):
    """A user with data privileges only (no CREATE) on an existing, empty database."""
    user = "ro_" + uuid.uuid4().hex[:10]
    with mysql_admin() as conn, conn.cursor() as cursor:
        for host in ("localhost", "127.0.0.1", "%"):
            cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'ro-pass-1x'")
            cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{inventory_db_params['dbname']}`.* "
                           f"TO '{user}'@'{host}'")
    yield {**inventory_db_params, "user": user, "password": "ro-pass-1x"}
    with mysql_admin() as conn, conn.cursor() as cursor:
        for host in ("localhost", "127.0.0.1", "%"):
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_a_missing_create_privilege_is_named_at_once(reader_user):
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as info:
        apply_migrations(reader_user)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "lacks a privilege: CREATE command denied" in message and "yoyo_lock" in message
    assert "ro-pass-1x" not in message and "\n" not in message


def test_two_first_runs_create_and_migrate_the_database_once(inventory_db_params):
    drop_mysql_database(inventory_db_params)
    results, errors = [], []

    def first_run():
        try:
            ensure_database(inventory_db_params)
            results.append(apply_migrations(inventory_db_params, lock_wait=60))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=first_run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results, key=len) == [[], [], migration_ids()]


def test_pending_migrations_are_listed_without_writing(inventory_db_params):
    engine = create_inventory_engine(inventory_db_params)
    try:
        assert pending_migrations(engine) == migration_ids()
        with engine.connect() as conn:                   # nothing was created to find that out
            assert conn.execute(sa.text("SHOW TABLES")).all() == []
        apply_migrations(inventory_db_params, only=set(FIRST))
        assert pending_migrations(engine) == migration_ids()[3:]
    finally:
        engine.dispose()
