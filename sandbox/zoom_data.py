"""Generated Zoom LTI Pro data: each course's previous meetings, which launches fail, and the job's expected output.

Everything is a pure function of the University's seed and course ids (no wall clock), so the simulator
(sandbox/zoom_sim.py) and the tests agree without sharing state:

    data = ZoomData(university, no_values_share=0.1)
    data.meetings(course_id)            # previous meetings, newest first (the order Zoom lists them)
    data.launch_has_values(course_id)   # False: the launch page carries no scid / XSRF token
    expected = expected_zoom_output(university, term_ids, add_course_ids, data, canvas_rest.launch_page_has_form)

`expected_zoom_output` derives the CANVAS_ZOOM_MEETINGS rows from the University with Canvas's documented
rules (published listing, tab selection) and this module's data, never with product code.
"""

from __future__ import annotations

import base64
import hashlib
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sandbox.faults import draw
from sandbox.university import Course, University

ZOOM_TAB_LABEL = "Zoom"
DEFAULT_CLIENT_TIMEZONE = "America/Detroit"
TOPIC_MAX = 300                      # the longest topic generated (the job's column must hold it)
_TIMEZONES = ("America/Detroit", "America/Detroit", "America/Detroit", "America/New_York", "UTC",
              "Asia/Shanghai", "Europe/Berlin")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_TOPICS = (
    "{code} Lecture",
    "{code} Office Hours — Prof. {last}",
    "{last}'s office hours",
    'Review session: "Midterm {n}"',
    'Q&A "Week {n}" \'{code}\'',
    "Séance de révision – {code}",
    "Übung {n}: Fragen & Antworten",
    "{code} 討論會 第{n}回",
    "Study group 📚 {code}",
    "Lab \\ Section {n} <online>",
    "Discusión: «{code}» — grupo {n}",
)
_LAST_NAMES = ("O'Brien", "Müller", "Çelik", "García", "Nguyen", "Wójcik", "Smith", "陈", "D'Angelo")
_LONG_PHRASE = "Extended “hybrid” session with Ünïcödé notes & guest speakers' Q&A"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # not locale's %b


@dataclass(frozen=True, slots=True)
class ZoomMeeting:
    course_id: int
    meeting_id: str                  # one occurrence's UUID (base64: may hold '/', '+', '=')
    meeting_number: int              # the number people dial; repeats across a series' occurrences
    host_id: str
    topic: str
    join_url: str
    start_at: datetime               # tz-aware UTC
    status: str
    timezone: str                    # the meeting's own zone
    duration: int                    # minutes


def start_time_text(start_at: datetime, timezone: str) -> str:
    """Zoom's display form, e.g. `Sep 1, 2020 10:00 AM`, in `timezone` (UTC when the zone is unknown)."""
    try:
        zone: Any = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = start_at.astimezone(zone)
    hour = local.hour % 12 or 12
    noon = "AM" if local.hour < 12 else "PM"
    return f"{_MONTHS[local.month - 1]} {local.day}, {local.year} {hour}:{local.minute:02d} {noon}"


def meeting_json(meeting: ZoomMeeting, client_timezone: str | None) -> dict[str, Any]:
    """One `result.list[]` entry of the previous-meetings API; startTime shown in the client's zone."""
    return {
        "meetingId": meeting.meeting_id, "meetingNumber": meeting.meeting_number, "hostId": meeting.host_id,
        "topic": meeting.topic, "joinUrl": meeting.join_url,
        "startTime": start_time_text(meeting.start_at, client_timezone or meeting.timezone),
        "status": meeting.status, "timezone": meeting.timezone, "duration": meeting.duration,
    }


class ZoomData:
    """The Zoom side of a University: meetings per course and the seeded share of broken launch pages."""

    def __init__(self, university: University, *, no_values_share: float = 0.05,
                 launch_has_values: Callable[[int], bool] | None = None) -> None:
        if not 0 <= no_values_share <= 1:
            raise ValueError("no_values_share must be within [0, 1]")
        self.university = university
        self.seed = university.seed
        self.no_values_share = no_values_share
        self._has_values = launch_has_values
        self._cache: dict[int, list[ZoomMeeting]] = {}
        self._lock = threading.Lock()

    def launch_has_values(self, course_id: int) -> bool:
        """Whether this course's launch page carries `scid` and the XSRF token (a changed page does not)."""
        if self._has_values is not None:
            return self._has_values(course_id)
        return draw(self.seed, f"zoom-values:{course_id}", 0) >= self.no_values_share

    def page_layout(self, course_id: int, layouts: int) -> int:
        """Which of the simulator's `layouts` launch-page layouts this course gets."""
        return int(draw(self.seed, f"zoom-layout:{course_id}", 0) * layouts)

    def meetings(self, course_id: int) -> list[ZoomMeeting]:
        """The course's previous meetings, newest first; [] for unknown courses."""
        with self._lock:
            cached = self._cache.get(course_id)
        if cached is None:
            course = self.university.course_by_id.get(course_id)
            cached = [] if course is None else _generate_meetings(self.seed, course)
            with self._lock:
                self._cache[course_id] = cached
        return cached


@dataclass(frozen=True)
class _Series:
    number: int
    host_id: str
    topic: str
    timezone: str
    password: str | None


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(length))


def _meeting_count(rng: random.Random) -> int:
    """None, one page, or several pages of the simulator's default page size (10)."""
    u = rng.random()
    if u < 0.25:
        return 0
    if u < 0.65:
        return rng.randint(1, 9)
    if u < 0.9:
        return rng.randint(10, 30)
    return rng.randint(31, 65)


