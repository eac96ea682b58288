"""Generated MiVideo data: Kaltura media entries, UDP Caliper events, and the results they imply.

`generate_media(seed)` is deterministic. Both simulators serve only what exists at their clock's "now":
an entry from its `created_at`, an event from its `store_time`. Moving the clock forward is how tests make
"more data appear". The `expected_*` functions compute what the MIVIDEO job must store from the generated
records and the services' documented rules, never from product code; the course links come from the
generator's own record of why it created each category, not from parsing the category names.
"""

from __future__ import annotations

import functools
import json
import random
import string
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PARTNER_ID = 1038472
CATEGORY_ROOT = "Canvas_UMich"
# Same characters at the start but another tree: Kaltura's category filter must not match it.
LOOKALIKE_ROOT = "Canvas_UMich_Test"
OTHER_ROOTS = ("MediaSpace", "KMS_Archive")
UNIVERSITY_KAF_APPS = (
    "https://aakaf.mivideo.it.umich.edu/caliper/info/app/KafEdApp",
    "https://1038472-1.kaf.kaltura.com/caliper/info/app/KafEdApp",
)
OTHER_KAF_APPS = (
    "https://kaf.example-college.edu/caliper/info/app/KafEdApp",
    "https://aakaf-test.mivideo.it.umich.edu/caliper/info/app/KafEdApp",
)
DEFAULT_LAST_TIMESTAMP = datetime(2020, 3, 1, tzinfo=UTC)
ENTRIES_FROM = datetime(2020, 2, 10, tzinfo=UTC)
EVENTS_FROM = datetime(2020, 2, 24, tzinfo=UTC)
DATA_UNTIL = datetime(2020, 5, 1, tzinfo=UTC)

STATUS_READY = 2
STATUS_DELETED = 3
MAX_MATCHES = 10_000                 # Kaltura refuses offsets at or beyond this
KALTURA_MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class CategoryLink:
    """One category an entry is published in, with the Canvas course it stands for (if any)."""

    full_name: str
    course_id: int | None = None
    in_context: bool = False


@dataclass(frozen=True, slots=True)
class MediaEntry:
    id: str
    name: str
    created_at: int                  # unix seconds, as Kaltura reports it
    duration: int                    # seconds
    status: int
    categories: tuple[CategoryLink, ...]
    plays: int = 0

    @property
    def categories_text(self) -> str:
        """Kaltura's `categories` field: comma-separated full names."""
        return ",".join(link.full_name for link in self.categories)

    @property
    def created_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, UTC)


@dataclass(frozen=True, slots=True)
class CaliperEvent:
    """A row of UDP's `event_store.events`, plus the course id the generator put into its JSON."""

    id: str
    type: str
    action: str
    event_time: datetime             # tz-aware UTC, microseconds
    store_time: datetime
    ed_app: str
    actor_id: str
    course_offering_id: str | None
    event: str                       # the Caliper JSON payload
    course_id: int | None            # a valid numeric kaf:course_id, else None


@dataclass
class MediaData:
    seed: int
    partner_id: int
    category_root: str
    kaf_apps: tuple[str, ...]
    entries: list[MediaEntry]        # ascending (created_at, id)
    events: list[CaliperEvent]       # ascending event_time
    default_last_timestamp: datetime = DEFAULT_LAST_TIMESTAMP


class SimClock:
    """The simulators' "now": real time by default, or a settable instant tests move forward."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.utcoffset() is None:
            raise ValueError("SimClock needs a tz-aware start")
        self._fixed = start.astimezone(UTC) if start is not None else None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._fixed if self._fixed is not None else datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        if moment.utcoffset() is None:
            raise ValueError("SimClock needs tz-aware datetimes")
        with self._lock:
            self._fixed = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._fixed = (self._fixed or datetime.now(UTC)) + delta


def media_data_for(university: Any) -> MediaData:
    """The university's MiVideo data, generated once from its seed and kept in `university.extras`."""
    data = university.extras.get("mivideo")
    if data is None:
        data = generate_media(university.seed, course_ids=[course.id for course in university.courses] or None)
        university.extras["mivideo"] = data
    return data


# ---------------------------------------------------------------- Kaltura's rules (shared with the simulator)
def category_matches(full_name: str, wanted: str) -> bool:
    """`categoriesFullNameIn` for one name: the category itself or any sub-category; `A>` = sub-categories only."""
    if wanted.endswith(">"):
        return full_name.startswith(wanted)
    return full_name == wanted or full_name.startswith(wanted + ">")


def matches_categories(entry: MediaEntry, names: Iterable[str]) -> bool:
    wanted = [name.strip() for name in names if name.strip()]
    return any(category_matches(link.full_name, name) for link in entry.categories for name in wanted)


