"""clients/http.py: status classification, retry policy, limiter, stats and map_concurrent — no sockets."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.client import HTTPMessage
from types import SimpleNamespace

import pytest
import requests
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict

from clients.http import (
    AdaptiveLimiter,
    ClientStats,
    HttpClient,
    RetryPolicy,
    build_session,
    check_response,
    map_concurrent,
    parse_retry_after,
    sanitize_url,
)
from vocab import FatalSourceError, RetriableSourceError

URL = "https://canvas.test/api/v1/courses/7/analytics/activity?page=2&per_page=100"
SECRET = "tok-3e8f-SECRET"


def make_response(status: int = 200, body: bytes | str | object = b"[]", headers: dict[str, str] | None = None,
                  url: str = URL) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    response._content = body
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = url
    response.encoding = "utf-8"
    return response


class FakeSession:
    """Answers from a list of scripted responses/exceptions (the last one repeats) and records the calls."""

    def __init__(self, script: list[requests.Response | Exception] | Callable[..., requests.Response]) -> None:
        self.script, self.calls = script, []

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        self.calls.append((method, url, kwargs))
        if callable(self.script):
            step = self.script(method, url, **kwargs)
        else:
            step = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    def close(self) -> None:
        pass


def client_for(script, policy: RetryPolicy | None = None) -> tuple[HttpClient, FakeSession, list[float]]:
    sleeps: list[float] = []
    session = FakeSession(script)
    client = HttpClient("canvas", policy=policy, session=session, sleep=sleeps.append, rng=random.Random(1))
    return client, session, sleeps


THROTTLED_403 = make_response(403, "403 Forbidden (Rate Limit Exceeded)\n", {"X-Rate-Limit-Remaining": "0.0"})


# ---- classification ----
@pytest.mark.parametrize(
    ("status", "body", "expected", "throttled"),
    [
        (403, "403 Forbidden (Rate Limit Exceeded)\n", RetriableSourceError, True),
        (429, "429 Too Many Requests", RetriableSourceError, True),
        (403, '{"errors":[{"message":"user not authorized to perform that action"}]}', FatalSourceError, None),
        (401, '{"errors":[{"message":"Invalid access token."}]}', FatalSourceError, None),
        (404, '{"errors":[{"message":"The specified resource does not exist."}]}', FatalSourceError, None),
        (400, "{}", FatalSourceError, None),
        (500, "oops", RetriableSourceError, False),
        (503, "", RetriableSourceError, False),
    ],
)
def test_check_response_classifies_status(status, body, expected, throttled):
    with pytest.raises(expected) as info:
        check_response(make_response(status, body), source="canvas", method="GET")
    error = info.value
    assert error.status == status
    assert "GET https://canvas.test/api/v1/courses/7/analytics/activity" in str(error)
    assert str(status) in str(error) and "?" not in str(error) and "per_page" not in str(error)
    if throttled is not None:
        assert error.throttled is throttled


def test_check_response_passes_success():
    check_response(make_response(200), source="canvas", method="GET")
    check_response(make_response(204, b""), source="canvas", method="GET")


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(when) <= 30
    error = pytest.raises(RetriableSourceError, check_response,
                          make_response(429, "", {"Retry-After": "12"}), source="c", method="GET").value
    assert error.retry_after == 12.0


def test_api_session_refuses_cookies_unless_asked():
    message = HTTPMessage()
    message["Set-Cookie"] = "canvas_session=abc; Path=/"
    raw = SimpleNamespace(_original_response=SimpleNamespace(msg=message))
    request = requests.Request("GET", "https://canvas.test/api/v1/courses").prepare()
    kept = []
    for keep in (False, True):
        jar = build_session(4, keep_cookies=keep).cookies
        extract_cookies_to_jar(jar, request, raw)        # what requests does with every response
        kept.append(len(jar))
    assert kept == [0, 1]


def test_sanitize_url_drops_query_fragment_and_credentials():
    assert sanitize_url("https://user:pw@canvas.test:8443/api/v1/x?access_token=abc#frag") == \
        "https://canvas.test:8443/api/v1/x"


# ---- retry policy ----
def test_transient_failures_are_retried_with_growing_backoff():
    client, session, sleeps = client_for([make_response(503, "busy"), make_response(502, "bad"),
                                          make_response(200, [{"id": 1}])])
    body, _ = client.request_json("GET", URL, kind="rest")
    assert body == [{"id": 1}]
    assert len(session.calls) == 3
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] <= client.policy.backoff_initial * 2
    snap = client.stats.snapshot()
    assert snap.requests == {"rest": 3} and snap.retries == 2 and snap.errors == 0


def test_gives_up_after_max_attempts():
    client, session, _ = client_for([make_response(500, "oops")], RetryPolicy(max_attempts=3))
    with pytest.raises(RetriableSourceError):
        client.request_json("GET", URL, kind="rest")
    assert len(session.calls) == 3
    assert client.stats.snapshot().errors == 1


@pytest.mark.parametrize("bad_body", [b"<html>gateway timeout</html>", b'[{"id": 1, "name": "trunc'])
def test_invalid_or_truncated_json_is_retried(bad_body):
    client, session, _ = client_for([make_response(200, bad_body), make_response(200, [{"id": 2}])])
    body, _ = client.request_json("GET", URL, kind="rest")
    assert body == [{"id": 2}] and len(session.calls) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_non_transient_status_is_not_retried(status):
    client, session, sleeps = client_for([make_response(status, "{}"), make_response(200, [])])
    with pytest.raises(FatalSourceError) as info:
        client.request_json("GET", URL, kind="rest")
    assert info.value.status == status and len(session.calls) == 1 and sleeps == []


@pytest.mark.parametrize("failure", [requests.ConnectionError("reset by peer https://canvas.test/x?access_token=z"),
                                     requests.ReadTimeout("read timed out"),
                                     requests.exceptions.ChunkedEncodingError("IncompleteRead")])
def test_transport_failures_are_retried_and_messages_stay_clean(failure):
    client, session, _ = client_for([failure, failure, failure])
    with pytest.raises(RetriableSourceError) as info:
        client.request_json("GET", URL, kind="rest")
    assert len(session.calls) == 3
    assert "access_token" not in str(info.value) and "?" not in str(info.value)
    assert type(failure).__name__ in str(info.value)


def test_ssl_error_is_fatal():
    client, session, _ = client_for([requests.exceptions.SSLError("bad cert")])
    with pytest.raises(FatalSourceError):
        client.request("GET", URL, kind="rest")
    assert len(session.calls) == 1


def test_throttling_has_its_own_budget_and_is_never_returned_as_data():
    # Twenty refusals with MAX_REQ_ATTEMPTS=2 still succeed: throttling does not use up the attempts.
    script = [THROTTLED_403] * 10 + [make_response(429, "")] * 10 + [make_response(200, [{"id": 9}])]
    client, session, sleeps = client_for(script, RetryPolicy(max_attempts=2, max_throttled=30))
    body, response = client.request_json("GET", URL, kind="rest")
    assert body == [{"id": 9}] and response.status_code == 200
    snap = client.stats.snapshot()
    assert snap.throttled == 20 and snap.retries == 0 and len(session.calls) == 21
    assert max(sleeps) <= client.policy.throttle_max


def test_throttle_budget_is_finite():
    client, session, _ = client_for([THROTTLED_403], RetryPolicy(max_throttled=4))
    with pytest.raises(RetriableSourceError) as info:
        client.request_json("GET", URL, kind="rest")
    assert info.value.throttled and len(session.calls) == 5


def test_throttling_and_failures_counted_apart():
    script = [THROTTLED_403, make_response(500), THROTTLED_403, make_response(503), THROTTLED_403,
              make_response(200, {"ok": True})]
    client, session, _ = client_for(script, RetryPolicy(max_attempts=3))
    assert client.request_json("GET", URL, kind="rest")[0] == {"ok": True}
    assert client.stats.snapshot().retries == 2 and client.stats.snapshot().throttled == 3


def test_retry_after_is_honoured():
    client, _, sleeps = client_for([make_response(429, "", {"Retry-After": "7"}),
                                    make_response(503, "", {"Retry-After": "3"}), make_response(200, [])])
    client.request_json("GET", URL, kind="rest")
    assert 7 <= sleeps[0] < 7.2 and 3 <= sleeps[1] < 3.2


def test_logs_name_url_without_query_and_never_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="clients")
    client, _, _ = client_for([make_response(500, SECRET), THROTTLED_403, make_response(404, SECRET)])
    with pytest.raises(FatalSourceError):
        client.request_json("GET", URL + f"&access_token={SECRET}", kind="rest",
                            headers={"Authorization": f"Bearer {SECRET}"})
    text = caplog.text
    assert "GET https://canvas.test/api/v1/courses/7/analytics/activity" in text
    assert SECRET not in text and "per_page" not in text and "Authorization" not in text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "500" in warnings[0].getMessage()


def test_stats_sum_cost_and_bytes():
    headers = {"X-Request-Cost": "0.25", "X-Rate-Limit-Remaining": "590.5"}
    client, _, _ = client_for([make_response(200, b"[1, 2]", headers), make_response(200, b"[3]", headers)])
    client.request_json("GET", URL, kind="analytics")
    client.request_json("GET", URL, kind="analytics")
    snap = client.stats.snapshot()
    assert snap.cost == pytest.approx(0.5) and snap.bytes == len(b"[1, 2]") + len(b"[3]")
    assert snap.requests == {"analytics": 2} and snap.total_requests == 2


# ---- limiter ----
def test_limiter_halves_on_throttle_once_per_congestion_event():
    limiter = AdaptiveLimiter(8, initial=8)
    slots = [limiter.slot() for _ in range(8)]
    entered = [cm.__enter__() for cm in slots]   # eight requests in flight, started in the same epoch
    for slot in entered:
        slot.observe(remaining=0.0, throttled=True)
    assert limiter.limit == 4                     # eight refusals of one wave cut once, not eight times
    for cm in slots:
        cm.__exit__(None, None, None)
    with limiter.slot() as slot:                  # a request started after the cut, refused again: cut again
        slot.observe(remaining=0.0, throttled=True)
    assert limiter.limit == 2


def observe_rounds(limiter: AdaptiveLimiter, remaining: float | None, rounds: int = 1,
                   throttled: bool = False) -> int:
    """Fill the limiter with requests, let them all answer with `remaining`, then finish them; repeat."""
    for _ in range(rounds):
        gates = [limiter.slot() for _ in range(limiter.limit)]
        slots = [gate.__enter__() for gate in gates]
        for slot in slots:
            slot.observe(remaining=remaining, throttled=throttled)
        for gate in gates:
            gate.__exit__(None, None, None)
    return limiter.limit


def test_limiter_grows_back_but_never_above_ceiling_nor_below_one():
    limiter = AdaptiveLimiter(5, initial=1)
    assert observe_rounds(limiter, None, rounds=20) == 5
    assert observe_rounds(limiter, 0.0, rounds=10, throttled=True) == 1


def test_limiter_steers_on_reported_headroom():
    limiter = AdaptiveLimiter(16, initial=10)
    assert observe_rounds(limiter, 300.0) == 9              # 10 × 50 reserved > 300 left + margin: shrink
    assert observe_rounds(limiter, 400.0, rounds=10) == 9   # 9 × 50 between 400 and 500: hold
    assert observe_rounds(limiter, 40.0, rounds=20) == 2    # bucket nearly full (another job on the token)
    assert observe_rounds(limiter, 600.0, rounds=40) == 12  # grows while 50 × in flight < 600 left
    fresh = AdaptiveLimiter(8)
    assert fresh.limit == 4                                 # starts small: the bucket may be busy already
    assert observe_rounds(fresh, 550.0, rounds=4) == 8


def test_limiter_grows_only_when_its_limit_is_used():
    limiter = AdaptiveLimiter(8, initial=4)
    for _ in range(10):
        with limiter.slot() as slot:
            slot.observe(remaining=600.0, throttled=False)
    assert limiter.limit == 4


def test_limiter_ignores_signals_older_than_its_last_change():
    limiter = AdaptiveLimiter(8, initial=6)
    gates = [limiter.slot() for _ in range(6)]
    slots = [gate.__enter__() for gate in gates]
    slots[0].observe(remaining=0.0, throttled=False)        # 6 × 50 > 0 + 100: shrink to 5
    for slot in slots[1:]:
        slot.observe(remaining=0.0, throttled=False)        # same news from the same wave: no further cuts
    assert limiter.limit == 5
    for gate in gates:
        gate.__exit__(None, None, None)


def test_limiter_bounds_requests_in_flight():
    limiter = AdaptiveLimiter(3, initial=3)
    peak, lock, active = [0], threading.Lock(), [0]

    def work(_: int) -> None:
        with limiter.slot() as slot:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.005)
            with lock:
                active[0] -= 1
            slot.observe(remaining=None, throttled=False)

    assert len(list(map_concurrent(work, range(40), workers=8))) == 40
    assert peak[0] == 3


# ---- map_concurrent ----
def test_map_concurrent_yields_every_item_once():
    results = {done.item: done.result() for done in map_concurrent(lambda n: n * n, range(50), workers=4)}
    assert results == {n: n * n for n in range(50)}


def test_map_concurrent_collects_chosen_errors_and_propagates_others():
    def fn(n: int) -> int:
        if n % 5 == 0:
            raise FatalSourceError(f"no analytics for {n}")
        return n

    done = list(map_concurrent(fn, range(20), workers=3, collect=(FatalSourceError,)))
    assert sorted(d.item for d in done if d.error) == [0, 5, 10, 15]
    assert sorted(d.value for d in done if not d.error) == [n for n in range(20) if n % 5]
    with pytest.raises(FatalSourceError):
        list(map_concurrent(fn, range(20), workers=3))


def test_map_concurrent_pulls_items_lazily():
    pulled: list[int] = []

    def items():
        for n in range(1000):
            pulled.append(n)
            yield n

    stream = map_concurrent(lambda n: n, items(), workers=2, window=4)
    next(stream)
    stream.close()
    assert len(pulled) <= 8


def test_client_stats_is_thread_safe():
    stats = ClientStats()

    def bump(_: int) -> None:
        for _ in range(200):
            stats.record_attempt("rest", nbytes=1, cost=0.5, throttled=True)

    list(map_concurrent(bump, range(8), workers=8))
    snap = stats.snapshot()
    assert snap.requests["rest"] == 1600 and snap.throttled == 1600 and snap.bytes == 1600
    assert snap.cost == pytest.approx(800.0)
