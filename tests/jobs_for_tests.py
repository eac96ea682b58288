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


# ---- jobs for the runner's operational tests ----
HEAP_STATES: list[tuple[int, tuple[int, int, int]]] = []
MARKER = "CIT_TEST_MARKER"          # file a job touches once it is running (subprocess tests wait for it)


def _touch_marker() -> None:
    import os
    from pathlib import Path
    if os.environ.get(MARKER):
        Path(os.environ[MARKER]).write_text("running")


def heap_probe_job() -> list[DataSourceStatus]:
    import gc
    HEAP_STATES.append((gc.get_freeze_count(), gc.get_threshold()))
    return []


def reporting_job(env, engine, report) -> list[DataSourceStatus]:
    """Loads through the runner's engine and reports what it did."""
    import os

    import pandas as pd

    from db.loader import replace_tables
    assert env["JOB_LOCK_WAIT_SECONDS"] >= 0            # the validated configuration, defaults filled in
    terms = pd.DataFrame([{"canvas_id": i, "name": f"T{i}", "sis_id": None, "start_at": None, "end_at": None}
                          for i in range(1, 1 + int(os.environ.get("CIT_TEST_TERMS", "3")))])
    report.add_rows(replace_tables(engine, {"term": terms}))
    report.add_requests(5, retries=1, throttled=2)
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API)]


def waiting_job(stop) -> list[DataSourceStatus]:
    """Waits (as a retry pause would) until the run is stopped, then fails; the main thread sleeps meanwhile."""
    import time
    _touch_marker()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API)]


def swallowing_job() -> list[DataSourceStatus]:
    """Careless code that catches every Exception: a stop or deadline must still end it."""
    import time
    _touch_marker()
    for _ in range(600):
        try:
            time.sleep(0.1)
        except Exception:  # noqa: BLE001, S110 - the carelessness under test
            pass
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API)]


def cleanup_error_job() -> list[DataSourceStatus]:
    """A library's cleanup raising its own error over the stop, as PyMySQL's does for an interrupted LOAD DATA."""
    import time

    from vocab import JobInterrupted, LoadError
    _touch_marker()
    try:
        time.sleep(60)
    except JobInterrupted:
        raise LoadError("replacement rolled back: (0, '')") from None
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API)]


def big_load_job(engine) -> list[DataSourceStatus]:
    """Replaces the inventory tables with 400,000 enrollments (several seconds of LOAD DATA)."""
    import pandas as pd

    from db.loader import replace_tables
    rows = 400_000
    frames = {
        "term": pd.DataFrame([{"canvas_id": 1, "name": "New", "sis_id": None, "start_at": None, "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "A"}]),
        "course": pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "C", "account_id": 1, "term_id": 1,
                                 "created_at": None, "published_at": None, "workflow_state": "available"}]),
        "course_section": pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "S"}]),
        "enrollment": pd.DataFrame({"canvas_id": range(1, rows + 1), "course_id": 1, "course_section_id": 1,
                                    "user_id": range(1, rows + 1), "workflow_state": "active",
                                    "role_type": "StudentEnrollment"}),
    }
    _touch_marker()
    replace_tables(engine, frames)
    return [DataSourceStatus(ValidDataSourceName.CANVAS_API)]
