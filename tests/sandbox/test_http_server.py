"""The simulators' HTTP server: routing, keep-alive, cost headers, throttling, faults and concurrency."""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox.faults import FaultOptions
from sandbox.httpapp import App, Request, html_response, json_response
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.throttle import ThrottleOptions

FREE = CostModel(overhead_ms=0, per_record_ms=0)


def make_app() -> App:
    app = App()

    @app.route("GET", "/api/v1/courses/{course_id:int}")
    def course(request: Request, course_id: int):
        return json_response({"id": course_id, "per_page": request.last("per_page"),
                              "types": request.query.get("t[]", [])}, records=1)

    @app.route("POST", "/echo")
    def echo(request: Request):
        return json_response({"json": request.json(), "auth": request.bearer_token(),
                              "xid": request.headers.get("X-IBM-Client-Id")})

    @app.route("POST", "/form")
    def form(request: Request):
        return json_response(request.form())

    @app.route("GET", "/items")
    def items(request: Request):
        n = int(request.last("n", "0"))
        return json_response(list(range(n)), records=n)

    @app.route("GET", "/page")
    def page(request: Request):
        return html_response("<html><body>hello</body></html>")

    return app


@pytest.fixture
def server():
    with SimServer(make_app(), name="t", options=ServerOptions(cost=FREE)) as sim:
        yield sim


def test_routing_params_query_and_404(server):
    got = requests.get(f"{server.url}/api/v1/courses/12?per_page=5&t[]=a&per_page=7&t[]=b", timeout=5)
    assert got.json() == {"id": 12, "per_page": "7", "types": ["a", "b"]}
    missing = requests.get(f"{server.url}/api/v1/courses/abc", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"message": "The specified resource does not exist."}]}
    assert requests.get(f"{server.url}//api/v1//courses/3/", timeout=5).json()["id"] == 3
    snapshot = server.stats.snapshot()
    assert snapshot["requests_by_endpoint"] == {"GET /api/v1/courses/{course_id:int}": 2, "unmatched": 1}


def test_bodies_headers_and_bearer(server):
    echoed = requests.post(f"{server.url}/echo", json={"a": [1, 2]}, timeout=5,
                           headers={"Authorization": "Bearer s3cret", "x-ibm-client-id": "cid"}).json()
    assert echoed == {"json": {"a": [1, 2]}, "auth": "s3cret", "xid": "cid"}
    form = requests.post(f"{server.url}/form", data={"grant_type": "client_credentials", "scope": ""}, timeout=5)
    assert form.json() == {"grant_type": ["client_credentials"], "scope": [""]}


def test_keep_alive_serves_several_requests_on_one_connection(server):
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    for course_id in (1, 2, 3):
        conn.request("GET", f"/api/v1/courses/{course_id}")
        response = conn.getresponse()
        assert json.loads(response.read())["id"] == course_id
        assert response.getheader("Content-Length") is not None
    conn.close()


def test_64_concurrent_connections_are_served_at_once():
    app = App()
    barrier = threading.Barrier(64)

    @app.route("GET", "/wait")
    def wait(request: Request):
        barrier.wait(timeout=10)        # only returns once 64 handlers run at the same time
        return json_response({"ok": True})

    with SimServer(app, options=ServerOptions(cost=FREE)) as sim:
        with ThreadPoolExecutor(max_workers=64) as pool:
            statuses = list(pool.map(lambda _: requests.get(f"{sim.url}/wait", timeout=15).status_code, range(64)))
        assert statuses == [200] * 64
        assert sim.stats.snapshot()["peak_in_flight"] >= 64


def test_cost_model_charges_server_time_not_latency():
    options = ServerOptions(latency_ms=30, cost=CostModel(overhead_ms=10, per_record_ms=1),
                            throttle=ThrottleOptions(enabled=True, leak=0.001))
    with SimServer(make_app(), options=options) as sim:
        started = time.monotonic()
        got = requests.get(f"{sim.url}/items?n=20", headers={"Authorization": "Bearer tok"}, timeout=5)
        elapsed = time.monotonic() - started
        cost = float(got.headers["X-Request-Cost"])
        assert cost == pytest.approx((10 + 20 * 1) / 1000)
        assert elapsed >= 0.030 + cost
        assert float(got.headers["X-Rate-Limit-Remaining"]) == pytest.approx(600 - cost, abs=0.01)
        snap = sim.stats.snapshot()
        assert snap["charged_cost_s"] == pytest.approx(cost)
        assert snap["late_s"] < 0.025 and snap["late_max_s"] == pytest.approx(snap["late_s"])
        assert snap["throttle_bound_s"] == pytest.approx(cost / 0.001)
        assert snap["records"] == 20
        # no token -> no throttle key -> no throttle headers
        assert "X-Request-Cost" not in requests.get(f"{sim.url}/items?n=1", timeout=5).headers


