"""The retrying, throttle-aware HTTP layer every service client is built on.

- `HttpClient.request/request_json`: one logical request; transient failures (connection errors, timeouts, 5xx,
  invalid JSON) are retried up to `RetryPolicy.max_attempts`, throttled refusals on their own, larger budget.
- `check_response`: the one mapping from an HTTP status to vocab's exceptions.
- `AdaptiveLimiter`: paces and bounds requests per token, steering a start rate on the server's reported
  headroom (`ThrottleController` holds its decisions, free of locks and clocks).
- `ClientStats`: thread-safe counters shared by a client's requests.
- `map_concurrent`: runs a function over items on a thread pool, yielding results as they complete.

Nothing here logs headers, bodies or query strings: URLs go through `sanitize_url` first.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying

from vocab import FatalSourceError, RetriableSourceError, SourceError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RATE_LIMIT_BODY = b"rate limit exceeded"
REMAINING_HEADER = "X-Rate-Limit-Remaining"
COST_HEADER = "X-Request-Cost"
# Transport failures worth another attempt; SSL errors subclass ConnectionError but retrying cannot fix them.
_TRANSIENT_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Throttling has its own budget: a busy Canvas is not a failure."""

    max_attempts: int = 3            # attempts for transient failures (MAX_REQ_ATTEMPTS)
    max_throttled: int = 60          # throttled refusals tolerated per request
    backoff_initial: float = 0.5     # seconds; doubled per failure, full jitter in [50%, 100%]
    backoff_max: float = 30.0
    throttle_initial: float = 1.0    # pause after a refusal without Retry-After; doubled per refusal
    throttle_max: float = 20.0
    retry_after_max: float = 300.0   # never trust a Retry-After longer than this

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_throttled < 0:
            raise ValueError("max_attempts must be >= 1 and max_throttled >= 0")


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 120.0              # Canvas analytics and audit pages can take a while to render

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


class HttpSession(Protocol):
    """What the client needs from `requests.Session`; tests inject a fake."""

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response: ...

    def close(self) -> None: ...


def build_session(pool_size: int, *, keep_cookies: bool = False) -> requests.Session:
    """One Session shared by all threads; urllib3's pool is thread-safe and sized for the concurrency ceiling.

    Token-authenticated APIs are stateless, so cookies are refused unless asked for (an LTI launch needs them):
    a shared jar would otherwise mix session cookies of unrelated requests.
    """
    session = requests.Session()
    if not keep_cookies:
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=max(pool_size, 10), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def sanitize_url(url: str) -> str:
    """The URL without query string, fragment or user info: safe for logs and exception messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def header_float(response: requests.Response, name: str) -> float | None:
    try:
        value = float(response.headers.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_throttled(response: requests.Response) -> bool:
    """Canvas refuses with 403 "Rate Limit Exceeded" (older) or 429 (newer docs); gateways use 429."""
    if response.status_code == 429:
        return True
    return response.status_code == 403 and RATE_LIMIT_BODY in response.content[:512].lower()


def check_response(response: requests.Response, *, source: str, method: str) -> None:
    """Raise the vocab exception for a failed response; return for success. Never puts the query in messages."""
    status = response.status_code
    if status < 400:
        return
    url = sanitize_url(response.url or "")
    throttled = is_throttled(response)
    if throttled or status >= 500 or status == 408:
        reason = "throttled" if throttled else "server error"
        raise RetriableSourceError(
            f"{source} {method} {url}: HTTP {status} ({reason})", source=source, status=status, url=url,
            retry_after=parse_retry_after(response.headers.get("Retry-After")), throttled=throttled,
        )
    raise FatalSourceError(f"{source} {method} {url}: HTTP {status}", source=source, status=status, url=url)


def decode_json(response: requests.Response, *, source: str, method: str) -> Any:
    """The JSON body (None for an empty one); an unreadable or truncated body is retried like a 5xx."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:   # requests.JSONDecodeError, UnicodeDecodeError
        url = sanitize_url(response.url or "")
        raise RetriableSourceError(f"{source} {method} {url}: invalid JSON body", source=source,
                                   status=response.status_code, url=url) from exc


