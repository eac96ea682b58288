"""Connections to the inventory database (MySQL/MariaDB through PyMySQL)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import sqlalchemy as sa

# Strict mode makes the server refuse over-long or out-of-range values instead of silently
# truncating them; UTC so DATETIME columns hold UTC whatever the server's zone is.
SESSION_SETUP = (
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
    "time_zone = '+00:00'"
)


def sqlalchemy_url(db_params: Mapping[str, str], *, database: bool = True) -> sa.URL:
    return sa.URL.create(
        "mysql+pymysql",
        username=db_params.get("user") or None,
        password=db_params.get("password") or None,
        host=db_params.get("host") or "127.0.0.1",
        port=int(db_params.get("port") or 3306),
        database=db_params["dbname"] if database else None,
        query={"charset": "utf8mb4"},
    )


def yoyo_uri(db_params: Mapping[str, str]) -> str:
    """yoyo's own URI syntax; credentials are percent-encoded (and never logged)."""
    user = quote(db_params.get("user") or "", safe="")
    password = quote(db_params.get("password") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db_params.get("host") or "127.0.0.1"
    port = int(db_params.get("port") or 3306)
    return f"mysql://{credentials}{host}:{port}/{quote(db_params['dbname'], safe='')}"


def create_inventory_engine(db_params: Mapping[str, str], *, database: bool = True) -> sa.Engine:
    """An engine whose every connection runs in strict mode and UTC; `hide_parameters` keeps data out of errors."""
    return sa.create_engine(
        sqlalchemy_url(db_params, database=database),
        connect_args={"init_command": SESSION_SETUP, "local_infile": True, "connect_timeout": 10},
        pool_pre_ping=True,
        hide_parameters=True,
    )
