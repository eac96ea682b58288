"""The seeded university generator: determinism, presets, referential integrity and messiness."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.generator import describe, generate_university
from sandbox.generator_base import AS_OF, SCALES, ScaleConfig, scale_config
from sandbox.university import (
    COURSE_STATES,
    ENROLLMENT_STATES,
    ENROLLMENT_TYPES,
    NOT_COUNTED_STATES,
    University,
)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = (42, 7, 2024)


@pytest.fixture(scope="module", params=SEEDS)
def u(request: pytest.FixtureRequest) -> University:
    return generate_university("small", seed=request.param)


def digest(university: University) -> str:
    fields = [getattr(university, f.name) for f in dataclasses.fields(University) if f.name != "extras"]
    return hashlib.sha256(repr(fields).encode()).hexdigest()


def is_numeric(value: str | None) -> bool:
    return value is not None and value.isdigit()


def is_utc_whole_seconds(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0 and moment.microsecond == 0


# ---------------------------------------------------------------- determinism and presets

def test_same_seed_gives_identical_data() -> None:
    assert digest(generate_university("small", seed=5)) == digest(generate_university("small", seed=5))


def test_different_seeds_give_different_data() -> None:
    first, second = generate_university("small", seed=5), generate_university("small", seed=6)
    assert digest(first) != digest(second)
    assert [c.name for c in first.courses] != [c.name for c in second.courses]


def test_identical_across_processes_with_different_hash_seeds() -> None:
    code = ("import dataclasses, hashlib; from sandbox.generator import generate_university as g; "
            "from sandbox.university import University as U; u = g('small', seed=11); "
            "print(hashlib.sha256(repr([getattr(u, f.name) for f in dataclasses.fields(U) "
            "if f.name != 'extras']).encode()).hexdigest())")
    outputs = {
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}).stdout.strip()
        for hash_seed in ("1", "2")
    }
    assert outputs == {digest(generate_university("small", seed=11))}


def test_small_generates_well_under_a_second() -> None:
    started = time.perf_counter()
    generate_university("small", seed=99)
    assert time.perf_counter() - started < 1.0


def test_small_counts_follow_its_preset(u: University) -> None:
    config = SCALES["small"]
    stats = describe(u)
    assert stats["kept_courses"] == config.courses_with_students
    assert stats["courses"] == (config.courses_with_students + config.courses_without_students
                                + config.deleted_courses)
    assert stats["terms"] == config.terms
    assert 0.8 * config.enrollments <= stats["enrollments"] <= 1.25 * config.enrollments
    assert stats["enrollments"] == len(u.enrollments) and stats["sections"] == len(u.sections)


def test_medium_preset_counts() -> None:
    medium = generate_university("medium", seed=3)
    stats = describe(medium)
    assert stats["kept_courses"] == SCALES["medium"].courses_with_students == 2_000
    assert 90_000 <= stats["enrollments"] <= 110_000
    sizes = sorted((len(medium.enrollments_by_course[c.id]) for c in medium.courses), reverse=True)
    assert sizes[2] >= 1_000                               # a few courses with thousands of people
    assert sizes[len(sizes) // 2] < 100                    # ... in a heavy-tailed distribution


def test_large_preset_is_sized_as_specified() -> None:
    large = SCALES["large"]
    assert large.courses_with_students == 10_000 and large.enrollments == 500_000


def test_knobs_override_the_preset() -> None:
    tiny = generate_university("small", seed=1, courses_with_students=6, courses_without_students=5,
                               deleted_courses=1, enrollments=200, big_courses=1, big_course_size=40, terms=3)
    assert len(tiny.courses) == 12 and len(tiny.terms) == 3
    assert describe(tiny)["kept_courses"] == 6
    assert tiny.extras["generator"]["config"]["enrollments"] == 200


@pytest.mark.parametrize("knobs", [{"no_such_knob": 1}, {"terms": 0}, {"terms": 10}, {"users": 0},
                                   {"zoom_share": 1.5}, {"courses_with_students": -1}])
def test_bad_knobs_are_refused(knobs: dict) -> None:
    with pytest.raises(ValueError):
        generate_university("small", **knobs)


def test_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        scale_config("huge")


def test_every_count_is_a_knob() -> None:
    counts = {f.name for f in dataclasses.fields(ScaleConfig) if f.type in ("int", int)}
    assert {"terms", "courses_with_students", "enrollments", "users", "big_courses", "long_audit_courses"} <= counts


# ---------------------------------------------------------------- referential integrity

def test_referential_integrity(u: University) -> None:
    account_ids, term_ids = set(u.account_by_id), set(u.term_by_id)
    assert all(a.parent_account_id is None or a.parent_account_id in account_ids for a in u.accounts)
    assert all(c.account_id in account_ids and c.term_id in term_ids for c in u.courses)
    assert all(s.course_id in u.course_by_id for s in u.sections)
    for e in u.enrollments:
        assert e.user_id in u.user_by_id
        assert u.section_by_id[e.section_id].course_id == e.course_id   # a section of its own course
    for records in (u.audit_events, u.activity, u.tabs):
        assert all(r.course_id in u.course_by_id for r in records)


@pytest.mark.parametrize("records", ["accounts", "terms", "courses", "sections", "users", "enrollments",
                                     "audit_events"])
def test_ids_are_unique(u: University, records: str) -> None:
    ids = [r.id for r in getattr(u, records)]
    assert len(ids) == len(set(ids))


def test_sis_ids_are_unique_per_kind(u: University) -> None:
    for values in ([a.sis_account_id for a in u.accounts], [t.sis_term_id for t in u.terms],
                   [c.sis_course_id for c in u.courses], [s.sis_source_id for s in u.sections]):
        present = [v for v in values if v is not None]
        assert len(present) == len(set(present))


def test_ids_fit_the_inventory_int_columns(u: University) -> None:
    biggest = max(r.id for r in [*u.accounts, *u.terms, *u.courses, *u.sections, *u.enrollments])
    assert biggest < 2**31


# ---------------------------------------------------------------- accounts and terms

def test_account_tree_root_colleges_departments(u: University) -> None:
    root = u.account_by_id[u.root_account_id]
    assert root.parent_account_id is None
    colleges = [a for a in u.accounts if a.parent_account_id == root.id]
    departments = [a for a in u.accounts if a.parent_account_id in {c.id for c in colleges}]
    assert colleges and departments and len(colleges) + len(departments) + 1 == len(u.accounts)
    assert u.subaccount_ids[root.id] == frozenset(u.account_by_id)


def test_account_sis_ids_and_names_are_messy(u: University) -> None:
    sis = [a.sis_account_id for a in u.accounts]
    assert None in sis and any(map(is_numeric, sis))
    assert any(s is not None and not s.isdigit() for s in sis)
    names = [a.name for a in u.accounts]
    assert len(set(names)) == len(names)
    assert any(len(n) > 100 for n in names) and any(not n.isascii() for n in names)


def test_terms_mix_sis_ids_and_dates(u: University) -> None:
    sis = [t.sis_term_id for t in u.terms]
    assert sis.count(None) == 1
    assert sum(1 for s in sis if s is not None and not s.isdigit()) == 1
    assert any(map(is_numeric, sis))
    assert any(t.start_at is None and t.end_at is None for t in u.terms)
    assert len({t.name for t in u.terms}) == len(u.terms)
    for term in u.terms:
        for moment in (term.start_at, term.end_at, term.created_at):
            assert moment is None or is_utc_whole_seconds(moment)
        if term.start_at and term.end_at:
            assert datetime(2024, 1, 1, tzinfo=UTC) <= term.start_at < term.end_at < datetime(2027, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- courses and sections

def test_course_states_and_dates(u: University) -> None:
    assert set(Counter(c.workflow_state for c in u.courses)) == set(COURSE_STATES)
    assert all(is_utc_whole_seconds(c.created_at) and c.created_at < AS_OF for c in u.courses)


def test_course_names_repeat_and_are_messy(u: University) -> None:
    names = Counter(c.name for c in u.courses)
    assert any(count > 1 for count in names.values())
    repeated = {name for name, count in names.items() if count > 1}
    assert any(len({c.term_id for c in u.courses if c.name == name}) > 1 for name in repeated)
    assert any("🎓" in n or "🚀" in n or "🎵" in n or "🌍" in n or "🧪" in n for n in names)
    assert any(not n.isascii() and all(ord(ch) < 0x10000 for ch in n) for n in names)   # non-emoji non-ASCII
    lengths = [len(n) for n in names]
    assert any(100 < n for n in lengths) and any(n >= 230 for n in lengths) and max(lengths) <= 250


def test_course_sis_ids_are_none_numeric_and_text(u: University) -> None:
    sis = [c.sis_course_id for c in u.courses]
    assert None in sis and any(map(is_numeric, sis)) and any(s and not s.isdigit() for s in sis)


def test_courses_without_students_of_every_kind(u: University) -> None:
    by_course = u.enrollments_by_course
    listed = [c for c in u.courses if c.workflow_state != "deleted"]
    assert any(not by_course.get(c.id) for c in listed)                                       # no enrollment
    assert any(by_course.get(c.id) and {e.type for e in by_course[c.id]} <= {"TeacherEnrollment", "TaEnrollment",
               "StudentViewEnrollment"} and any(e.type == "TeacherEnrollment" for e in by_course[c.id])
               for c in listed)                                                                # teachers only
    assert any(u.total_students(c.id) == 0 and by_course.get(c.id)
               and {e.state for e in by_course[c.id] if e.type == "StudentEnrollment"} and
               {e.state for e in by_course[c.id] if e.type == "StudentEnrollment"} <= NOT_COUNTED_STATES
               for c in listed)                                                                # uncounted students
    assert any(c.workflow_state == "deleted" and u.total_students(c.id) > 0 for c in u.courses)


def test_sections_per_course_and_their_messiness(u: University) -> None:
    per_course = Counter(s.course_id for s in u.sections)
    assert set(per_course) == set(u.course_by_id)
    assert min(per_course.values()) >= 1 and max(per_course.values()) <= SCALES["small"].max_sections
    assert max(per_course.values()) > 1
    sis = [s.sis_source_id for s in u.sections]
    assert None in sis and any(map(is_numeric, sis))
    assert any(s and not s.isdigit() and len(s) <= 20 for s in sis) and any(s and len(s) > 20 for s in sis)
    assert any(not s.name.isascii() for s in u.sections)


# ---------------------------------------------------------------- enrollments

def test_every_enrollment_type_in_every_state(u: University) -> None:
    seen = {(e.type, e.state) for e in u.enrollments}
    assert seen == {(t, s) for t in ENROLLMENT_TYPES for s in ENROLLMENT_STATES}


def test_big_courses_cross_several_graphql_pages(u: University) -> None:
    sizes = sorted((len(u.graphql_enrollments(c.id)) for c in u.courses if u.total_students(c.id)), reverse=True)
    assert sizes[1] > 250
    assert sizes[len(sizes) // 2] < 100


def test_users_in_many_courses_and_students_in_two_sections(u: University) -> None:
    courses_per_user = Counter(user for user, _ in {(e.user_id, e.course_id) for e in u.enrollments})
    assert max(courses_per_user.values()) >= 3
    twice = Counter((e.course_id, e.user_id) for e in u.enrollments if e.type == "StudentEnrollment")
    assert any(count > 1 for count in twice.values())


# ---------------------------------------------------------------- audit events

def test_audit_history_starts_with_created_and_is_strictly_ordered(u: University) -> None:
    for course in u.courses:
        events = u.audit_by_course[course.id]                      # newest first
        assert events[-1].event_type == "created" and events[-1].created_at == course.created_at
        times = [e.created_at for e in events]
        assert times == sorted(set(times), reverse=True)           # no ties: "newest" is unambiguous
        assert times[0] < AS_OF and all(is_utc_whole_seconds(t) for t in times)


def test_audit_history_matches_workflow_state(u: University) -> None:
    for course in u.courses:
        types = [e.event_type for e in u.audit_by_course[course.id]]
        if course.workflow_state == "completed":
            assert "concluded" in types and "published" in types
        if course.workflow_state == "deleted":
            assert "deleted" in types


def newest_published_position(u: University, course_id: int) -> int | None:
    types = [e.event_type for e in u.audit_by_course[course_id]]
    return types.index("published") if "published" in types else None


def test_published_events_on_later_pages_and_missing_ones(u: University) -> None:
    available = [c for c in u.courses if c.workflow_state == "available" and u.total_students(c.id)]
    positions = {c.id: newest_published_position(u, c.id) for c in available}
    found = [p for p in positions.values() if p is not None]
    assert {99, 100} <= set(found)                                 # last of page 1, first of page 2
    assert any(100 <= p < 200 for p in found) and any(200 <= p < 300 for p in found)
    never = [cid for cid, p in positions.items() if p is None]
    assert len(never) >= 2 and any(len(u.audit_by_course[cid]) > 100 for cid in never)
    republished = [c for c in available if [e.event_type for e in u.audit_by_course[c.id]].count("published") > 1]
    assert republished


def test_unpublished_courses_with_and_without_published_events(u: University) -> None:
    unpublished = [c for c in u.courses if c.workflow_state == "unpublished"]
    has_published = [newest_published_position(u, c.id) is not None for c in unpublished]
    assert any(has_published)
    assert not all(has_published)


# ---------------------------------------------------------------- analytics, tabs, warehouse date

def test_activity_is_consistent(u: University) -> None:
    for course_id, days in u.activity_by_course.items():
        assert u.course_by_id[course_id].workflow_state in ("available", "completed")
        dates = [d.date for d in days]
        assert len(dates) == len(set(dates))
        assert all(d.views >= d.participations >= 0 for d in days)
        assert max(dates) < AS_OF.date()
    kept_available = [c for c in u.courses if c.workflow_state == "available" and u.total_students(c.id)]
    lengths = {len(u.activity_by_course.get(c.id, [])) for c in kept_available}
    assert 0 in lengths and len(lengths) > 3


def test_tabs_and_zoom_placements(u: University) -> None:
    zoom_courses = set()
    for course in u.courses:
        tabs = u.tabs_by_course[course.id]
        assert [t.position for t in tabs] == list(range(1, len(tabs) + 1))
        assert len({t.id for t in tabs}) == len(tabs) and tabs[0].id == "home"
        for tab in tabs:
            assert (tab.type == "external") == (tab.tool_id is not None)
            if tab.type == "external":
                assert tab.id == f"context_external_tool_{tab.tool_id}"
        if any(t.label == "Zoom" for t in tabs):
            zoom_courses.add(course.id)
    share = len(zoom_courses) / len(u.courses)
    assert 0.2 <= share <= 0.4
    zoom_tabs = [t for t in u.tabs if t.label == "Zoom"]
    assert all(t.type == "external" for t in zoom_tabs) and any(t.hidden for t in zoom_tabs)
    assert any(not t.hidden for t in zoom_tabs)
    assert any(t.label != "Zoom" and "zoom" in t.label.lower() for t in u.tabs)
    assert any(sum(t.type == "external" for t in u.tabs_by_course[c.id]) >= 2 for c in u.courses)


def test_canvasdatadate_is_fixed_utc_with_microseconds(u: University) -> None:
    moment = u.canvasdatadate
    assert moment.utcoffset().total_seconds() == 0 and moment.microsecond != 0
    assert moment == generate_university("small", seed=u.seed).canvasdatadate
    assert moment < AS_OF