def _topic(rng: random.Random, course: Course) -> str:
    if rng.random() < 0.08:              # a long one, exactly TOPIC_MAX characters
        text = f"{course.course_code}: "
        while len(text) < TOPIC_MAX:
            text += _LONG_PHRASE + " "
        return text[:TOPIC_MAX - 1] + "…"
    template = rng.choice(_TOPICS)
    return template.format(code=course.course_code, last=rng.choice(_LAST_NAMES), n=rng.randint(1, 12))


def _series(rng: random.Random, course: Course) -> _Series:
    number = rng.randint(10**8, 10**11 - 1)
    password = _token(rng, 32) if rng.random() < 0.5 else None
    return _Series(number=number, host_id=_token(rng, 22), topic=_topic(rng, course),
                   timezone=rng.choice(_TIMEZONES), password=password)


def _generate_meetings(seed: int, course: Course) -> list[ZoomMeeting]:
    rng = random.Random(f"{seed}|zoom-meetings|{course.id}")
    count = _meeting_count(rng)
    series = [_series(rng, course) for _ in range(rng.randint(1, 4))]
    anchor = course.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=7)
    used_ids: set[str] = set()
    meetings = []
    for index in range(count):
        chosen = rng.choice(series)
        start = anchor + timedelta(days=2 * index + rng.randint(0, 1), hours=rng.randint(0, 10),
                                   minutes=rng.choice((0, 0, 15, 30, 45)))
        meeting_id = base64.b64encode(hashlib.blake2b(f"{seed}|{course.id}|{index}".encode(),
                                                      digest_size=16).digest()).decode()
        if meeting_id in used_ids:       # practically impossible; keeps the uniqueness promise explicit
            continue
        used_ids.add(meeting_id)
        join_url = f"https://umich.zoom.us/j/{chosen.number}"
        if chosen.password:
            join_url += f"?pwd={chosen.password}"
        meetings.append(ZoomMeeting(
            course_id=course.id, meeting_id=meeting_id, meeting_number=chosen.number, host_id=chosen.host_id,
            topic=chosen.topic, join_url=join_url, start_at=start, status="ENDED", timezone=chosen.timezone,
            duration=rng.randint(15, 180)))
    meetings.sort(key=lambda m: (m.start_at, m.meeting_id), reverse=True)
    return meetings


# ---- what the job must produce ----
@dataclass
class ExpectedZoom:
    courses: list[dict[str, Any]] = field(default_factory=list)     # zoom_course rows, by course id
    meetings: list[dict[str, Any]] = field(default_factory=list)    # zoom_course_meeting rows
    scanned: int = 0                                                # courses whose tabs are read
    placements: int = 0                                             # visible Zoom tabs
    failed_course_ids: set[int] = field(default_factory=set)        # courses with a failed launch
    failed_launches: int = 0


def scanned_courses(u: University, term_ids: Iterable[int], add_course_ids: Sequence[int]) -> list[Course]:
    """Published courses of the terms (as the accounts listing returns them) plus the extra courses, by id."""
    terms = set(term_ids)
    subtree = u.subaccount_ids.get(u.root_account_id, frozenset())
    chosen = {c.id: c for c in u.courses
              if c.term_id in terms and c.account_id in subtree and c.workflow_state == "available"}
    for course_id in add_course_ids:
        course = u.course_by_id.get(course_id)
        if course is not None and course.workflow_state != "deleted":   # GET /courses/:id 404s on deleted
            chosen.setdefault(course.id, course)
    return sorted(chosen.values(), key=lambda c: c.id)


def expected_zoom_output(u: University, term_ids: Iterable[int], add_course_ids: Sequence[int], data: ZoomData,
                         launch_page_has_form: Callable[[int], bool],
                         client_timezone: str = DEFAULT_CLIENT_TIMEZONE) -> ExpectedZoom:
    """Rows of `zoom_course` and `zoom_course_meeting` after a correct run.

    A course with a visible tab labelled exactly "Zoom" is a Zoom course (whether or not its launch works);
    its meetings come from every placement whose launch works (no LTI form on the Canvas page, or no values
    on Zoom's page, fail it), deduplicated by meeting id, in Zoom's order. Row ids count from 1.
    """
    expected = ExpectedZoom()
    for course in scanned_courses(u, term_ids, add_course_ids):
        expected.scanned += 1
        placements = [t for t in u.tabs_by_course.get(course.id, [])
                      if t.label == ZOOM_TAB_LABEL and not t.hidden and t.tool_id is not None]
        if not placements:
            continue
        expected.placements += len(placements)
        expected.courses.append({"id": len(expected.courses) + 1, "account_id": course.account_id,
                                 "course_id": course.id, "course_name": course.name})
        seen: set[str] = set()
        for _ in placements:
            if not (launch_page_has_form(course.id) and data.launch_has_values(course.id)):
                expected.failed_launches += 1
                expected.failed_course_ids.add(course.id)
                continue
            for meeting in data.meetings(course.id):
                if meeting.meeting_id in seen:
                    continue
                seen.add(meeting.meeting_id)
                item = meeting_json(meeting, client_timezone)
                expected.meetings.append({
                    "id": len(expected.meetings) + 1, "course_id": course.id, "meeting_id": item["meetingId"],
                    "meeting_number": item["meetingNumber"], "host_id": item["hostId"], "topic": item["topic"],
                    "join_url": item["joinUrl"], "start_time": item["startTime"], "status": item["status"],
                    "timezone": item["timezone"]})
    return expected
