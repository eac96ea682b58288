"""Small real jobs the runner tests register (the runner imports them by dotted path like real jobs)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import requests

from environ import get_env
from vocab import DataSourceStatus, JobError, ValidDataSourceName

logger = logging.getLogger(__name__)
WAREHOUSE_TIME = datetime(2020, 1, 15, 4, 12, 33, tzinfo=UTC)


def succeeding_job() -> list[DataSourceStatus]:
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API),
            DataSourceStatus(ValidDataSourceName.UNIZIN_DATA_WAREHOUSE, WAREHOUSE_TIME)]


def kaltura_job() -> list[DataSourceStatus]:
    return [DataSourceStatus(ValidDataSourceName.KALTURA_API)]


def failing_job() -> list[DataSourceStatus]:
    raise JobError("Canvas answered 503 for every page of courses")


def crashing_job() -> list[DataSourceStatus]:
    return [1 / 0]


def careless_job() -> list[DataSourceStatus]:
    """Does what careless code does with secrets: dumps config, sends tokens, fails with them around."""
    env = get_env()
    logger.debug("configuration: %s", dict(env["CANVAS"]))
    logger.info("inventory db settings %r", dict(env["INVENTORY_DB"]))
    try:  # nothing listens on port 9: a connection error whose message includes the URL
        requests.get("http://127.0.0.1:9/api/v1/courses", params={"access_token": env["CANVAS"]["CANVAS_TOKEN"]},
                     headers={"Authorization": f"Bearer {env['CANVAS']['CANVAS_TOKEN']}"}, timeout=2)
    except requests.RequestException:
        logger.exception("request failed")
    raise JobError(f"could not log in with {env['MIVIDEO']['kaltura_user_secret']}")
