"""The sandbox's next day: the seeded day transform, the expected inventory after it, Sandbox.next_day, the
answer journal and `serve`'s SIGUSR1."""

from __future__ import annotations

import dataclasses
import json
import signal
from datetime import timedelta

import pytest
import requests

import environ
from sandbox.expected import expected_inventory, kept_courses, published_at, republished_since
from sandbox.generator import generate_university
from sandbox.httpapp import Headers, Request, Response
from sandbox.httpserver import CostModel
from sandbox.journal import PART_SUFFIX, Answer, AnswerJournal, read_day, same_answers
from sandbox.next_day import DayChanges, as_of, day_number, next_day
from sandbox.runner import Sandbox, SandboxOptions
from sandbox.university import NOT_COUNTED_STATES
from tests.helpers.serve_process import lines_until, serve_process, stop

FREE = CostModel(overhead_ms=0, per_record_ms=0)


@pytest.fixture(scope="module")
def days():
    first = generate_university("small", seed=11)
    return first, next_day(first)


def newest(u, course_id):
    return u.audit_by_course[course_id][0]


def test_the_day_is_seeded_and_leaves_the_day_before_alone(days):
    first, second = days
    again = next_day(generate_university("small", seed=11))
    assert again.extras["day"] == second.extras["day"]
    assert again.enrollments == second.enrollments and again.audit_events == second.audit_events
    assert day_number(first) == 1 and day_number(second) == 2 and as_of(second) == as_of(first) + timedelta(days=1)
    assert len(first.audit_events) < len(second.audit_events)
    assert next_day(second).extras["day"]["number"] == 3


def test_published_republished_and_unpublished_courses_have_their_events(days):
    first, second = days
    changes = second.extras["day"]["changes"]
    start, end = as_of(first), as_of(second)
    before, after = first.course_by_id, second.course_by_id
    assert all(len(changes[kind]) >= 1 for kind in ("published", "republished", "unpublished", "rosters"))
    for course_id in changes["published"]:
        assert (before[course_id].workflow_state, after[course_id].workflow_state) == ("unpublished", "available")
        assert newest(second, course_id).event_type == "published" and start < newest(second, course_id).created_at
    for course_id in changes["republished"]:
        assert before[course_id].workflow_state == after[course_id].workflow_state == "available"
        latest, previous = second.audit_by_course[course_id][:2]
        assert (latest.event_type, previous.event_type) == ("published", "unpublished")
        assert start < previous.created_at < latest.created_at < end
        assert published_at(second, after[course_id]) == latest.created_at != published_at(first, before[course_id])
    for course_id in changes["unpublished"]:
        assert after[course_id].workflow_state == "unpublished" and newest(second, course_id).event_type == \
            "unpublished"
    unchanged = set(before) - set(changes["published"]) - set(changes["republished"]) - set(changes["unpublished"])
    assert all(first.audit_by_course.get(c) == second.audit_by_course.get(c) for c in unchanged)


def test_rosters_gain_and_lose_students(days):
    first, second = days
    old = {e.id: e for e in first.enrollments}
    added = [e for e in second.enrollments if e.id not in old]
    dropped = [e for e in second.enrollments if e.id in old and e != old[e.id]]
    assert added and min(e.id for e in added) > max(old)
    assert all(e.type == "StudentEnrollment" and e.state == "active" for e in added)
    assert dropped and all(old[e.id].state == "active" and e.state in NOT_COUNTED_STATES for e in dropped)
    touched = {e.course_id for e in added + dropped}
    assert touched <= set(second.extras["day"]["changes"]["rosters"])
    for e in added:
        assert second.section_by_id[e.section_id].course_id == e.course_id


def test_activity_gains_yesterday_for_available_courses(days):
    first, second = days
    yesterday = as_of(second).date() - timedelta(days=1)
    new = [day for day in second.activity if day not in set(first.activity)]
    assert new and {day.date for day in new} == {yesterday}
    assert all(second.course_by_id[day.course_id].workflow_state == "available" for day in new)
    assert sorted(day.course_id for day in new) == second.extras["day"]["changes"]["activity"]
    assert max(day.date for day in first.activity) < yesterday


def test_day_changes_are_checked():
    with pytest.raises(ValueError, match="publish_share must be between 0 and 1"):
        DayChanges(publish_share=1.5)


def test_expected_inventory_keeps_stored_dates_of_courses_available_on_both_days(days):
    first, second = days
    terms = [t.id for t in first.terms]
    day1 = expected_inventory(first, terms)
    reused = {row["canvas_id"]: row for row in expected_inventory(second, terms, previous_courses=day1["course"])[
        "course"]}
    looked_up = {row["canvas_id"]: row for row in expected_inventory(second, terms)["course"]}
    stored = {row["canvas_id"]: row for row in day1["course"]}
    republished = republished_since(first, second, terms)
    assert republished == second.extras["day"]["changes"]["republished"]
    differing = sorted(c for c in reused if reused[c] != looked_up[c])
    assert differing == republished                              # the documented miss, and nothing else
    for course_id in republished:
        assert reused[course_id]["published_at"] == stored[course_id]["published_at"]
        assert looked_up[course_id]["published_at"] > stored[course_id]["published_at"]
    for course_id in second.extras["day"]["changes"]["published"]:
        if course_id in reused:                                   # not available yesterday: looked up
            assert reused[course_id]["published_at"] == looked_up[course_id]["published_at"] is not None


def request(path: str, body: bytes = b"", **query: list[str]) -> Request:
    return Request("POST" if body else "GET", path, dict(query), Headers(), body)