@dataclass(frozen=True)
class StatsSnapshot:
    requests: Mapping[str, int]      # attempts sent, per endpoint kind
    retries: int                     # attempts repeated after a transient failure
    throttled: int                   # refusals by the rate limiter
    errors: int                      # logical requests that failed (incl. a gateway 401 fixed by renewal)
    cost: float                      # sum of X-Request-Cost
    bytes: int                       # response body bytes

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class ClientStats:
    """Counters shared by every thread of a client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._retries = self._throttled = self._errors = self._bytes = 0
        self._cost = 0.0

    def record_attempt(self, kind: str, *, nbytes: int = 0, cost: float | None = None, throttled: bool = False) -> None:
        with self._lock:
            self._requests[kind] += 1
            self._bytes += nbytes
            self._cost += cost or 0.0
            self._throttled += int(throttled)

    def record_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def record_error(self) -> None:
        with self._lock:
            self._errors += 1

    @property
    def throttled(self) -> int:
        with self._lock:
            return self._throttled

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            return StatsSnapshot(MappingProxyType(dict(self._requests)), self._retries, self._throttled,
                                 self._errors, self._cost, self._bytes)


class ThrottleController:
    """The decisions of `AdaptiveLimiter`, without locks or clocks: times come in as arguments.

    State: a start rate (requests per second, paced evenly), the smoothed round trip and the smoothed
    reported remaining; the concurrency cap is derived from them. `AdaptiveLimiter` explains the reasoning.
    Not thread-safe; the limiter calls it under its lock, simulations call it directly.
    """

    REFUSAL_CUT = 0.1               # rate cut for a refusal while the average headroom is healthy (a spike)
    CONGESTION_CUT = 0.3            # ...and while it is not, or when the server reports no headroom at all
    CATCH_UP = 1.0                  # starts a late pacer may make up at once (keeps the average rate)

    def __init__(self, ceiling: int, *, initial: int = 4, up_front_cost: float = 50.0, min_reserves: float = 2.0,
                 headroom_sigmas: float = 2.5, gain: float = 0.1, max_step: float = 0.25,
                 smoothing_rtts: float = 2.0, spread_rtts: float = 8.0, window_slack: float = 2.0) -> None:
        if ceiling < 1 or up_front_cost <= 0 or min_reserves < 1 or headroom_sigmas < 0 or gain <= 0 \
                or not 0 < max_step < 1:
            raise ValueError("need ceiling >= 1, up_front_cost > 0, min_reserves >= 1, headroom_sigmas >= 0, "
                             "gain > 0 and 0 < max_step < 1")
        self.ceiling = ceiling
        self._initial = max(1, min(ceiling, initial))
        self._up_front = up_front_cost
        self._min_target, self._sigmas = min_reserves * up_front_cost, headroom_sigmas
        self._gain, self._max_step = gain, max_step
        self._smoothing, self._spread_rtts, self._slack = smoothing_rtts, spread_rtts, window_slack
        self._spread = 0.0                   # mean absolute deviation of the remaining from its smoothed value
        self.rate: float | None = None       # starts per second; None until the first answer
        self.srtt: float | None = None       # smoothed round trip of admitted requests, seconds
        self.remaining: float | None = None  # smoothed X-Rate-Limit-Remaining; None while never reported
        self.cuts = 0                        # rate cuts after refusals
        self._remaining_at = 0.0
        self._next_start = -math.inf
        self._started = 0                    # sequence number of the latest start
        self._cut_after = 0                  # refusals of requests started up to here were already answered
        self._demand = False                 # a request waited for the pacer or the cap since the last rise

    @property
    def limit(self) -> int:
        """Requests allowed in flight: twice what the rate keeps busy over a round trip (+1), within the ceiling."""
        if self.rate is None or self.srtt is None:
            return self._initial
        return max(1, min(self.ceiling, math.ceil(self._slack * self.rate * self.srtt) + 1))

    def start_time(self, now: float) -> float:
        """The earliest time the next request may start (the pacer's; the caller checks the cap)."""
        return now if self.rate is None else max(now, self._next_start)

    def waited(self) -> None:
        """A request could not start at once: the rate, not the workload, is what limits."""
        self._demand = True

    def start(self, now: float) -> int:
        """Record a start; returns its ticket for `observe`."""
        self._started += 1
        if self.rate is not None:
            # A start taken late (a thread woke up late) may be made up for, but only CATCH_UP of them.
            self._next_start = max(now - self.CATCH_UP / self.rate, self._next_start) + 1.0 / self.rate
        return self._started

    def observe(self, ticket: int, rtt: float, now: float, *, remaining: float | None, throttled: bool) -> None:
        """Account for the answer to the request started with `ticket`, `rtt` seconds after it started."""
        if not throttled:            # refusals come back early: they would bias the round trip
            self.srtt = rtt if self.srtt is None else self.srtt + (max(rtt, 0.0) - self.srtt) / 8
        if self.srtt is None:
            return                   # only refusals so far: nothing to pace by yet
        if self.rate is None:
            self.rate = self._initial / max(self.srtt, 1e-3)
        if remaining is not None:
            self._smooth(remaining, now)
        if throttled:
            if ticket > self._cut_after:   # sent after the last cut: news, not an echo of the same wave
                healthy = self.remaining is not None and self.remaining >= self.target / 2
                self._scale(math.log1p(-(self.REFUSAL_CUT if healthy else self.CONGESTION_CUT)))
                self._cut_after = self._started
                self.cuts += 1
            return
        step = self._step()
        if step > 0 and not self._demand:
            return                   # the workload, not the rate, limits: growing would only store up a burst
        # Spread the per-round-trip step over the answers of one round trip.
        self._scale(step / max(1.0, self.rate * self.srtt))
        if step > 0:
            self._demand = False

    def _step(self) -> float:
        """The wanted relative change of the rate per round trip (log scale), from the smoothed remaining."""
        if self.remaining is None:                  # no throttle headers (another service): grow while needed
            return self._max_step
        if self.remaining < self._up_front:         # danger zone: not even one reservation of headroom
            return -self._max_step
        target = self.target
        error = (self.remaining - target) / target
        return max(-self._max_step, min(self._max_step, self._gain * error))

    @property
    def target(self) -> float:
        """The setpoint of the smoothed remaining: `headroom_sigmas` of its fluctuation, at least `min_reserves`."""
        # Mean absolute deviation x 1.25 estimates a standard deviation, and one stale sample (after a pause of
        # this process) moves it far less than it would move a variance.
        return max(self._min_target, self._sigmas * 1.25 * self._spread)

    def _smooth(self, remaining: float, now: float) -> None:
        # Time-weighted: a burst of answers at one instant is one observation of the bucket, not many.
        if self.remaining is None:
            self.remaining = remaining
        else:
            elapsed, rtt = max(now - self._remaining_at, 0.0), self.srtt or 0.1
            self.remaining += -math.expm1(-elapsed / (self._smoothing * rtt)) * (remaining - self.remaining)
            # The residual after smoothing: a change the average has followed (the first answer after a
            # quiet spell, when the bucket drained) is not a fluctuation to keep a margin for.
            residual = abs(remaining - self.remaining)
            self._spread += -math.expm1(-elapsed / (self._spread_rtts * rtt)) * (residual - self._spread)
        self._remaining_at = now

    def _scale(self, log_step: float) -> None:
        assert self.rate is not None and self.srtt is not None
        floor = 0.5 / self.srtt               # at least one start per two round trips
        ceiling = 2.0 * self.ceiling / self.srtt   # beyond this the concurrency ceiling binds anyway
        self.rate = min(max(self.rate * math.exp(log_step), floor), ceiling)


class AdaptiveLimiter:
    """Paces and bounds the requests of one token so they use Canvas's throttle budget without being refused.

    Canvas's throttle (protocol-notes C.4) is a leaky bucket per token: it leaks 10 units a second, refuses a
    request that *arrives* while the level is at the high-water mark (600), reserves `up_front_cost` (50)
    while a request is inside the server, then charges the real cost (CPU + DB seconds) instead. The level
    thus moves in two ways: fast, by 50 per request entering or leaving the server, and slowly, drifting at
    (cost rate - leak). Only the drift decides the sustainable rate: while the level stays below the mark the
    leak is fully used exactly when the cost rate equals the leak, however many requests that takes (the
    old limit of remaining / 50 requests in flight counted the ones still on the network as reserving,
    which wasted half of the budget). The client sees the `X-Rate-Limit-Remaining` (mark - level) of each
    answer, as it was when the answer left the server (requests sent since are not in it), and refusals.

    So the limiter controls a *start rate* and steers it on the reported remaining:
    - Starts are paced evenly at the rate. A window of requests released together arrives together, and
      each extra request inside the server holds 50 units; even spacing keeps the number inside close to
      rate x server time, so the level fluctuates far less at the same throughput.
    - The remaining is smoothed over ~2 round trips (one answer is stale and noisy) and steered towards a
      setpoint: 2.5 times its own fluctuation (mean absolute deviation x 1.25, over ~8 round trips), and at
      least two reservations. Above the setpoint the rate rises, below it falls, in proportion to the error
      (at most 25 % per round trip, spread over that round trip's answers; faster growth overshoots, as the
      smoothed remaining lags); it rises only while requests actually wait for it. Because the bucket
      integrates (cost rate - leak), holding the remaining at a setpoint settles at cost rate = leak
      whatever the costs, the latency or the mix of requests, and a setpoint that scales with the observed
      fluctuation keeps refusals rare whether requests are uniform or not.
    - Danger zone (smoothed remaining below one reservation): the rate falls by 25 % per round trip.
    - A refusal cuts the rate at once: by 10 % while the average headroom is healthy (the peak of a
      fluctuation), by 30 % when it is not (the token is congested, e.g. another job started using it).
      Refusals of requests sent before the last cut are the same news and cut nothing more.
    - In flight is capped at twice what the rate keeps busy over a round trip (+1) and at `ceiling`
      (NUM_ASYNC_WORKERS), so a stalled server cannot collect a pile of requests.
    Every phase of a job shares the token's limiter; other jobs on the same token show up in the remaining
    and the rate yields to them. Without remaining headers (other services) it grows to the ceiling and
    cuts on refusals only. It starts with `initial` (4) requests until the first answer, as the bucket may
    already be busy. `ThrottleController` holds the arithmetic, free of threads and clocks.
    """

    def __init__(self, ceiling: int, *, name: str = "limiter", initial: int | None = None,
                 up_front_cost: float = 50.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._core = ThrottleController(ceiling, initial=4 if initial is None else initial,
                                        up_front_cost=up_front_cost)
        self._clock = clock
        self._lock = threading.Lock()
        self._waiters: deque[threading.Condition] = deque()   # FIFO; only the head waits for the pacer
        self._in_flight = 0
        self._peak = 0

    @property
    def ceiling(self) -> int:
        return self._core.ceiling

    @property
    def limit(self) -> int:
        with self._lock:
            return self._core.limit

    @property
    def rate(self) -> float | None:
        """Starts per second allowed now (None before the first answer)."""
        with self._lock:
            return self._core.rate

    @property
    def remaining(self) -> float | None:
        """The smoothed X-Rate-Limit-Remaining (None while never reported)."""
        with self._lock:
            return self._core.remaining

    @property
    def target(self) -> float:
        """The setpoint the smoothed remaining is steered to."""
        with self._lock:
            return self._core.target

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        with self._lock:
            return self._peak

    @contextmanager
    def slot(self) -> Iterator[_Slot]:
        """Block until a request may start; the caller reports the response through the slot."""
        with self._lock:
            ticket, started = self._acquire()
        try:
            yield _Slot(self, ticket, started)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._wake_head()

    def _acquire(self) -> tuple[int, float]:
        # Caller holds the lock. Waiters queue in order; the head alone watches the pacer and the cap, so a
        # start or a freed slot wakes one thread instead of all of them.
        waiter = threading.Condition(self._lock)
        self._waiters.append(waiter)
        try:
            while True:
                now = self._clock()
                if self._waiters[0] is waiter and self._in_flight < self._core.limit:
                    delay = self._core.start_time(now) - now
                    if delay <= 0:
                        break
                    self._core.waited()
                    waiter.wait(delay)
                else:
                    self._core.waited()
                    waiter.wait()
        finally:
            self._waiters.remove(waiter)
            self._wake_head()
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        return self._core.start(now), now

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].notify()

    def _observe(self, ticket: int, started: float, *, remaining: float | None, throttled: bool) -> None:
        with self._lock:
            now = self._clock()
            cuts, before = self._core.cuts, self._core.rate
            self._core.observe(ticket, now - started, now, remaining=remaining, throttled=throttled)
            if self._core.cuts != cuts:
                logger.debug("%s throttled: rate %.1f -> %.1f/s, smoothed remaining %s", self.name,
                             before or 0.0, self._core.rate or 0.0, self._core.remaining)
            self._wake_head()


class _Slot:
    __slots__ = ("_limiter", "_started", "_ticket")

    def __init__(self, limiter: AdaptiveLimiter, ticket: int, started: float) -> None:
        self._limiter, self._ticket, self._started = limiter, ticket, started

    def observe(self, *, remaining: float | None, throttled: bool) -> None:
        self._limiter._observe(self._ticket, self._started, remaining=remaining, throttled=throttled)


class _Budget:
    """Per-call retry bookkeeping for tenacity: transient failures and throttled refusals counted apart."""

    def __init__(self, policy: RetryPolicy, stats: ClientStats, rng: random.Random) -> None:
        self.policy, self.stats, self.rng = policy, stats, rng
        self.failures = self.refusals = 0

    @staticmethod
    def _error(state: RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome is not None else None

    def retry(self, state: RetryCallState) -> bool:
        exc = self._error(state)
        if not isinstance(exc, RetriableSourceError):
            return False
        if exc.throttled:
            self.refusals += 1
        else:
            self.failures += 1
        return True

    def stop(self, state: RetryCallState) -> bool:
        exc = self._error(state)
        spent = self.refusals > self.policy.max_throttled or self.failures >= self.policy.max_attempts
        if spent:
            logger.warning("giving up after %d failed attempts and %d throttled refusals: %s",
                           self.failures, self.refusals, exc)
        elif not (isinstance(exc, RetriableSourceError) and exc.throttled):
            self.stats.record_retry()
        return spent

    def wait(self, state: RetryCallState) -> float:
        exc = self._error(state)
        p = self.policy
        if isinstance(exc, RetriableSourceError) and exc.retry_after is not None:
            return min(exc.retry_after, p.retry_after_max) + self.rng.uniform(0.0, 0.1)
        if isinstance(exc, RetriableSourceError) and exc.throttled:
            base = min(p.throttle_max, p.throttle_initial * 2 ** (self.refusals - 1))
        else:
            base = min(p.backoff_max, p.backoff_initial * 2 ** (self.failures - 1))
        return base * self.rng.uniform(0.5, 1.0)

    def before_sleep(self, state: RetryCallState) -> None:
        exc = self._error(state)
        if isinstance(exc, RetriableSourceError) and exc.throttled:
            logger.debug("%s; pausing %.2fs", exc, state.upcoming_sleep)
        else:
            logger.warning("%s; attempt %d of %d failed, retrying in %.2fs", exc, self.failures,
                           self.policy.max_attempts, state.upcoming_sleep)


class HttpClient:
    """Sends requests for one source with retries, throttle handling, optional limiter and stats."""

    def __init__(self, source: str, *, policy: RetryPolicy | None = None, timeouts: Timeouts | None = None,
                 session: HttpSession | None = None, pool_size: int = 10, stats: ClientStats | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.source = source
        self.policy = policy or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.stats = stats or ClientStats()
        self._session = session if session is not None else build_session(pool_size)
        self._sleep, self._rng = sleep, rng or random.Random()

    def close(self) -> None:
        self._session.close()

    def request(self, method: str, url: str, *, kind: str, limiter: AdaptiveLimiter | None = None,
                headers: Mapping[str, str] | None = None, params: Any = None, data: Any = None,
                json: Any = None) -> requests.Response:
        """A successful (status < 400) response, after retries; raises SourceError subclasses otherwise."""
        return self._call(method, url, kind, limiter, dict(headers or {}), params, data, json, parse=None)

    def request_json(self, method: str, url: str, *, kind: str, limiter: AdaptiveLimiter | None = None,
                     headers: Mapping[str, str] | None = None, params: Any = None, data: Any = None,
                     json: Any = None) -> tuple[Any, requests.Response]:
        """(decoded JSON body, response); invalid JSON counts as a transient failure."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        return self._call(method, url, kind, limiter, all_headers, params, data, json,
                          parse=lambda r: decode_json(r, source=self.source, method=method))

    def _call(self, method: str, url: str, kind: str, limiter: AdaptiveLimiter | None, headers: dict[str, str],
              params: Any, data: Any, json: Any, parse: Callable[[requests.Response], Any] | None) -> Any:
        logger.debug("%s %s", method, sanitize_url(url))
        budget = _Budget(self.policy, self.stats, self._rng)
        retrying = Retrying(retry=budget.retry, stop=budget.stop, wait=budget.wait, sleep=self._sleep,
                            before_sleep=budget.before_sleep, reraise=True)

        def attempt() -> Any:
            response = self._send(method, url, kind, limiter, headers=headers, params=params, data=data, json=json)
            return response if parse is None else (parse(response), response)

        try:
            return retrying(attempt)
        except SourceError:
            self.stats.record_error()
            raise

    def _send(self, method: str, url: str, kind: str, limiter: AdaptiveLimiter | None,
              **kwargs: Any) -> requests.Response:
        gate: AbstractContextManager[_Slot | None] = limiter.slot() if limiter is not None else nullcontext()
        with gate as slot:
            try:
                response = self._session.request(method, url, timeout=self.timeouts.as_tuple(), **kwargs)
            except requests.RequestException as exc:
                self.stats.record_attempt(kind)
                raise self._transport_error(method, url, exc) from exc
            throttled = is_throttled(response)
            if slot is not None:
                slot.observe(remaining=header_float(response, REMAINING_HEADER), throttled=throttled)
        self.stats.record_attempt(kind, nbytes=len(response.content), cost=header_float(response, COST_HEADER),
                                  throttled=throttled)
        check_response(response, source=self.source, method=method)
        return response

    def _transport_error(self, method: str, url: str, exc: requests.RequestException) -> SourceError:
        # Only the exception's class name: requests' messages repeat the full URL, query string included.
        safe_url = sanitize_url(url)
        message = f"{self.source} {method} {safe_url}: {type(exc).__name__}"
        if isinstance(exc, _TRANSIENT_TRANSPORT) and not isinstance(exc, requests.exceptions.SSLError):
            return RetriableSourceError(message, source=self.source, url=safe_url)
        return FatalSourceError(message, source=self.source, url=safe_url)


@dataclass(frozen=True, slots=True)
class Completed(Generic[T, R]):
    """One finished item of `map_concurrent`: its value, or the error it raised (when collected)."""

    item: T
    value: R | None = None
    error: BaseException | None = None

    def result(self) -> R:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def map_concurrent(fn: Callable[[T], R], items: Iterable[T], *, workers: int,
                   collect: tuple[type[BaseException], ...] = (), window: int | None = None,
                   name: str = "http") -> Iterator[Completed[T, R]]:
    """Run `fn` over `items` on `workers` threads, yielding each `Completed` as soon as it finishes.

    Errors that are instances of `collect` are yielded as `Completed(item, error=exc)` so the caller can skip or
    count them; any other error propagates from the iterator and cancels the items not yet started. Items are
    pulled lazily, at most `window` (default 2 × workers) ahead of the consumer. Requests inside `fn` are still
    gated by the client's limiter, so the pool size is only the ceiling.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    source = iter(items)
    window = window or 2 * workers
    pending: dict[Future[R], T] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:

        def fill() -> None:
            for item in source:
                pending[pool.submit(fn, item)] = item
                if len(pending) >= window:
                    return

        try:
            fill()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        yield Completed(item, future.result())
                    elif isinstance(error, collect):
                        yield Completed(item, error=error)
                    else:
                        raise error
                fill()
        finally:
            for future in pending:
                future.cancel()
