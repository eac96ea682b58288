"""What hangs off each planned course: enrollments, course audit history, daily activity and navigation tabs.

Every function takes the `CoursePlan`s from sandbox.generator_catalog (or the courses) and the
`random.Random` for its concern. Every enrollment type occurs in every state, audit histories span several
pages and stay consistent with each course's workflow_state, and some Zoom tabs are hidden or mislabelled.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta

from sandbox.generator_base import AS_OF, Ids, Weighted, random_uuid
from sandbox.generator_catalog import CoursePlan
from sandbox.university import (
    ENROLLMENT_STATES,
    ENROLLMENT_TYPES,
    NOT_COUNTED_STATES,
    ActivityDay,
    AuditEvent,
    Course,
    Enrollment,
    Tab,
    User,
)

_INTERNAL_TABS = (("home", "Home"), ("announcements", "Announcements"), ("assignments", "Assignments"),
                  ("discussions", "Discussions"), ("grades", "Grades"), ("people", "People"), ("pages", "Pages"),
                  ("files", "Files"), ("syllabus", "Syllabus"), ("quizzes", "Quizzes"), ("modules", "Modules"))
_OTHER_TOOLS = (("Gradescope", 3012), ("Piazza", 2210), ("Kaltura My Media", 1560), ("Panopto Video", 1875),
                ("Perusall", 9031), ("Tandem", 6620))
_ZOOM_TOOL_IDS = (4821, 5102, 7713)            # Zoom LTI Pro installed in several accounts
_ZOOM_LOOKALIKES = ("Zoom Meetings", "zoom", "Zoom (old)")

# Enrollment state mixes; every state of ENROLLMENT_STATES is possible for every type.
_STUDENT_STATES = {"active": 80, "completed": 5, "inactive": 4, "deleted": 4, "invited": 3,
                   "creation_pending": 2, "rejected": 2}
_STAFF_STATES = {"active": 88, "invited": 4, "deleted": 3, "completed": 2, "inactive": 2,
                 "creation_pending": 0.5, "rejected": 0.5}


# ---------------------------------------------------------------- enrollments

def make_enrollments(rng: random.Random, plans: list[CoursePlan], users: list[User]) -> list[Enrollment]:
    next_id = Ids(rng, 500_000, 3)
    user_ids = [user.id for user in users]
    enrollments: list[Enrollment] = []
    for plan in plans:
        roles = _roles(rng, plan)
        if not roles:
            continue
        course_id, sections = plan.course.id, [s.id for s in plan.sections]
        chosen, rand, n_sections = _pick_users(rng, user_ids, len(roles)), rng.random, len(sections)
        created = [Enrollment(id=next_id(), course_id=course_id, section_id=sections[int(rand() * n_sections)],
                              user_id=user, type=kind, state=state)
                   for (kind, state), user in zip(roles, chosen, strict=True)]
        enrollments.extend(created)
        for twin in _twins(rng, plan, created):
            enrollments.append(dataclasses.replace(twin, id=next_id()))
    return enrollments


def _pick_users(rng: random.Random, user_ids: list[int], count: int) -> list[int]:
    """`count` users, distinct within the course while the population allows it."""
    rand, population = rng.random, len(user_ids)
    if count > population // 2:
        return rng.sample(user_ids, count) if count <= population else [
            user_ids[int(rand() * population)] for _ in range(count)]
    chosen: dict[int, None] = {}                        # insertion-ordered set
    while len(chosen) < count:
        chosen[int(rand() * population)] = None
    return [user_ids[i] for i in chosen]


def _roles(rng: random.Random, plan: CoursePlan) -> list[tuple[str, str]]:
    """(type, state) of each enrollment the course gets, in id order."""
    kind = plan.kind
    if kind in ("populated", "deleted"):
        roles = _populated_roles(rng, plan.size)
        if plan.showcase:
            roles += [(t, s) for t in ENROLLMENT_TYPES for s in ENROLLMENT_STATES]
        return roles
    if kind == "teachers_only":
        roles = [("TeacherEnrollment", "active")]
        roles += [("TaEnrollment", "active")] if rng.random() < 0.5 else []
        return roles + ([("StudentViewEnrollment", "active")] if rng.random() < 0.5 else [])
    if kind == "uncounted_students":
        uncounted = sorted(NOT_COUNTED_STATES)
        return [("TeacherEnrollment", "active")] + [
            ("StudentEnrollment", uncounted[i % len(uncounted)]) for i in range(rng.randint(2, 12))]
    if kind == "only_deleted":
        return [("TeacherEnrollment", "deleted")] + [("StudentEnrollment", "deleted")] * rng.randint(1, 6)
    if kind == "no_listed_types":
        return [("TaEnrollment", "active"), ("ObserverEnrollment", "active"), ("StudentViewEnrollment", "active")]
    return []                                            # "empty"


_STUDENT_PICK = Weighted(_STUDENT_STATES)
_STAFF_PICK = Weighted(_STAFF_STATES)


def _populated_roles(rng: random.Random, size: int) -> list[tuple[str, str]]:
    staff = (["TeacherEnrollment"] * (1 + int(size > 60) + int(rng.random() < 0.2))
             + ["TaEnrollment"] * (size // 40 + int(rng.random() < 0.3))
             + ["DesignerEnrollment"] * int(rng.random() < 0.15)
             + ["ObserverEnrollment"] * (size // 80 + int(rng.random() < 0.1))
             + ["StudentViewEnrollment"] * int(rng.random() < 0.1))
    types = staff + ["StudentEnrollment"] * max(1, size - len(staff))
    rng.shuffle(types)
    roles = [(t, _STUDENT_PICK(rng) if t == "StudentEnrollment" else _STAFF_PICK(rng)) for t in types]
    first_student = types.index("StudentEnrollment")
    roles[first_student] = ("StudentEnrollment", "active")   # so total_students > 0
    return roles


def _twins(rng: random.Random, plan: CoursePlan, created: list[Enrollment]) -> list[Enrollment]:
    """Students enrolled in a second section of the same course (counted once by total_students)."""
    if plan.kind != "populated" or len(plan.sections) < 2:
        return []
    students = [e for e in created if e.type == "StudentEnrollment"]
    count = min(len(students), int(len(students) * 0.02 + rng.random()) + int(plan.showcase))
    twins = []
    for original in rng.sample(students, count):
        other = rng.choice([s.id for s in plan.sections if s.id != original.section_id])
        twins.append(dataclasses.replace(original, section_id=other, state="active"))
    return twins


# ---------------------------------------------------------------- audit events

# Available courses whose audit history spans pages: (has a published event, updates after the newest one).
# 99/100 straddle the 100-event page boundary; 150 and 250 put the event on pages 2 and 3.
_LONG_AUDIT = (("published", 150), ("published", 250), ("published", 99), ("published", 100), ("never", 230))


def make_audit(rng: random.Random, plans: list[CoursePlan], long_count: int) -> list[AuditEvent]:
    available = [p for p in plans if p.kind == "populated" and p.course.workflow_state == "available"]
    special: dict[int, tuple[str, int]] = {}
    for i, plan in enumerate(rng.sample(available, min(long_count, len(available)))):
        special[plan.course.id] = _LONG_AUDIT[i % len(_LONG_AUDIT)]
    plain = [p for p in available if p.course.id not in special]
    for plan in rng.sample(plain, min(len(plain), max(2, round(0.03 * len(available))))):
        special[plan.course.id] = ("never", 0)          # published by SIS at creation: no event
    unpublished = [p for p in plans if p.course.workflow_state == "unpublished"]
    for plan in rng.sample(unpublished, min(len(unpublished), max(1, len(unpublished) // 5))):
        special[plan.course.id] = ("withdrawn", 0)      # published once, then unpublished again
    events: list[AuditEvent] = []
    for plan in plans:
        script = _audit_script(rng, plan.course.workflow_state, special.get(plan.course.id))
        events.extend(_timestamped(rng, plan.course, script))
    return events


def _audit_script(rng: random.Random, state: str, special: tuple[str, int] | None) -> list[tuple[str, str]]:
    """Event types and sources, oldest first, consistent with the course's workflow_state."""
    kind, tail = special or ("", 0)
    if kind in ("published", "never"):
        core = ["published", "unpublished", "published"] if kind == "published" and rng.random() < 0.5 else []
        core = core or (["published"] if kind == "published" else [])
        head = [("created", "sis" if kind == "never" else "manual")]
        return head + [(t, "manual") for t in core] + [("updated", "api")] * tail
    core = {
        "available": ["published", "unpublished", "published"] if rng.random() < 0.15 else ["published"],
        "unpublished": ["published", "unpublished"] if kind == "withdrawn" else [],
        "completed": ["published", "concluded"],
        "deleted": (["published"] if rng.random() < 0.5 else []) + ["deleted"],
    }[state]
    if rng.random() < 0.1:
        core.insert(0, "copied_from")
    for _ in range(rng.randint(0, 4)):
        core.insert(rng.randint(0, len(core)), "updated")
    source = rng.choice(("sis", "sis", "manual", "api"))
    return [("created", source)] + [(t, "api" if rng.random() < 0.1 else "manual") for t in core]


