"""clients/canvas.py: settings, gateway OAuth, token handling, Link pagination and GraphQL — no sockets."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

import environ
from clients.canvas import CanvasClient, CanvasSettings, connection_page, graphql_result
from source_settings import canvas_settings
from tests.conftest import write_config
from vocab import ConfigError, FatalSourceError, SourceFormatError

CANVAS_URL = "https://canvas.test"
GATEWAY_URL = "https://gw.test/um"
TOKEN_URL = f"{GATEWAY_URL}/aa/oauth2/token"
CANVAS_TOKEN = "canvas-SECRET-token"
CLIENT_SECRET = "gw-SECRET-secret"

INVENTORY_DB = {"host": "db.test", "port": 3306, "dbname": "inventory", "user": "u", "password": ""}
ENV = {
    "MAX_REQ_ATTEMPTS": 2,
    "NUM_ASYNC_WORKERS": 4,
    "CANVAS": {
        "CANVAS_ACCOUNT_ID": 1, "CANVAS_TERM_IDS": [7, 8], "ADD_COURSE_IDS": [],
        "API_BASE_URL": GATEWAY_URL + "/", "API_SCOPE_PREFIX": "aa/CanvasReadOnly",
        "API_SUBSCRIPTION_NAME": "canvasreadonly", "API_CLIENT_ID": "gw-client", "API_CLIENT_SECRET": CLIENT_SECRET,
        "CANVAS_URL": CANVAS_URL, "CANVAS_TOKEN": CANVAS_TOKEN,
    },
}


def make_response(status: int, body: object, url: str, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = url
    return response


class FakeServer:
    """A session whose answers come from `handler(method, full_url, kwargs)`; records every call."""

    def __init__(self, handler: Callable[[str, str, dict], requests.Response]) -> None:
        self.handler, self.calls, self._lock = handler, [], threading.Lock()

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        full = requests.Request(method, url, params=kwargs.get("params")).prepare().url
        with self._lock:
            self.calls.append((method, full, kwargs))
        return self.handler(method, full, kwargs)

    def close(self) -> None:
        pass

    def paths(self) -> list[str]:
        return [urlsplit(url).path for _, url, _ in self.calls]


def make_client(handler, clock: Callable[[], float] | None = None) -> tuple[CanvasClient, FakeServer]:
    server = FakeServer(handler)
    client = CanvasClient(canvas_settings(environ.with_defaults(ENV)), session=server, sleep=lambda _: None,
                          clock=clock or (lambda: 0.0), rng=random.Random(3))
    return client, server


def token_answer(token: str = "gw-token-1", expires_in: int = 3600) -> requests.Response:
    return make_response(200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in}, TOKEN_URL)


# ---- settings ----
def test_settings_from_env_and_secrets_hidden_from_repr():
    settings = canvas_settings(environ.with_defaults(ENV))
    assert settings.api_base_url == GATEWAY_URL and settings.term_ids == (7, 8)
    assert settings.policy.max_attempts == 2 and settings.num_workers == 4 and settings.gateway_configured
    assert CANVAS_TOKEN not in repr(settings) and CLIENT_SECRET not in repr(settings)
    assert "gw-client" not in repr(settings)


def test_settings_defaults_and_errors_name_keys_not_values(tmp_path):
    minimal = {"CANVAS": {"CANVAS_URL": CANVAS_URL, "CANVAS_TOKEN": CANVAS_TOKEN, "CANVAS_TERM_IDS": [7]}}
    settings = canvas_settings(environ.with_defaults(minimal))     # the schema's defaults, as a run gets them
    assert (settings.policy.max_attempts, settings.num_workers, settings.account_id) == (3, 8, 1)
    assert not settings.gateway_configured
    bad = {"JOB_NAMES": ["COURSE_INVENTORY"], "INVENTORY_DB": INVENTORY_DB,
           "NUM_ASYNC_WORKERS": 0, "CANVAS": {"CANVAS_URL": CANVAS_URL, "CANVAS_TOKEN": "",
                                              "CANVAS_TERM_IDS": ["x"], "API_CLIENT_SECRET": 42}}
    with pytest.raises(ConfigError) as info:                       # the schema names keys, never values
        environ.load_env(write_config(tmp_path, bad))
    text = str(info.value)
    assert "CANVAS_TOKEN" in text and "CANVAS_TERM_IDS" in text and "NUM_ASYNC_WORKERS" in text
    assert "42" not in text


def test_gateway_call_without_gateway_config_is_a_config_error():
    client = CanvasClient(CanvasSettings(canvas_url=CANVAS_URL, canvas_token="t"), session=FakeServer(None))
    with pytest.raises(ConfigError):
        client.gateway_get("accounts/1")


# ---- gateway OAuth ----
def test_gateway_token_fetched_once_and_sent_with_gateway_headers():
    def handler(method, url, kwargs):
        if url == TOKEN_URL:
            return token_answer()
        return make_response(200, {"id": 1}, url)

    client, server = make_client(handler)
    for _ in range(3):
        assert client.gateway_get("accounts/1") == {"id": 1}
    token_calls = [c for c in server.calls if c[1] == TOKEN_URL]
    assert len(token_calls) == 1
    method, _, kwargs = token_calls[0]
    assert method == "POST" and kwargs["data"] == {"grant_type": "client_credentials", "client_id": "gw-client",
                                                   "client_secret": CLIENT_SECRET, "scope": "canvasreadonly"}
    _, url, kwargs = server.calls[1]
    assert url == f"{GATEWAY_URL}/aa/CanvasReadOnly/accounts/1"
    assert kwargs["headers"]["Authorization"] == "Bearer gw-token-1"
    assert kwargs["headers"]["x-ibm-client-id"] == "gw-client"
    assert kwargs["headers"]["accept"] == "application/json"


def test_gateway_token_renewed_shortly_before_expiry():
    now = [0.0]
    tokens = iter(["tok-a", "tok-b"])

    def handler(method, url, kwargs):
        if url == TOKEN_URL:
            return token_answer(next(tokens), expires_in=600)
        return make_response(200, {"auth": kwargs["headers"]["Authorization"]}, url)

    client, _ = make_client(handler, clock=lambda: now[0])
    assert client.gateway_get("accounts/1")["auth"] == "Bearer tok-a"
    now[0] = 500.0                      # well inside the lifetime
    assert client.gateway_get("accounts/1")["auth"] == "Bearer tok-a"
    now[0] = 545.0                      # within the renewal margin (60 s) before 600 s
    assert client.gateway_get("accounts/1")["auth"] == "Bearer tok-b"


def test_gateway_401_renews_token_once_then_gives_up():
    tokens = iter(["stale", "fresh", "fresher"])

    def handler(method, url, kwargs):
        if url == TOKEN_URL:
            return token_answer(next(tokens))
        if kwargs["headers"]["Authorization"] == "Bearer stale":
            return make_response(401, {"error": "expired"}, url)
        return make_response(200, {"ok": True}, url)

    client, server = make_client(handler)
    assert client.gateway_get("accounts/1") == {"ok": True}
    assert sum(url == TOKEN_URL for _, url, _ in server.calls) == 2

    always_401, _ = make_client(lambda m, u, k: token_answer() if u == TOKEN_URL else make_response(401, {}, u))
    with pytest.raises(FatalSourceError) as info:
        always_401.gateway_get("accounts/1")
    assert info.value.status == 401


def test_gateway_token_shared_by_threads():
    def handler(method, url, kwargs):
        return token_answer() if url == TOKEN_URL else make_response(200, {"id": url[-1]}, url)

    client, server = make_client(handler)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda n: client.gateway_get(f"accounts/{n}"), range(1, 10)))
    assert len(done) == 9 and sum(url == TOKEN_URL for _, url, _ in server.calls) == 1


def test_gateway_token_refusal_is_fatal_without_secrets():
    client, _ = make_client(lambda m, u, k: make_response(401, {"error": "invalid_client"}, u))
    with pytest.raises(FatalSourceError) as info:
        client.gateway_get("accounts/1")
    assert CLIENT_SECRET not in str(info.value) and "oauth2/token" in str(info.value)


# ---- Canvas REST ----
def test_canvas_token_only_in_authorization_header():
    client, server = make_client(lambda m, u, k: make_response(200, [], u))
    client.get("courses/5/tabs")
    method, url, kwargs = server.calls[0]
    assert url == f"{CANVAS_URL}/api/v1/courses/5/tabs"
    assert kwargs["headers"]["Authorization"] == f"Bearer {CANVAS_TOKEN}"
    assert CANVAS_TOKEN not in url and CANVAS_TOKEN not in json.dumps(kwargs.get("params"))
    assert kwargs.get("data") is None and kwargs.get("json") is None


def test_absolute_url_elsewhere_never_gets_the_token():
    client, server = make_client(lambda m, u, k: make_response(200, {}, u))
    client.get(f"{CANVAS_URL}/api/v1/courses/5/external_tools/sessionless_launch?id=3")
    with pytest.raises(SourceFormatError):
        client.get("https://evil.test/api/v1/courses/5")
    assert len(server.calls) == 1


def paged_handler(pages: int, next_of: Callable[[int], str | None] | None = None):
    def handler(method, url, kwargs):
        page = int(parse_qs(urlsplit(url).query).get("page", ["1"])[0])
        nxt = next_of(page) if next_of else (f"{CANVAS_URL}/api/v1/x?page={page + 1}&per_page=100"
                                            if page < pages else None)
        links = f'<{url}>; rel="current"' + (f',<{nxt}>; rel="next"' if nxt else "")
        return make_response(200, [{"id": page * 10 + i} for i in range(3)], url, {"Link": links})
    return handler


def test_link_pagination_follows_next_until_the_end():
    client, server = make_client(paged_handler(4))
    pages = list(client.paginate("x", {"enrollment_term_id": 7, "include[]": ["total_students"]}))
    assert [row["id"] for page in pages for row in page] == [p * 10 + i for p in range(1, 5) for i in range(3)]
    first = parse_qs(urlsplit(server.calls[0][1]).query)
    assert first == {"per_page": ["100"], "enrollment_term_id": ["7"], "include[]": ["total_students"]}
    assert server.calls[1][2].get("params") is None    # later pages use the link as given


def test_link_pagination_loop_guard():
    client, _ = make_client(paged_handler(9, next_of=lambda page: f"{CANVAS_URL}/api/v1/x?page=2&per_page=100"))
    with pytest.raises(SourceFormatError, match="loop"):
        list(client.paginate("x"))


def test_link_pagination_refuses_foreign_next():
    client, server = make_client(paged_handler(3, next_of=lambda page: "https://evil.test/api/v1/x?page=2"))
    with pytest.raises(SourceFormatError):
        list(client.paginate("x"))
    assert len(server.calls) == 1


def courses_on_gateway(link_base: str | None):
    """Gateway answers to the course listing whose next links start with `link_base` (None: no next link)."""
    def handler(method, url, kwargs):
        if url == TOKEN_URL:
            return token_answer()
        query = parse_qs(urlsplit(url).query)
        page = int(query.get("page", ["1"])[0])
        nxt = f"{link_base}/accounts/1/courses?enrollment_term_id=7&page={page + 1}&per_page=100"
        links = f'<{nxt}>; rel="next"' if page < 3 and link_base else ""
        return make_response(200, [page], url, {"Link": links})
    return handler


@pytest.mark.parametrize("link_base", [f"{CANVAS_URL}/api/v1",                     # Canvas's own links, passed on
                                       f"{GATEWAY_URL}/aa/CanvasReadOnly",          # a gateway that rewrites them
                                       "https://canvas-prod.instructure.test/api/v1"])   # Canvas's other host name
def test_gateway_pagination_asks_the_gateway_for_every_page(link_base):
    client, server = make_client(courses_on_gateway(link_base))
    assert list(client.gateway_paginate("accounts/1/courses", {"enrollment_term_id": 7})) == [[1], [2], [3]]
    pages = [c for c in server.calls if c[1] != TOKEN_URL]
    assert [urlsplit(url).netloc for _, url, _ in pages] == ["gw.test"] * 3
    assert {urlsplit(url).path for _, url, _ in pages} == {"/um/aa/CanvasReadOnly/accounts/1/courses"}
    assert parse_qs(urlsplit(pages[2][1]).query) == {"enrollment_term_id": ["7"], "page": ["3"], "per_page": ["100"]}
    for _, _, kwargs in pages:      # the gateway's headers; the Canvas token never leaves for the gateway
        assert kwargs["headers"]["x-ibm-client-id"] == "gw-client"
        assert kwargs["headers"]["Authorization"] == "Bearer gw-token-1"
        assert CANVAS_TOKEN not in json.dumps(kwargs)


@pytest.mark.parametrize("link", [f"{CANVAS_URL}/api/v1/accounts/1/users?page=2",           # another collection
                                  f"{GATEWAY_URL}/aa/CanvasReadOnly/accounts/2/courses?page=2",
                                  "https://evil.test/not-canvas/accounts/1/courses?page=2"])  # not an API URL
def test_gateway_pagination_refuses_a_link_to_anything_else(link):
    def handler(method, url, kwargs):
        if url == TOKEN_URL:
            return token_answer()
        return make_response(200, [1], url, {"Link": f'<{link}>; rel="next"'})

    client, server = make_client(handler)
    with pytest.raises(SourceFormatError, match="next page link"):
        list(client.gateway_paginate("accounts/1/courses"))
    assert all(urlsplit(url).netloc == "gw.test" for _, url, _ in server.calls)


def test_canvas_pagination_never_sends_the_token_elsewhere():
    client, server = make_client(courses_on_gateway(f"{GATEWAY_URL}/aa/CanvasReadOnly"))
    with pytest.raises(SourceFormatError, match="refusing to send the Canvas token"):
        list(client.paginate("accounts/1/courses"))
    assert [urlsplit(url).netloc for _, url, _ in server.calls] == ["canvas.test"]


# ---- GraphQL ----
def test_graphql_errors_without_data_are_fatal_and_beside_data_are_returned():
    with pytest.raises(FatalSourceError, match="Parse error"):
        graphql_result({"errors": [{"message": "Parse error on \"}\" (RCURLY) at [3, 1]"}]})
    with pytest.raises(FatalSourceError, match="max query aliases exceeded"):
        graphql_result({"errors": [{"message": "max query aliases exceeded"}]})
    with pytest.raises(FatalSourceError):
        graphql_result({"data": None, "errors": [{"message": "user authorization required"}]})
    with pytest.raises(SourceFormatError):
        graphql_result(["not", "an", "object"])
    result = graphql_result({"data": {"course": None}, "errors": [{"message": "boom", "path": ["course"]}]})
    assert result.data == {"course": None} and result.errors == ("boom",)
    assert graphql_result({"data": {"course": {"_id": "1"}}}).errors == ()


def test_graphql_request_shape():
    def handler(method, url, kwargs):
        return make_response(200, {"data": {"echo": kwargs["json"]}}, url)

    client, server = make_client(handler)
    data = client.graphql("query { x }", {"a": 1}, operation_name="Op").data
    assert data["echo"] == {"query": "query { x }", "variables": {"a": 1}, "operationName": "Op"}
    method, url, kwargs = server.calls[0]
    assert (method, url) == ("POST", f"{CANVAS_URL}/api/graphql")
    assert kwargs["headers"]["Authorization"] == f"Bearer {CANVAS_TOKEN}"


def test_an_urgent_graphql_request_takes_the_canvas_limiters_urgent_lane(monkeypatch: pytest.MonkeyPatch):
    client, _ = make_client(lambda method, url, kwargs: make_response(200, {"data": {}}, url))
    lanes: list[tuple[bool, float | None]] = []
    slot = client.canvas_limiter.slot

    def noted_slot(*, urgent: bool = False, kind: str = "", size: float | None = None):
        lanes.append((urgent, size))
        return slot(urgent=urgent, kind=kind, size=size)

    monkeypatch.setattr(client.canvas_limiter, "slot", noted_slot)
    client.graphql("query { x }", urgent=True, expected_rows=120)
    client.graphql("query { x }")
    assert lanes == [(True, 120), (False, None)]       # the expected rows go to the limiter's forecast too


def test_connection_page_validates_shape():
    with pytest.raises(SourceFormatError):
        connection_page({"course": {"enrollmentsConnection": {"nodes": []}}}, ("course", "enrollmentsConnection"))
    with pytest.raises(SourceFormatError):
        connection_page({"c": {"e": {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}}}, ("c", "e"))
    assert connection_page({"c": {"e": {"nodes": [1], "pageInfo": {"hasNextPage": False}}}}, ("c", "e")) == ([1], None)
