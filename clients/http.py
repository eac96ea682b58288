"""The HTTP layer every service client is built on: one logical request, retried, gated, counted.

- `HttpClient.request/request_json`: transient failures (connection errors, timeouts, 5xx, invalid JSON) and
  throttled refusals are retried under the request's `clients.retry.RetryPolicy` (a time budget).
- `check_response`: the one mapping from an HTTP status to vocab's exceptions.
- requests pass through an optional `clients.limiter.AdaptiveLimiter`, which paces them per token.
- redirects are never followed on their own: a credentialed request must not carry its token, form or body to
  another host (requests would re-send a POST body on a 307). A caller that knows the real service redirects
  within its own origin (a browser-like LTI launch) asks for `same_origin_redirects`.
- counters go to a shared `clients.stats.ClientStats`; retries and each attempt's duration also go to a
  `clients.rollup.RequestRollup` under the endpoint kind "<source> <kind>" (slow responses and retry reasons, rolled
  up per interval in the log).

Nothing here logs headers, bodies or query strings: URLs go through `sanitize_url` first.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from clients.limiter import AdaptiveLimiter, Slot
from clients.retry import RetryPolicy, call_with_retries
from clients.rollup import ROLLUP, RequestRollup
from clients.stats import ClientStats
from vocab import FatalSourceError, RetriableSourceError, SourceError

logger = logging.getLogger(__name__)

RATE_LIMIT_BODY = b"rate limit exceeded"
REMAINING_HEADER = "X-Rate-Limit-Remaining"
COST_HEADER = "X-Request-Cost"
# Transport failures worth another attempt; SSL errors subclass ConnectionError but retrying cannot fix them.
_TRANSIENT_TRANSPORT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)


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
    challenged = status == 401 and "WWW-Authenticate" in response.headers
    raise FatalSourceError(f"{source} {method} {url}: HTTP {status}", source=source, status=status, url=url,
                           credentials_rejected=challenged)


def redirect_error(response: requests.Response, target: str, *, source: str, method: str) -> SourceError:
    """A redirect the client will not follow: names both hosts, never a query string."""
    url = sanitize_url(response.url or "")
    where = urlsplit(target).netloc.rpartition("@")[2] or "(no Location)"
    why = ("a request carrying credentials never follows a redirect to another host"
           if not same_origin(target, url) else "this service is not expected to redirect here")
    return FatalSourceError(f"{source} {method} {url}: HTTP {response.status_code} redirect to {where} not followed "
                            f"({why})", source=source, status=response.status_code, url=url)


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


class HttpClient:
    """Sends requests for one source with retries, throttle handling, optional limiter and stats."""

    def __init__(self, source: str, *, policy: RetryPolicy | None = None, timeouts: Timeouts | None = None,
                 session: HttpSession | None = None, pool_size: int = 10, stats: ClientStats | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, rollup: RequestRollup = ROLLUP) -> None:
        self.source = source
        self.policy = policy or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.stats = stats or ClientStats()
        self._session = session if session is not None else build_session(pool_size)
        self._sleep, self._clock, self._rng = sleep, clock, rng or random.Random()
        self._rollup = rollup

    def close(self) -> None:
        self._session.close()

    def request(self, method: str, url: str, *, kind: str, limiter: AdaptiveLimiter | None = None,
                headers: Mapping[str, str] | None = None, params: Any = None, data: Any = None,
                json: Any = None, same_origin_redirects: int = 0) -> requests.Response:
        """A successful (status < 300) response, after retries; raises SourceError subclasses otherwise."""
        return self._call(method, url, kind, limiter, dict(headers or {}), params, data, json, None,
                          same_origin_redirects)

    def request_json(self, method: str, url: str, *, kind: str, limiter: AdaptiveLimiter | None = None,
                     headers: Mapping[str, str] | None = None, params: Any = None, data: Any = None,
                     json: Any = None, urgent: bool = False, size: float | None = None
                     ) -> tuple[Any, requests.Response]:
        """(decoded JSON body, response); invalid JSON counts as a transient failure. `urgent`: the limiter lets
        it start before requests that are not; `size`: how large the answer is expected to be, for the limiter's
        forecast (`AdaptiveLimiter.slot`)."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        return self._call(method, url, kind, limiter, all_headers, params, data, json,
                          lambda r: decode_json(r, source=self.source, method=method), 0, urgent, size)

    def _call(self, method: str, url: str, kind: str, limiter: AdaptiveLimiter | None, headers: dict[str, str],
              params: Any, data: Any, json: Any, parse: Callable[[requests.Response], Any] | None,
              redirects: int, urgent: bool = False, size: float | None = None) -> Any:
        logger.debug("%s %s", method, sanitize_url(url))

        def attempt() -> Any:
            response = self._send(method, url, kind, limiter, redirects, urgent, size, headers=headers,
                                  params=params, data=data, json=json)
            return response if parse is None else (parse(response), response)

        try:
            return call_with_retries(attempt, self.policy, sleep=self._sleep, clock=self._clock, rng=self._rng,
                                     on_retry=self._count_retry, kind=f"{self.source} {kind}", rollup=self._rollup)
        except SourceError:
            self.stats.record_error()
            raise

    def _count_retry(self, exc: RetriableSourceError) -> None:
        if not exc.throttled:
            self.stats.record_retry()

    def _send(self, method: str, url: str, kind: str, limiter: AdaptiveLimiter | None, redirects: int,
              urgent: bool, size: float | None, **kwargs: Any) -> requests.Response:
        response = self._send_once(method, url, kind, limiter, urgent, size, **kwargs)
        while 300 <= response.status_code < 400:
            target = urljoin(response.url or url, response.headers.get("Location", ""))
            if redirects <= 0 or not same_origin(target, url):
                raise redirect_error(response, target, source=self.source, method=method)
            redirects -= 1
            # 301/302/303 turn into a GET without the body, as browsers do; 307/308 repeat the request.
            if response.status_code in (301, 302, 303):
                method, kwargs = "GET", {**kwargs, "data": None, "json": None, "params": None}
            else:
                kwargs = {**kwargs, "params": None}
            url = target
            response = self._send_once(method, url, kind, limiter, urgent, size, **kwargs)
        return response

    def _send_once(self, method: str, url: str, kind: str, limiter: AdaptiveLimiter | None, urgent: bool,
                   size: float | None, **kwargs: Any) -> requests.Response:
        gate: AbstractContextManager[Slot | None] = (limiter.slot(urgent=urgent, kind=kind, size=size)
                                                     if limiter is not None else nullcontext())
        with gate as slot:
            started = self._clock()
            try:
                response = self._session.request(method, url, timeout=self.timeouts.as_tuple(),
                                                 allow_redirects=False, **kwargs)
            except requests.RequestException as exc:
                self.stats.record_attempt(kind)
                self._rollup.responded(f"{self.source} {kind}", self._clock() - started)
                raise self._transport_error(method, url, exc) from exc
            self._rollup.responded(f"{self.source} {kind}", self._clock() - started)
            throttled = is_throttled(response)
            cost = header_float(response, COST_HEADER)
            if slot is not None:
                slot.observe(remaining=header_float(response, REMAINING_HEADER), throttled=throttled, cost=cost)
        self.stats.record_attempt(kind, nbytes=len(response.content), cost=cost, throttled=throttled)
        check_response(response, source=self.source, method=method)
        return response

    def _transport_error(self, method: str, url: str, exc: requests.RequestException) -> SourceError:
        # Only the exception's class name: requests' messages repeat the full URL, query string included.
        safe_url = sanitize_url(url)
        message = f"{self.source} {method} {safe_url}: {type(exc).__name__}"
        if isinstance(exc, _TRANSIENT_TRANSPORT) and not isinstance(exc, requests.exceptions.SSLError):
            return RetriableSourceError(message, source=self.source, url=safe_url)
        return FatalSourceError(message, source=self.source, url=safe_url)
