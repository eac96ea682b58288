"""The synthetic university every simulator serves: plain records plus the Canvas rules they obey.

The generator (sandbox/generator.py) fills a `University`; the simulators only read it; the expected
inventory (sandbox/expected.py) is derived from it with the rules below, never with product code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

# Canvas API course states (the DB state "claimed"/"created" is reported as "unpublished").
COURSE_STATES = ("unpublished", "available", "completed", "deleted")
ENROLLMENT_TYPES = (
    "StudentEnrollment",
    "TeacherEnrollment",
    "TaEnrollment",
    "DesignerEnrollment",
    "ObserverEnrollment",
    "StudentViewEnrollment",
)
ENROLLMENT_STATES = ("invited", "creation_pending", "active", "deleted", "rejected", "completed", "inactive")
# States whose student enrollments do not count towards `total_students` (Canvas accounts API).
NOT_COUNTED_STATES = frozenset({"rejected", "completed", "deleted", "inactive"})
ANALYTICS_STUDENT_TYPES = frozenset({"StudentEnrollment", "StudentViewEnrollment"})
AUDIT_EVENT_TYPES = (
    "created", "updated", "concluded", "unconcluded", "published", "unpublished",
    "deleted", "restored", "copied_to", "copied_from", "reset_to", "reset_from",
)


@dataclass(frozen=True, slots=True)
class Term:
    id: int
    name: str
    sis_term_id: str | None          # None, numeric text, or non-numeric text
    start_at: datetime | None        # tz-aware UTC, whole seconds
    end_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    parent_account_id: int | None    # None for the root account
    sis_account_id: str | None


@dataclass(frozen=True, slots=True)
class Course:
    id: int
    name: str
    course_code: str
    account_id: int
    term_id: int
    sis_course_id: str | None
    created_at: datetime
    workflow_state: str              # one of COURSE_STATES


@dataclass(frozen=True, slots=True)
class Section:
    id: int
    course_id: int
    name: str
    sis_source_id: str | None        # Canvas's value (GraphQL Section.sisId); the UDW may lag (sandbox/udw_lag.py)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Enrollment:
    id: int
    course_id: int
    section_id: int
    user_id: int
    type: str                        # one of ENROLLMENT_TYPES
    state: str                       # one of ENROLLMENT_STATES


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str                          # uuid string
    course_id: int
    created_at: datetime
    event_type: str                  # one of AUDIT_EVENT_TYPES
    event_source: str                # "manual", "sis", "api"


@dataclass(frozen=True, slots=True)
class ActivityDay:
    course_id: int
    date: date
    views: int
    participations: int


@dataclass(frozen=True, slots=True)
class Tab:
    course_id: int
    id: str                          # "home", "context_external_tool_<tool_id>", ...
    label: str
    type: str                        # "internal" or "external"
    position: int
    hidden: bool = False
    tool_id: int | None = None       # external tools only


@dataclass
class University:
    seed: int
    root_account_id: int
    terms: list[Term]
    accounts: list[Account]
    courses: list[Course]
    sections: list[Section]
    users: list[User]
    enrollments: list[Enrollment]
    audit_events: list[AuditEvent]   # any order; see audit_events_for()
    activity: list[ActivityDay]
    tabs: list[Tab]
    canvasdatadate: datetime         # UDW freshness (unizin_metadata)
    extras: dict = field(default_factory=dict)  # room for other simulators' data (Kaltura, UDP, Zoom)

    # ---- indexes (computed once, read by simulators from many threads) ----
    @cached_property
    def term_by_id(self) -> dict[int, Term]:
        return {t.id: t for t in self.terms}

    @cached_property
    def account_by_id(self) -> dict[int, Account]:
        return {a.id: a for a in self.accounts}

    @cached_property
    def course_by_id(self) -> dict[int, Course]:
        return {c.id: c for c in self.courses}

    @cached_property
    def section_by_id(self) -> dict[int, Section]:
        return {s.id: s for s in self.sections}

    @cached_property
    def user_by_id(self) -> dict[int, User]:
        return {u.id: u for u in self.users}

    @cached_property
    def enrollments_by_course(self) -> dict[int, list[Enrollment]]:
        """Per course, enrollments in ascending id order (the GraphQL connection's order)."""
        grouped: dict[int, list[Enrollment]] = defaultdict(list)
        for enrollment in sorted(self.enrollments, key=lambda e: e.id):
            grouped[enrollment.course_id].append(enrollment)
        return grouped

    @cached_property
    def audit_by_course(self) -> dict[int, list[AuditEvent]]:
        """Per course, audit events newest first (ties broken by id, descending)."""
        grouped: dict[int, list[AuditEvent]] = defaultdict(list)
        for event in self.audit_events:
            grouped[event.course_id].append(event)
        for events in grouped.values():
            events.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return grouped

    @cached_property
    def activity_by_course(self) -> dict[int, list[ActivityDay]]:
        grouped: dict[int, list[ActivityDay]] = defaultdict(list)
        for day in self.activity:
            grouped[day.course_id].append(day)
        return grouped

    @cached_property
    def tabs_by_course(self) -> dict[int, list[Tab]]:
        grouped: dict[int, list[Tab]] = defaultdict(list)
        for tab in self.tabs:
            grouped[tab.course_id].append(tab)
        for tabs in grouped.values():
            tabs.sort(key=lambda t: t.position)
        return grouped

    @cached_property
    def subaccount_ids(self) -> dict[int, frozenset[int]]:
        """Each account id -> itself and all its descendants (Canvas lists sub-account courses too)."""
        children: dict[int | None, list[int]] = defaultdict(list)
        for account in self.accounts:
            children[account.parent_account_id].append(account.id)
        result: dict[int, frozenset[int]] = {}
        for account in self.accounts:
            seen, stack = set(), [account.id]
            while stack:
                current = stack.pop()
                seen.add(current)
                stack.extend(children.get(current, []))
            result[account.id] = frozenset(seen)
        return result

    # ---- Canvas rules shared by the simulators and the expected inventory ----
    def total_students(self, course_id: int) -> int:
        """Distinct student users whose enrollments are not rejected/completed/deleted/inactive."""
        return len({
            e.user_id
            for e in self.enrollments_by_course.get(course_id, [])
            if e.type == "StudentEnrollment" and e.state not in NOT_COUNTED_STATES
        })

    def has_enrollment_of_type(self, course_id: int, types: set[str] | None) -> bool:
        """`with_enrollments=true` (+ `enrollment_type[]`): at least one non-deleted enrollment of those types.

        `types` holds Canvas short names ("student", "teacher", "ta", "observer", "designer"); None = any.
        """
        wanted = None if types is None else {_SHORT_TYPES[t] for t in types if t in _SHORT_TYPES}
        return any(
            e.state != "deleted" and (wanted is None or e.type in wanted)
            for e in self.enrollments_by_course.get(course_id, [])
        )

    def has_analytics_students(self, course_id: int) -> bool:
        """Analytics::Course#available? (instructure/analytics lib/analytics/course.rb): the course has a student
        enrollment (Course#all_student_enrollments: StudentEnrollment or StudentViewEnrollment) active or completed."""
        return any(e.type in ANALYTICS_STUDENT_TYPES and e.state in ("active", "completed")
                   for e in self.enrollments_by_course.get(course_id, []))

    def graphql_enrollments(self, course_id: int, states: set[str] | None = None) -> list[Enrollment]:
        """course.enrollmentsConnection: all but deleted by default, or exactly `states` when filtered."""
        return [
            e for e in self.enrollments_by_course.get(course_id, [])
            if (e.state in states if states is not None else e.state != "deleted")
        ]


_SHORT_TYPES = {
    "student": "StudentEnrollment",
    "teacher": "TeacherEnrollment",
    "ta": "TaEnrollment",
    "observer": "ObserverEnrollment",
    "designer": "DesignerEnrollment",
}
