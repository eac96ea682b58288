"""COURSE_INVENTORY against hostile Canvas answers, through run_jobs.py: each odd answer is a one-line error (exit 1,
previous data kept, no traceback, no secret) or a counted, logged skip — never silent loss, a hang or a leak.

Each test runs the job once against the faithful sandbox (the baseline), then turns one of the sandbox's answers
hostile (a route added ahead of the real one) and runs it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

import run_jobs
from sandbox.expected import TABLE_COLUMNS
from sandbox.generator import generate_university
from sandbox.httpapp import App, Request, Response, json_response, text_response
from sandbox.httpserver import SimServer
from sandbox.university import University
from tests.conftest import write_config
from tests.helpers.canvas_sandbox import CanvasSandbox, canvas_sandbox

pytestmark = pytest.mark.integration

SECRETS = ("canvas-sandbox-token", "sandbox-client-secret")


@pytest.fixture(scope="module")
def university() -> University:
    return generate_university("small", seed=23)


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {table: sorted(tuple(row) for row in conn.execute(sa.text(
            f"SELECT {', '.join(columns)} FROM `{table}`")))   # names from code
            for table, columns in TABLE_COLUMNS.items()}


@dataclass
class World:
    box: CanvasSandbox
    run: Callable[[], tuple[int, str]]
    baseline: dict[str, list[tuple]]

    def handler(self, server: SimServer, method: str, path_pattern: str) -> Callable[..., Response]:
        return next(r.handler for r in server.app.routes if r.method == method and r.pattern == path_pattern)


@contextmanager
def world(university: University, db_params: dict[str, str], engine: sa.Engine, tmp_path, capsys,
          monkeypatch, **sandbox_options: Any) -> Iterator[World]:
    terms = sorted(t.id for t in university.terms)
    with canvas_sandbox(university, udw_db=None, inventory_db=db_params, term_ids=terms, attempts=2,
                        **sandbox_options) as box:
        write_config(tmp_path, {**box.env, "RETRY_BUDGET_SECONDS": 1, "LOG_LEVEL": "INFO"})
        monkeypatch.setenv("ENV_DIR", str(tmp_path))

        def run() -> tuple[int, str]:
            code = run_jobs.main(["--jobs", "COURSE_INVENTORY"])
            captured = capsys.readouterr()
            return code, captured.out + captured.err

        code, output = run()
        assert code == 0, output
        yield World(box, run, snapshot(engine))


def assert_refused(world: World, engine: sa.Engine, code: int, output: str, message: str) -> None:
    failure = [line for line in output.splitlines() if "job COURSE_INVENTORY failed" in line]
    assert code == 1 and len(failure) == 1 and message in failure[0], output
    assert "Traceback" not in output and not [s for s in SECRETS if s in output]
    assert snapshot(engine) == world.baseline                      # previous data kept


def graphql_rewriting(original: Callable[..., Response], change: Callable[[dict], None]) -> Callable[..., Response]:
    def handler(request: Request, **params: Any) -> Response:
        answer = original(request, **params)
        body = json.loads(answer.body)
        change(body)
        return json_response(body, records=answer.records)
    return handler


def test_errors_beside_partial_graphql_data_fail_the_job(university, migrated_db_params, migrated_engine, tmp_path,
                                                         capsys, monkeypatch):
    def null_first_course(body: dict) -> None:
        body["data"]["c0"] = None
        body["errors"] = [{"message": "Internal server error", "path": ["c0"]}]

    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        graphql = w.handler(w.box.canvas, "POST", "/api/graphql")
        w.box.canvas.app.add_route("POST", "/api/graphql", graphql_rewriting(graphql, null_first_course), first=True)
        code, output = w.run()
    assert_refused(w, migrated_engine, code, output, "1 error(s) beside its data, first: Internal server error")


def test_a_repeated_cursor_is_a_format_error_not_a_hang(university, migrated_db_params, migrated_engine, tmp_path,
                                                        capsys, monkeypatch):
    def stuck(body: dict) -> None:
        connection = body["data"]["c0"]["enrollmentsConnection"]
        connection["pageInfo"] = {"endCursor": "MTAw", "hasNextPage": True}

    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        graphql = w.handler(w.box.canvas, "POST", "/api/graphql")
        w.box.canvas.app.add_route("POST", "/api/graphql", graphql_rewriting(graphql, stuck), first=True)
        code, output = w.run()
        asked = w.box.canvas.stats.snapshot()["requests_by_endpoint"]["POST /api/graphql"]
    assert_refused(w, migrated_engine, code, output, "repeats the cursor of an earlier enrollment page")
    assert asked < 200


@pytest.mark.parametrize("permissions, message", [
    (frozenset({"view_analytics", "view_course_changes"}), "cannot read course rosters (it needs the read_roster"),
    (frozenset({"read_roster", "view_course_changes"}), "lacks the permission view_analytics"),
    (frozenset({"read_roster", "view_analytics"}), "lacks the permission view_course_changes"),
])
def test_a_missing_permission_is_one_line_naming_it(university, migrated_db_params, migrated_engine, tmp_path,
                                                    capsys, monkeypatch, permissions, message):
    terms = sorted(t.id for t in university.terms)
    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        with canvas_sandbox(university, udw_db=None, inventory_db=migrated_db_params, term_ids=terms, attempts=2,
                            token_permissions=permissions) as restricted:
            write_config(tmp_path, {**restricted.env, "RETRY_BUDGET_SECONDS": 1})
            code, output = w.run()
    assert_refused(w, migrated_engine, code, output, message)
    assert output.count("HTTP 401") <= 1                                # one line, not one warning per course


@pytest.mark.parametrize("answer, message", [
    (lambda request: json_response({"errors": [{"message": "analytics unavailable"}]}),
     "analytics activity is not a JSON list of days"),
    (lambda request: Response(302, b"", {"Location": f"{request.base_url}/login"}),
     "HTTP 302 redirect to 127.0.0.1"),
])
def test_analytics_that_is_not_a_list_of_days_is_a_format_error(university, migrated_db_params, migrated_engine,
                                                                tmp_path, capsys, monkeypatch, answer, message):
    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        w.box.canvas.app.add_route("GET", "/api/v1/courses/{course_id:int}/analytics/activity",
                                   lambda request, course_id: answer(request), first=True)
        code, output = w.run()
    assert_refused(w, migrated_engine, code, output, message)


def listing_rewriting(original: Callable[..., Response], change: Callable[[list, int], Any]) -> Callable[..., Response]:
    """The gateway's course listing in pages of 10, each page passed through `change(courses, page)`."""
    def handler(request: Request, **params: Any) -> Response:
        request.query["per_page"] = ["10"]
        answer = original(request, **params)
        page = int(request.last("page") or "1")
        body = change(json.loads(answer.body), page)
        return json_response(body, headers={"Link": answer.headers.get("Link", "")}, records=answer.records)
    return handler


