"""log_setup.py: JSON lines that parse, carry the job from every thread and never a secret; text lines too."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import UTC, datetime

import pytest

import run_jobs
from clients.tasks import TaskGroup
from log_setup import configure_logging, job_context
from tests.helpers.log_handlers import remove_our_handlers

SECRET = "s3cr3t-token-9f8e7d"
LOG = logging.getLogger("tests.log_setup")


@pytest.fixture
def stream():
    """Our handler on a StringIO; removed afterwards so other tests keep pytest's capture only."""
    out = io.StringIO()
    yield out
    remove_our_handlers()


def json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]   # every line must be one JSON object


def test_json_lines_have_the_fields_and_never_a_secret(stream):
    configure_logging("DEBUG", [SECRET], fmt="json", stream=stream)
    LOG.info("token is %s", SECRET)
    try:
        raise ValueError(f"refused {SECRET}\nsecond line")
    except ValueError:
        LOG.exception("it failed")
    LOG.info("done", extra={"summary": {"rows": {"course": 3}, "note": f"x{SECRET}x"}})
    assert SECRET not in stream.getvalue()
    first, failed, summary = json_lines(stream.getvalue())
    assert set(first) >= {"time", "level", "logger", "message", "job", "thread"}
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "tests.log_setup", "token is [REDACTED]")
    when = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert first["time"].endswith("Z") and when.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert first["job"] is None                                  # outside a job
    assert failed["message"] == "it failed" and "Traceback" in failed["exception"]
    assert "refused [REDACTED]" in failed["exception"] and "second line" in failed["exception"]
    assert summary["summary"] == {"rows": {"course": 3}, "note": "x[REDACTED]x"}


def test_json_exception_without_secrets_configured(stream):
    """Without secrets the filter formats nothing: the JSON formatter itself turns the traceback into a field."""
    configure_logging("INFO", [], fmt="json", stream=stream)
    try:
        raise KeyError("k")
    except KeyError:
        LOG.exception("boom")
    (record,) = json_lines(stream.getvalue())
    assert "KeyError: 'k'" in record["exception"]


def test_every_thread_of_a_job_names_it(stream):
    configure_logging("INFO", fmt="json", stream=stream)
    with job_context("COURSE_INVENTORY"):
        LOG.info("main thread")
        with TaskGroup(4, name="inventory") as tasks:         # a thread pool: contextvars would not reach it
            for i in range(8):
                tasks.submit(lambda i=i: LOG.info("worker %d", i))
            tasks.wait()
        plain = threading.Thread(target=lambda: LOG.info("plain thread"), name="plain")
        plain.start()
        plain.join()
    LOG.info("between jobs")
    records = json_lines(stream.getvalue())
    inside = [r for r in records if r["message"] != "between jobs"]
    assert len(inside) == 10 and {r["job"] for r in inside} == {"COURSE_INVENTORY"}
    assert sum(r["thread"].startswith("inventory") for r in inside) == 8
    assert records[-1]["job"] is None


def test_text_format_stays_and_is_redacted(stream):
    configure_logging("INFO", [SECRET], fmt="text", stream=stream)
    LOG.warning("with %s inside", SECRET)
    line = stream.getvalue().strip()
    assert line.endswith("WARNING tests.log_setup: with [REDACTED] inside")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_log_format_option_wins_over_the_environment():
    assert run_jobs.early_log_format("json", {}) == "json"
    assert run_jobs.early_log_format("text", {"LOG_FORMAT": "json"}) == "text"
    assert run_jobs.early_log_format(None, {"LOG_FORMAT": " JSON "}) == "json"
    assert run_jobs.early_log_format(None, {"LOG_FORMAT": "yaml"}) == "text"   # invalid: the config check says so
    args = run_jobs.parse_args(["--log-format", "JSON"], {"X": "x.y"})
    assert args.log_format == "json"
    with pytest.raises(SystemExit):
        run_jobs.parse_args(["--log-format", "xml"], {"X": "x.y"})