def test_a_busy_simulator_moves_the_throttle_at_modelled_instants():
    # One request at a time fits (two up-front costs reach the hwm). The thread serving the first request wakes
    # 300 ms late from its server-time sleep (as in a simulator busy executing queries) although the model
    # charges 10 ms; a second request arriving 100 ms later reaches the server after the first's modelled
    # completion, so it is admitted, as on Canvas, and the first answer counts as late.
    throttle = ThrottleOptions(enabled=True, hwm=100, up_front=60, leak=1, maximum=200)
    app, oversleep = make_app(), threading.local()

    @app.route("GET", "/busy")
    def busy(request: Request):
        oversleep.seconds = 0.3
        return json_response({"busy": True})

    options = ServerOptions(cost=CostModel(overhead_ms=10, per_record_ms=0), throttle=throttle)
    with SimServer(app, options=options) as sim:
        sleep_until = sim._sleep_until

        def late_sleep_until(instant: float) -> None:
            sleep_until(instant)
            time.sleep(getattr(oversleep, "seconds", 0.0))
            oversleep.seconds = 0.0

        sim._sleep_until = late_sleep_until
        auth = {"Authorization": "Bearer tok"}
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(requests.get, f"{sim.url}/busy", headers=auth, timeout=5)
            time.sleep(0.1)
            second = requests.get(f"{sim.url}/items?n=1", headers=auth, timeout=5)
            assert second.status_code == 200
            assert first.result().status_code == 200
        assert float(first.result().headers["X-Request-Cost"]) == pytest.approx(0.010)
        snap = sim.stats.snapshot()
        assert snap["throttled"] == 0
        assert 0.25 < snap["late_max_s"] < 0.5 and snap["late_10ms"] == 1


@pytest.mark.parametrize(("status", "body"), [(429, b"429 Too Many Requests (Rate Limit Exceeded)\n"),
                                              (403, b"403 Forbidden (Rate Limit Exceeded)\n")])
def test_throttled_requests_are_refused_with_canvas_body_and_headers(status, body):
    # Two up-front costs reach the hwm: a second request while one is in flight is refused.
    throttle = ThrottleOptions(enabled=True, status=status, hwm=100, up_front=60, leak=1, maximum=200)
    options = ServerOptions(cost=CostModel(overhead_ms=300, per_record_ms=0), throttle=throttle)
    with SimServer(make_app(), options=options) as sim:
        auth = {"Authorization": "Bearer tok"}
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = pool.submit(requests.get, f"{sim.url}/items?n=1", headers=auth, timeout=5)
            time.sleep(0.1)
            refused = requests.get(f"{sim.url}/items?n=1", headers=auth, timeout=5)
            assert slow.result().status_code == 200
        assert refused.status_code == status and refused.content == body
        assert refused.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert "X-Request-Cost" not in refused.headers
        # Not Canvas's "0.0" placeholder: the bucket after the refusal, 60 (in flight) + ~0.0005 left by it.
        assert float(refused.headers["X-Rate-Limit-Remaining"]) == pytest.approx(100 - 60 - 0.0005, abs=0.3)
        assert sim.stats.snapshot()["throttled"] == 1


def test_cost_and_remaining_headers_are_printed_as_ruby_floats():
    options = ServerOptions(cost=CostModel(overhead_ms=40, per_record_ms=0),
                            throttle=ThrottleOptions(enabled=True))
    with SimServer(make_app(), options=options) as sim:
        got = requests.get(f"{sim.url}/items?n=1", headers={"Authorization": "Bearer tok"}, timeout=5)
    assert got.headers["X-Request-Cost"] == "0.04"
    remaining = got.headers["X-Rate-Limit-Remaining"]
    # 600 - (50 - leak x 0.04 + 0.04 - 50), clamped at 0 from below: 600.0 or a hair under, full precision.
    assert remaining == repr(float(remaining)) and 599.95 < float(remaining) <= 600.0


def fault_trace(seed: int, **rates: float) -> tuple[list[str], dict[str, int]]:
    options = ServerOptions(cost=FREE, seed=seed, faults=FaultOptions(**rates, slow_seconds=0.5))
    trace = []
    with SimServer(make_app(), options=options) as sim, requests.Session() as session:
        for i in range(60):
            try:
                got = session.get(f"{sim.url}/items?n={i % 7 + 1}", timeout=0.3)
                if got.status_code != 200:
                    trace.append(str(got.status_code))
                    continue
                try:
                    got.json()
                    trace.append(str(got.status_code))
                except ValueError:
                    trace.append("bad_json")
            except requests.exceptions.Timeout:
                trace.append("timeout")
            except requests.exceptions.ConnectionError:
                trace.append("conn")
        faults = sim.stats.snapshot()["faults"]
    return trace, faults


def test_faults_are_reproducible_over_http():
    rates = {"http500": 0.1, "http502_503": 0.1, "reset": 0.1, "bad_json": 0.1, "slow": 0.04}
    first, faults = fault_trace(5, **rates)
    again, faults_again = fault_trace(5, **rates)
    assert first == again and faults == faults_again
    for outcome in ("500", "conn", "bad_json", "timeout", "200"):
        assert outcome in first
    assert {"502", "503"} & set(first)
    assert sum(faults.values()) == sum(1 for t in first if t != "200")


def test_html_responses_are_never_corrupted_as_json(server):
    with SimServer(make_app(), options=ServerOptions(cost=FREE, faults=FaultOptions(bad_json=1.0))) as sim:
        assert requests.get(f"{sim.url}/page", timeout=5).text.endswith("</html>")
        assert sim.stats.snapshot()["faults"]["bad_json"] == 0


def test_handler_error_is_a_500_and_counted():
    app = App()

    @app.route("GET", "/boom")
    def boom(request: Request):
        raise RuntimeError("bug")

    with SimServer(app, options=ServerOptions(cost=FREE)) as sim:
        assert requests.get(f"{sim.url}/boom", timeout=5).status_code == 500
        assert sim.stats.snapshot()["handler_errors"] == 1
