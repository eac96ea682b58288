"""COURSE_INVENTORY on consecutive days: the sandbox moves a day between runs (sandbox/next_day.py); the tables
must equal the expected inventory of the changed data, row for row, with stored published dates kept exactly
where README promises (and missed where it says so), and the audit log asked only for the other courses."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import sqlalchemy as sa

import run_jobs
from course_inventory.inventory import TABLES, run_course_inventory
from sandbox.expected import TABLE_COLUMNS, expected_inventory, kept_courses, published_at, rows_as_sorted_tuples
from sandbox.generator import generate_university
from sandbox.next_day import DayChanges
from sandbox.runner import Sandbox, SandboxOptions
from tests.conftest import write_config

AUDIT_ROUTE = "GET /api/v1/audit/course/courses/{course_id:int}"
ANALYTICS_ROUTE = "GET /api/v1/courses/{course_id:int}/analytics/activity"


@pytest.fixture
def sandbox(migrated_db_params):
    university = generate_university("small", seed=7)
    options = SandboxOptions(services=(), journal=True, term_ids=tuple(t.id for t in university.terms),
                             inventory_db=migrated_db_params)
    with Sandbox(university, options) as box:
        yield box


def env_of(sandbox: Sandbox, **overrides: object) -> dict:
    return {**sandbox.config, "JOB_NAMES": ["COURSE_INVENTORY"], **overrides}


def assert_tables(engine: sa.Engine, expected: dict) -> None:
    with engine.connect() as conn:
        for table in TABLES:
            columns = TABLE_COLUMNS[table]
            rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM `{table}`")).mappings().all()
            want = rows_as_sorted_tuples(expected[table], columns)
            assert rows_as_sorted_tuples(rows, columns) == want, f"{table}: rows differ from the expected inventory"


def asked_courses(answers: list, route: str) -> Counter[int]:
    """How many answers of `route` each course got (from the sandbox's journal of answers)."""
    return Counter(int(re.search(r"/courses/(\d+)", a.key).group(1)) for a in answers if a.route == route)


def audited_courses(sandbox: Sandbox) -> set[int]:
    """Courses whose audit log the run asked for."""
    return set(asked_courses(sandbox.take_answers(), AUDIT_ROUTE))


def stored_dated(courses: list[dict]) -> set[int]:
    return {row["canvas_id"] for row in courses if row["workflow_state"] == "available" and row["published_at"]}


def available(sandbox: Sandbox, terms: list[int]) -> set[int]:
    return {c.id for c in kept_courses(sandbox.university, terms) if c.workflow_state == "available"}


def test_the_second_run_keeps_stored_dates_and_asks_only_for_the_other_courses(sandbox, migrated_engine):
    terms, first = sandbox.config["CANVAS"]["CANVAS_TERM_IDS"], sandbox.university
    run_course_inventory(env_of(sandbox), engine=migrated_engine)
    day1 = expected_inventory(first, terms)
    assert_tables(migrated_engine, day1)
    assert audited_courses(sandbox) == available(sandbox, terms)              # nothing stored: every one

    second = sandbox.next_day()
    run_course_inventory(env_of(sandbox), engine=migrated_engine)
    assert_tables(migrated_engine, expected_inventory(second, terms, previous_courses=day1["course"]))
    answers = sandbox.take_answers()
    # Activity: once per course; yesterday's available courses were asked before the listing, so some that are
    # no longer available were asked (their answers dropped; the usage table above has none of them).
    activity = asked_courses(answers, ANALYTICS_ROUTE)
    yesterday = {row["canvas_id"] for row in day1["course"] if row["workflow_state"] == "available"}
    assert set(activity.values()) == {1}
    assert available(sandbox, terms) <= set(activity) <= available(sandbox, terms) | yesterday
    asked = set(asked_courses(answers, AUDIT_ROUTE))
    assert asked == available(sandbox, terms) - stored_dated(day1["course"])
    assert set(second.extras["day"]["changes"]["published"]) & available(sandbox, terms) <= asked
    republished = second.extras["day"]["changes"]["republished"]
    assert republished and not set(republished) & asked
    with migrated_engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT canvas_id, published_at FROM course")).all())
    for course_id in republished:                                           # the documented miss
        old = {row["canvas_id"]: row["published_at"] for row in day1["course"]}[course_id]
        assert stored[course_id] == old
        assert published_at(second, second.course_by_id[course_id]).replace(tzinfo=None) > old


def test_full_lookup_asks_canvas_for_every_date_and_gets_the_republished_ones_right(
        sandbox, migrated_db_params, tmp_path, monkeypatch, migrated_engine):
    terms = sandbox.config["CANVAS"]["CANVAS_TERM_IDS"]
    write_config(tmp_path, env_of(sandbox))
    monkeypatch.setenv("ENV_DIR", str(tmp_path))
    assert run_jobs.main(["--jobs", "COURSE_INVENTORY"]) == 0
    day1 = expected_inventory(sandbox.university, terms)
    assert_tables(migrated_engine, day1)
    sandbox.take_answers()
    second = sandbox.next_day()
    assert run_jobs.main(["--jobs", "COURSE_INVENTORY", "--full-lookup"]) == 0
    assert_tables(migrated_engine, expected_inventory(second, terms))      # Canvas's own dates, every one
    assert audited_courses(sandbox) == available(sandbox, terms)
    with migrated_engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT canvas_id, published_at FROM course")).all())
    for course_id in second.extras["day"]["changes"]["republished"]:
        assert stored[course_id] == published_at(second, second.course_by_id[course_id]).replace(tzinfo=None)


def test_a_course_unpublished_one_day_and_published_the_next_gets_its_new_date(sandbox, migrated_engine):
    terms = sandbox.config["CANVAS"]["CANVAS_TERM_IDS"]
    run_course_inventory(env_of(sandbox), engine=migrated_engine)
    day1 = expected_inventory(sandbox.university, terms)
    second = sandbox.next_day()
    run_course_inventory(env_of(sandbox), engine=migrated_engine)
    day2 = expected_inventory(second, terms, previous_courses=day1["course"])
    third = sandbox.next_day(DayChanges(publish_share=1.0))                 # every unpublished course published
    run_course_inventory(env_of(sandbox), engine=migrated_engine)
    assert_tables(migrated_engine, expected_inventory(third, terms, previous_courses=day2["course"]))
    back = [c for c in second.extras["day"]["changes"]["unpublished"] if c in available(sandbox, terms)]
    assert back
    with migrated_engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT canvas_id, published_at FROM course")).all())
    dates1 = {row["canvas_id"]: row["published_at"] for row in day1["course"]}
    for course_id in back:                    # stored as unpublished on day 2, so day 3 looked it up again
        new = published_at(third, third.course_by_id[course_id]).replace(tzinfo=None)
        assert stored[course_id] == new and (dates1[course_id] is None or new > dates1[course_id])