def listed_entries(data: MediaData, *, created_from: int, visible_at: int, prefix: str,
                   exclude_ids: Iterable[str] = ()) -> list[MediaEntry]:
    """media.list with createdAtGreaterThanOrEqual, categoriesFullNameIn, idNotIn, +createdAt (ties by id).

    An empty `prefix` disables the category filter, as an empty categoriesFullNameIn does.
    """
    excluded = set(exclude_ids)
    return [
        entry for entry in data.entries
        if entry.status != STATUS_DELETED and created_from <= entry.created_at <= visible_at
        and entry.id not in excluded and (not prefix.strip() or matches_categories(entry, prefix.split(",")))
    ]


# ---------------------------------------------------------------- expected job results
def expected_media_created(data: MediaData, *, created_from: int, visible_at: int,
                           prefix: str) -> dict[str, tuple[datetime, str, int]]:
    """mivideo_media_created rows: id -> (created_at naive UTC, name, duration)."""
    return {
        entry.id: (entry.created_datetime.replace(tzinfo=None), entry.name, entry.duration)
        for entry in listed_entries(data, created_from=created_from, visible_at=visible_at, prefix=prefix)
    }


def expected_media_courses(data: MediaData, *, created_from: int, visible_at: int,
                           prefix: str) -> set[tuple[str, int, bool]]:
    """mivideo_media_courses rows: (media_id, course_id, in_context) for course categories under the prefix."""
    return {
        (entry.id, link.course_id, link.in_context)
        for entry in listed_entries(data, created_from=created_from, visible_at=visible_at, prefix=prefix)
        for link in entry.categories
        if link.course_id is not None and category_matches(link.full_name, prefix)
    }


def expected_hourly(data: MediaData, *, after: datetime, before: datetime, visible_at: datetime,
                    apps: Sequence[str]) -> dict[tuple[str, int], tuple[datetime, int]]:
    """(event_hour_utc, course_id) -> (latest event_time, count) of KAF "media started" events.

    `after` < event_time < `before` (the start of "today"), only events already stored at `visible_at`.
    """
    wanted = set(apps)
    grouped: dict[tuple[str, int], tuple[datetime, int]] = {}
    for event in data.events:
        if not (event.type == "MediaEvent" and event.action == "Started" and event.ed_app in wanted
                and event.course_id is not None and after < event.event_time < before
                and event.store_time <= visible_at):
            continue
        key = (event.event_time.strftime("%Y-%m-%d %H"), event.course_id)
        latest, count = grouped.get(key, (event.event_time, 0))
        grouped[key] = (max(latest, event.event_time), count + 1)
    return grouped


# ---------------------------------------------------------------- generation
def generate_media(seed: int, *, n_entries: int = 48_000, n_events: int = 40_000,
                   course_ids: Sequence[int] | None = None, category_root: str = CATEGORY_ROOT,
                   listing_from: datetime = DEFAULT_LAST_TIMESTAMP) -> MediaData:
    """A deterministic data set. `listing_from` anchors the same-second bursts forced onto page boundaries.

    Results are cached per arguments (generation takes seconds): treat the returned data as read-only.
    """
    return _generate(seed, n_entries, n_events, tuple(course_ids or ()), category_root, listing_from)


@functools.lru_cache(maxsize=4)
def _generate(seed: int, n_entries: int, n_events: int, course_ids: tuple[int, ...], category_root: str,
              listing_from: datetime) -> MediaData:
    rng = random.Random(f"mivideo-{seed}")
    courses = list(course_ids) if course_ids else rng.sample(range(300_000, 400_000), 2_500)
    entries = _generate_entries(rng, n_entries, courses, category_root)
    entries = _force_boundary_bursts(entries, int(listing_from.timestamp()), category_root)
    events = _generate_events(rng, n_events, courses, listing_from)
    return MediaData(seed, PARTNER_ID, category_root, UNIVERSITY_KAF_APPS, entries, events, listing_from)


def _burst_timestamps(rng: random.Random, n: int, start: datetime, end: datetime,
                      boundary: int) -> list[int]:
    lo, hi = int(start.timestamp()), int(end.timestamp())
    stamps = sorted(rng.randrange(lo, hi) for _ in range(n))
    i = 0
    while i < n:                     # small and some page-sized groups of entries created in the same second
        roll = rng.random()
        size = rng.randint(600, 1_100) if roll < 0.0004 else rng.randint(2, 40) if roll < 0.06 else 1
        for j in range(i + 1, min(i + size, n)):
            stamps[j] = stamps[i]
        i += size
    # Entries exactly at and just before the default lower bound (which is inclusive).
    for offset, count in ((0, 7), (-1, 3)):
        position = next((k for k, s in enumerate(stamps) if s >= boundary), n - 1)
        for k in range(position, min(position + count, n)):
            stamps[k] = boundary + offset
    return sorted(stamps)


