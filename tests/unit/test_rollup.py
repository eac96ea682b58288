"""clients/rollup.py and the retry loop's reporting: one line per endpoint kind per interval, reasons counted."""

from __future__ import annotations

import logging
import random
import time

import pytest
import requests

from clients.http import HttpClient
from clients.retry import RetryPolicy, call_with_retries, retry_reason
from clients.rollup import KindWindow, RequestRollup, RollupReporter, merge_windows, rollup_line
from vocab import RetriableSourceError

LOG = logging.getLogger("tests.rollup")


def http_error(status: int) -> RetriableSourceError:
    return RetriableSourceError(f"canvas GET https://c.test/api/v1/x: HTTP {status} (server error)", source="canvas",
                                status=status)


def transport_error(cause: Exception) -> RetriableSourceError:
    try:
        raise RetriableSourceError("canvas GET https://c.test/api/v1/x: ConnectionError", source="canvas") from cause
    except RetriableSourceError as exc:
        return exc


def test_retry_reason_names_the_status_the_class_or_the_kind_of_body():
    assert retry_reason(http_error(502)) == "502"
    assert retry_reason(transport_error(requests.ConnectionError("reset by peer at host?q=secret"))) == \
        "ConnectionError"
    assert retry_reason(transport_error(requests.ReadTimeout())) == "ReadTimeout"
    assert retry_reason(RetriableSourceError("canvas GET https://c.test/x: invalid JSON body", status=200)) == \
        "invalid JSON"
    assert retry_reason(RetriableSourceError("x: HTTP 429 (throttled)", status=429, throttled=True)) == "throttled"
    assert retry_reason(RetriableSourceError("Kaltura media.list: unreadable response")) == "unreadable response"


def test_the_line_counts_reasons_most_frequent_first():
    window = KindWindow("canvas analytics", {"ConnectionError": 5, "502": 9}, throttled=3, responses=200, slow=1,
                        slowest=8.24)
    level, line = rollup_line(window, 10.2)
    assert level == logging.WARNING
    assert line == ("canvas analytics: 14 retries in the last 10 s (502 x9, ConnectionError x5), 1 slower than 5 s, "
                    "3 throttled, slowest response 8.2 s")


def test_slow_responses_alone_make_an_info_line_and_refusals_alone_none():
    level, line = rollup_line(KindWindow("canvas audit", responses=40, slow=2, slowest=6.0), 10)
    assert level == logging.INFO
    assert line == "canvas audit: 2 response(s) slower than 5 s in the last 10 s, slowest response 6.0 s"
    assert rollup_line(KindWindow("canvas graphql", throttled=4, responses=90, slowest=1.0), 10) is None


def test_merged_windows_add_up_and_keep_the_slowest():
    a = KindWindow("k", {"502": 2}, 1, 0, 10, 1, 6.0)
    b = KindWindow("k", {"502": 1, "503": 4}, 0, 1, 5, 0, 2.0)
    merged = merge_windows(a, b)
    assert (dict(merged.retries), merged.throttled, merged.gave_up, merged.responses, merged.slow, merged.slowest) \
        == ({"502": 3, "503": 4}, 1, 1, 15, 1, 6.0)


def test_retries_are_counted_per_kind_not_logged_one_by_one(caplog):
    caplog.set_level(logging.DEBUG, logger="clients")
    rollup = RequestRollup()
    script = iter([http_error(502), transport_error(requests.ConnectionError()), http_error(502), "ok"])

    def attempt() -> str:
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    assert call_with_retries(attempt, RetryPolicy(max_attempts=5), sleep=lambda s: None, rng=random.Random(1),
                             kind="canvas analytics", rollup=rollup) == "ok"
    (window,) = rollup.drain()
    assert window.kind == "canvas analytics" and dict(window.retries) == {"502": 2, "ConnectionError": 1}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("retrying in" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG) == 3
    assert rollup.drain() == []                                    # drained: the next window starts empty


