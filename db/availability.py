"""Waiting for the inventory database and making sure it exists."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from db.engine import create_inventory_engine
from vocab import DatabaseUnavailableError

logger = logging.getLogger(__name__)


def _describe(db_params: Mapping[str, str]) -> str:
    return f"{db_params.get('user')}@{db_params.get('host')}:{db_params.get('port')}/{db_params.get('dbname')}"


def describe_database(db_params: Mapping[str, str]) -> str:
    """user@host:port/dbname: what a message may say about the database (never the password)."""
    return _describe(db_params)


def database_exists(db_params: Mapping[str, str]) -> bool:
    """Whether the server has the database; DatabaseUnavailableError when the server cannot be used."""
    server = create_inventory_engine(db_params, database=False)
    try:
        with server.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
                                {"name": db_params["dbname"]}).first() is not None
    except sa.exc.SQLAlchemyError as exc:
        raise DatabaseUnavailableError(
            f"cannot use the inventory database {_describe(db_params)}: {getattr(exc, 'orig', exc)}") from None
    finally:
        server.dispose()


def ensure_database(db_params: Mapping[str, str]) -> None:
    """Connect to the server and create the database when it does not exist yet."""
    server = create_inventory_engine(db_params, database=False)
    try:
        with server.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
                {"name": db_params["dbname"]},
            ).first()
            if not exists:
                logger.warning("database %s does not exist: creating it", db_params["dbname"])
                # IF NOT EXISTS: two first runs may both get here; the second then finds it made.
                conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS `{db_params['dbname']}` "
                                     "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    except sa.exc.SQLAlchemyError as exc:
        # The driver message says what failed (refused, access denied) without the password.
        raise DatabaseUnavailableError(
            f"cannot use the inventory database {_describe(db_params)}: {getattr(exc, 'orig', exc)}"
        ) from None
    finally:
        server.dispose()


def wait_for_database(db_params: Mapping[str, str], *, timeout: float = 120, interval: float = 3,
                      sleep: Callable[[float], None] = time.sleep) -> None:
    """Retry connecting every `interval` seconds until the server answers or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ensure_database(db_params)
            return
        except DatabaseUnavailableError as exc:
            if time.monotonic() + interval > deadline:
                raise DatabaseUnavailableError(
                    f"the inventory database did not become available within {timeout:.0f}s: {exc}"
                ) from None
            logger.info("waiting for the inventory database %s ...", _describe(db_params))
            sleep(interval)
