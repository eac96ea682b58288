"""Outages: scheduled or started at will, on every route, not throttled or charged, counted, shared by hosts."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from sandbox.__main__ import build_parser, sandbox_options
from sandbox.httpapp import App, Request, json_response
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.outages import OutageMode, OutageOptions, OutageWindow
from sandbox.runner import Sandbox, SandboxOptions
from sandbox.throttle import ThrottleOptions
from tests.sandbox.test_canvas_rest import tiny_university

FREE = CostModel(overhead_ms=0, per_record_ms=0)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_a_scheduled_outage_begins_after_the_nth_request_and_ends_after_its_seconds():
    clock = Clock()
    window = OutageWindow(OutageOptions(after_requests=3, seconds=30, mode="503"), seed=1, clock=clock)
    assert [window.observe() for _ in range(3)] == [None] * 3
    assert window.observe() is OutageMode.HTTP503          # the 4th request: the window opens here
    clock.now += 29.9
    assert window.observe() is OutageMode.HTTP503 and window.down()
    clock.now += 0.1
    assert window.observe() is None and not window.down()
    assert [window.observe() for _ in range(50)] == [None] * 50   # it does not come back on its own


def test_the_mixed_mode_draws_502_503_and_drops_reproducibly():
    def kinds(seed: int) -> list[OutageMode | None]:
        window = OutageWindow(OutageOptions(after_requests=0, seconds=60), seed=seed, clock=Clock())
        return [window.observe() for _ in range(300)]

    first = kinds(7)
    assert first == kinds(7) and first != kinds(8)
    counts = Counter(first)
    assert set(counts) == {OutageMode.HTTP502, OutageMode.HTTP503, OutageMode.DROP}
    assert all(60 < n < 140 for n in counts.values())


def test_options_are_validated():
    with pytest.raises(ValueError):
        OutageOptions(seconds=0)
    with pytest.raises(ValueError):
        OutageOptions(mode="sometimes")
    with pytest.raises(ValueError):
        OutageWindow().begin(-1)


def make_app() -> App:
    app = App()

    @app.route("GET", "/thing")
    def thing(request: Request):
        return json_response({"ok": True}, records=1)

    @app.route("POST", "/oauth2/token")
    def token(request: Request):
        return json_response({"access_token": "t"})

    return app


def test_every_route_fails_during_an_outage_without_throttling_or_charging():
    # This throttle refuses every request: one up-front cost alone reaches the hwm.
    throttle = ThrottleOptions(enabled=True, hwm=10, up_front=20, leak=1, maximum=50)
    with SimServer(make_app(), options=ServerOptions(cost=CostModel(overhead_ms=5), throttle=throttle)) as sim:
        auth = {"Authorization": "Bearer tok"}
        assert requests.get(f"{sim.url}/thing", headers=auth, timeout=5).status_code == 429
        sim.begin_outage(0.6, mode="503")
        answers = [requests.get(f"{sim.url}/thing", headers=auth, timeout=5),
                   requests.post(f"{sim.url}/oauth2/token", timeout=5),
                   requests.get(f"{sim.url}/no/such/route", timeout=5)]
        assert [a.status_code for a in answers] == [503, 503, 503]
        assert all("X-Request-Cost" not in a.headers and "X-Rate-Limit-Remaining" not in a.headers for a in answers)
        assert "503 Service Unavailable" in answers[0].text
        assert answers[0].headers["Content-Type"].startswith("text/html")
        time.sleep(0.7)
        assert requests.post(f"{sim.url}/oauth2/token", timeout=5).status_code == 200
        stats = sim.stats.snapshot()
    assert stats["outage_failures"] == 3 and stats["outages"] == {"503": 3}
    # Only the token call served after the outage was charged (5 ms); the refusal and the failures were not.
    assert stats["throttled"] == 1 and stats["charged_cost_s"] == pytest.approx(0.005)
    assert stats["statuses"]["503"] == 3 and stats["requests"] == 5


def test_a_drop_outage_resets_connections():
    with SimServer(make_app(), options=ServerOptions(cost=FREE)) as sim:
        sim.begin_outage(5, mode=OutageMode.DROP)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{sim.url}/thing", timeout=5)
        assert sim.stats.snapshot()["statuses"] == {"reset": 1}


def test_a_sandbox_outage_takes_canvas_and_the_gateway_down_together_mid_run():
    options = SandboxOptions(services=(), cost=FREE, outage=OutageOptions(after_requests=2, seconds=0.8, mode="502"),
                             outage_hosts=("canvas", "gateway"))
    with Sandbox(tiny_university(), options) as sandbox:
        canvas, gateway = sandbox.servers["canvas"], sandbox.servers["gateway"]
        token = sandbox.config["CANVAS"]["CANVAS_TOKEN"]
        auth = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{canvas.url}/api/v1/accounts/1", headers=auth, timeout=5).status_code == 200
        assert requests.get(f"{canvas.url}/api/v1/accounts/2", headers=auth, timeout=5).status_code == 200
        # The third request either host receives opens the window for both: the token endpoint fails too.
        assert requests.get(f"{canvas.url}/api/v1/accounts/3", headers=auth, timeout=5).status_code == 502
        assert requests.post(f"{gateway.url}/aa/oauth2/token", data={"grant_type": "client_credentials"},
                             timeout=5).status_code == 502
        time.sleep(0.9)
        assert requests.get(f"{canvas.url}/api/v1/accounts/3", headers=auth, timeout=5).status_code == 200
        sandbox.outage(0.5, mode="503")                                    # imperatively, every host
        assert requests.get(f"{canvas.url}/api/v1/accounts/3", headers=auth, timeout=5).status_code == 503
        assert requests.post(f"{gateway.url}/aa/oauth2/token", timeout=5).status_code == 503
        with pytest.raises(ValueError, match="nope"):
            sandbox.outage(1, hosts=("nope",))
        assert sandbox.stats()["totals"]["outage_failures"] == 4


def test_outage_options_from_the_command_line():
    args = build_parser().parse_args(["serve", "--outage-after-requests", "500", "--outage-seconds", "30",
                                      "--outage-hosts", "canvas", "gateway", "--outage-mode", "drop"])
    options = sandbox_options(args, env_file=None, udw_dbname=None, inventory_dbname=None)
    assert options.outage == OutageOptions(after_requests=500, seconds=30, mode=OutageMode.DROP)
    assert options.outage_hosts == ("canvas", "gateway")
    default = sandbox_options(build_parser().parse_args(["serve"]), env_file=None, udw_dbname=None,
                              inventory_dbname=None)
    assert default.outage.after_requests is None and default.outage_hosts is None
