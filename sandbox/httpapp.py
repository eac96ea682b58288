"""What a simulator's handlers are written against: the `App` router, `Request`, `Response` and response helpers.

Nothing here knows about sockets, threads, latency or throttling: `sandbox.httpserver.SimServer` parses each
HTTP request into a `Request`, asks the `App` for the matching route, and writes the handler's `Response`
back (or drops the connection), applying its latency, faults, throttle and cost model around the handler.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

NOT_FOUND_BODY = {"errors": [{"message": "The specified resource does not exist."}]}


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive header mapping (a repeated header keeps its last value)."""

    def __init__(self, items: Iterator[tuple[str, str]] | list[tuple[str, str]] = ()) -> None:
        self._items = {name.lower(): value for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __repr__(self) -> str:  # never show values: they may hold tokens
        return f"Headers({sorted(self._items)})"


@dataclass
class Request:
    method: str
    path: str                                  # no query string; repeated slashes collapsed
    query: dict[str, list[str]]                # every value, in order
    headers: Headers
    body: bytes = b""
    base_url: str = ""                         # scheme://host:port of the serving SimServer
    client: str = ""                           # the client's IP address

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        """The body parsed as application/x-www-form-urlencoded."""
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def last(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter (Rails: the last duplicate wins)."""
        values = self.query.get(name)
        return values[-1] if values else default

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    @property
    def target(self) -> str:
        """Path plus the query string as received (re-encoded)."""
        return f"{self.path}?{urlencode(self.query, doseq=True)}" if self.query else self.path


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0                           # records served, for the cost model
    # Sub-answers a journal records on their own (sandbox.journal): (logical key, body) each, computed on demand.
    parts: Callable[[], list[tuple[str, bytes]]] | None = None

    @property
    def is_json(self) -> bool:
        return "json" in self.headers.get("Content-Type", "")


def logical_key(request: Request) -> str:
    """One logical request, whatever attempt: method, path, query parameters sorted, digest of the body."""
    query = urlencode(sorted((k, v) for k, values in request.query.items() for v in values))
    body = hashlib.blake2b(request.body, digest_size=8).hexdigest() if request.body else ""
    return f"{request.method} {request.path}?{query}#{body}"


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None, records: int = 0) -> Response:
    # check_circular=False: handlers build plain trees, and skipping the cycle bookkeeping is ~20 % faster.
    body = json.dumps(obj, separators=(",", ":"), check_circular=False).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, records)


def text_response(text: str, status: int = 200, headers: Mapping[str, str] | None = None, records: int = 0,
                  content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), {"Content-Type": content_type, **(headers or {})}, records)


def html_response(html: str, status: int = 200, headers: Mapping[str, str] | None = None, records: int = 0) -> Response:
    return text_response(html, status, headers, records, content_type="text/html; charset=utf-8")


def not_found() -> Response:
    return json_response(NOT_FOUND_BODY, status=404)


Handler = Callable[..., Response]
_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"\d+", int),
    "path": (r".+", str),
}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]
    handler: Handler
    faultable: bool = True

    @property
    def name(self) -> str:
        return f"{self.method} {self.pattern}"


def _compile(pattern: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], Any]]]:
    converters: dict[str, Callable[[str], Any]] = {}
    parts, last = [], 0
    for match in re.finditer(r"\{(\w+)(?::(\w+))?\}", pattern):
        name, kind = match.group(1), match.group(2) or "str"
        regex, convert = _CONVERTERS[kind]
        parts.append(re.escape(pattern[last:match.start()]))
        parts.append(f"(?P<{name}>{regex})")
        converters[name] = convert
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts) + "/?"), converters


def bearer_key(request: Request) -> str | None:
    return request.bearer_token()


class App:
    """A router. Patterns use `{name}`, `{name:int}` or `{name:path}`; handlers get the request + params."""

    def __init__(self, throttle_key: Callable[[Request], str | None] = bearer_key) -> None:
        self.routes: list[Route] = []
        self.throttle_key = throttle_key       # None = this request is not throttled
        self.on_start: list[Callable[[str], None]] = []   # called with the server's base URL once it listens

    def route(self, method: str, pattern: str, *, faultable: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add_route(method, pattern, handler, faultable=faultable)
            return handler
        return register

    def add_route(self, method: str, pattern: str, handler: Handler, *, faultable: bool = True,
                  first: bool = False) -> Route:
        """Add a route (`first`: ahead of the others, e.g. a test's hostile answer); returns it for removal."""
        regex, converters = _compile(pattern)
        route = Route(method.upper(), pattern, regex, converters, handler, faultable)
        if first:
            self.routes.insert(0, route)
        else:
            self.routes.append(route)
        return route

    def match(self, method: str, path: str) -> tuple[Route, dict[str, Any]] | None:
        for route in self.routes:
            if route.method != method:
                continue
            found = route.regex.fullmatch(path)
            if found:
                return route, {k: route.converters[k](v) for k, v in found.groupdict().items()}
        return None