def test_journal_counts_answers_asked_and_answered_the_same():
    first, second = AnswerJournal(), AnswerJournal()
    same, changed = request("/a", page=["2", "1"]), request("/b")
    first.record("canvas", "GET /a", same, Response(200, b"x"))
    first.record("canvas", "GET /b", changed, Response(200, b"old"))
    second.record("canvas", "GET /a", request("/a", page=["1", "2"]), Response(200, b"x"))   # query order
    second.record("canvas", "GET /b", changed, Response(200, b"new"))
    second.record("canvas", "GET /b", request("/b", x=["1"]), Response(200, b"new"))
    second.record("gateway", "GET /a", same, Response(200, b"x"))                           # another host
    second.record("canvas", "GET /a", same, Response(404, b"x"))                            # status counts
    counts = same_answers(first.take(), second.take())
    assert {route: (c.answers, c.asked_before, c.same) for route, c in counts.items()} == {
        "GET /a": (3, 2, 1), "GET /b": (2, 1, 0)}
    assert first.take() == []


def test_journal_records_response_parts_on_their_own():
    journal = AnswerJournal()
    journal.record("canvas", "POST /api/graphql", request("/api/graphql", b"{}"),
                   Response(200, b"{}", parts=lambda: [("course 1 page", b"a"), ("course 2 page", b"b")]))
    answers = journal.take()
    assert [a.route for a in answers] == ["POST /api/graphql"] + ["POST /api/graphql" + PART_SUFFIX] * 2
    assert [a.key for a in answers[1:]] == ["course 1 page", "course 2 page"]
    assert isinstance(answers[0], Answer) and answers[1].digest != answers[2].digest


def graphql_course(sandbox, token, course_id):
    query = ("query($id: ID!) { c0: course(id: $id) { _id enrollmentsConnection(first: 100) "
             "{ nodes { _id state } } } }")
    return requests.post(f"{sandbox.urls()['canvas']}/api/graphql", json={"query": query, "variables": {
        "id": str(course_id)}}, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.parametrize("graphql_processes", [0, 2])   # in-process, and copies forked again for the new day
def test_sandbox_next_day_serves_the_changed_university_and_journals_both_days(days, graphql_processes):
    first, _ = days
    options = SandboxOptions(services=(), cost=FREE, journal=True, graphql_processes=graphql_processes)
    with Sandbox(generate_university("small", seed=11), options) as sandbox:
        token = sandbox.config["CANVAS"]["CANVAS_TOKEN"]
        second = next_day(first)
        course_id = second.extras["day"]["changes"]["rosters"][0]
        before = graphql_course(sandbox, token, course_id).json()
        gateway_token = sandbox.gateway.tokens.issue()
        assert sandbox.next_day().extras["day"] == second.extras["day"]
        assert not sandbox.gateway.tokens.is_live(gateway_token)      # they last an hour; a day has passed
        after = graphql_course(sandbox, token, course_id).json()
        rows = {n["_id"] for n in after["data"]["c0"]["enrollmentsConnection"]["nodes"]}
        assert rows == {str(e.id) for e in second.graphql_enrollments(course_id)}
        assert before != after
        answers = sandbox.take_answers()
    routes = [a.route for a in answers]
    assert routes == ["POST /api/graphql", "POST /api/graphql" + PART_SUFFIX] * 2
    assert answers[1].key == answers[3].key and answers[1].digest != answers[3].digest


def test_serve_moves_to_the_next_day_on_sigusr1_and_writes_each_day(tmp_path):
    with serve_process("--services", "--env-file", str(tmp_path / "env.hjson"), "--journal-dir",
                       str(tmp_path / "journal"), "--seed", "11", "--log-level", "WARNING") as process:
        lines = lines_until(process, "Serving")
        env = environ.load_env(tmp_path / "env.hjson")
        canvas = dict(line.strip().rsplit(maxsplit=1) for line in lines[:2])["canvas"]
        course = kept_courses(generate_university("small", seed=11), env["CANVAS"]["CANVAS_TERM_IDS"])[0].id
        headers = {"Authorization": f"Bearer {env['CANVAS']['CANVAS_TOKEN']}"}
        assert requests.get(f"{canvas}/api/v1/audit/course/courses/{course}", headers=headers, timeout=5).ok
        process.send_signal(signal.SIGUSR1)
        day_line = lines_until(process, "Day 2")[-1]
        assert "republished" in day_line
        requests.get(f"{canvas}/api/v1/accounts/1", headers=headers, timeout=5)
        out, err = stop(process)
    assert process.returncode == 0, err
    (day1, stats1), (day2, stats2) = (read_day(tmp_path / "journal" / f"day-{n}.json") for n in (1, 2))
    assert [a.route for a in day1] == ["GET /api/v1/audit/course/courses/{course_id:int}"]
    assert [a.route for a in day2] == ["GET /api/v1/accounts/{account_id:int}"]
    assert stats1["servers"]["canvas"]["requests"] == stats2["servers"]["canvas"]["requests"] == 1
    assert json.loads(out)["servers"]["canvas"]["requests"] == 1


def test_next_day_keeps_what_a_day_does_not_change(days):
    first, second = days
    for name in ("terms", "accounts", "sections", "users", "tabs"):
        assert getattr(first, name) == getattr(second, name), name
    assert second.canvasdatadate == first.canvasdatadate + timedelta(days=1)
    assert [c.id for c in first.courses] == [c.id for c in second.courses]
    assert [dataclasses.replace(c, workflow_state="") for c in first.courses] == \
        [dataclasses.replace(c, workflow_state="") for c in second.courses]       # only states change
