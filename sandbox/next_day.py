"""The university a day later: a seeded "day" transform of a `University`, for second-day runs.

`next_day(u)` returns a new University one day after `u` (the simulated "now", `as_of`, moves by a day):

- some unpublished courses with students are published (a new `published` audit event);
- some available courses are unpublished and published again (an `unpublished` then a `published` event, both
  newer than anything in their log, so the newest `published` event, and so the published date, changes);
- some available courses are unpublished (a new `unpublished` event; Canvas then reports them `unpublished`);
- some rosters change: students added (new enrollment ids, `active`) and dropped (`deleted`, `inactive` or
  `completed`, as the `task`s delete, deactivate and conclude of canvas-lms enrollments_api_controller.rb#destroy
  leave them);
- most available courses get the new day's activity (analytics `activity` gains a date);
- the warehouse's `canvasdatadate` moves by a day.

Terms, accounts, sections, users and tabs stay as they were. Every choice comes from `random.Random` seeded by the
university's seed and the day number, so the day is reproducible and `sandbox.expected` derives the changed
inventory from the changed data alone. What changed is listed in `extras["day"]` (for reports and for picking
examples in tests; expectations never read it).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sandbox.generator_base import AS_OF, Ids, random_uuid
from sandbox.university import ActivityDay, AuditEvent, Course, Enrollment, University

DAY = timedelta(days=1)
# What a dropped student's enrollment becomes (DELETE /api/v1/courses/:id/enrollments/:id, by task).
_DROPPED_STATES = (("deleted", 0.6), ("inactive", 0.25), ("completed", 0.15))


@dataclass(frozen=True)
class DayChanges:
    """How much changes in a day; each share is of the courses the change can apply to (at least one when any)."""

    publish_share: float = 0.05        # of unpublished courses with students
    republish_share: float = 0.01      # of available courses with students and a published event
    unpublish_share: float = 0.005     # of available courses with students
    roster_share: float = 0.1          # of courses with students: 1-3 students added, 0-2 dropped
    activity_share: float = 0.9        # of available courses: a row for the new day's date

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1")


def day_number(u: University) -> int:
    """1 for a generated university, then one more per `next_day`."""
    return int(u.extras.get("day", {}).get("number", 1))


def as_of(u: University) -> datetime:
    """The simulated "now" of `u` (the generator's AS_OF on day 1)."""
    return u.extras.get("day", {}).get("as_of") or u.extras.get("generator", {}).get("as_of") or AS_OF


def next_day(u: University, changes: DayChanges | None = None) -> University:
    """A new University one day after `u`; `u` itself is not changed."""
    changes = changes or DayChanges()
    number, start = day_number(u) + 1, as_of(u)
    end = start + DAY
    rng = _Rngs(u.seed, number)
    courses = {c.id: c for c in u.courses}
    with_students = [c for c in u.courses if c.workflow_state != "deleted" and u.total_students(c.id) > 0]
    log: dict[str, list[int]] = {}
    events = _publishing(u, rng, changes, with_students, courses, start, log)
    enrollments = _roster_changes(u, rng("rosters"), changes.roster_share, with_students, log)
    # dataclasses.replace builds a new University: its indexes are computed afresh from the changed records.
    changed = dataclasses.replace(u, courses=[courses[c.id] for c in u.courses], enrollments=enrollments,
                                  audit_events=u.audit_events + events, canvasdatadate=u.canvasdatadate + DAY)
    activity = _new_activity(changed, rng("activity"), changes.activity_share, end.date() - DAY, log)
    extras = {**u.extras, "day": {"number": number, "as_of": end, "changes": log}}
    return dataclasses.replace(changed, activity=u.activity + activity, extras=extras)


class _Rngs:
    """One random stream per concern and day (string seeds are hashed by SHA-512: stable everywhere)."""

    def __init__(self, seed: int, number: int) -> None:
        self._seed, self._number = seed, number

    def __call__(self, concern: str) -> random.Random:
        return random.Random(f"{self._seed}:day{self._number}:{concern}")


def _pick(rng: random.Random, pool: list[Course], share: float) -> list[Course]:
    if not pool or share <= 0:
        return []
    return rng.sample(pool, min(len(pool), max(1, round(share * len(pool)))))


def _publishing(u: University, rng: _Rngs, changes: DayChanges, with_students: list[Course],
                courses: dict[int, Course], start: datetime, log: dict[str, list[int]]) -> list[AuditEvent]:
    """Publish, republish and unpublish courses (states changed in `courses`); the new audit events."""
    unpublished = [c for c in with_students if c.workflow_state == "unpublished"]
    available = [c for c in with_students if c.workflow_state == "available"]
    dated = [c for c in available if any(e.event_type == "published" for e in u.audit_by_course.get(c.id, []))]
    published = _pick(rng("publish"), unpublished, changes.publish_share)
    republished = _pick(rng("republish"), dated, changes.republish_share)
    taken = {c.id for c in republished}
    unpublishing = _pick(rng("unpublish"), [c for c in available if c.id not in taken], changes.unpublish_share)
    times, events = rng("event-times"), []
    for course in published:
        events.append(_event(times, course, "published", _moment(times, start)))
        courses[course.id] = dataclasses.replace(course, workflow_state="available")
    for course in republished:
        first = _moment(times, start)
        events.append(_event(times, course, "unpublished", first))
        events.append(_event(times, course, "published", first + timedelta(seconds=times.randint(60, 3_600))))
    for course in unpublishing:
        events.append(_event(times, course, "unpublished", _moment(times, start)))
        courses[course.id] = dataclasses.replace(course, workflow_state="unpublished")
    log.update(published=sorted(c.id for c in published), republished=sorted(taken),
               unpublished=sorted(c.id for c in unpublishing))
    return events


def _moment(rng: random.Random, start: datetime) -> datetime:
    """A whole second of the day after `start`, leaving an hour for a republish before the day ends."""
    return start + timedelta(seconds=rng.randint(60, 86_400 - 3_700))


def _event(rng: random.Random, course: Course, event_type: str, moment: datetime) -> AuditEvent:
    return AuditEvent(id=random_uuid(rng), course_id=course.id, created_at=moment, event_type=event_type,
                      event_source="manual")


def _roster_changes(u: University, rng: random.Random, share: float, with_students: list[Course],
                    log: dict[str, list[int]]) -> list[Enrollment]:
    """Every enrollment after the day's adds and drops, in id order (new ids above every existing one)."""
    sections: dict[int, list[int]] = defaultdict(list)
    for section in u.sections:
        sections[section.course_id].append(section.id)
    next_id = Ids(rng, max((e.id for e in u.enrollments), default=0) + 1, 3)
    users = [user.id for user in u.users]
    replaced: dict[int, Enrollment] = {}
    added: list[Enrollment] = []
    changed = [c for c in _pick(rng, with_students, share) if sections.get(c.id)]
    for course in changed:
        current = u.enrollments_by_course.get(course.id, [])
        enrolled = {e.user_id for e in current}
        for user in _new_students(rng, users, enrolled, rng.randint(1, 3)):
            added.append(Enrollment(id=next_id(), course_id=course.id, section_id=rng.choice(sections[course.id]),
                                    user_id=user, type="StudentEnrollment", state="active"))
        active = [e for e in current if e.type == "StudentEnrollment" and e.state == "active"]
        for dropped in rng.sample(active, min(len(active), rng.randint(0, 2))):
            replaced[dropped.id] = dataclasses.replace(dropped, state=_dropped_state(rng))
    log["rosters"] = sorted(c.id for c in changed)
    return [replaced.get(e.id, e) for e in u.enrollments] + added


def _new_students(rng: random.Random, users: list[int], enrolled: set[int], count: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(20 * count):                       # bounded: a course holding nearly everyone gets fewer
        if len(chosen) == count:
            break
        user = users[int(rng.random() * len(users))]
        if user not in enrolled and user not in chosen:
            chosen.append(user)
    return chosen


def _dropped_state(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for state, weight in _DROPPED_STATES:
        total += weight
        if roll < total:
            return state
    return _DROPPED_STATES[-1][0]


def _new_activity(u: University, rng: random.Random, share: float, on: date, log: dict[str, list[int]]
                  ) -> list[ActivityDay]:
    """A row dated `on` (yesterday, as analytics reports whole days) for a share of the available courses whose
    term window covers it (the generator's window: two weeks before the term to its end)."""
    rows = []
    for course in u.courses:
        if course.workflow_state != "available" or course.created_at.date() > on or rng.random() >= share:
            continue
        term = u.term_by_id.get(course.term_id)
        if term is not None and ((term.start_at and on < term.start_at.date() - timedelta(days=14))
                                 or (term.end_at and on > term.end_at.date())):
            continue
        views = 0 if rng.random() < 0.05 else int(rng.paretovariate(1.6) * (1 + u.total_students(course.id)))
        rows.append(ActivityDay(course_id=course.id, date=on, views=views,
                                participations=rng.randint(0, views // 4)))
    log["activity"] = sorted(row.course_id for row in rows)
    return rows
