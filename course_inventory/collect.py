"""COURSE_INVENTORY's collect step: the raw Canvas data of the configured terms as one pipeline over the shared
client, then what the UDW (when configured) adds.

Each page of courses immediately schedules those courses' audit-log, activity and enrollment
requests, so no phase waits idle for an unrelated one to finish; the account tree is listed once
beside them (course_inventory.account_book). An available course that was available with a published
date in the last run keeps that date without an audit-log request (course_inventory.published_dates).
The activity of the courses the last run stored as available is asked from the start, with spare capacity,
while the listing that confirms them is still being read (course_inventory.early_answers).
How many requests are really in flight is the client's throttle-aware limiter's decision.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from clients.canvas import CanvasClient
from clients.progress import Progress
from clients.tasks import TaskGroup
from clients.udw import UdwClient
from course_inventory import canvas_fetch
from course_inventory.account_book import AccountBook
from course_inventory.early_answers import NOT_ASKED, Answer, EarlyAnswers
from course_inventory.gql_queries import COURSES_PER_REQUEST, ENROLLMENT_PAGE_SIZE, expected_page_rows
from course_inventory.published_dates import StoredCourse, reusable_dates
from course_inventory.rosters import CoursePages
from course_inventory.section_sis import (
    SisIdSource,
    chosen_sis_ids,
    compare_section_sis_ids,
    comparison_summary,
    none_readable,
)
from course_inventory.settings import InventorySettings
from course_inventory.transform import (
    EnrollmentRecord,
    SectionInfo,
    activity_rows,
    canvas_int,
    distinct_days,
    enrollment_records,
    keep_courses_with_students,
    listing_conflict,
)
from db.stored_courses import stored_course_states
from vocab import EtlError, SourceFormatError

logger = logging.getLogger(__name__)


@dataclass
class PhaseSpan:
    """When a phase's first request started and its last one ended (monotonic seconds), and its items."""

    start: float
    end: float
    items: int = 0


