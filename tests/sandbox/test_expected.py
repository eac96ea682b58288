"""The expected inventory: hand-built universities with known answers, and consistency on generated ones."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from sandbox.expected import (
    TABLE_COLUMNS,
    expected_inventory,
    inventory_section_ids,
    kept_courses,
    naive_utc,
    rows_as_sorted_tuples,
    sis_id_disagreements,
    warehouse_section_sis_ids,
)
from sandbox.generator import generate_university
from sandbox.udw_lag import NO_LAG, Fate, UdwLag, section_fates
from sandbox.university import (
    Account,
    ActivityDay,
    AuditEvent,
    Course,
    Enrollment,
    Section,
    Term,
    University,
    User,
)

T0 = datetime(2025, 9, 1, 12, 0, 0, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def course(course_id: int, state: str, term_id: int = 10, account_id: int = 2) -> Course:
    return Course(id=course_id, name=f"Course {course_id}", course_code=f"C {course_id}", account_id=account_id,
                  term_id=term_id, sis_course_id=None if course_id % 2 else str(course_id), created_at=day(0),
                  workflow_state=state)


def audit(course_id: int, *types: str) -> list[AuditEvent]:
    """Events of one course, oldest first, one day apart, ids deliberately not in time order."""
    return [AuditEvent(id=f"{course_id}-{9 - i}", course_id=course_id, created_at=day(i), event_type=t,
                       event_source="manual") for i, t in enumerate(types)]


class Tiny:
    """A hand-built university; each course's fate is stated next to it."""

    def __init__(self) -> None:
        self.accounts = [Account(1, "Root", None, "ROOT"), Account(2, "Dept", 1, None),
                         Account(9, "Other root", None, "9")]
        self.terms = [Term(10, "Fall", "2510", day(-5), day(100), day(-200)),
                      Term(20, "Default Term", None, None, None, day(-900))]
        self.courses = [
            course(100, "available"),                     # kept: active student
            course(101, "available"),                     # dropped: teachers only
            course(102, "completed"),                     # dropped: only completed students
            course(103, "deleted"),                       # dropped: deleted course
            course(104, "unpublished", account_id=9),     # dropped: outside the root account's tree
            course(105, "available", term_id=20),         # kept only when term 20 is asked for
            course(106, "unpublished"),                   # kept: an invited student counts
            course(107, "available"),                     # dropped: test student + teacher only
            course(108, "completed"),                     # kept: active student
        ]
        self.sections = [Section(c.id + 1_000, c.id, f"S {c.id}", None if c.id % 3 else f"SIS{c.id}")
                         for c in self.courses] + [Section(2_100, 100, "S 100 b", "17")]
        self.next_enrollment = 5_000
        self.enrollments: list[Enrollment] = []
        self.enroll(100, "StudentEnrollment", "active")
        self.enroll(100, "TeacherEnrollment", "active")
        self.enroll(100, "StudentEnrollment", "deleted", section=2_100)   # its section is not referenced
        self.enroll(101, "TeacherEnrollment", "active")
        self.enroll(101, "TaEnrollment", "active")
        self.enroll(102, "StudentEnrollment", "completed")
        self.enroll(102, "TeacherEnrollment", "active")
        self.enroll(103, "StudentEnrollment", "active")
        self.enroll(104, "StudentEnrollment", "active")
        self.enroll(105, "StudentEnrollment", "active")
        self.enroll(106, "StudentEnrollment", "invited")
        self.enroll(107, "StudentViewEnrollment", "active")
        self.enroll(107, "TeacherEnrollment", "active")
        self.enroll(108, "StudentEnrollment", "active")
        self.enroll(108, "ObserverEnrollment", "inactive")
        self.audit = (audit(100, "created", "published", "unpublished", "published", "updated")
                      + audit(105, "created", "updated")
                      + audit(106, "created", "published", "unpublished")
                      + audit(108, "created", "published", "concluded"))
        self.activity = [ActivityDay(100, date(2025, 9, 2), 10, 3), ActivityDay(100, date(2025, 9, 3), 0, 0),
                         ActivityDay(105, date(2025, 9, 2), 4, 4), ActivityDay(108, date(2025, 9, 2), 7, 1)]

    def enroll(self, course_id: int, kind: str, state: str, section: int | None = None) -> None:
        self.next_enrollment += 7
        self.enrollments.append(Enrollment(self.next_enrollment, course_id, section or course_id + 1_000,
                                           self.next_enrollment * 10, kind, state))

    def build(self, shuffle_seed: int = 0) -> University:
        events = list(self.audit)
        random.Random(shuffle_seed).shuffle(events)       # input order must not matter
        users = [User(e.user_id, f"User {e.user_id}") for e in self.enrollments]
        return University(seed=0, root_account_id=1, terms=self.terms, accounts=self.accounts, courses=self.courses,
                          sections=self.sections, users=users, enrollments=self.enrollments, audit_events=events,
                          activity=self.activity, tabs=[], canvasdatadate=day(30).replace(microsecond=5))


