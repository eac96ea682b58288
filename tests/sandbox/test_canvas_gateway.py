"""API gateway simulator: OAuth client credentials, token expiry, header checks, Canvas-shaped answers."""

from __future__ import annotations

import pytest
import requests

from sandbox.canvas_rest import CanvasOptions, CanvasRest
from sandbox.gateway import GatewayOptions, build_gateway_app
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from tests.sandbox.test_canvas_rest import tiny_university

OPTIONS = GatewayOptions(client_id="cid", client_secret="shh", scope="canvasreadonly",
                         scope_prefix="aa/CanvasReadOnly", token_ttl=100)


class Clock:
    def __init__(self) -> None:
        self.now = 1_600_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


CANVAS_URL = "http://canvas.example.edu:8443"


@pytest.fixture(scope="module")
def gateway(clock):
    rest = CanvasRest(tiny_university(), CanvasOptions())
    rest.set_base_url(CANVAS_URL)              # what Canvas's server start does (build_canvas_app)
    app, _ = build_gateway_app(rest, OPTIONS, clock=clock)
    with SimServer(app, name="gateway", options=ServerOptions(cost=CostModel(0, 0))) as server:
        yield server


def get_token(server: SimServer, **overrides: str) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "shh", "scope": "canvasreadonly"}
    return requests.post(f"{server.url}/aa/oauth2/token", data={**form, **overrides}, timeout=5)


def call(server: SimServer, path: str, token: str | None, client_id: str | None = "cid") -> requests.Response:
    headers = {"accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if client_id is not None:
        headers["x-ibm-client-id"] = client_id
    return requests.get(f"{server.url}/aa/CanvasReadOnly{path}", headers=headers, timeout=5)


def test_token_endpoint_issues_bearer_tokens(gateway):
    body = get_token(gateway).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 100 and body["scope"] == "canvasreadonly"
    assert body["access_token"] != get_token(gateway).json()["access_token"]


@pytest.mark.parametrize(("overrides", "status", "error"), [
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"client_id": "other"}, 401, "invalid_client"),
    ({"scope": "canvasreadwrite"}, 400, "invalid_scope"),
    ({"grant_type": "password"}, 400, "unsupported_grant_type"),
])
def test_token_endpoint_refuses_bad_requests(gateway, overrides, status, error):
    got = get_token(gateway, **overrides)
    assert got.status_code == status and got.json()["error"] == error
    assert "shh" not in got.text


def test_gateway_passes_canvas_answers_on_with_canvas_links(gateway):
    token = get_token(gateway).json()["access_token"]
    assert call(gateway, "/accounts/1/terms/7", token).json()["sis_term_id"] == "2310"
    assert call(gateway, "/accounts/4", token).json()["name"] == "Other"
    page = call(gateway, "/accounts/1/courses?per_page=5&enrollment_term_id=7&include=total_students", token)
    assert len(page.json()) == 5 and "total_students" in page.json()[0]
    # Canvas's own URL helper builds the links: its host, /api/v1, not the gateway's prefix.
    assert (f'<{CANVAS_URL}/api/v1/accounts/1/courses?enrollment_term_id=7&include=total_students&page=2'
            '&per_page=5>; rel="next"') in page.headers["Link"]
    assert page.json()[0]["calendar"]["ics"].startswith(f"{CANVAS_URL}/feeds/")
    assert call(gateway, "/accounts/99", token).status_code == 404


def test_rewritten_gateway_links_stay_available_as_an_option(clock):
    rest = CanvasRest(tiny_university(), CanvasOptions())
    options = GatewayOptions(client_id="cid", client_secret="shh", rewrite_links=True)
    app, _ = build_gateway_app(rest, options, clock=clock)
    with SimServer(app, name="gateway", options=ServerOptions(cost=CostModel(0, 0))) as server:
        token = get_token(server).json()["access_token"]
        page = call(server, "/accounts/1/courses?per_page=5&enrollment_term_id=7", token)
        assert (f'<{server.url}/aa/CanvasReadOnly/accounts/1/courses?enrollment_term_id=7&page=2&per_page=5>; '
                'rel="next"') in page.headers["Link"]


def test_the_gateway_learns_canvas_s_url_when_canvas_starts():
    from sandbox.canvas_rest import build_canvas_app

    canvas_app, rest = build_canvas_app(tiny_university(), CanvasOptions())
    gateway_app, gateway = build_gateway_app(rest, OPTIONS)
    with SimServer(canvas_app, options=ServerOptions(cost=CostModel(0, 0))) as canvas, \
            SimServer(gateway_app, options=ServerOptions(cost=CostModel(0, 0))) as server:
        token = get_token(server).json()["access_token"]
        page = call(server, "/accounts/1/courses?per_page=5", token)
        assert page.headers["Link"].startswith(f"<{canvas.url}/api/v1/accounts/1/courses?page=1&per_page=5>")
        gateway.canvas_base_url = "https://canvas.umich.example"
        assert call(server, "/accounts/1/courses?per_page=5", token).headers["Link"].startswith(
            "<https://canvas.umich.example/api/v1/accounts/1/courses?")


def test_gateway_requires_token_and_client_id_header(gateway):
    token = get_token(gateway).json()["access_token"]
    assert call(gateway, "/accounts/1", None).status_code == 401
    assert call(gateway, "/accounts/1", "forged").status_code == 401
    assert call(gateway, "/accounts/1", token, client_id=None).status_code == 401
    assert call(gateway, "/accounts/1", token, client_id="other").status_code == 401
    assert call(gateway, "/accounts/1", token).status_code == 200


def test_tokens_expire_after_ttl(gateway, clock):
    token = get_token(gateway).json()["access_token"]
    clock.now += 99
    assert call(gateway, "/accounts/1", token).status_code == 200
    clock.now += 2
    expired = call(gateway, "/accounts/1", token)
    assert expired.status_code == 401 and expired.json()["httpCode"] == "401"
    assert call(gateway, "/accounts/1", get_token(gateway).json()["access_token"]).status_code == 200