class PhaseClock:
    """Thread-safe spans of each phase, to show that phases overlap instead of waiting for each other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.origin = time.monotonic()
        self.spans: dict[str, PhaseSpan] = {}

    @contextmanager
    def track(self, phase: str, items: int = 1) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            with self._lock:
                span = self.spans.setdefault(phase, PhaseSpan(started, ended))
                span.start, span.end = min(span.start, started), max(span.end, ended)
                span.items += items

    def relative(self) -> dict[str, tuple[float, float, int]]:
        """phase -> (start, end, items), seconds since the clock was created."""
        with self._lock:
            return {name: (span.start - self.origin, span.end - self.origin, span.items)
                    for name, span in self.spans.items()}


@dataclass
class RawInventory:
    terms: list[dict[str, Any]] = field(default_factory=list)
    courses: list[dict[str, Any]] = field(default_factory=list)
    dropped_courses: int = 0
    published_at: dict[int, datetime | None] = field(default_factory=dict)
    reused_published: int = 0                                    # dates kept from the last run, not looked up
    usage_rows: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[EnrollmentRecord] = field(default_factory=list)
    sections: dict[int, SectionInfo] = field(default_factory=dict)   # seen in enrollments: (name, sisId)
    phases: PhaseClock = field(default_factory=PhaseClock)
    repeats: Counter[str] = field(default_factory=Counter)       # rows seen more than once, by what they are
    reread_courses: int = 0                                      # rosters read again after a page shift
    early_activity: dict[str, int] = field(default_factory=dict)  # what became of the activity asked early


ActivityRows = tuple[list[dict[str, Any]], int]                 # distinct days, repeats dropped


class _Collector:
    def __init__(self, canvas: CanvasClient, account_id: int, tasks: TaskGroup, progress: dict[str, Progress],
                 reusable: Mapping[int, datetime], listings: int = 1, early_activity: Sequence[int] = ()):
        self.canvas, self.account_id, self.tasks, self.progress = canvas, account_id, tasks, progress
        self.reusable = reusable                  # course id -> stored date an available course keeps
        self.early: EarlyAnswers[ActivityRows] = EarlyAnswers(early_activity)
        self.raw = RawInventory()
        self.accounts = AccountBook()
        self._lock = threading.Lock()
        self._courses_seen: dict[int, dict[str, Any]] = {}
        self._listings_left = listings            # term listings not yet complete: the totals may still grow

    def term(self, term_id: int) -> None:
        with self.raw.phases.track("terms"):
            term = canvas_fetch.fetch_term(self.canvas, self.account_id, term_id)
        with self._lock:
            self.raw.terms.append(term)

    def term_courses(self, term_id: int) -> None:
        pages = canvas_fetch.iter_course_pages(self.canvas, self.account_id, term_id)
        while True:
            with self.raw.phases.track("courses"):
                page = next(pages, None)
            if page is None:
                self._listing_complete()
                return
            self.tasks.check()
            kept, dropped = keep_courses_with_students(self._first_listings(page))
            with self._lock:
                self.raw.courses.extend(kept)
                self.raw.dropped_courses += dropped
            self.progress["courses"].advance(len(kept))
            self._schedule(kept)

    def _listing_complete(self) -> None:
        with self._lock:
            self._listings_left -= 1
            last = self._listings_left == 0
        if last:    # every course is listed: the per-course totals are final
            self.early.complete_listing()
            for progress in self.progress.values():
                progress.total_known()

    def _first_listings(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's courses not listed before; a course listed again must say the same, or the listing is wrong."""
        fresh = []
        with self._lock:
            for course in page:
                course_id = canvas_int(course.get("id"), "course id")
                seen = self._courses_seen.get(course_id)
                if seen is None:
                    self._courses_seen[course_id] = course
                    fresh.append(course)
                    continue
                conflict = listing_conflict(seen, course)
                if conflict is not None:
                    raise SourceFormatError(f"the course listing's pages disagree about course {course_id} "
                                            f"({conflict})", source="canvas")
                self.raw.repeats["course listing"] += 1
        return fresh

    def _schedule(self, courses: Sequence[dict[str, Any]]) -> None:
        """Queue the page's requests: per batch of courses, its GraphQL enrollments and then its REST calls.

        Largest courses first and together: their page chains are the longest, and courses batched with
        others of their size keep the follow-up requests full. A batch expecting p pages is queued ahead of the
        last 2 x ceiling x (p - 1) tasks: a round trip starts at most `ceiling` requests (NUM_ASYNC_WORKERS), so
        its chain ends before the queue behind it does, with a factor of two to spare, where a large course on the
        listing's last page would otherwise start behind the whole queue and end the run alone. Moving it no
        further keeps the large first pages from all reaching the server together at the start (a burst of long
        requests is a burst of reservations, and refusals). Interleaving keeps the expensive GraphQL requests
        spread out instead of arriving at the server in a clump.
        """
        ids = [canvas_int(c.get("id"), "course id") for c in courses]
        available = sum(c.get("workflow_state") == "available" for c in courses)
        self.progress["enrollments"].expect(len(ids))
        self.progress["published dates"].expect(available)
        self.progress["activity"].expect(available)
        by_size = sorted(zip(courses, ids, strict=True), key=lambda pair: -_size_hint(pair[0]))
        for start in range(0, len(by_size), COURSES_PER_REQUEST):
            batch = by_size[start:start + COURSES_PER_REQUEST]
            later_pages = max(math.ceil(_size_hint(batch[0][0]) / ENROLLMENT_PAGE_SIZE) - 1, 0)
            self.tasks.submit(self.enrollments, {course_id: _size_hint(course) for course, course_id in batch},
                              ahead=2 * self.canvas.settings.num_workers * later_pages)
            for course, course_id in batch:
                if course.get("workflow_state") == "available":
                    self._published_date(course_id)
                    self._activity(course_id)
                account_id = canvas_int(course.get("account_id"), "course account_id")
                if self.accounts.refer(account_id):
                    self.tasks.submit(self.account, account_id)

    def _published_date(self, course_id: int) -> None:
        reused = self.reusable.get(course_id)
        if reused is None:
            self.tasks.submit(self.published_at, course_id)
            return
        with self._lock:
            self.raw.published_at[course_id] = reused
            self.raw.reused_published += 1

    def published_at(self, course_id: int) -> None:
        with self.raw.phases.track("published dates"):
            value = canvas_fetch.fetch_published_at(self.canvas, course_id)
        with self._lock:
            self.raw.published_at[course_id] = value
        self.progress["published dates"].advance()

    def _activity(self, course_id: int) -> None:
        """A listed available course's activity: its early answer, the one on its way, or a request now."""
        claim = self.early.confirm(course_id)
        if isinstance(claim, Answer):
            self._add_activity(claim.unwrap())
        elif claim is NOT_ASKED:
            self.tasks.submit(self.activity, course_id)

    def activity(self, course_id: int) -> None:
        self._add_activity(self._activity_rows(course_id))

    def early_activity(self, course_id: int) -> None:
        """A course's activity asked before the listing returns it; its errors count only if the listing does."""
        if not self.early.should_ask(course_id):
            return
        try:
            answer: Answer[ActivityRows] = Answer(self._activity_rows(course_id))
        except EtlError as exc:
            answer = Answer(error=exc)
        if self.early.deliver(course_id, answer):
            self._add_activity(answer.unwrap())

    def _activity_rows(self, course_id: int) -> ActivityRows:
        with self.raw.phases.track("activity"):
            return distinct_days(activity_rows(course_id, canvas_fetch.fetch_activity(self.canvas, course_id)))

    def _add_activity(self, answer: ActivityRows) -> None:
        rows, repeated = answer
        with self._lock:
            self.raw.usage_rows.extend(rows)
            if repeated:
                self.raw.repeats["activity day"] += repeated
        self.progress["activity"].advance()

    def account_tree(self) -> None:
        with self.raw.phases.track("accounts"):
            listed = canvas_fetch.fetch_account_tree(self.canvas, self.account_id)
        for account_id in self.accounts.listed(listed):
            self.tasks.submit(self.account, account_id)

    def account(self, account_id: int) -> None:
        """An account a course refers to that the listing lacks."""
        with self.raw.phases.track("accounts"):
            self.accounts.fetched(canvas_fetch.fetch_account(self.canvas, account_id))

    def enrollments(self, students: dict[int, int]) -> None:
        """Enrollment pages of a batch of courses (course id: total_students), one request per page of the batch,
        until all are complete.

        Follow-up pages stay on this thread instead of going back to the queue, where a course with 25 pages
        would wait behind every audit and activity request queued meanwhile and end the run on its own. A course
        whose pages shifted while it was read is read again (`course_inventory.rosters`).
        """
        rosters = {course_id: CoursePages(course_id) for course_id in students}
        pages: list[tuple[int, str | None]] = [(course_id, None) for course_id in students]
        read = dict.fromkeys(students, 0)           # rows read in the course's current pass
        follow_up = False
        while pages:
            self.tasks.check()
            rows = expected_page_rows(students[course_id] - read[course_id] for course_id, _ in pages)
            with self.raw.phases.track("enrollments", items=len(pages)):
                results = canvas_fetch.fetch_enrollment_pages(self.canvas, pages, follow_up=follow_up,
                                                              expected_rows=rows)
            follow_up = True
            pages, finished = [], []
            for course_id, nodes, cursor in results:
                sections: dict[int, SectionInfo] = {}
                roster = rosters[course_id]
                done, next_cursor = roster.add_page(enrollment_records(course_id, nodes, sections), cursor)
                read[course_id] = 0 if next_cursor is None else read[course_id] + len(nodes)
                self._add_sections(sections)
                if done:
                    finished.append(roster)
                else:
                    pages.append((course_id, next_cursor))
            for roster in finished:
                self._add_roster(roster)
            self.progress["enrollments"].advance(len(finished))

    def _add_sections(self, sections: dict[int, SectionInfo]) -> None:
        with self._lock:
            for section_id, section in sections.items():
                known = self.raw.sections.setdefault(section_id, section)
                if known != section:
                    self.raw.repeats["section told two ways"] += 1

    def _add_roster(self, roster: CoursePages) -> None:
        with self._lock:
            self.raw.enrollments.extend(roster.records())
            if roster.repeated:
                self.raw.repeats["enrollment"] += roster.repeated
            self.raw.reread_courses += roster.passes > 1


