"""run_jobs.py --log-format json against the Canvas sandbox with faults: every line is JSON, every record of the
job (worker threads included) names it, no secret appears, retries come rolled up, and the job's summary counts
what was loaded (compared with sandbox/expected.py) and says what bounded the run."""

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

import run_jobs
from sandbox.expected import expected_inventory
from sandbox.faults import FaultOptions
from sandbox.gateway import GatewayOptions
from sandbox.generator import generate_university
from sandbox.httpserver import ServerOptions
from tests.conftest import valid_config, write_config
from tests.helpers.canvas_sandbox import CANVAS_TOKEN, canvas_sandbox

ROOT = Path(__file__).resolve().parents[2]
FAULTS = FaultOptions(http500=0.02, http502_503=0.02, reset=0.01, bad_json=0.01)
BOUNDS = {"the throttle", "the worker ceiling", "latency", "the sources' own speed", "the job's own work"}


@pytest.fixture(scope="module")
def university():
    return generate_university("small", seed=5)


def run_json(tmp_path: Path, env: dict) -> tuple[subprocess.CompletedProcess, list[dict]]:
    (tmp_path / "env.hjson").write_text(json.dumps(env))          # HJSON accepts JSON
    result = subprocess.run(
        [sys.executable, "run_jobs.py", "--jobs", "COURSE_INVENTORY", "--log-format", "json", "--log-level", "DEBUG"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"ENV_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result, [json.loads(line) for line in lines]           # fails on any line that is not one JSON object


def test_json_logs_rolled_up_retries_and_the_summary(tmp_path, university, migrated_db_params):
    terms = [t.id for t in university.terms]
    with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms,
                        options=ServerOptions(faults=FAULTS, seed=5)) as box:
        result, records = run_json(tmp_path, box.env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == ""
    for secret in (CANVAS_TOKEN, GatewayOptions().client_secret):
        assert secret not in result.stderr

    job_records = [r for r in records if r["job"] == "COURSE_INVENTORY"]
    workers = [r for r in records if r["thread"].startswith("inventory")]
    assert len(workers) > 50 and all(r["job"] == "COURSE_INVENTORY" for r in workers)
    assert all(r["job"] == "COURSE_INVENTORY" for r in records if r["thread"] == "log-rollup")
    assert {r["level"] for r in records} >= {"DEBUG", "INFO"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)

    (summary,) = [r for r in job_records if "summary" in r]
    fields = summary["summary"]
    expected = expected_inventory(university, terms)
    assert fields["rows"] == {table: len(rows) for table, rows in expected.items()}
    assert fields["status"] == "succeeded" and fields["bound"] in BOUNDS and fields["requests"] > 20
    assert summary["message"].startswith("job COURSE_INVENTORY summary: succeeded in ")

    # Progress: every per-course phase ended with a final total (no "+"), enrollments one per kept course.
    ended = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in (
        re.match(r"(\w[\w ]*) finished: (\d+)/(\d+) in ", r["message"]) for r in job_records
        if r["logger"] == "course_inventory.collect") if m}
    assert set(ended) == {"courses", "published dates", "activity", "enrollments"}
    assert all(done == total for done, total in ended.values())
    assert ended["enrollments"] == ended["courses"] == (len(expected["course"]),) * 2

    # Retries: no WARNING per retry, rolled-up lines per kind whose counts add up to the summary's.
    assert not [r for r in records if r["logger"] == "clients.retry" and r["level"] != "DEBUG"]
    rolled = [r["message"] for r in records if r["logger"] == "clients.rollup"]
    counted = [int(m.group(1)) for m in (re.search(r": (\d+) retr(?:y|ies) in the last", line) for line in rolled)
               if m]
    assert fields["retries"] > 0 and sum(counted) == fields["retries"]
    assert sum(fields["retry_reasons"].values()) == fields["retries"]
    assert all(line.startswith("canvas") and "?" not in line for line in rolled)   # kinds, never a query string


def test_every_attempt_that_ran_ends_with_a_summary(tmp_path, inventory_db_params, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="runner.summary")
    write_config(tmp_path, valid_config(inventory_db_params))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    registry = {"REPORTING": "tests.jobs_for_tests.reporting_job", "FAILING": "tests.jobs_for_tests.failing_job",
                "CRASHER": "tests.jobs_for_tests.crashing_job"}
    assert run_jobs.main(["--jobs", "REPORTING", "FAILING", "CRASHER"], registry=registry) == 1
    summaries = [r.summary for r in caplog.records if hasattr(r, "summary")]
    assert [(s["job"], s["status"]) for s in summaries] == [("REPORTING", "succeeded"), ("FAILING", "failed"),
                                                            ("CRASHER", "failed")]
    reporting = summaries[0]       # tests/jobs_for_tests.py: 3 terms loaded, 5 requests, 1 retry, 2 throttled
    assert (reporting["rows"], reporting["requests"], reporting["retries"], reporting["throttled"]) == \
        ({"term": 3}, 5, 1, 2)
    assert all(s["bound"] == "not measured" for s in summaries)             # no paced client in these jobs