@pytest.fixture
def tiny() -> Tiny:
    return Tiny()


# ---------------------------------------------------------------- hand-built, known answers

def test_kept_courses_follow_the_listing_and_total_students_rules(tiny: Tiny) -> None:
    u = tiny.build()
    assert [c.id for c in kept_courses(u, [10])] == [100, 106, 108]
    assert [c.id for c in kept_courses(u, [10, 20])] == [100, 105, 106, 108]
    assert [c.id for c in kept_courses(u, [20])] == [105]


@pytest.mark.parametrize("shuffle_seed", [0, 1, 2])
def test_published_at_is_newest_published_event_of_available_courses(tiny: Tiny, shuffle_seed: int) -> None:
    rows = {r["canvas_id"]: r for r in expected_inventory(tiny.build(shuffle_seed), [10, 20])["course"]}
    assert rows[100]["published_at"] == naive_utc(day(3))    # republished: the newer of the two
    assert rows[105]["published_at"] is None                 # available, never published
    assert rows[106]["published_at"] is None                 # was published, now unpublished
    assert rows[108]["published_at"] is None                 # completed: not looked up


def test_published_event_deep_in_a_long_history_is_found(tiny: Tiny) -> None:
    tiny.audit += [AuditEvent(f"u{i}", 105, day(5) + timedelta(minutes=i), "updated", "api") for i in range(250)]
    tiny.audit += audit(105, "created", "published")[1:]    # published at day(1), far behind 250 updates
    rows = {r["canvas_id"]: r for r in expected_inventory(tiny.build(), [20])["course"]}
    assert rows[105]["published_at"] == naive_utc(day(1))


def test_course_rows_are_naive_utc_with_null_sis_ids(tiny: Tiny) -> None:
    rows = {r["canvas_id"]: r for r in expected_inventory(tiny.build(), [10])["course"]}
    assert rows[100]["created_at"] == datetime(2025, 9, 1, 12, 0, 0) and rows[100]["created_at"].tzinfo is None
    assert rows[100]["sis_id"] == "100" and rows[106]["sis_id"] == "106"
    assert rows[108]["workflow_state"] == "completed" and rows[100]["account_id"] == 2 and rows[100]["term_id"] == 10


def test_enrollments_sections_accounts_terms_and_usage(tiny: Tiny) -> None:
    expected = expected_inventory(tiny.build(), [10])
    enrollments = expected["enrollment"]
    assert [(e["course_id"], e["role_type"], e["workflow_state"]) for e in enrollments] == [
        (100, "StudentEnrollment", "active"), (100, "TeacherEnrollment", "active"),
        (106, "StudentEnrollment", "invited"),
        (108, "StudentEnrollment", "active"), (108, "ObserverEnrollment", "inactive")]
    assert {s["canvas_id"] for s in expected["course_section"]} == {1_100, 1_106, 1_108}    # not 2_100
    assert {s["canvas_id"]: s["sis_id"] for s in expected["course_section"]} == {
        1_100: None, 1_106: None, 1_108: "SIS108"}
    assert expected["account"] == [{"canvas_id": 2, "name": "Dept", "sis_id": None}]
    assert expected["term"] == [{"canvas_id": 10, "name": "Fall", "sis_id": "2510",
                                 "start_at": naive_utc(day(-5)), "end_at": naive_utc(day(100))}]
    assert expected["canvas_course_usage"] == [      # available kept courses only: not 108 (completed)
        {"course_id": 100, "views": 10, "participations": 3, "date": date(2025, 9, 2)},
        {"course_id": 100, "views": 0, "participations": 0, "date": date(2025, 9, 3)}]