def _size_hint(course: dict[str, Any]) -> int:
    """total_students from the course listing (include[]=total_students); 0 when absent or odd."""
    value = course.get("total_students")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


PHASES = ("courses", "published dates", "activity", "enrollments")


def collect_inventory(canvas: CanvasClient, account_id: int, term_ids: Sequence[int],
                      reusable_published: Mapping[int, datetime] | None = None,
                      early_activity: Sequence[int] = ()) -> RawInventory:
    """Fetch everything the inventory needs; raises the first source error (nothing partial is returned).

    `reusable_published`: course id -> the stored published date an available course keeps without an
    audit-log request (course_inventory.published_dates.reusable_dates); None or {} looks every course up.
    `early_activity`: courses whose activity is asked with spare capacity before the listing confirms them (those
    the last run stored as available); an answer counts only if the listing returns the course as available.
    """
    with ExitStack() as stack:
        progress = {phase: stack.enter_context(Progress(phase, None, logger, stats=canvas.stats))
                    for phase in PHASES}
        tasks = stack.enter_context(TaskGroup(canvas.settings.num_workers + 2, name="inventory"))
        collector = _Collector(canvas, account_id, tasks, progress, reusable_published or {},
                               listings=len(term_ids), early_activity=early_activity)
        tasks.submit(collector.account_tree)
        for term_id in term_ids:
            tasks.submit(collector.term, term_id)
            tasks.submit(collector.term_courses, term_id)
        for course_id in early_activity:
            tasks.submit(collector.early_activity, course_id, spare=True)
        tasks.wait()
    raw = collector.raw
    raw.accounts = collector.accounts.accounts()
    raw.repeats["account listing"] += collector.accounts.repeated
    raw.repeats = +raw.repeats                                   # drop kinds that never repeated
    available = sum(course.get("workflow_state") == "available" for course in raw.courses)
    logger.info("published dates: %d of %d available course(s) kept from the last run (available then and now), "
                "%d looked up in the audit log", raw.reused_published, available, available - raw.reused_published)
    early = collector.early
    raw.early_activity = {"asked early, used": early.used, "asked in order instead": early.withdrawn,
                          "asked early, dropped": early.dropped, "not asked": early.skipped}
    if early_activity:
        logger.info("activity of the %d course(s) stored as available in the last run: %d asked before the listing "
                    "returned them, %d asked in the listing's order (listed before their turn came), %d answer(s) "
                    "dropped and %d not asked (no longer listed as available)", len(early_activity), early.used,
                    early.withdrawn, early.dropped, early.skipped)
    logger.info("Canvas: %d term(s), %d course(s) with students (%d without dropped), %d account(s), "
                "%d enrollment(s)", len(raw.terms), len(raw.courses), raw.dropped_courses, len(raw.accounts),
                len(raw.enrollments))
    if raw.repeats:
        logger.warning("Canvas served rows more than once (kept once): %s; %d course roster(s) read again after "
                       "their pages shifted", ", ".join(f"{what} {n}" for what, n in sorted(raw.repeats.items())),
                       raw.reread_courses)
    return raw


