"""The one Canvas client every job shares: gateway OAuth + REST, token REST, GraphQL, concurrency.

    with CanvasClient(CanvasSettings.from_env(env)) as canvas:
        term = canvas.gateway_get(f"accounts/{account}/terms/{term_id}")
        for page in canvas.gateway_paginate(f"accounts/{account}/courses", {"enrollment_term_id": term_id}): ...
        for page in canvas.paginate(f"audit/course/courses/{course_id}", kind="audit"): ...
        for nodes in canvas.graphql_pages(QUERY, {"courseID": "101"}, connection=("course", "enrollmentsConnection")):
        for done in canvas.map_concurrent(fetch_usage, course_ids, collect=(FatalSourceError,)): ...

Gateway and Canvas token each get one `AdaptiveLimiter`, shared by every thread and phase using this client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clients.http import (
    AdaptiveLimiter,
    ClientStats,
    Completed,
    HttpClient,
    HttpSession,
    RetryPolicy,
    Timeouts,
    build_session,
    map_concurrent,
    same_origin,
    sanitize_url,
)
from vocab import ConfigError, FatalSourceError, SourceFormatError

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CANVAS = "canvas"
GATEWAY = "canvas-gateway"
PER_PAGE = 100                     # Canvas's maximum page size
TOKEN_PATH = "aa/oauth2/token"


@dataclass(frozen=True)
class CanvasSettings:
    canvas_url: str
    canvas_token: str = field(repr=False)
    account_id: int = 1
    term_ids: tuple[int, ...] = ()
    add_course_ids: tuple[int, ...] = ()
    api_base_url: str = ""
    api_scope_prefix: str = ""
    api_subscription_name: str = ""
    api_client_id: str = field(default="", repr=False)
    api_client_secret: str = field(default="", repr=False)
    max_attempts: int = 3
    num_workers: int = 8
    timeouts: Timeouts = field(default_factory=Timeouts)

    @classmethod
    def from_env(cls, env: Mapping[str, Any], *, timeouts: Timeouts | None = None) -> CanvasSettings:
        """Settings from the loaded configuration; ConfigError names bad keys, never their values."""
        canvas = env.get("CANVAS")
        if not isinstance(canvas, Mapping):
            raise ConfigError("CANVAS section missing from configuration")
        problems: list[str] = []

        def text(key: str, required: bool = False) -> str:
            value = canvas.get(key, "")
            if not isinstance(value, str) or (required and not value.strip()):
                problems.append(f"CANVAS.{key}: {'required ' if required else ''}string expected")
                return ""
            return value.strip()

        def integer(section: Mapping[str, Any], key: str, default: int, minimum: int = 1) -> int:
            value = section.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                problems.append(f"{key}: integer >= {minimum} expected")
                return default
            return value

        def ids(key: str) -> tuple[int, ...]:
            values = canvas.get(key, [])
            if not isinstance(values, list | tuple) or any(
                    isinstance(v, bool) or not isinstance(v, int) for v in values):
                problems.append(f"CANVAS.{key}: list of integer ids expected")
                return ()
            return tuple(values)

        settings = cls(
            canvas_url=text("CANVAS_URL", required=True).rstrip("/"),
            canvas_token=text("CANVAS_TOKEN", required=True),
            account_id=integer(canvas, "CANVAS_ACCOUNT_ID", 1),
            term_ids=ids("CANVAS_TERM_IDS"),
            add_course_ids=ids("ADD_COURSE_IDS"),
            api_base_url=text("API_BASE_URL").rstrip("/"),
            api_scope_prefix=text("API_SCOPE_PREFIX").strip("/"),
            api_subscription_name=text("API_SUBSCRIPTION_NAME"),
            api_client_id=text("API_CLIENT_ID"),
            api_client_secret=text("API_CLIENT_SECRET"),
            max_attempts=integer(env, "MAX_REQ_ATTEMPTS", 3),
            num_workers=integer(env, "NUM_ASYNC_WORKERS", 8),
            timeouts=timeouts or Timeouts(),
        )
        if problems:
            raise ConfigError("invalid Canvas configuration", details=problems)
        return settings

    @property
    def gateway_configured(self) -> bool:
        return all((self.api_base_url, self.api_scope_prefix, self.api_client_id, self.api_client_secret))


class GatewayAuth:
    """OAuth2 client-credentials token for the API gateway, cached for all threads and renewed before expiry."""

    def __init__(self, http: HttpClient, settings: CanvasSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http, self._settings, self._clock = http, settings, clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def token(self) -> str:
        with self._lock:   # one fetch at a time; other threads wait for its result
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._fetch()
                # Renew a little early: 10% of the lifetime, between 5 s and 60 s, but never before half of it.
                margin = min(max(5.0, lifetime / 10), 60.0, lifetime / 2)
                self._renew_at = self._clock() + lifetime - margin
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` after a 401, unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> tuple[str, float]:
        s = self._settings
        form = {"grant_type": "client_credentials", "client_id": s.api_client_id,
                "client_secret": s.api_client_secret, "scope": s.api_subscription_name}
        body, _ = self._http.request_json("POST", f"{s.api_base_url}/{TOKEN_PATH}", kind="oauth", data=form)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceFormatError("gateway token response has no access_token", source=GATEWAY)
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        logger.debug("gateway token obtained, valid for %.0fs", lifetime)
        return token, lifetime


class CanvasClient:
    """Thread-safe; create one per run and pass it to every job phase."""

    def __init__(self, settings: CanvasSettings, *, session: HttpSession | None = None,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = ClientStats()
        # A refusal already slows every request of the token down (the limiter cuts its rate), so the refused
        # request itself only steps back briefly instead of sitting out a second, possibly as the run's last.
        policy = policy or RetryPolicy(max_attempts=settings.max_attempts, throttle_initial=0.25)
        self._session = session if session is not None else build_session(2 * settings.num_workers + 2)
        common: dict[str, Any] = dict(policy=policy, timeouts=settings.timeouts, session=self._session,
                                      stats=self.stats, sleep=sleep, rng=rng)
        self._canvas = HttpClient(CANVAS, **common)
        self._gateway = HttpClient(GATEWAY, **common)
        self._auth = GatewayAuth(self._gateway, settings, clock=clock)
        self.canvas_limiter = AdaptiveLimiter(settings.num_workers, name="canvas")
        self.gateway_limiter = AdaptiveLimiter(settings.num_workers, name="canvas gateway")

    def __enter__(self) -> CanvasClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # ---- gateway (OAuth) ----
    def gateway_get(self, path: str, params: Mapping[str, Any] | None = None, *, kind: str = "gateway") -> Any:
        body, _ = self._gateway_call(self._gateway_url(path), params, kind)
        return body

    def gateway_paginate(self, path: str, params: Mapping[str, Any] | None = None, *,
                         kind: str = "gateway") -> Iterator[Any]:
        """Each page's JSON, following `Link: rel="next"` on the gateway."""
        base = self.settings.api_base_url
        return self._paginate(self._gateway_url(path), params, base,
                              lambda url, query: self._gateway_call(url, query, kind))

    def _gateway_url(self, path: str) -> str:
        if not self.settings.gateway_configured:
            raise ConfigError("gateway call needs CANVAS.API_BASE_URL, API_SCOPE_PREFIX, API_CLIENT_ID and "
                              "API_CLIENT_SECRET")
        return f"{self.settings.api_base_url}/{self.settings.api_scope_prefix}/{path.lstrip('/')}"

    def _gateway_call(self, url: str, params: Mapping[str, Any] | None, kind: str) -> tuple[Any, Any]:
        for renewed in (False, True):
            token = self._auth.token()
            headers = {"Authorization": f"Bearer {token}", "x-ibm-client-id": self.settings.api_client_id,
                       "accept": "application/json"}
            try:
                return self._gateway.request_json("GET", url, kind=kind, limiter=self.gateway_limiter,
                                                  headers=headers, params=params)
            except FatalSourceError as exc:
                if exc.status != 401 or renewed:
                    raise
                logger.info("gateway answered 401 for %s; renewing the token once", sanitize_url(url))
                self._auth.invalidate(token)
        raise AssertionError("unreachable")

    # ---- Canvas REST with the Canvas token ----
    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, *, kind: str = "rest") -> Any:
        """JSON of `GET {CANVAS_URL}/api/v1/{path}`, or of an absolute URL on the Canvas host (e.g. a tab's url)."""
        body, _ = self._canvas_get(self._canvas_url(path_or_url), params, kind)
        return body

    def get_unless_missing(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
                           kind: str = "rest") -> Any | None:
        """Like `get`, but None when Canvas answers 404 (a course deleted meanwhile, analytics off)."""
        try:
            return self.get(path_or_url, params, kind=kind)
        except FatalSourceError as exc:
            if exc.status != 404:
                raise
            return None

    def paginate(self, path_or_url: str, params: Mapping[str, Any] | None = None, *,
                 kind: str = "rest") -> Iterator[Any]:
        """Each page's JSON (a list, or a compound document such as the audit log), following rel="next"."""
        return self._paginate(self._canvas_url(path_or_url), params, self.settings.canvas_url,
                              lambda url, query: self._canvas_get(url, query, kind))

    def _canvas_url(self, path_or_url: str) -> str:
        if "://" not in path_or_url:
            return f"{self.settings.canvas_url}/api/v1/{path_or_url.lstrip('/')}"
        if not same_origin(path_or_url, self.settings.canvas_url):
            # The token must never travel to another host, whatever a response links to.
            raise SourceFormatError(f"refusing to send the Canvas token to {sanitize_url(path_or_url)}",
                                    source=CANVAS, url=sanitize_url(path_or_url))
        return path_or_url

    def _canvas_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.canvas_token}"}

    def _canvas_get(self, url: str, params: Mapping[str, Any] | None, kind: str) -> tuple[Any, Any]:
        return self._canvas.request_json("GET", url, kind=kind, limiter=self.canvas_limiter,
                                         headers=self._canvas_headers(), params=params)

    def _paginate(self, url: str, params: Mapping[str, Any] | None, origin: str,
                  fetch: Callable[[str, Mapping[str, Any] | None], tuple[Any, Any]]) -> Iterator[Any]:
        query: Mapping[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            body, response = fetch(next_url, query)
            seen.add(response.url or next_url)
            yield body
            next_url = response.links.get("next", {}).get("url")
            query = None   # Canvas's next link already carries every parameter
            if next_url is None:
                return
            if next_url in seen:
                raise SourceFormatError(f"pagination loop at {sanitize_url(next_url)}", url=sanitize_url(next_url))
            if not same_origin(next_url, origin):
                raise SourceFormatError(f"next page link leaves {sanitize_url(origin)}: {sanitize_url(next_url)}",
                                        url=sanitize_url(next_url))

    # ---- GraphQL ----
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *,
                operation_name: str | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL response; errors without data raise, errors beside data are logged."""
        body: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
        if operation_name:
            body["operationName"] = operation_name
        payload, _ = self._canvas.request_json("POST", f"{self.settings.canvas_url}/api/graphql", kind="graphql",
                                               limiter=self.canvas_limiter, headers=self._canvas_headers(),
                                               json=body)
        return graphql_data(payload)

    def graphql_pages(self, query: str, variables: Mapping[str, Any], *, connection: Sequence[str],
                      cursor_variable: str = "cursor") -> Iterator[list[Any]]:
        """The `nodes` of each page of the connection at `connection` (a path in `data`), following endCursor.

        The query must select `nodes` and `pageInfo { endCursor hasNextPage }` and take `$<cursor_variable>` as
        the `after:` argument. A null object on the path (e.g. an unknown course) yields nothing.
        """
        current = {cursor_variable: None, **variables}
        seen: set[str] = set()
        while True:
            page = connection_page(self.graphql(query, current), connection)
            if page is None:
                logger.warning("GraphQL %s is null for variables %s", ".".join(connection), sorted(variables))
                return
            nodes, cursor = page
            yield nodes
            if cursor is None:
                return
            if cursor in seen:
                raise SourceFormatError(f"GraphQL cursor loop in {'.'.join(connection)}", source=CANVAS)
            seen.add(cursor)
            current[cursor_variable] = cursor

    # ---- concurrency ----
    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T], *, collect: tuple[type[BaseException], ...] = (),
                       name: str = "canvas") -> Iterator[Completed[T, R]]:
        """`clients.http.map_concurrent` with NUM_ASYNC_WORKERS threads; the limiters gate the real requests."""
        return map_concurrent(fn, items, workers=self.settings.num_workers, collect=collect, name=name)


def graphql_data(payload: Any) -> dict[str, Any]:
    """Check a GraphQL response body: FatalSourceError when `errors` came without data, warning when beside it."""
    if not isinstance(payload, dict):
        raise SourceFormatError("GraphQL response is not a JSON object", source=CANVAS)
    errors, data = payload.get("errors") or [], payload.get("data")
    messages = [str(e.get("message", e))[:200] if isinstance(e, dict) else str(e)[:200] for e in errors]
    if data is None:
        if messages:
            raise FatalSourceError(f"GraphQL query failed: {messages[0]}", source=CANVAS,
                                   status=None, url="/api/graphql")
        raise SourceFormatError("GraphQL response has neither data nor errors", source=CANVAS)
    if not isinstance(data, dict):
        raise SourceFormatError("GraphQL data is not an object", source=CANVAS)
    if messages:
        logger.warning("GraphQL returned partial data with %d error(s), first: %s", len(messages), messages[0])
    return data


def connection_page(data: Mapping[str, Any], path: Sequence[str]) -> tuple[list[Any], str | None] | None:
    """(nodes, cursor of the next page or None) of the connection at `path`; None when the path hits null."""
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping):
            raise SourceFormatError(f"GraphQL path {'.'.join(path)} not found", source=CANVAS)
        node = node.get(key)
        if node is None:
            return None
    nodes = node.get("nodes") if isinstance(node, Mapping) else None
    info = node.get("pageInfo") if isinstance(node, Mapping) else None
    if not isinstance(nodes, list) or not isinstance(info, Mapping):
        raise SourceFormatError(f"GraphQL connection {'.'.join(path)} lacks nodes or pageInfo", source=CANVAS)
    if not info.get("hasNextPage"):
        return nodes, None
    cursor = info.get("endCursor")
    if not isinstance(cursor, str) or not cursor:
        raise SourceFormatError(f"GraphQL connection {'.'.join(path)} has a next page but no endCursor",
                                source=CANVAS)
    return nodes, cursor