def test_giving_up_still_logs_one_warning_with_the_kind(caplog):
    caplog.set_level(logging.INFO, logger="clients")
    rollup = RequestRollup()
    now = [0.0]

    def attempt() -> None:
        now[0] += 1.0
        raise http_error(503)

    with pytest.raises(RetriableSourceError):
        call_with_retries(attempt, RetryPolicy(max_attempts=3, budget_seconds=0), sleep=lambda s: None,
                          clock=lambda: now[0], rng=random.Random(1), kind="canvas rest", rollup=rollup)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("canvas rest: giving up after 3 failed attempts")
    (window,) = rollup.drain()
    assert dict(window.retries) == {"503": 2} and window.gave_up == 1


class SlowSession:
    """Answers after `seconds` of a fake clock; never touches the network."""

    def __init__(self, clock: list[float], seconds: list[float]) -> None:
        self.clock, self.seconds = clock, iter(seconds)

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        self.clock[0] += next(self.seconds)
        response = requests.Response()
        response.status_code, response._content, response.url = 200, b"[]", url
        return response

    def close(self) -> None:
        pass


def test_http_client_counts_slow_responses_by_kind_without_the_query():
    now = [0.0]
    rollup = RequestRollup(slow_seconds=5.0)
    client = HttpClient("canvas", session=SlowSession(now, [0.2, 8.2, 5.0, 1.0]), clock=lambda: now[0],
                        rollup=rollup)
    for _ in range(4):
        client.request_json("GET", "https://c.test/api/v1/courses/1/analytics/activity?access_token=x",
                            kind="analytics")
    (window,) = rollup.drain()
    assert (window.kind, window.responses, window.slow, window.slowest) == ("canvas analytics", 4, 2, 8.2)


def test_reporter_logs_one_line_per_kind_per_interval_and_keeps_the_totals(caplog):
    caplog.set_level(logging.INFO, logger="tests.rollup")
    rollup = RequestRollup()
    with RollupReporter(rollup, LOG, interval=0.2) as reporter:
        for _ in range(3):
            rollup.retried("canvas analytics", "502")
        rollup.retried("canvas graphql", "ConnectionError")
        rollup.throttled("canvas graphql")
        deadline = time.monotonic() + 5
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        first = sorted(r.getMessage() for r in caplog.records)
        rollup.retried("canvas analytics", "503")               # the next interval (or the final flush)
    lines = [r.getMessage() for r in caplog.records]
    assert first[0].startswith("canvas analytics: 3 retries in the last") and "(502 x3)" in first[0]
    assert first[1].startswith("canvas graphql: 1 retry in") and "1 throttled" in first[1]
    assert lines[-1].startswith("canvas analytics: 1 retry in") and "(503 x1)" in lines[-1]
    assert len(lines) == 3
    totals = {w.kind: w for w in reporter.totals()}
    assert dict(totals["canvas analytics"].retries) == {"502": 3, "503": 1}
    assert dict(totals["canvas graphql"].retries) == {"ConnectionError": 1} and totals["canvas graphql"].throttled == 1


def test_the_retry_budget_counts_the_first_attempts_time_and_a_success_needs_no_retry_loop():
    # The tenacity loop starts only at the first failure; the budget must still date from the first attempt.
    now, sleeps = [0.0], []

    def slow_refusal() -> None:
        now[0] += 50.0                               # a stalled first attempt uses up most of the budget
        raise RetriableSourceError("canvas GET /x: 429", source="canvas", status=429, throttled=True,
                                   retry_after=30.0)

    with pytest.raises(RetriableSourceError):
        call_with_retries(slow_refusal, RetryPolicy(budget_seconds=60), sleep=sleeps.append, clock=lambda: now[0],
                          rng=random.Random(1), rollup=RequestRollup())
    assert sleeps == []                              # 10 s left, Retry-After 30 s: no use asking again
    assert call_with_retries(lambda: "ok", RetryPolicy(), clock=lambda: now[0]) == "ok"
