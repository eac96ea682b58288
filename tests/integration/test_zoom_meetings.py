"""CANVAS_ZOOM_MEETINGS end to end: simulated Canvas + Zoom LTI, real MariaDB, CSV files.

Canvas is started here rather than through tests/helpers/canvas_sandbox.py: this job needs neither the gateway
nor the UDW, and the tests choose which courses' launch pages lack the LTI form.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from clients import zoom_pages
from clients.canvas import CanvasClient
from clients.http import Timeouts
from clients.retry import RetryPolicy
from clients.zoom_lti import ZoomLtiClient
from environ import with_defaults
from online_meetings import transform
from online_meetings.canvas_zoom_meetings import main
from sandbox.canvas_rest import CanvasOptions, CanvasRest, build_canvas_app
from sandbox.faults import FaultOptions
from sandbox.generator import generate_university
from sandbox.httpapp import App, Request, Response
from sandbox.httpserver import ServerOptions, SimServer
from sandbox.outages import OutageOptions
from sandbox.throttle import ThrottleOptions
from sandbox.university import University
from sandbox.zoom_data import ExpectedZoom, ZoomData, expected_zoom_output
from sandbox.zoom_sim import HISTORY_PATH, LAUNCH_PATH, ZoomLti, ZoomSimOptions
from source_settings import canvas_settings, zoom_settings
from tests.helpers.canvas_sandbox import fill_bucket
from vocab import JobError, ValidDataSourceName

TOKEN = "canvas-zoom-test-token"
KEY, SECRET = "zoom-it-key", "zoom-it-secret"
COURSE_COLUMNS = transform.ZOOM_COURSE_COLUMNS
MEETING_COLUMNS = transform.ZOOM_MEETING_COLUMNS
FAST_RETRIES = RetryPolicy(max_attempts=6, backoff_initial=0.01, backoff_max=0.05, throttle_initial=0.05,
                           throttle_max=0.5)


@pytest.fixture(scope="module")
def university() -> University:
    return generate_university("small", seed=7)


@pytest.fixture(scope="module")
def scenario(university):
    """All terms; extra courses (listed, unpublished with Zoom, deleted, unknown); two courses whose launch breaks."""
    terms = [t.id for t in university.terms]
    plain = expected_zoom_output(university, terms, [], ZoomData(university), lambda _: True)
    ids = [row["course_id"] for row in plain.courses]
    data = ZoomData(university)
    with_meetings = [cid for cid in ids if data.meetings(cid)]
    visible_zoom = {t.course_id for t in university.tabs if t.label == "Zoom" and not t.hidden}
    unpublished = next(c.id for c in university.courses if c.id in visible_zoom and c.workflow_state != "available"
                       and c.workflow_state != "deleted")
    deleted = next(c.id for c in university.courses if c.workflow_state == "deleted")
    return {"terms": terms, "add": [ids[0], unpublished, deleted, 987_654, unpublished],
            "no_form": {with_meetings[0]}, "no_values": {with_meetings[1]}}


@dataclass
class World:
    env: dict
    canvas_server: SimServer
    zoom_server: SimServer
    canvas_rest: CanvasRest
    zoom: ZoomLti
    data: ZoomData

    def expected(self, university: University, scenario: dict) -> ExpectedZoom:
        return expected_zoom_output(university, scenario["terms"], scenario["add"], self.data,
                                    self.canvas_rest.launch_page_has_form)


@contextmanager
def world(university, scenario, db_params, *, options: ServerOptions | None = None,
          zoom_options: ServerOptions | None = None, attempts: int = 3,
          launch_has_values: Callable[[int], bool] | None = None, single_use_verifier: bool = True,
          zoom_app: Callable[[ZoomLti], App] | None = None, create_csvs: bool = True) -> Iterator[World]:
    data = ZoomData(university, launch_has_values=launch_has_values or (lambda cid: cid not in scenario["no_values"]))
    zoom = ZoomLti(data, ZoomSimOptions(consumer_key=KEY, shared_secret=SECRET))
    app = zoom_app(zoom) if zoom_app else default_zoom_app(zoom)
    zoom_server = SimServer(app, name="zoom", options=zoom_options or options).start()
    canvas_options = CanvasOptions(tokens=frozenset({TOKEN}), zoom_base_url=zoom_server.url, seed=university.seed,
                                   lti_consumer_key=KEY, lti_shared_secret=SECRET,
                                   single_use_verifier=single_use_verifier)
    canvas_app, rest = build_canvas_app(university, canvas_options,
                                        launch_page_has_form=lambda cid: cid not in scenario["no_form"])
    canvas_server = SimServer(canvas_app, name="canvas", options=options).start()
    env = {"LOG_LEVEL": "INFO", "JOB_NAMES": ["CANVAS_ZOOM_MEETINGS"], "CREATE_CSVS": create_csvs,
           "MAX_REQ_ATTEMPTS": attempts, "NUM_ASYNC_WORKERS": 8,
           "CANVAS": {"CANVAS_ACCOUNT_ID": university.root_account_id, "CANVAS_TERM_IDS": list(scenario["terms"]),
                      "ADD_COURSE_IDS": list(scenario["add"]), "CANVAS_URL": canvas_server.url,
                      "CANVAS_TOKEN": TOKEN},
           "ZOOM": {"BASE_URL": zoom_server.url}, "INVENTORY_DB": dict(db_params)}
    try:
        yield World(env, canvas_server, zoom_server, rest, zoom, data)
    finally:
        canvas_server.stop()
        zoom_server.stop()


def default_zoom_app(zoom: ZoomLti) -> App:
    app = App()
    app.add_route("POST", LAUNCH_PATH, zoom.launch)
    app.add_route("GET", HISTORY_PATH, zoom.history)
    return app


def table_rows(engine: sa.Engine, table: str, columns: list[str]) -> list[dict]:
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM `{table}` ORDER BY id"))
        return [dict(row) for row in result.mappings()]


def csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def as_csv(rows: list[dict]) -> list[dict]:
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]


def assert_output(engine: sa.Engine, data_dir: Path, expected: ExpectedZoom) -> None:
    assert table_rows(engine, "zoom_course", COURSE_COLUMNS) == expected.courses
    assert table_rows(engine, "zoom_course_meeting", MEETING_COLUMNS) == expected.meetings
    assert csv_rows(data_dir / "zoom_courses.csv") == as_csv(expected.courses)
    assert csv_rows(data_dir / "zoom_courses_meetings.csv") == as_csv(expected.meetings)


def test_output_equals_generated_data_row_for_row(university, scenario, migrated_engine, migrated_db_params,
                                                  tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with world(university, scenario, migrated_db_params) as w:
        statuses = main(w.env, engine=migrated_engine, data_dir=tmp_path)
        sessions = list(w.zoom._sessions.values())
    expected = w.expected(university, scenario)
    assert_output(migrated_engine, tmp_path, expected)
    assert [s.data_source_name for s in statuses] == [ValidDataSourceName.CANVAS_ZOOM_MEETINGS]
    # The scenario really covers: failed launches of both kinds, extra courses, paging, messy topics.
    assert expected.failed_course_ids == scenario["no_form"] | scenario["no_values"]
    assert {r["course_id"] for r in expected.courses} >= expected.failed_course_ids
    assert not {r["course_id"] for r in expected.meetings} & expected.failed_course_ids
    assert scenario["add"][1] in {r["course_id"] for r in expected.courses}
    per_course = [sum(r["course_id"] == c["course_id"] for r in expected.meetings) for c in expected.courses]
    assert max(per_course) > 10 and 0 in per_course
    topics = [r["topic"] for r in expected.meetings]
    assert any('"' in t for t in topics) and any("'" in t for t in topics) and any(not t.isascii() for t in topics)
    summary = next(r.getMessage() for r in caplog.records if "course(s) scanned" in r.getMessage())
    # The sandbox's "failed launches" are placements without a form or Zoom values: skipped, not retried.
    assert (f"{expected.scanned} course(s) scanned, {expected.placements} Zoom placement(s) in "
            f"{len(expected.courses)} course(s), {expected.failed_launches} skipped (no Zoom page), 0 failed after "
            f"retries (previous meetings kept for 0 course(s)); loaded zoom_course {len(expected.courses)}, "
            f"zoom_course_meeting {len(expected.meetings)}") in summary
    # Our own loggers only: urllib3 logs full URLs at DEBUG (the runner's logging setup must quiet it).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("clients", "online_meetings", "db")))
    secrets = [TOKEN] + [s.scid for s in sessions] + [s.xsrf_token for s in sessions]
    assert sessions and "GET http" in ours and not [s for s in secrets if s in ours]
    assert "verifier=" not in ours and "lti_scid=" not in ours


def test_same_rows_with_faults_and_throttling(university, scenario, migrated_engine, migrated_db_params, tmp_path):
    options = ServerOptions(
        seed=11, faults=FaultOptions(http500=0.03, http502_503=0.02, reset=0.02, bad_json=0.02, slow=0.01,
                                     slow_seconds=2),
        throttle=ThrottleOptions(enabled=True, status=429, hwm=1.0, up_front=0.5, leak=1.0))
    # Zoom gets few requests, so a higher rate makes sure some fail; launches get more attempts to match.
    zoom_options = ServerOptions(seed=12, faults=FaultOptions.uniform(0.25, slow_seconds=2))
    with world(university, scenario, migrated_db_params, options=options, zoom_options=zoom_options, attempts=6,
               single_use_verifier=True) as w:
        timeouts = Timeouts(connect=2, read=1.0)
        with CanvasClient(canvas_settings(with_defaults(w.env), timeouts=timeouts), policy=FAST_RETRIES) as canvas:
            zoom = ZoomLtiClient(zoom_settings(with_defaults(w.env), timeouts=timeouts),
                                 policy=replace(FAST_RETRIES, max_attempts=10))
            main(w.env, engine=migrated_engine, canvas=canvas, zoom=zoom, data_dir=tmp_path)
        zoom_faults = sum(w.zoom_server.stats.snapshot()["faults"].values())
        canvas_faults = sum(w.canvas_server.stats.snapshot()["faults"].values())
    assert_output(migrated_engine, tmp_path, w.expected(university, scenario))
    assert zoom_faults > 0 and canvas_faults > 0
    assert zoom.stats.snapshot().retries > 0 and canvas.stats.snapshot().throttled > 0


@pytest.mark.parametrize(("seed", "outage_seconds", "throttle_status"), [(1, 30.0, 429), (2, 4.0, 403),
                                                                         (3, 4.0, 429)])
def test_outage_faults_and_throttling_give_the_expected_rows(university, scenario, migrated_engine,
                                                             migrated_db_params, tmp_path, seed, outage_seconds,
                                                             throttle_status):
    """Canvas and Zoom down together mid-run, independent faults on both, Canvas throttling: the same rows."""
    options = ServerOptions(seed=seed, faults=FaultOptions.uniform(0.04, slow=0.005, slow_seconds=2),
                            # A small bucket, found full (below): at a leak of 5 a second the job's first
                            # requests meet 2 s of refusals.
                            throttle=ThrottleOptions(enabled=True, status=throttle_status, hwm=15.0, up_front=5.0,
                                                     maximum=20.0, leak=5.0),
                            outage=OutageOptions(after_requests=25, seconds=outage_seconds))
    # Zoom gets ~30 requests whose launch forms carry fresh nonces, so the draws differ on every run: at 0.2 (bad
    # JSON hits only JSON bodies) ~0.5-1 % of runs drew no fault at all; at 0.3, ~0.05 %.
    zoom_options = replace(options, seed=seed + 100, throttle=ThrottleOptions(),
                           faults=FaultOptions.uniform(0.3, slow=0.01, slow_seconds=2))
    policy = replace(FAST_RETRIES, backoff_max=1.0, throttle_max=1.0)
    with world(university, scenario, migrated_db_params, options=options, zoom_options=zoom_options) as w:
        w.zoom_server.share_outages(w.canvas_server.outages)
        fill_bucket(w.canvas_server, TOKEN)
        timeouts = Timeouts(connect=2, read=1.0)
        with CanvasClient(canvas_settings(with_defaults(w.env), timeouts=timeouts), policy=policy) as canvas:
            zoom = ZoomLtiClient(zoom_settings(with_defaults(w.env), timeouts=timeouts), policy=policy)
            main(w.env, engine=migrated_engine, canvas=canvas, zoom=zoom, data_dir=tmp_path)
        canvas_stats, zoom_stats = w.canvas_server.stats.snapshot(), w.zoom_server.stats.snapshot()
    assert_output(migrated_engine, tmp_path, w.expected(university, scenario))
    assert canvas_stats["outage_failures"] + zoom_stats["outage_failures"] > 10
    assert sum(zoom_stats["faults"].values()) > 0 and canvas.stats.snapshot().throttled > 0


def test_a_lost_launch_answer_is_relaunched_not_replayed(university, scenario, migrated_db_params):
    """The first launch POST is processed (nonce used) but its answer never arrives in time."""
    stalled = threading.Event()

    def stalling_app(zoom: ZoomLti) -> App:
        def launch(request: Request) -> Response:
            response = zoom.launch(request)
            if not stalled.is_set():
                stalled.set()
                threading.Event().wait(1.5)          # longer than the client's read timeout
            return response
        app = App()
        app.add_route("POST", LAUNCH_PATH, launch)
        app.add_route("GET", HISTORY_PATH, zoom.history)
        return app

    with world(university, scenario, migrated_db_params, single_use_verifier=True, zoom_app=stalling_app) as w:
        course_id = max({r["course_id"] for r in w.expected(university, scenario).meetings})
        settings = canvas_settings(with_defaults(w.env))
        urls: list[str] = []
        with CanvasClient(settings) as canvas:
            tab = next(t for t in canvas.get(f"courses/{course_id}/tabs") if t["label"] == "Zoom")

            def new_url() -> str:
                urls.append(zoom_pages.launch_url(canvas.get(tab["url"])))
                return urls[-1]

            zoom = ZoomLtiClient(zoom_settings(with_defaults(w.env), timeouts=Timeouts(connect=2, read=0.5)),
                                 policy=FAST_RETRIES)
            meetings = zoom.previous_meetings(new_url).meetings
        assert len(urls) == 2 and w.zoom.launches == 2 and zoom.stats.snapshot().retries == 1
        assert [m["meetingId"] for m in meetings] == [m.meeting_id for m in w.data.meetings(course_id)]


def test_most_launches_failing_keeps_previous_data(university, scenario, migrated_engine, migrated_db_params,
                                                   tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with world(university, scenario, migrated_db_params) as w:
        main(w.env, engine=migrated_engine, data_dir=tmp_path)
        expected = w.expected(university, scenario)
    with world(university, scenario, migrated_db_params, launch_has_values=lambda _: False) as w:
        with pytest.raises(JobError, match=rf"previous data kept: {expected.placements} of {expected.placements} "
                                           "Zoom launches failed"):
            main(w.env, engine=migrated_engine, data_dir=tmp_path)
    assert "has no scid/XSRF token" in caplog.text
    assert_output(migrated_engine, tmp_path, expected)


def test_zoom_base_url_comes_from_configuration(university, scenario, migrated_engine, migrated_db_params,
                                                tmp_path, caplog):
    with world(university, scenario, migrated_db_params) as w:
        env = {**w.env, "ZOOM": {"BASE_URL": "http://127.0.0.1:9"}}   # not where Canvas's forms post
        with pytest.raises(JobError, match="Zoom launches failed"):
            main(env, engine=migrated_engine, data_dir=tmp_path)
        assert w.zoom.launches == 0
        assert f"launch form posts to {w.zoom_server.url}/lti/rich" in caplog.text
    assert "not to the configured ZOOM.BASE_URL http://127.0.0.1:9" in caplog.text
    assert table_rows(migrated_engine, "zoom_course", COURSE_COLUMNS) == []


def test_a_history_holding_more_than_its_total_is_paged_to_the_end(university, scenario, migrated_engine,
                                                                   migrated_db_params, tmp_path, caplog):
    """Zoom's `total` understates the list: every page still comes, until one is short."""
    def understating_app(zoom: ZoomLti) -> App:
        def history(request: Request) -> Response:
            answer = zoom.history(request)
            body = json.loads(answer.body)
            if isinstance(body.get("result"), dict):
                body["result"]["total"] = min(body["result"]["total"], 1)
            return Response(answer.status, json.dumps(body).encode(), dict(answer.headers), answer.records)
        app = App()
        app.add_route("POST", LAUNCH_PATH, zoom.launch)
        app.add_route("GET", HISTORY_PATH, history)
        return app

    with world(university, scenario, migrated_db_params, zoom_app=understating_app) as w:
        main(w.env, engine=migrated_engine, data_dir=tmp_path)
    expected = w.expected(university, scenario)
    assert_output(migrated_engine, tmp_path, expected)
    many = max({r["course_id"] for r in expected.meetings},
               key=lambda c: sum(r["course_id"] == c for r in expected.meetings))
    assert f"course {many}: Zoom announced 1 meeting(s) but served" in caplog.text