def _generate_entries(rng: random.Random, n: int, courses: Sequence[int], root: str) -> list[MediaEntry]:
    stamps = _burst_timestamps(rng, n, ENTRIES_FROM, DATA_UNTIL, int(DEFAULT_LAST_TIMESTAMP.timestamp()))
    ids: set[str] = set()
    entries = []
    for created_at in stamps:
        entry_id = _entry_id(rng, ids)
        status = STATUS_DELETED if rng.random() < 0.02 else STATUS_READY
        entries.append(MediaEntry(entry_id, _media_name(rng), created_at, rng.choice((0, rng.randint(5, 14_400))),
                                  status, _categories(rng, courses, root), rng.randint(0, 500)))
    return sorted(entries, key=lambda e: (e.created_at, e.id))


def _force_boundary_bursts(entries: list[MediaEntry], listing_from: int, root: str) -> list[MediaEntry]:
    """Make the entries around every 500th and 10,000th listed position share one creation second."""
    listed = [i for i, e in enumerate(entries)
              if e.status != STATUS_DELETED and e.created_at >= listing_from and matches_categories(e, [root])]
    stamps = [e.created_at for e in entries]
    for boundary in range(KALTURA_MAX_PAGE, len(listed), KALTURA_MAX_PAGE):
        before, after = (8, 30) if boundary % MAX_MATCHES == 0 else (2, 2)
        if boundary - before < 0 or boundary + after >= len(listed):
            continue
        first, last = listed[boundary - before], listed[boundary + after]
        for k in range(first, last + 1):     # lowering to the first stamp keeps the list sorted
            stamps[k] = stamps[first]
    rebuilt = [_replace_created(e, s) for e, s in zip(entries, stamps, strict=True)]
    return sorted(rebuilt, key=lambda e: (e.created_at, e.id))


def _replace_created(entry: MediaEntry, created_at: int) -> MediaEntry:
    if entry.created_at == created_at:
        return entry
    return MediaEntry(entry.id, entry.name, created_at, entry.duration, entry.status, entry.categories,
                      entry.plays)


def _entry_id(rng: random.Random, taken: set[str]) -> str:
    alphabet = string.ascii_lowercase + string.digits
    while True:
        candidate = f"1_{''.join(rng.choices(alphabet, k=8))}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate


_WORDS = ("Lecture", "Discussion", "Lab", "Review", "Office hours", "Guest talk", "Recitation", "Demo")
_TOPICS = ("Thermodynamics", "Organic Chemistry", "Linear Algebra", "Macroeconomics", "Poetry", "Genomics",
           "Ética y sociedad", "Introducción a la programación", "Übungen zur Analysis", "Économie politique",
           "日本語の授業", "Кинематика", "Ελληνική φιλοσοφία", "Q&A <live> session", "Café \"Gödel\" séminaire",
           "🎓 Capstone showcase", "Ω-notation & friends")


def _media_name(rng: random.Random) -> str:
    name = f"{rng.choice(_WORDS)} {rng.randint(1, 40)}: {rng.choice(_TOPICS)}"
    if rng.random() < 0.03:          # longer than the seed-era VARCHAR(200)
        tail = " — ".join(rng.choice(_TOPICS) for _ in range(40))
        name = (name + " — " + tail)[: rng.randint(201, 900)]
        if name[-1].isspace():       # keep the length; no trailing blanks (MySQL compares them away)
            name = name[:-1] + "…"
    return name


_NON_NUMERIC_CATEGORIES = (">site>galleries", ">site>channels>Sandbox space", ">site>channels>Démo Ünïcode",
                           ">site>channels>course-{id}", ">site>channels>{id}x", "")


def _categories(rng: random.Random, courses: Sequence[int], root: str) -> tuple[CategoryLink, ...]:
    roll = rng.random()
    links: list[CategoryLink] = []
    if roll < 0.78:                  # published to one or more course channels, maybe in context
        for course in rng.sample(courses, min(len(courses), rng.choice((1, 1, 1, 2, 2, 3, 4)))):
            mode = rng.random()
            if mode < 0.55 or mode >= 0.85:
                links.append(CategoryLink(f"{root}>site>channels>{course}", course, False))
            if mode >= 0.55:
                links.append(CategoryLink(f"{root}>site>channels>{course}>InContext", course, True))
    if (roll < 0.78 and rng.random() < 0.12) or 0.78 <= roll < 0.88:
        pattern = rng.choice(_NON_NUMERIC_CATEGORIES)
        links.append(CategoryLink(root + pattern.format(id=rng.choice(courses))))
    if 0.6 <= roll < 0.66 or 0.88 <= roll < 0.95:   # lookalike / other trees (their course ids must not count)
        other = rng.choice((LOOKALIKE_ROOT, *OTHER_ROOTS))
        links.append(CategoryLink(f"{other}>site>channels>{rng.choice(courses)}"))
    rng.shuffle(links)
    return tuple(links)