def _timestamped(rng: random.Random, course: Course, script: list[tuple[str, str]]) -> list[AuditEvent]:
    # Strictly increasing whole seconds, all before AS_OF, so "newest first" is unambiguous.
    span = int((AS_OF - course.created_at).total_seconds())
    max_gap = max(1, span // (2 * len(script)))
    moment, events = course.created_at, []
    for event_type, source in script:
        events.append(AuditEvent(id=random_uuid(rng), course_id=course.id, created_at=moment, event_type=event_type,
                                 event_source=source))
        moment += timedelta(seconds=rng.randint(1, max_gap))
    return events


# ---------------------------------------------------------------- analytics and tabs

def make_activity(rng: random.Random, plans: list[CoursePlan], max_days: int) -> list[ActivityDay]:
    active = [p for p in plans if p.course.workflow_state in ("available", "completed")]
    available = [p for p in active if p.kind == "populated" and p.course.workflow_state == "available"]
    silent = {p.course.id for p in rng.sample(available, min(len(available), max(1, len(available) // 10)))}
    days: list[ActivityDay] = []
    for plan in active:
        first, last = _activity_window(plan)
        span = (last - first).days + 1
        if plan.course.id in silent or span <= 0 or max_days <= 0:
            continue
        intensity = 1 + plan.size
        for offset in sorted(rng.sample(range(span), rng.randint(1, min(span, max_days)))):
            views = 0 if rng.random() < 0.05 else int(rng.paretovariate(1.6) * intensity)
            participations = rng.randint(0, views // 4)
            days.append(ActivityDay(course_id=plan.course.id, date=first + timedelta(days=offset), views=views,
                                    participations=participations))
    return days


def _activity_window(plan: CoursePlan) -> tuple[date, date]:
    first, last = plan.course.created_at.date(), AS_OF.date() - timedelta(days=1)
    if plan.term.start_at is not None:
        first = max(first, plan.term.start_at.date() - timedelta(days=14))
    if plan.term.end_at is not None:
        last = min(last, plan.term.end_at.date())
    return first, last


def make_tabs(rng: random.Random, courses: list[Course], zoom_share: float) -> list[Tab]:
    n = len(courses)
    zoom = rng.sample(range(n), round(zoom_share * n))
    hidden = set(rng.sample(zoom, min(len(zoom), max(1, round(0.2 * len(zoom))))))
    lookalike = set(rng.sample(range(n), min(n, max(2, round(0.05 * n)))))
    zoom_set, tabs = set(zoom), []
    for index, course in enumerate(courses):
        external = [(label, tool_id, rng.random() < 0.1)
                    for label, tool_id in rng.sample(_OTHER_TOOLS, rng.choice((0, 0, 1, 1, 2, 3)))]
        if index in zoom_set:
            external.append(("Zoom", rng.choice(_ZOOM_TOOL_IDS), index in hidden))
        if index in lookalike:
            label = rng.choice(_ZOOM_LOOKALIKES)
            external.append((label, 2_999 + 1_000 * _ZOOM_LOOKALIKES.index(label), False))
        tabs.extend(_course_tabs(rng, course.id, external))
    return tabs


def _course_tabs(rng: random.Random, course_id: int, external: list[tuple[str, int, bool]]) -> list[Tab]:
    entries: list[tuple[str, str, str, bool, int | None]] = [
        (tab_id, label, "internal", False, None) for tab_id, label in _INTERNAL_TABS[1:] if rng.random() < 0.75]
    for label, tool_id, hidden in external:             # tools land anywhere after Home, before Settings
        entry = (f"context_external_tool_{tool_id}", label, "external", hidden, tool_id)
        entries.insert(rng.randint(0, len(entries)), entry)
    entries = [("home", "Home", "internal", False, None), *entries, ("settings", "Settings", "internal", False, None)]
    return [Tab(course_id=course_id, id=tab_id, label=label, type=kind, position=position, hidden=hidden,
                tool_id=tool_id)
            for position, (tab_id, label, kind, hidden, tool_id) in enumerate(entries, start=1)]