LISTING = "/aa/CanvasReadOnly/accounts/{account_id:int}/courses"


def test_a_course_listed_twice_the_same_way_is_counted_once(university, migrated_db_params, migrated_engine,
                                                            tmp_path, capsys, monkeypatch):
    first_page: dict[int, list] = {}

    def repeat_first_course(courses: list, page: int) -> list:
        first_page.setdefault(page, courses)
        return courses + first_page[1][:1] if page == 2 else courses

    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        listing = w.handler(w.box.gateway, "GET", LISTING)
        w.box.gateway.app.add_route("GET", LISTING, listing_rewriting(listing, repeat_first_course), first=True)
        code, output = w.run()
    assert code == 0, output
    assert snapshot(migrated_engine) == w.baseline                  # exactly what the good run loaded
    assert re.search(r"Canvas served rows more than once \(kept once\): course listing \d+;", output), output


def contradicting(courses: list, page: int, seen: list) -> list:
    """Page 2 lists page 1's first course again, renamed."""
    if page == 1:
        seen.extend(courses)
    return courses + [{**seen[0], "name": "Renamed"}] if page == 2 else courses


@pytest.mark.parametrize("change, message", [
    (contradicting, "pages disagree about course"),
    (lambda courses, page, seen: {"courses": courses}, "is not a JSON list of courses"),
    (lambda courses, page, seen: [{**c, "total_students": str(c.get("total_students"))} for c in courses],
     "total_students is not a count"),
])
def test_a_course_listing_that_contradicts_itself_or_is_not_a_list_fails(university, migrated_db_params,
                                                                         migrated_engine, tmp_path, capsys,
                                                                         monkeypatch, change, message):
    seen: list = []
    with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
        listing = w.handler(w.box.gateway, "GET", LISTING)
        w.box.gateway.app.add_route("GET", LISTING, listing_rewriting(listing, lambda c, p: change(c, p, seen)),
                                    first=True)
        code, output = w.run()
    assert_refused(w, migrated_engine, code, output, message)


def test_a_gateway_token_redirect_is_not_followed(university, migrated_db_params, migrated_engine, tmp_path,
                                                  capsys, monkeypatch):
    elsewhere = SimServer(_recording_app(), name="elsewhere").start()
    try:
        with world(university, migrated_db_params, migrated_engine, tmp_path, capsys, monkeypatch) as w:
            w.box.gateway.app.add_route(
                "POST", "/aa/oauth2/token",
                lambda request: Response(307, b"", {"Location": f"{elsewhere.url}/aa/oauth2/token"}), first=True)
            code, output = w.run()
        assert_refused(w, migrated_engine, code, output, "HTTP 307 redirect to 127.0.0.1")
        assert elsewhere.stats.snapshot()["requests"] == 0           # the client secret went nowhere
    finally:
        elsewhere.stop()


def _recording_app() -> App:
    app = App()
    app.add_route("POST", "/{rest:path}", lambda request, rest: text_response("stolen"))
    return app