def test_a_course_whose_launch_keeps_failing_keeps_its_previous_meetings(university, scenario, migrated_engine,
                                                                         migrated_db_params, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with world(university, scenario, migrated_db_params) as w:
        main(w.env, engine=migrated_engine, data_dir=tmp_path)
        expected = w.expected(university, scenario)
    victim = max({r["course_id"] for r in expected.meetings})
    stored = table_rows(migrated_engine, "zoom_course_meeting", MEETING_COLUMNS)
    before = [r for r in stored if r["course_id"] == victim]

    def failing_for_victim(zoom: ZoomLti) -> App:
        def history(request: Request) -> Response:
            session = zoom._session(request)
            if session is not None and session.course_id == victim:
                return Response(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"})
            return zoom.history(request)
        app = App()
        app.add_route("POST", LAUNCH_PATH, zoom.launch)
        app.add_route("GET", HISTORY_PATH, history)
        return app

    with world(university, scenario, migrated_db_params, zoom_app=failing_for_victim) as w:
        zoom = ZoomLtiClient(zoom_settings(with_defaults(w.env)), policy=replace(FAST_RETRIES, budget_seconds=1.0))
        main(w.env, engine=migrated_engine, zoom=zoom, data_dir=tmp_path)
    stored = table_rows(migrated_engine, "zoom_course_meeting", MEETING_COLUMNS)
    after = [r for r in stored if r["course_id"] == victim]
    assert before and [{k: v for k, v in r.items() if k != "id"} for r in after] == \
        [{k: v for k, v in r.items() if k != "id"} for r in before]              # kept, not dropped
    others = [r for r in stored if r["course_id"] != victim]
    assert [r["meeting_id"] for r in others] == [r["meeting_id"] for r in expected.meetings if r["course_id"] != victim]
    assert "1 failed after retries (previous meetings kept for 1 course(s))" in caplog.text


def test_csvs_only_when_asked_and_before_the_load(university, scenario, migrated_engine, migrated_db_params,
                                                 tmp_path):
    with world(university, scenario, migrated_db_params, create_csvs=False) as w:
        main(w.env, engine=migrated_engine, data_dir=tmp_path / "off")
    assert not (tmp_path / "off").exists()
    expected = w.expected(university, scenario)
    assert table_rows(migrated_engine, "zoom_course", COURSE_COLUMNS) == expected.courses
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where data/ should be", encoding="utf-8")
    with world(university, scenario, migrated_db_params, launch_has_values=lambda _: True) as w:
        with pytest.raises(JobError, match="previous data kept"):
            main(w.env, engine=migrated_engine, data_dir=blocked)
    assert table_rows(migrated_engine, "zoom_course", COURSE_COLUMNS) == expected.courses   # not replaced


def test_canvas_failure_fails_the_job_and_keeps_previous_data(university, scenario, migrated_engine,
                                                              migrated_db_params, tmp_path):
    with world(university, scenario, migrated_db_params) as w:
        main(w.env, engine=migrated_engine, data_dir=tmp_path)
        expected = w.expected(university, scenario)
    broken = ServerOptions(faults=FaultOptions(http500=1.0, max_consecutive=1000))
    with world(university, scenario, migrated_db_params, options=broken, attempts=2) as w:
        with CanvasClient(canvas_settings(with_defaults(w.env)),
                          policy=RetryPolicy(max_attempts=2, budget_seconds=0, backoff_initial=0.01)) as canvas:
            with pytest.raises(JobError, match="500"):
                main(w.env, engine=migrated_engine, canvas=canvas, data_dir=tmp_path)
    assert_output(migrated_engine, tmp_path, expected)