def test_section_sis_ids_of_a_warehouse_that_lacks_every_section(tiny: Tiny) -> None:
    u, lag = tiny.build(), UdwLag(missing_share=1.0, stale_share=0.0)
    assert warehouse_section_sis_ids(u, lag) == {}
    # Sections 1100 and 1106 have no SIS id in Canvas either: only 1108 ("SIS108") differs.
    assert sis_id_disagreements(u, [10], lag) == [(1_108, "SIS108", None)]
    stored = expected_inventory(u, [10], section_sis_ids=warehouse_section_sis_ids(u, lag))["course_section"]
    assert {s["canvas_id"]: s["sis_id"] for s in stored} == {1_100: None, 1_106: None, 1_108: None}


def test_section_sis_ids_of_a_warehouse_where_every_row_is_stale(tiny: Tiny) -> None:
    u, lag = tiny.build(), UdwLag(missing_share=0.0, stale_share=1.0)
    older = {1_100: "PREV-1100", 1_106: "PREV-1106", 1_108: None}      # even id with an id: assigned since
    assert sis_id_disagreements(u, [10], lag) == [(1_100, None, "PREV-1100"), (1_106, None, "PREV-1106"),
                                                  (1_108, "SIS108", None)]
    stored = expected_inventory(u, [10], section_sis_ids=warehouse_section_sis_ids(u, lag))["course_section"]
    assert {s["canvas_id"]: s["sis_id"] for s in stored} == older
    assert sis_id_disagreements(u, [10], NO_LAG) == []



def test_usage_needs_an_active_or_completed_student_as_canvas_analytics_does(tiny: Tiny) -> None:
    tiny.courses.append(course(109, "available"))                 # kept: an invited student counts...
    tiny.sections.append(Section(1_109, 109, "S 109", None))
    tiny.enroll(109, "StudentEnrollment", "invited")
    tiny.activity.append(ActivityDay(109, date(2025, 9, 2), 5, 1))   # ...but analytics answers 404
    expected = expected_inventory(tiny.build(), [10, 20])
    assert 109 in {c["canvas_id"] for c in expected["course"]}
    assert {r["course_id"] for r in expected["canvas_course_usage"]} == {100, 105}


def test_term_without_dates_or_sis_id(tiny: Tiny) -> None:
    term = expected_inventory(tiny.build(), [20])["term"]
    assert term == [{"canvas_id": 20, "name": "Default Term", "sis_id": None, "start_at": None, "end_at": None}]


def test_unknown_term_is_refused(tiny: Tiny) -> None:
    with pytest.raises(ValueError, match="99"):
        expected_inventory(tiny.build(), [10, 99])


def test_rows_as_sorted_tuples_projects_and_sorts_with_nulls_first() -> None:
    rows = [{"a": 2, "b": "x", "c": 0}, {"a": None, "b": "y", "c": 1}, {"a": 1, "b": None, "c": 2}]
    assert rows_as_sorted_tuples(rows, ["a", "b"]) == [(None, "y"), (1, None), (2, "x")]


# ---------------------------------------------------------------- generated university

@pytest.fixture(scope="module")
def generated() -> tuple[University, dict]:
    u = generate_university("small", seed=42)
    return u, expected_inventory(u, [t.id for t in u.terms])


def test_rows_have_exactly_the_fixed_columns(generated: tuple[University, dict]) -> None:
    _, expected = generated
    assert set(expected) == set(TABLE_COLUMNS)
    for table, rows in expected.items():
        assert rows, table
        assert all(tuple(row) == TABLE_COLUMNS[table] for row in rows), table


