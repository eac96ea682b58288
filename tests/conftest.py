"""Shared fixtures: throwaway MariaDB/PostgreSQL databases (made by sandbox/databases.py), a clean environment,
config files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import environ
from db.engine import create_inventory_engine
from db.schema_migrations import apply_migrations
from sandbox.databases import (
    MYSQL,
    clone_schema,
    create_mysql_database,
    create_pg_database,
    drop_mysql_database,
    drop_pg_database,
)

CONFIG_KEYS = ("ENV_DIR", "ENV_FILE", "ENV_SECRETS_DIR", "HOW_STARTED", "LOG_LEVEL", "JOB_NAMES", "CREATE_CSVS",
               "MAX_REQ_ATTEMPTS", "NUM_ASYNC_WORKERS", "MIN_SNAPSHOT_SHARE", "ALLOW_SHRINK", "JOB_LOCK_WAIT_SECONDS",
               "JOB_TIMEOUT_MINUTES", "CANVAS", "ZOOM", "MIVIDEO", "UDW", "SECTION_SIS_IDS_FROM", "INVENTORY_DB",
               "RETRY_BUDGET_SECONDS", "LOG_FORMAT", "REUSE_PUBLISHED_DATES")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No configuration leaks in from the developer's shell or between tests."""
    for key in list(os.environ):
        if key in CONFIG_KEYS or key.split("__", 1)[0] in CONFIG_KEYS:   # CANVAS__CANVAS_TOKEN too
            monkeypatch.delenv(key, raising=False)
    environ.get_env.cache_clear()
    yield
    environ.get_env.cache_clear()


@pytest.fixture
def inventory_db_params() -> Iterator[dict[str, str]]:
    """A throwaway, empty MariaDB database (dropped afterwards)."""
    params = create_mysql_database()
    yield params
    drop_mysql_database(params)


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[dict[str, str]]:
    """One database migrated by the real migrations per session; tests get copies of it."""
    params = create_mysql_database("tpl")
    apply_migrations(params)
    yield params
    drop_mysql_database(params)


@pytest.fixture
def migrated_db_params(inventory_db_params: dict[str, str], migrated_template: dict[str, str]) -> dict[str, str]:
    """A throwaway MariaDB database with every migration applied (a copy of the session's template)."""
    clone_schema(migrated_template, inventory_db_params)
    return inventory_db_params


@pytest.fixture
def migrated_engine(migrated_db_params: dict[str, str]) -> Iterator[sa.Engine]:
    engine = create_inventory_engine(migrated_db_params)
    yield engine
    engine.dispose()


@pytest.fixture
def udw_db_params() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL database name (created empty, dropped afterwards)."""
    params = create_pg_database()
    yield params
    drop_pg_database(params)


def valid_config(inventory_db: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete, valid configuration (as parsed HJSON) for tests."""
    config: dict[str, Any] = {
        "LOG_LEVEL": "INFO",
        "JOB_NAMES": ["COURSE_INVENTORY"],
        "CREATE_CSVS": False,
        "MAX_REQ_ATTEMPTS": 3,
        "NUM_ASYNC_WORKERS": 8,
        "CANVAS": {
            "CANVAS_ACCOUNT_ID": 1, "CANVAS_TERM_IDS": [7], "ADD_COURSE_IDS": [],
            "API_BASE_URL": "https://gateway.example.edu/um", "API_SCOPE_PREFIX": "aa/CanvasReadOnly",
            "API_SUBSCRIPTION_NAME": "canvasreadonly", "API_CLIENT_ID": "client-id",
            "API_CLIENT_SECRET": "gateway-secret", "CANVAS_URL": "https://canvas.example.edu",
            "CANVAS_TOKEN": "canvas-token",
        },
        "MIVIDEO": {
            "udp_service_account_json_filename": "sa.json", "default_last_timestamp": "2020-03-01T00:00:00+00:00",
            "kaltura_partner_id": 123, "kaltura_user_secret": "kaltura-secret",
        },
        "UDW": {"host": "udw.example.edu", "port": "5432", "dbname": "udw", "user": "u", "password": "udw-pw"},
        "INVENTORY_DB": dict(inventory_db or {**MYSQL, "dbname": "course_inventory_test"}),
    }
    config.update(overrides)
    return config


def write_config(directory: Path, config: dict[str, Any], name: str = "env.hjson") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path
