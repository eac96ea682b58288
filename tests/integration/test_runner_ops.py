"""run_jobs.py as an operator meets it: stop signals, overlapping runs, killed runs (real processes, real MariaDB)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from db.engine import create_inventory_engine
from db.loader import replace_tables
from db.schema_migrations import apply_migrations
from tests.conftest import valid_config, write_config
from tests.jobs_for_tests import MARKER

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ("import json, os, sys, run_jobs; "
          "sys.exit(run_jobs.main(sys.argv[1:], registry=json.loads(os.environ['CIT_REGISTRY'])))")
WAITING = {"JOB_A": "tests.jobs_for_tests.waiting_job"}
QUICK = {"JOB_A": "tests.jobs_for_tests.succeeding_job"}


@pytest.fixture
def database(inventory_db_params):
    apply_migrations(inventory_db_params)
    engine = create_inventory_engine(inventory_db_params)
    yield inventory_db_params, engine
    engine.dispose()


def start(tmp_path, db_params, registry, *, name="a", lock_wait=300, args=("--jobs", "JOB_A")):
    directory = tmp_path / name
    write_config(directory, valid_config(db_params, JOB_NAMES=["JOB_A"], JOB_LOCK_WAIT_SECONDS=lock_wait))
    marker = directory / "running"
    environment = {"ENV_DIR": str(directory), "PATH": "/usr/bin:/bin", "CIT_REGISTRY": json.dumps(registry),
                   MARKER: str(marker)}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    process.marker = marker
    return process


def wait_until(condition, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish(process, timeout=60):
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def attempts(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT job_name, status, reason, job_run_id FROM job_run_log ORDER BY id")).all()


def loading(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE() "
                                    "AND id <> CONNECTION_ID() AND info LIKE 'LOAD DATA%'")).scalar()


def test_sigterm_during_a_load_rolls_it_back_and_exits_143(tmp_path, database):
    params, engine = database
    replace_tables(engine, {"term": pd.DataFrame([{"canvas_id": 7, "name": "Old", "sis_id": None, "start_at": None,
                                                   "end_at": None}])})
    process = start(tmp_path, params, {"JOB_A": "tests.jobs_for_tests.big_load_job"})
    wait_until(lambda: loading(engine), what="the job's LOAD DATA statement")   # inside the 400,000-row load
    process.send_signal(signal.SIGTERM)
    code, output = finish(process)
    assert code == 143, output
    assert "SIGTERM received: stopping at the next safe point" in output
    assert "job JOB_A interrupted" in output and "run stopped by SIGTERM" in output
    assert "Traceback" not in output
    with engine.connect() as conn:
        wait_until(lambda: conn.execute(sa.text("SELECT COUNT(*) FROM enrollment")).scalar() == 0, 20)
        assert conn.execute(sa.text("SELECT canvas_id, name FROM term")).all() == [(7, "Old")]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM job_run")).scalar() == 0
    assert attempts(engine) == [("JOB_A", "interrupted", "stopped by SIGTERM", None)]


def test_an_error_raised_over_the_stop_still_records_an_interrupted_attempt(tmp_path, database):
    params, engine = database
    process = start(tmp_path, params, {"JOB_A": "tests.jobs_for_tests.cleanup_error_job"})
    wait_until(process.marker.exists, what="the job to start")
    process.send_signal(signal.SIGTERM)
    code, output = finish(process)
    assert code == 143, output
    assert "job JOB_A interrupted" in output and "Traceback" not in output
    assert attempts(engine) == [("JOB_A", "interrupted", "stopped by SIGTERM", None)]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_wakes_waiting_workers_and_the_job_is_not_recorded_as_run(tmp_path, database, signum, code):
    params, engine = database
    process = start(tmp_path, params, WAITING)
    wait_until(process.marker.exists, what="the job to start")
    started = time.monotonic()
    process.send_signal(signum)
    returned, output = finish(process)
    assert returned == code, output
    assert time.monotonic() - started < 10
    assert attempts(engine) == [("JOB_A", "interrupted", f"stopped by {signal.Signals(signum).name}", None)]


def test_swallowing_every_exception_cannot_keep_a_job_running(tmp_path, database):
    params, engine = database
    process = start(tmp_path, params, {"JOB_A": "tests.jobs_for_tests.swallowing_job"})
    wait_until(process.marker.exists, what="the job to start")
    process.send_signal(signal.SIGTERM)
    code, output = finish(process, timeout=20)
    assert code == 143, output


def test_a_second_run_of_the_same_job_waits_then_skips_with_exit_3(tmp_path, database):
    params, engine = database
    first = start(tmp_path, params, WAITING)
    wait_until(first.marker.exists, what="the first run's job to start")
    second = start(tmp_path, params, QUICK, name="b", lock_wait=1)
    code, output = finish(second)
    assert code == 3, output
    assert "job JOB_A skipped: another run of JOB_A still held its lock after 1s" in output
    first.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 143
    assert [(name, status) for name, status, *_ in attempts(engine)] == [("JOB_A", "interrupted"),
                                                                          ("JOB_A", "skipped")]


def test_a_second_run_that_can_wait_runs_after_the_first(tmp_path, database):
    params, engine = database
    first = start(tmp_path, params, WAITING)
    wait_until(first.marker.exists, what="the first run's job to start")
    second = start(tmp_path, params, QUICK, name="b", lock_wait=60)
    time.sleep(2)                                     # the second is now waiting for the lock
    assert second.poll() is None
    first.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 143
    code, output = finish(second)
    assert code == 0, output
    assert [(name, status) for name, status, *_ in attempts(engine)] == [("JOB_A", "interrupted"),
                                                                          ("JOB_A", "succeeded")]


def test_a_killed_run_is_marked_abandoned_by_the_next_one(tmp_path, database):
    params, engine = database
    killed = start(tmp_path, params, WAITING)
    wait_until(killed.marker.exists, what="the job to start")
    os.kill(killed.pid, signal.SIGKILL)               # no handler runs: the row stays 'running'
    finish(killed)
    assert [status for _, status, *_ in attempts(engine)] == ["running"]
    code, output = finish(start(tmp_path, params, QUICK, name="b", lock_wait=30))
    assert code == 0, output
    assert "1 earlier attempt(s) still marked running were abandoned" in output
    (_, first, reason, _), (_, second, _, job_run_id) = attempts(engine)
    assert (first, second) == ("abandoned", "succeeded") and "ended without finishing" in reason
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM job_run")).scalars().all() == [job_run_id]
