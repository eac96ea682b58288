"""CanvasClient against a local Canvas-like server (sandbox.httpserver) with the leaky-bucket throttle and faults.

The app here is deliberately small (paged lists, a GraphQL connection, a gateway with OAuth) so the test is about
the client: no page lost or duplicated, refusals rare, concurrency bounded, tokens renewed.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clients.canvas import CanvasClient, CanvasSettings, connection_page
from clients.http import Timeouts
from clients.retry import RetryPolicy
from environ import with_defaults
from sandbox.faults import FaultOptions
from sandbox.generator import generate_university
from sandbox.httpapp import App, Request, Response, json_response
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.runner import Sandbox, SandboxOptions
from sandbox.throttle import ThrottleOptions
from sandbox.university import University
from source_settings import canvas_settings
from vocab import FatalSourceError

pytestmark = pytest.mark.integration

TOKEN = "sim-canvas-token"
COURSES = range(101, 131)          # 30 courses
ITEMS_PER_COURSE = 37              # 4 pages of 10
CEILING = 16                       # above what the bucket admits: the limiter has to find the level
FAULTS = FaultOptions(http500=0.02, http502_503=0.02, reset=0.02, bad_json=0.03, slow=0.01, slow_seconds=1.5)


def run_all(fn, items, workers: int = CEILING) -> dict[Any, Any]:
    """fn over items on a thread pool (the client's limiter gates the real requests): item -> result."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(items, pool.map(fn, items), strict=True))


def graphql_pages(client: CanvasClient, query: str, variables: Mapping[str, Any]) -> Iterator[list[Any]]:
    """Nodes of each page of `course.enrollmentsConnection`, following its cursor (variable `cursor`)."""
    current = {"cursor": None, **variables}
    while True:
        nodes, cursor = connection_page(client.graphql(query, current).data, ("course", "enrollmentsConnection"))
        yield nodes
        if cursor is None:
            return
        current["cursor"] = cursor


def item_ids(course_id: int) -> list[int]:
    return [course_id * 1000 + n for n in range(ITEMS_PER_COURSE)]


def canvas_app() -> App:
    app = App()

    @app.route("GET", "/api/v1/courses/{course_id:int}/items")
    def items(request: Request, course_id: int) -> Response:
        if request.bearer_token() != TOKEN:
            return json_response({"errors": [{"message": "Invalid access token."}]}, status=401)
        page, per_page = int(request.last("page", "1")), int(request.last("per_page", "10"))
        rows = item_ids(course_id)[(page - 1) * per_page: page * per_page]
        base = f"{request.base_url}{request.path}"
        links = [f'<{base}?page={page}&per_page={per_page}>; rel="current"']
        if page * per_page < ITEMS_PER_COURSE:
            links.append(f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
        return json_response([{"id": i} for i in rows], headers={"Link": ",".join(links)}, records=len(rows))

    @app.route("POST", "/api/graphql")
    def graphql(request: Request) -> Response:
        variables = request.json()["variables"]
        ids = item_ids(int(variables["courseID"]))
        start = int(variables["cursor"] or 0)
        nodes = [{"_id": str(i)} for i in ids[start:start + 10]]
        info = {"endCursor": str(start + 10), "hasNextPage": start + 10 < len(ids)}
        return json_response({"data": {"course": {"enrollmentsConnection": {"nodes": nodes, "pageInfo": info}}}},
                             records=len(nodes))

    return app


def gateway_app(revoke_after: int) -> App:
    """OAuth token endpoint plus one resource; the first token is revoked after `revoke_after` uses."""
    app = App()
    issued = itertools.count(1)
    uses: Counter[str] = Counter()
    lock = threading.Lock()

    @app.route("POST", "/um/aa/oauth2/token")
    def token(request: Request) -> Response:
        form = request.form()
        if form.get("client_secret") != ["sim-secret"] or form.get("grant_type") != ["client_credentials"]:
            return json_response({"error": "invalid_client"}, status=401)
        return json_response({"access_token": f"gw-{next(issued)}", "token_type": "bearer", "expires_in": 3600})

    @app.route("GET", "/um/aa/CanvasReadOnly/accounts/{account_id:int}")
    def account(request: Request, account_id: int) -> Response:
        token = request.bearer_token() or ""
        with lock:
            uses[token] += 1
            revoked = token == "gw-1" and uses[token] > revoke_after
        if not token.startswith("gw-") or revoked or request.headers.get("x-ibm-client-id") != "sim-client":
            return json_response({"httpCode": "401", "moreInformation": "invalid token"}, status=401)
        return json_response({"id": account_id, "name": f"Account {account_id}"}, records=1)

    return app


def serve(app: App, *, throttle_status: int = 403, faults: FaultOptions = FAULTS) -> SimServer:
    options = ServerOptions(latency_ms=2, jitter_ms=3, seed=7, faults=faults, cost=CostModel(overhead_ms=40),
                            throttle=ThrottleOptions(enabled=True, status=throttle_status))
    return SimServer(app, name="canvas-test", options=options)


def client_for(canvas_url: str, gateway_url: str = "", config: Mapping[str, Any] | None = None) -> CanvasClient:
    env = {
        "MAX_REQ_ATTEMPTS": 3,   # the sandbox lets a request through after 2 faults in a row
        "NUM_ASYNC_WORKERS": CEILING,
        "CANVAS": {"CANVAS_URL": canvas_url, "CANVAS_TOKEN": TOKEN, "CANVAS_TERM_IDS": [1], "API_BASE_URL": gateway_url,
                   "API_SCOPE_PREFIX": "aa/CanvasReadOnly", "API_SUBSCRIPTION_NAME": "canvasreadonly",
                   "API_CLIENT_ID": "sim-client", "API_CLIENT_SECRET": "sim-secret"},
    }
    if config is not None:
        env["CANVAS"] = config["CANVAS"]
    settings = canvas_settings(with_defaults(env), timeouts=Timeouts(connect=2.0, read=0.8))   # < slow fault
    return CanvasClient(settings, policy=RetryPolicy(max_attempts=3, backoff_initial=0.05, throttle_initial=0.2))


@pytest.fixture
def canvas_server(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    with serve(canvas_app(), throttle_status=getattr(request, "param", 403)) as server:
        yield server


@pytest.mark.parametrize("canvas_server", [403, 429], indirect=True)
def test_pages_complete_under_busy_bucket_and_faults(canvas_server: SimServer):
    # Another consumer of the same token has already filled 400 of the 600 units: ~4 requests fit at first.
    canvas_server.throttle.finish(canvas_server.throttle.begin(TOKEN), 400.0)
    with client_for(canvas_server.url) as client:
        def fetch(course_id: int) -> list[int]:
            return [row["id"] for page in client.paginate(f"courses/{course_id}/items", {"per_page": 10})
                    for row in page]

        fetched = run_all(fetch, COURSES)
        stats = client.stats.snapshot()

    assert fetched == {course: item_ids(course) for course in COURSES}   # nothing lost, duplicated or reordered
    server = canvas_server.stats.snapshot()
    pages = len(COURSES) * -(-ITEMS_PER_COURSE // 10)
    assert sum(server["faults"].values()) >= 5                  # the run really went through faults...
    assert stats.retries >= sum(server["faults"].values()) - server["faults"]["slow"]
    assert stats.throttled == server["throttled"]               # ...and every refusal was seen and retried
    assert stats.throttled <= 0.1 * pages                       # refusals stay rare
    assert server["peak_in_flight"] <= CEILING
    assert stats.requests["rest"] == server["requests"] and stats.errors == 0
    # Every admitted answer reported its cost, except connections the server reset (~overhead each).
    unseen_cost = (server["faults"]["reset"] + server["faults"]["slow"]) * 0.05   # reset, or timed out first
    assert server["charged_cost_s"] - unseen_cost - 1e-3 <= stats.cost <= server["charged_cost_s"] + 1e-3


def test_limiter_keeps_refusals_rare_on_an_empty_bucket():
    with serve(canvas_app(), faults=FaultOptions()) as server, client_for(server.url) as client:
        def fetch(course_id: int) -> int:
            return sum(len(page) for page in client.paginate(f"courses/{course_id}/items", {"per_page": 10}))

        with ThreadPoolExecutor(max_workers=CEILING) as pool:
            counts = list(pool.map(fetch, itertools.chain(COURSES, COURSES)))
        snapshot = server.stats.snapshot()
    assert counts == [ITEMS_PER_COURSE] * 2 * len(COURSES)
    # Paced on X-Rate-Limit-Remaining: refusals stay rare, and the limiter does use the room it has. Unpaced,
    # 16 in flight would keep ~15 requests inside a server that admits 12 and be refused all along; paced, a
    # stall of this process (client and server share its interpreter) costs a burst of 3-4 of ~240.
    assert snapshot["throttled"] <= 0.03 * snapshot["requests"]
    assert client.canvas_limiter.peak_in_flight >= 6


def test_graphql_connection_pages_through_faults(canvas_server: SimServer):
    query = "query($courseID: ID!, $cursor: String) { course(id: $courseID) { enrollmentsConnection(first: 10, " \
            "after: $cursor) { nodes { _id } pageInfo { endCursor hasNextPage } } } }"
    with client_for(canvas_server.url) as client:
        def fetch(course_id: int) -> list[int]:
            pages = graphql_pages(client, query, {"courseID": str(course_id)})
            return [int(node["_id"]) for nodes in pages for node in nodes]

        fetched = run_all(fetch, COURSES[:12])
    assert fetched == {course: item_ids(course) for course in COURSES[:12]}
    assert canvas_server.stats.snapshot()["faults"]["bad_json"] >= 1


def test_gateway_token_is_shared_and_renewed_after_revocation():
    with serve(gateway_app(revoke_after=10), faults=FaultOptions()) as gateway, \
            serve(canvas_app(), faults=FaultOptions()) as canvas, \
            client_for(canvas.url, gateway_url=f"{gateway.url}/um") as client:
        accounts = list(run_all(client.gateway_get, (f"accounts/{n}" for n in range(1, 41))).values())
        by_endpoint = gateway.stats.snapshot()["requests_by_endpoint"]
    assert sorted(a["id"] for a in accounts) == list(range(1, 41))
    assert by_endpoint["POST /um/aa/oauth2/token"] == 2          # one token for all threads, one renewal
    assert client.stats.snapshot().requests["oauth"] == 2


def test_secrets_never_reach_logs(canvas_server: SimServer, caplog: pytest.LogCaptureFixture):
    caplog.set_level("DEBUG")
    with client_for(canvas_server.url) as client:
        run_all(lambda c: list(client.paginate(f"courses/{c}/items")), COURSES[:10])
    assert TOKEN not in caplog.text and "sim-secret" not in caplog.text
    assert json.dumps(TOKEN) not in repr(client.settings)


# ---- against the sandbox's Canvas, GraphQL and gateway simulators ----
ENROLLMENTS_QUERY = """
query CourseEnrollments($courseID: ID!, $pageSize: Int!, $cursor: String) {
  course(id: $courseID) {
    enrollmentsConnection(first: $pageSize, after: $cursor) {
      nodes { _id state type section { _id name } user { _id } course { _id } }
      pageInfo { endCursor hasNextPage }
    }
  }
}"""


@pytest.fixture(scope="module")
def university() -> University:
    return generate_university("small", seed=11)


def listed_course_ids(u: University, term_id: int) -> list[int]:
    """What accounts/:id/courses?with_enrollments=true&enrollment_type[]=student,teacher returns (protocol C.7)."""
    subtree = u.subaccount_ids[u.root_account_id]
    return [c.id for c in sorted(u.courses, key=lambda c: c.id)
            if c.term_id == term_id and c.account_id in subtree and c.workflow_state != "deleted"
            and u.has_enrollment_of_type(c.id, {"student", "teacher"}) and u.has_enrollment_of_type(c.id, None)]


@pytest.mark.parametrize("status", [403, 429])
def test_sandbox_phases_in_parallel_lose_nothing(university: University, status: int):
    options = SandboxOptions(seed=5, services=(), latency_ms=2, jitter_ms=3, faults=FAULTS,
                             throttle=ThrottleOptions(enabled=True, status=status))
    with Sandbox(university, options) as sandbox:
        # Another job already used most of this Canvas token's bucket.
        canvas_bucket = sandbox.servers["canvas"].throttle
        canvas_bucket.finish(canvas_bucket.begin(sandbox.config["CANVAS"]["CANVAS_TOKEN"]), 350.0)
        with client_for("", config=sandbox.config) as client:
            settings = client.settings
            listing = {"with_enrollments": "true", "enrollment_type[]": ["student", "teacher"], "per_page": 5,
                       "include[]": ["total_students"]}

            def list_term(term_id: int) -> list[int]:
                pages = client.gateway_paginate(f"accounts/{settings.account_id}/courses",
                                                {**listing, "enrollment_term_id": term_id})
                return [course["id"] for page in pages for course in page]

            listed = run_all(list_term, settings.term_ids)
            courses = sorted(c for ids in listed.values() for c in ids)
            available = [c for c in courses if university.course_by_id[c].workflow_state == "available"]

            def audit(course_id: int) -> list[str]:
                pages = client.paginate(f"audit/course/courses/{course_id}", {"per_page": 20}, kind="audit")
                return [event["id"] for page in pages for event in page["events"]]

            def enrollments(course_id: int) -> list[int]:
                # Small pages: enough requests (~320) that the few refusals the limiter needs to learn a bucket
                # another job half filled (3-8 measured, whatever the run's length) are not the share measured.
                pages = graphql_pages(client, ENROLLMENTS_QUERY, {"courseID": str(course_id), "pageSize": 5})
                return [int(node["_id"]) for nodes in pages for node in nodes]

            def run_phase(fn, items) -> dict[int, Any]:
                return run_all(fn, items)

            with ThreadPoolExecutor(2) as phases:   # two phases share the one Canvas limiter
                audits = phases.submit(run_phase, audit, available)
                graphs = phases.submit(run_phase, enrollments, courses)
                audit_ids, enrollment_ids = audits.result(), graphs.result()
            stats = client.stats.snapshot()
        server_stats = sandbox.stats()

    assert listed == {t: listed_course_ids(university, t) for t in settings.term_ids}
    assert audit_ids == {c: [e.id for e in university.audit_by_course.get(c, [])] for c in available}
    assert enrollment_ids == {c: [e.id for e in university.graphql_enrollments(c)] for c in courses}
    assert sum(len(v) for v in audit_ids.values()) > 20 * len(available) // 2   # several pages per course
    totals = server_stats["totals"]
    assert totals["faults"] >= 5 and stats.errors == 0
    assert stats.throttled == totals["throttled"]
    assert stats.throttled <= 0.05 * stats.total_requests            # refusals stay rare
    assert set(stats.requests) == {"oauth", "gateway", "audit", "graphql"}


def test_sandbox_graphql_errors_are_fatal(university: University):
    with Sandbox(university, SandboxOptions(services=())) as sandbox, \
            client_for("", config=sandbox.config) as client:
        with pytest.raises(FatalSourceError, match="noSuchField"):
            client.graphql("query { course(id: \"1\") { noSuchField } }")
        bad_token = CanvasClient(CanvasSettings(canvas_url=client.settings.canvas_url, canvas_token="wrong"))
        with bad_token, pytest.raises(FatalSourceError) as info:
            bad_token.get("courses/1")
        assert info.value.status == 401
