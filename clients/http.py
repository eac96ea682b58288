"""The retrying, throttle-aware HTTP layer every service client is built on.

- `HttpClient.request/request_json`: one logical request; transient failures (connection errors, timeouts, 5xx,
  invalid JSON) are retried up to `RetryPolicy.max_attempts`, throttled refusals on their own, larger budget.
- `check_response`: the one mapping from an HTTP status to vocab's exceptions.
- requests pass through an optional `clients.limiter.AdaptiveLimiter`, which paces them per token.
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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
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

from clients.limiter import AdaptiveLimiter, Slot
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


class EnvironmentCachingSession(requests.Session):
    """A Session that reads the proxy and CA-bundle environment once per host, not on every request.

    requests re-reads them for each call (walking os.environ for proxies and NO_PROXY): ~0.3 ms on a slow core,
    8 % of the inventory job's CPU, which delays every other thread waiting for the GIL. They do not change while
    a job runs. Explicit per-request proxies take requests' own path.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        if proxies or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert, self.trust_env, self.stream, self.verify, self.cert,
               tuple(sorted(self.proxies.items())))
        settings = self._environment.get(key)
        if settings is None:    # two threads may both compute it: same answer, no lock needed
            settings = super().merge_environment_settings(url, {}, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}


def build_session(pool_size: int, *, keep_cookies: bool = False) -> requests.Session:
    """One Session shared by all threads; urllib3's pool is thread-safe and sized for the concurrency ceiling.

    Token-authenticated APIs are stateless, so cookies are refused unless asked for (an LTI launch needs them):
    a shared jar would otherwise mix session cookies of unrelated requests.
    """
    session = EnvironmentCachingSession()
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
        gate: AbstractContextManager[Slot | None] = limiter.slot() if limiter is not None else nullcontext()
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
