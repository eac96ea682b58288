"""CANVAS_ZOOM_MEETINGS' collect step: its raw data as one pipeline over the shared Canvas client and the Zoom
client, and the stored meetings of courses whose launch failed.

Each page of published courses immediately schedules those courses' tab requests, and each Zoom placement
found schedules its launch and history pages, so no phase waits for an unrelated one. The extra courses
(ADD_COURSE_IDS) are fetched once every term listing has finished, and only if no listing returned them.
Canvas failures stop the job (nothing partial is loaded). Inside one placement's launch: a placement that
genuinely cannot be launched (no tool, no form, no Zoom values) is skipped and counted; any other failure,
after the launch's retries, marks the course as failed, so the job keeps that course's previous rows instead of
loading it with fewer meetings than Zoom has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from clients.canvas import CanvasClient
from clients.progress import Progress
from clients.tasks import TaskGroup
from clients.zoom_lti import ZoomLtiClient
from clients.zoom_pages import NoLaunch, launch_url
from db.snapshot_rows import stored_rows
from online_meetings import transform
from vocab import FatalSourceError, SourceError, SourceFormatError

logger = logging.getLogger(__name__)

PUBLISHED_COURSES = {"published": "true"}


@dataclass
class ZoomCollection:
    scanned: dict[int, dict[str, Any]] = field(default_factory=dict)       # every course whose tabs were read
    zoom_courses: dict[int, dict[str, Any]] = field(default_factory=dict)  # courses with a Zoom placement
    placements: int = 0
    skipped_launches: list[tuple[int, str]] = field(default_factory=list)  # (course id, reason): cannot launch
    failed_launches: list[tuple[int, str]] = field(default_factory=list)   # (course id, reason): retries spent
    # Per course, each placement's meetings (placement order), so the output does not depend on thread timing.
    meetings: dict[int, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)

    def meetings_by_course(self) -> dict[int, list[dict[str, Any]]]:
        """Meetings of every course whose placements all launched (a failed course keeps its previous rows)."""
        failed = self.failed_course_ids
        return {course_id: [m for index in sorted(per_tab) for m in per_tab[index]]
                for course_id, per_tab in self.meetings.items() if course_id not in failed}

    @property
    def failed_course_ids(self) -> frozenset[int]:
        return frozenset(course_id for course_id, _ in self.failed_launches)


class _Collector:
    def __init__(self, canvas: CanvasClient, zoom: ZoomLtiClient, tasks: TaskGroup, progress: dict[str, Progress],
                 account_id: int, term_ids: Sequence[int], add_course_ids: Sequence[int]) -> None:
        self.canvas, self.zoom, self.tasks, self.progress = canvas, zoom, tasks, progress
        self.account_id, self.add_course_ids = account_id, list(add_course_ids)
        self.result = ZoomCollection()
        self._lock = threading.Lock()
        self._listed: set[int] = set()
        self._listings_left = len(term_ids)
        self._added_left = 0          # extra courses still being fetched: the courses total may still grow
        self._tabs_left = 0           # courses whose tabs are not read yet: the launches total may still grow
        self._courses_final = False

    def start(self, term_ids: Sequence[int]) -> None:
        for term_id in term_ids:
            self.tasks.submit(self.term_courses, term_id)
        if not term_ids:
            self._schedule_added_courses()

    def term_courses(self, term_id: int) -> None:
        params = {**PUBLISHED_COURSES, "enrollment_term_id": term_id}
        for page in self.canvas.paginate(f"accounts/{self.account_id}/courses", params, kind="courses"):
            self.tasks.check()
            if not isinstance(page, list):
                raise SourceFormatError(f"course list of term {term_id} is not a JSON list", source="canvas")
            for course in page:
                self._add_course(course)
        if self._counted_down("_listings_left"):
            self._schedule_added_courses()

    def _counted_down(self, counter: str) -> bool:
        """One fewer of `counter` (a countdown attribute) left; True for the thread that took it to zero."""
        with self._lock:
            left = getattr(self, counter) - 1
            setattr(self, counter, left)
        return left == 0

    def _schedule_added_courses(self) -> None:
        with self._lock:
            missing = [cid for cid in dict.fromkeys(self.add_course_ids) if cid not in self._listed]
        if self.add_course_ids:
            logger.info("%d of %d extra course(s) not in the term listings", len(missing), len(self.add_course_ids))
        with self._lock:
            self._added_left = len(missing)
        if not missing:
            self._courses_listed()
        for course_id in missing:
            self.tasks.submit(self.added_course, course_id)

    def added_course(self, course_id: int) -> None:
        course = self.canvas.get_unless_missing(f"courses/{course_id}", kind="course")
        if course is None:
            logger.warning("extra course %d not found in Canvas (404); skipped", course_id)
        else:
            self._add_course(course)
        if self._counted_down("_added_left"):
            self._courses_listed()

    def _courses_listed(self) -> None:
        """Every course is known: the courses total is final, and the launches total once their tabs are read."""
        self.progress["courses"].total_known()
        with self._lock:
            self._courses_final = True
        self._tabs_read(0)

    def _tabs_read(self, courses: int) -> None:
        with self._lock:
            self._tabs_left -= courses
            final = self._courses_final and self._tabs_left == 0
        if final:
            self.progress["launches"].total_known()

    def _add_course(self, course: Any) -> None:
        if not isinstance(course, dict) or not isinstance(course.get("id"), int):
            raise SourceFormatError("Canvas course without an integer id", source="canvas")
        with self._lock:
            if course["id"] in self._listed:
                return
            self._listed.add(course["id"])
            self._tabs_left += 1
        self.progress["courses"].expect(1)
        self.tasks.submit(self.course_tabs, course)

    def course_tabs(self, course: dict[str, Any]) -> None:
        course_id = course["id"]
        tabs = self.canvas.get_unless_missing(f"courses/{course_id}/tabs", kind="tabs")
        placements = transform.zoom_placements(tabs) if tabs is not None else []
        if tabs is None:
            logger.warning("course %d disappeared before its tabs were read (404); skipped", course_id)
        with self._lock:
            if tabs is not None:
                self.result.scanned[course_id] = course
            if placements:
                self.result.zoom_courses[course_id] = course
                self.result.placements += len(placements)
        self.progress["launches"].expect(len(placements))
        self.progress["courses"].advance()
        self._tabs_read(1)
        for index, tab in enumerate(placements):
            self.tasks.submit(self.placement_meetings, course_id, index, tab["url"])

    def placement_meetings(self, course_id: int, index: int, tab_url: str) -> None:
        self.tasks.check()
        try:
            history = self.zoom.previous_meetings(lambda: self._launch_url(tab_url))
        except NoLaunch as exc:
            logger.info("course %d: Zoom placement cannot be launched, skipped: %s", course_id, exc)
            with self._lock:
                self.result.skipped_launches.append((course_id, str(exc)))
        except SourceError as exc:
            logger.warning("course %d: Zoom launch failed after its retries; its previous meetings are kept: %s",
                           course_id, exc)
            with self._lock:
                self.result.failed_launches.append((course_id, str(exc)))
        else:
            if history.announced_total != len(history.meetings):
                logger.warning("course %d: Zoom announced %d meeting(s) but served %d; all served are kept",
                               course_id, history.announced_total, len(history.meetings))
            with self._lock:
                self.result.meetings.setdefault(course_id, {})[index] = history.meetings
        self.progress["launches"].advance()

    def _launch_url(self, tab_url: str) -> str:
        try:
            body = self.canvas.get_unless_missing(tab_url, kind="lti launch")
        except FatalSourceError as exc:
            # An unknown tool id is redirected to the course page (external_tools_controller.rb): no tool to launch.
            if exc.status is None or not 300 <= exc.status < 400:
                raise
            raise NoLaunch(f"Canvas redirects the tab's launch (HTTP {exc.status}): no such tool",
                           source="canvas") from exc
        if body is None:
            raise NoLaunch("Canvas no longer has the tab's tool (404)", source="canvas")
        return launch_url(body)


def collect_zoom_meetings(canvas: CanvasClient, zoom: ZoomLtiClient, account_id: int, term_ids: Sequence[int],
                          add_course_ids: Sequence[int] = ()) -> ZoomCollection:
    """Scan the courses, launch every Zoom placement and read its meeting history.

    Raises the first Canvas error (listing, course, tabs); launch/history failures are collected instead.
    """
    with ExitStack() as stack:
        progress = {phase: stack.enter_context(Progress(phase, None, logger, stats=canvas.stats))
                    for phase in ("courses", "launches")}
        tasks = stack.enter_context(TaskGroup(canvas.settings.num_workers + 2, name="zoom"))
        collector = _Collector(canvas, zoom, tasks, progress, account_id, term_ids, add_course_ids)
        collector.start(term_ids)
        tasks.wait()
    return collector.result


def stored_meetings(engine: sa.Engine, course_ids: frozenset[int]) -> dict[int, list[dict[str, Any]]]:
    """The meeting rows loaded by an earlier run for these courses, by course, in their stored order."""
    columns = [c for c in transform.ZOOM_MEETING_COLUMNS if c != "id"]
    by_course: dict[int, list[dict[str, Any]]] = {}
    for row in stored_rows(engine, "zoom_course_meeting", columns, "course_id", course_ids):
        by_course.setdefault(int(row["course_id"]), []).append(row)
    return by_course
