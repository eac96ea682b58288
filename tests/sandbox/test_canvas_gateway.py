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


@pytest.fixture(scope="module")
def gateway(clock):
    rest = CanvasRest(tiny_university(), CanvasOptions())
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


def test_gateway_answers_like_canvas_with_gateway_links(gateway):
    token = get_token(gateway).json()["access_token"]
    assert call(gateway, "/accounts/1/terms/7", token).json()["sis_term_id"] == "2310"
    assert call(gateway, "/accounts/4", token).json()["name"] == "Other"
    page = call(gateway, "/accounts/1/courses?per_page=5&enrollment_term_id=7", token)
    assert len(page.json()) == 5
    assert f'<{gateway.url}/aa/CanvasReadOnly/accounts/1/courses?enrollment_term_id=7&page=2&per_page=5>; rel="next"' \
        in page.headers["Link"]
    assert call(gateway, "/accounts/99", token).status_code == 404


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