_OTHER_TYPES = (("NavigationEvent", "NavigatedTo"), ("SessionEvent", "LoggedIn"), ("ViewEvent", "Viewed"))
_MEDIA_ACTIONS = ("Started", "Started", "Started", "Paused", "Resumed", "Ended", "JumpedTo")


def _generate_events(rng: random.Random, n: int, courses: Sequence[int], listing_from: datetime) -> list[CaliperEvent]:
    """Viewing sessions: a course's class hour on some day, watched by a handful of students."""
    days = (DATA_UNTIL - EVENTS_FROM).days
    events: list[CaliperEvent] = []
    active_courses = rng.sample(list(courses), min(len(courses), 120))
    while len(events) < n:
        course = rng.choice(active_courses)
        hour_start = EVENTS_FROM + timedelta(days=rng.randrange(days), hours=int(rng.triangular(0, 24, 17)) % 24)
        for _ in range(min(rng.randint(1, 30), n - len(events))):
            moment = hour_start + timedelta(seconds=rng.randrange(3600), microseconds=rng.randrange(1_000_000))
            events.append(_event(rng, moment, course))
    # Exactly on the bounds: the default start (excluded), just after it, and midnights ("today" excludes them).
    specials = [listing_from, listing_from + timedelta(microseconds=1)]
    specials += [EVENTS_FROM + timedelta(days=d) for d in range(1, days)]
    for moment in specials:
        events.append(_event(rng, moment, rng.choice(active_courses), force_counted=True))
    return sorted(events, key=lambda e: (e.event_time, e.id))


def _event(rng: random.Random, moment: datetime, course: int, *, force_counted: bool = False) -> CaliperEvent:
    if force_counted or rng.random() < 0.8:
        event_type, action = "MediaEvent", rng.choice(_MEDIA_ACTIONS)
    else:
        event_type, action = rng.choice(_OTHER_TYPES)
    if force_counted:
        action = "Started"
    ed_app = rng.choice(UNIVERSITY_KAF_APPS) if force_counted or rng.random() < 0.8 else rng.choice(OTHER_KAF_APPS)
    extensions, course_id = _course_extension(rng, course, force_counted)
    event_id = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    actor = f"https://aakaf.mivideo.it.umich.edu/user/u{rng.randrange(1, 40_000)}"
    payload = {
        "@context": "http://purl.imsglobal.org/ctx/caliper/v1p1", "id": event_id, "type": event_type,
        "action": action, "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "actor": {"id": actor, "type": "Person"},
        "object": {"id": f"https://aakaf.mivideo.it.umich.edu/media/1_{rng.getrandbits(32):08x}",
                   "type": "VideoObject", "name": "Lecture", "duration": f"PT{rng.randint(10, 7200)}S",
                   **({"extensions": extensions} if extensions is not None else {})},
        "edApp": {"id": ed_app, "type": "SoftwareApplication"},
        "group": {"id": f"https://umich.instructure.com/courses/{course}", "type": "CourseOffering"},
    }
    store_time = moment + timedelta(seconds=rng.uniform(0.5, 240))
    return CaliperEvent(event_id, event_type, action, moment, store_time, ed_app, actor,
                        f"https://umich.instructure.com/courses/{course}", json.dumps(payload, ensure_ascii=False),
                        course_id)


def _course_extension(rng: random.Random, course: int, force: bool) -> tuple[dict | None, int | None]:
    """The `object.extensions` of an event and the course id BigQuery's SAFE_CAST would find in it."""
    roll = 0.0 if force else rng.random()
    if roll < 0.84:
        return {"kaf:course_id": str(course), "kaf:partner_id": str(PARTNER_ID)}, course
    if roll < 0.87:
        return {"kaf:course_id": course}, course                   # a JSON number is read the same way
    if roll < 0.90:
        return None, None
    if roll < 0.93:                  # what a path with "kaf:course_id" split at the colon would wrongly read
        return {"kaf": {"course_id": str(course)}}, None
    if roll < 0.96:
        return {"kaf:course_id": rng.choice(("", "sandbox", "n/a"))}, None
    return {"kaf:course_id": None, "kaf:category_id": str(course)}, None