@dataclass(frozen=True)
class Warehouse:
    """What the UDW adds: the section SIS ids to store (None: Canvas's own) and its freshness date."""

    section_sis_ids: dict[int, str | None] | None = None
    canvasdatadate: Any = None             # as the UDW stores it (transform.warehouse_time reads it)


@dataclass(frozen=True)
class LastRun:
    """What this run takes from the courses the last successful run stored."""

    reusable_published: dict[int, datetime]    # course_inventory.published_dates; {} with REUSE_PUBLISHED_DATES false
    available: list[int]                       # stored as available in a configured term: activity asked early


def read_last_run(engine: sa.Engine, reuse: bool, term_ids: Sequence[int]) -> LastRun:
    """The stored published dates available courses may keep (none when REUSE_PUBLISHED_DATES is false), and
    the courses of the configured terms stored as available."""
    rows = stored_course_states(engine)
    terms = set(term_ids)
    available = sorted(course_id for course_id, row in rows.items()
                       if row.workflow_state == "available" and row.term_id in terms)
    if not reuse:
        logger.info("REUSE_PUBLISHED_DATES is false: every available course's published date is looked up")
        return LastRun({}, available)
    stored = {course_id: StoredCourse(row.workflow_state, row.published_at) for course_id, row in rows.items()}
    return LastRun(reusable_dates(stored), available)


def collect_canvas(settings: InventorySettings, canvas: CanvasClient, engine: sa.Engine) -> RawInventory:
    """Canvas's side of the run, using what the last run stored as the settings allow."""
    last = read_last_run(engine, settings.reuse_published_dates, settings.canvas.term_ids)
    return collect_inventory(canvas, settings.canvas.account_id, settings.canvas.term_ids, last.reusable_published,
                             early_activity=last.available)


def collect_warehouse(raw: RawInventory, udw: UdwClient | None, source: SisIdSource) -> Warehouse:
    """The UDW's side (nothing without one): its section SIS ids compared with Canvas's, and its date."""
    chosen = section_sis_ids(raw, udw, source)
    return Warehouse(chosen, None if udw is None else udw.canvasdatadate())


def section_sis_ids(raw: RawInventory, udw: UdwClient | None, source: SisIdSource
                    ) -> dict[int, str | None] | None:
    """The section SIS ids to store: None (Canvas's own) without a UDW; else both sources compared, the
    differences logged, and `source`'s values returned."""
    canvas = {section_id: sis for section_id, (_, sis) in raw.sections.items()}
    if none_readable(canvas):
        logger.warning("Canvas returned no SIS id for any of the %d section(s); if sections do have SIS ids, "
                       "the CANVAS_TOKEN user lacks the read_sis permission (Canvas answers null then)",
                       len(canvas))
    if udw is None:
        logger.info("no UDW configured: section SIS ids come from Canvas (Section.sisId); SECTION_SIS_IDS_FROM "
                    "applies only with a UDW, and no UNIZIN_DATA_WAREHOUSE status is recorded")
        return None
    warehouse = udw.section_sis_ids(canvas)
    logger.info("%s", comparison_summary(compare_section_sis_ids(canvas, warehouse), source))
    return chosen_sis_ids(canvas, warehouse, source)