def test_generated_inventory_is_referentially_consistent(generated: tuple[University, dict]) -> None:
    u, expected = generated
    course_ids = {c["canvas_id"] for c in expected["course"]}
    section_ids = {s["canvas_id"] for s in expected["course_section"]}
    assert {e["course_id"] for e in expected["enrollment"]} == course_ids
    assert {e["course_section_id"] for e in expected["enrollment"]} == section_ids
    assert {c["account_id"] for c in expected["course"]} == {a["canvas_id"] for a in expected["account"]}
    assert {c["term_id"] for c in expected["course"]} <= {t["canvas_id"] for t in expected["term"]}
    assert {r["course_id"] for r in expected["canvas_course_usage"]} <= course_ids
    for table in ("course", "course_section", "enrollment", "account", "term"):
        ids = [r["canvas_id"] for r in expected[table]]
        assert len(ids) == len(set(ids)), table


def test_generated_inventory_applies_the_canvas_rules(generated: tuple[University, dict]) -> None:
    u, expected = generated
    assert all(u.total_students(c["canvas_id"]) > 0 for c in expected["course"])
    assert all(c["workflow_state"] != "deleted" for c in expected["course"])
    dropped = [c for c in u.courses if c.id not in {r["canvas_id"] for r in expected["course"]}]
    assert dropped and all(c.workflow_state == "deleted" or u.total_students(c.id) == 0 for c in dropped)
    assert all(e["workflow_state"] != "deleted" for e in expected["enrollment"])
    states = {c["canvas_id"]: c["workflow_state"] for c in expected["course"]}
    assert all(states[r["course_id"]] == "available" for r in expected["canvas_course_usage"])
    published = [c for c in expected["course"] if c["published_at"] is not None]
    assert published and all(c["workflow_state"] == "available" for c in published)
    assert any(c["workflow_state"] == "available" and c["published_at"] is None for c in expected["course"])
    assert all(c["published_at"] is None or c["published_at"] >= c["created_at"] for c in expected["course"])


def test_generated_inventory_has_the_messy_values(generated: tuple[University, dict]) -> None:
    _, expected = generated
    names = [c["name"] for c in expected["course"]]
    assert len(set(names)) < len(names) and max(map(len, names)) > 100
    for table in ("course", "course_section", "account", "term"):
        sis = [r["sis_id"] for r in expected[table]]
        assert None in sis and any(s is not None and not s.isdigit() for s in sis), table
    assert max(sum(1 for e in expected["enrollment"] if e["course_id"] == cid)
               for cid in {c["canvas_id"] for c in expected["course"]}) > 250


def test_disagreements_follow_from_the_lag_fates(generated: tuple[University, dict]) -> None:
    u, expected = generated
    terms, lag = [t.id for t in u.terms], UdwLag(missing_share=0.1, stale_share=0.1, seed=4)
    fates = section_fates(u.sections, lag, u.seed)
    inventory = inventory_section_ids(u, terms)
    assert inventory == [s["canvas_id"] for s in expected["course_section"]]
    # Every stale row differs; a missing one differs only when Canvas has a SIS id.
    wanted = {i for i in inventory if fates[i] is Fate.STALE
              or (fates[i] is Fate.MISSING and u.section_by_id[i].sis_source_id is not None)}
    found = sis_id_disagreements(u, terms, lag)
    assert {i for i, _, _ in found} == wanted and len(wanted) > 10
    assert any(fates[i] is Fate.MISSING and u.section_by_id[i].sis_source_id is None for i in inventory)
    stored = expected_inventory(u, terms, section_sis_ids=warehouse_section_sis_ids(u, lag))["course_section"]
    canvas = {s["canvas_id"]: s["sis_id"] for s in expected["course_section"]}
    assert {s["canvas_id"] for s in stored if s["sis_id"] != canvas[s["canvas_id"]]} == wanted


def test_a_term_subset_keeps_only_its_courses(generated: tuple[University, dict]) -> None:
    u, full = generated
    term_id = max(u.terms, key=lambda t: sum(c.term_id == t.id for c in u.courses)).id
    subset = expected_inventory(u, [term_id])
    assert subset["course"] and all(c["term_id"] == term_id for c in subset["course"])
    assert [t["canvas_id"] for t in subset["term"]] == [term_id]
    full_courses = rows_as_sorted_tuples(full["course"], TABLE_COLUMNS["course"])
    assert set(rows_as_sorted_tuples(subset["course"], TABLE_COLUMNS["course"])) < set(full_courses)
