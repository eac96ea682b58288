"""The one Canvas client every job shares: gateway OAuth + REST, token REST, GraphQL.

    with CanvasClient(canvas_settings(env)) as canvas:      # source_settings.canvas_settings
        term = canvas.gateway_get(f"accounts/{account}/terms/{term_id}")
        for page in canvas.gateway_paginate(f"accounts/{account}/courses", {"enrollment_term_id": term_id}): ...
        for page in canvas.paginate(f"audit/course/courses/{course_id}", kind="audit"): ...
        result = canvas.graphql(QUERY, {"id0": "101"})          # GraphQLResult(data, errors)

Gateway and Canvas token each get one `AdaptiveLimiter`, shared by every thread and phase using this client.
Each token goes to its own host only: the gateway token to API_BASE_URL, the Canvas token to CANVAS_URL.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clients.http import HttpClient, HttpSession, Timeouts, build_session, same_origin, sanitize_url
from clients.limiter import AdaptiveLimiter
from clients.retry import RetryPolicy
from clients.stats import ClientStats
from vocab import ConfigError, FatalSourceError, SourceFormatError

logger = logging.getLogger(__name__)

CANVAS = "canvas"
GATEWAY = "canvas-gateway"
PER_PAGE = 100                     # Canvas's maximum page size
TOKEN_PATH = "aa/oauth2/token"


@dataclass(frozen=True)
class CanvasSettings:
    """What the client needs; a job builds it from the configuration (source_settings.canvas_settings)."""

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
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    num_workers: int = 8
    timeouts: Timeouts = field(default_factory=Timeouts)

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
        policy = policy or settings.policy
        self._session = session if session is not None else build_session(2 * settings.num_workers + 2)
        common: dict[str, Any] = dict(policy=policy, timeouts=settings.timeouts, session=self._session,
                                      stats=self.stats, sleep=sleep, clock=clock, rng=rng)
        self._canvas = HttpClient(CANVAS, **common)
        self._gateway = HttpClient(GATEWAY, **common)
        self._auth = GatewayAuth(self._gateway, settings, clock=clock)
        self.canvas_limiter = AdaptiveLimiter(settings.num_workers, name="canvas")
        self.gateway_limiter = AdaptiveLimiter(settings.num_workers, name="canvas gateway")
        self.stats.attach_gate(self.canvas_limiter)
        self.stats.attach_gate(self.gateway_limiter)

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
        """Each page's JSON, following `Link: rel="next"`, always asked of the gateway.

        Canvas builds its links on its own host under /api/v1/ (lib/api.rb); a gateway in front of it may pass
        them on unchanged or rewrite them onto itself. Either way the next page is fetched from the gateway, with
        the gateway's headers: the gateway token never goes to the Canvas host.
        """
        url = self._gateway_url(path)
        return self._paginate(url, params, lambda link: self._gateway_page_url(link, url),
                              lambda next_url, query: self._gateway_call(next_url, query, kind))

    def _gateway_url(self, path: str) -> str:
        if not self.settings.gateway_configured:
            raise ConfigError("gateway call needs CANVAS.API_BASE_URL, API_SCOPE_PREFIX, API_CLIENT_ID and "
                              "API_CLIENT_SECRET")
        return f"{self.settings.api_base_url}/{self.settings.api_scope_prefix}/{path.lstrip('/')}"

    def _gateway_page_url(self, link: str, first: str) -> str:
        """The gateway URL of a next-page link: as given when already on the gateway, else its path after
        /api/v1/ and its query under the scope prefix. It must be a page of the collection first asked for."""
        if same_origin(link, self.settings.api_base_url):
            return _same_collection(link, first)
        parts = urlsplit(link)
        api, found, rest = parts.path.partition("/api/v1/")
        if not found:
            raise SourceFormatError(f"next page link {sanitize_url(link)} is neither on the gateway nor a Canvas "
                                    "API URL", source=GATEWAY, url=sanitize_url(link))
        gateway = urlsplit(self._gateway_url(rest))
        return _same_collection(urlunsplit((gateway.scheme, gateway.netloc, gateway.path, parts.query, "")), first)

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
        url = self._canvas_url(path_or_url)
        return self._paginate(url, params, lambda link: _same_collection(self._canvas_url(link), url),
                              lambda next_url, query: self._canvas_get(next_url, query, kind))

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

    @staticmethod
    def _paginate(url: str, params: Mapping[str, Any] | None, next_page_url: Callable[[str], str],
                  fetch: Callable[[str, Mapping[str, Any] | None], tuple[Any, Any]]) -> Iterator[Any]:
        query: Mapping[str, Any] | None = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            body, response = fetch(next_url, query)
            seen.add(response.url or next_url)
            yield body
            link = response.links.get("next", {}).get("url")
            query = None   # Canvas's next link already carries every parameter
            if link is None:
                return
            next_url = next_page_url(link)
            if next_url in seen:
                raise SourceFormatError(f"pagination loop at {sanitize_url(next_url)}", url=sanitize_url(next_url))

    # ---- GraphQL ----
    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *,
                operation_name: str | None = None, urgent: bool = False,
                expected_rows: int | None = None) -> GraphQLResult:
        """The `data` and `errors` of a GraphQL response; errors without data raise FatalSourceError. `urgent`
        requests start before the others waiting for the Canvas limiter; `expected_rows`, if known, is how many
        rows the answer should hold, which Canvas's cost grows with (the limiter's forecast uses it)."""
        body: dict[str, Any] = {"query": query, "variables": dict(variables or {})}
        if operation_name:
            body["operationName"] = operation_name
        payload, _ = self._canvas.request_json("POST", f"{self.settings.canvas_url}/api/graphql", kind="graphql",
                                               limiter=self.canvas_limiter, headers=self._canvas_headers(),
                                               json=body, urgent=urgent, size=expected_rows)
        return graphql_result(payload)


def _same_collection(next_url: str, first_url: str) -> str:
    """`next_url`, once it is shown to be a page of the collection `first_url` asked for (same path)."""
    if urlsplit(next_url).path.rstrip("/") != urlsplit(first_url).path.rstrip("/"):
        raise SourceFormatError(f"next page link {sanitize_url(next_url)} is not a page of "
                                f"{sanitize_url(first_url)}", url=sanitize_url(next_url))
    return next_url


@dataclass(frozen=True)
class GraphQLResult:
    data: Mapping[str, Any]
    errors: tuple[str, ...] = ()          # messages (each cut to 200 characters); data may be partial then


def graphql_result(payload: Any) -> GraphQLResult:
    """Check a GraphQL response body: FatalSourceError when `errors` came without data."""
    if not isinstance(payload, dict):
        raise SourceFormatError("GraphQL response is not a JSON object", source=CANVAS)
    errors, data = payload.get("errors") or [], payload.get("data")
    if not isinstance(errors, list):
        errors = [errors]
    messages = tuple(str(e.get("message", e))[:200] if isinstance(e, dict) else str(e)[:200] for e in errors)
    if data is None:
        if messages:
            raise FatalSourceError(f"GraphQL query failed: {messages[0]}", source=CANVAS,
                                   status=None, url="/api/graphql")
        raise SourceFormatError("GraphQL response has neither data nor errors", source=CANVAS)
    if not isinstance(data, dict):
        raise SourceFormatError("GraphQL data is not an object", source=CANVAS)
    return GraphQLResult(data, messages)


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
