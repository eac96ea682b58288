"""Connections to the inventory database (MySQL/MariaDB through PyMySQL)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pymysql
import sqlalchemy as sa

# Strict mode makes the server refuse over-long or out-of-range values instead of silently
# truncating them; UTC so DATETIME columns hold UTC whatever the server's zone is.
SESSION_SETUP = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
    "time_zone = '+00:00'"
)
CONNECT_TIMEOUT_S = 10


def statement_timeout(db_params: Mapping[str, Any]) -> float | None:
    """INVENTORY_DB.timeout_seconds: how long one statement may leave the socket silent (None: forever)."""
    value = db_params.get("timeout_seconds")
    return float(value) if value else None


def sqlalchemy_url(db_params: Mapping[str, Any], *, database: bool = True) -> sa.URL:
    return sa.URL.create(
        "mysql+pymysql",
        username=db_params.get("user") or None,
        password=db_params.get("password") or None,
        host=db_params.get("host") or "127.0.0.1",
        port=int(db_params.get("port") or 3306),
        database=db_params["dbname"] if database else None,
        query={"charset": "utf8mb4"},
    )


def yoyo_uri(db_params: Mapping[str, Any]) -> str:
    """yoyo's own URI syntax; credentials are percent-encoded (and never logged)."""
    user = quote(db_params.get("user") or "", safe="")
    password = quote(db_params.get("password") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db_params.get("host") or "127.0.0.1"
    port = int(db_params.get("port") or 3306)
    return f"mysql://{credentials}{host}:{port}/{quote(db_params['dbname'], safe='')}"


def _driver_args(db_params: Mapping[str, Any]) -> dict[str, Any]:
    """PyMySQL read/write timeouts: a server that accepts the connection and then stops answering fails the
    statement after `timeout_seconds` (the driver closes the socket, so the server rolls the transaction back)."""
    args: dict[str, Any] = {"init_command": SESSION_SETUP, "local_infile": True, "connect_timeout": CONNECT_TIMEOUT_S}
    timeout = statement_timeout(db_params)
    if timeout:
        args.update(read_timeout=timeout, write_timeout=timeout)
    return args


def create_inventory_engine(db_params: Mapping[str, Any], *, database: bool = True) -> sa.Engine:
    """An engine whose every connection runs in strict mode and UTC; `hide_parameters` keeps data out of errors."""
    return sa.create_engine(
        sqlalchemy_url(db_params, database=database),
        connect_args=_driver_args(db_params),
        pool_pre_ping=True,
        hide_parameters=True,
    )


def connect_dedicated(db_params: Mapping[str, Any], *, read_timeout: float | None = None,
                      autocommit: bool = True) -> pymysql.Connection:
    """A connection of its own (no pool), e.g. to hold a named lock for as long as it stays open, or yoyo's."""
    args = _driver_args(db_params)
    if read_timeout is not None:
        args.update(read_timeout=read_timeout, write_timeout=read_timeout)
    return pymysql.connect(host=db_params.get("host") or "127.0.0.1", port=int(db_params.get("port") or 3306),
                           user=db_params.get("user") or None, password=db_params.get("password") or "",
                           database=db_params["dbname"], charset="utf8mb4", autocommit=autocommit, **args)


@contextmanager
def inventory_engine(db_params: Mapping[str, Any]) -> Iterator[sa.Engine]:
    """An engine on the inventory database for the length of a `with` (a job's own, when the runner gave none)."""
    engine = create_inventory_engine(db_params)
    try:
        yield engine
    finally:
        engine.dispose()
