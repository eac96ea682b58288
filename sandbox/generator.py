"""Seeded generator of the synthetic university that every sandbox simulator serves.

`generate_university(scale, seed, **knobs)` is deterministic: every random choice comes from
`random.Random` instances derived from the seed (one per concern, so changing one knob does not
reshuffle unrelated data), and every date hangs off fixed anchors (`AS_OF`, the term calendar),
never off the wall clock. The data is deliberately messy in the ways real Canvas data is: missing,
numeric and text SIS ids, repeated/long/emoji names, courses the inventory job must drop, every
enrollment type in every state, audit histories spanning several pages, hidden or mislabelled Zoom
tabs. tests/sandbox/test_generator.py checks each of these features on the small preset.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import uuid
from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from sandbox.expected import kept_courses
from sandbox.university import (
    ENROLLMENT_STATES,
    ENROLLMENT_TYPES,
    NOT_COUNTED_STATES,
    Account,
    ActivityDay,
    AuditEvent,
    Course,
    Enrollment,
    Section,
    Tab,
    Term,
    University,
    User,
)

logger = logging.getLogger(__name__)

# The simulated "now": Fall 2025 is in progress, Winter 2026 is being prepared.
AS_OF = datetime(2025, 11, 3, 15, 0, 0, tzinfo=UTC)
ROOT_ACCOUNT_ID = 1
DEFAULT_TERM_ID = 1


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    """Every count the generator uses; presets in SCALES, each field overridable by keyword."""

    terms: int                      # 1..9: Default Term, a non-numeric SIS term, then academic terms
    colleges: int
    departments_per_college: int
    courses_with_students: int      # courses the inventory job keeps (unless deleted/out of term)
    courses_without_students: int   # empty, teachers only, only uncounted students, ...
    deleted_courses: int            # deleted courses that still have active students
    enrollments: int                # approximate total over courses with students, all roles
    users: int
    big_courses: int                # courses with at least big_course_size enrollments
    big_course_size: int
    max_sections: int = 6
    long_audit_courses: int = 5     # available courses whose audit history spans pages
    max_activity_days: int = 60
    zoom_share: float = 0.3         # share of courses with a tab labelled exactly "Zoom"
    odd_name_share: float = 0.08    # share of courses with emoji/non-ASCII/long/repeated names


SCALES: dict[str, ScaleConfig] = {
    "small": ScaleConfig(terms=4, colleges=3, departments_per_college=3, courses_with_students=40,
                         courses_without_students=15, deleted_courses=3, enrollments=1_500, users=900,
                         big_courses=2, big_course_size=300),
    "medium": ScaleConfig(terms=5, colleges=8, departments_per_college=6, courses_with_students=2_000,
                          courses_without_students=150, deleted_courses=40, enrollments=100_000,
                          users=40_000, big_courses=10, big_course_size=2_000, long_audit_courses=10),
    "large": ScaleConfig(terms=6, colleges=14, departments_per_college=10, courses_with_students=10_000,
                         courses_without_students=600, deleted_courses=150, enrollments=500_000,
                         users=150_000, big_courses=30, big_course_size=3_000, long_audit_courses=20,
                         max_activity_days=45),
}

# Academic calendar (name, numeric SIS id, first day, last day) and the order terms are taken in,
# so that even few terms mix past, current and future ones.
_CALENDAR = {
    "Winter 2024": ("2320", date(2024, 1, 10), date(2024, 5, 2)),
    "Fall 2024": ("2410", date(2024, 8, 26), date(2024, 12, 19)),
    "Winter 2025": ("2420", date(2025, 1, 8), date(2025, 5, 1)),
    "Spring 2025": ("2430", date(2025, 5, 5), date(2025, 6, 25)),
    "Summer 2025": ("2440", date(2025, 6, 30), date(2025, 8, 20)),
    "Fall 2025": ("2510", date(2025, 8, 25), date(2025, 12, 18)),
    "Winter 2026": ("2520", date(2026, 1, 7), date(2026, 4, 30)),
}
_TERM_PREFERENCE = ("Fall 2025", "Winter 2025", "Winter 2026", "Fall 2024", "Summer 2025", "Spring 2025",
                    "Winter 2024")
_MED_TERM = ("Medical School 2025–2026", "MED-2526", date(2025, 7, 1), date(2026, 6, 30))

_COLLEGES = (
    ("College of Arts and Sciences", "CAS"), ("School of Engineering", "ENG"),
    ("School of Music, Theatre & Dance", "SMTD"), ("School of Nursing", "NURS"), ("Medical School", "MED"),
    ("Law School", "LAW"), ("School of Information", "SI"), ("Business School", "BUS"),
    ("School of Public Health", "SPH"), ("School of Education", "EDU"),
    ("École d'été de français", "EEF"), ("School for Environment and Sustainability", "SEAS"),
    ("School of Art & Design", "ART"), ("School of Kinesiology", "KIN"),
)
_SUBJECTS = (
    ("Mathematics", "MATH"), ("English Language and Literature", "ENGLISH"), ("Chemistry", "CHEM"),
    ("Romance Languages — Études françaises", "FRENCH"), ("Computer Science", "EECS"), ("Physics", "PHYSICS"),
    ("Germanic Languages: Deutsch, Svenska & Norsk (Ø)", "GERMAN"), ("History", "HISTORY"),
    ("Asian Languages and Cultures 日本語・中文", "ASIAN"), ("Psychology", "PSYCH"), ("Economics", "ECON"),
    ("Música y Danza", "MUSIC"), ("Statistics", "STATS"), ("Biology", "BIOLOGY"), ("Philosophy", "PHIL"),
    ("Linguistics", "LING"), ("Astronomy", "ASTRO"), ("Sociology", "SOC"), ("Nursing Practice", "NURSPRAC"),
)
_LONG_SUFFIX = (" — Interdisciplinary Program Office for Undergraduate, Graduate and Continuing"
                " Professional Education Initiatives")
_TITLES = ("Introduction to {}", "Topics in {}", "Advanced {}", "Seminar in {}", "{} Laboratory",
           "Foundations of {}", "{} for Non-Majors", "Research Methods in {}")
_LONG_PHRASES = ("in Theory and Practice", "with Applications to Contemporary Problems",
                 "Across Cultures and Centuries", "Including a Community-Engaged Project", "and Studio Component",
                 "for Students in the Health Sciences",
                 "(Cross-Listed with the Residential College)", "— Honors Section, Instructor Permission Required")
_EMOJI_NAMES = ("Français 101 — Café 🎓", "Data Science 🚀 for Everyone", "Music Theory 🎵🎹",
                "Climate & Society 🌍", "Kitchen Chemistry 🧪🍳")
_NON_ASCII_NAMES = ("Ελληνικά 201: Ομήρου Οδύσσεια", "日本語 102 — 初級会話", "Español para hispanohablantes",
                    "Straße und Stadt: Urbanistik", "Økonomi og samfunn", "Русский язык 101")
_FIRST = ("Ana", "Ben", "Chen", "Dana", "Émile", "Fatima", "Gus", "Hana", "Ivan", "José", "Kai", "Łukasz",
          "Maya", "Noor", "Oscar", "Priya", "Quinn", "Rosa", "Sam", "Tomás", "Uma", "Zoë")
_LAST = ("Anders", "Brown", "Çelik", "Diaz", "Eriksen", "Fischer", "García", "Huang", "Ito", "Jones", "Kim",
         "López", "Müller", "Nguyen", "O'Brien", "Patel", "Quist", "Rossi", "Smith", "Tanaka", "Wójcik", "陈")
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
# Courses the job must drop or never sees: (kind, description) — cycled so each kind occurs.
_WITHOUT_KINDS = ("empty", "teachers_only", "uncounted_students", "only_deleted", "no_listed_types")
_STATE_MIX = {"available": 60, "completed": 20, "unpublished": 20}
# How likely a course in a term of that phase is to be in each state.
_PHASE_WEIGHT = {
    "past": {"available": 0.3, "completed": 1.0, "unpublished": 0.1},
    "current": {"available": 1.0, "completed": 0.05, "unpublished": 0.3},
    "future": {"available": 0.4, "completed": 0.0, "unpublished": 1.0},
    "open": {"available": 0.4, "completed": 0.3, "unpublished": 0.3},
}


def generate_university(scale: str = "small", seed: int = 42, **knobs: int | float) -> University:
    """Build the university for a scale preset, with any ScaleConfig field overridden by keyword."""
    config = scale_config(scale, **knobs)
    terms = _make_terms(_rng(seed, "terms"), config.terms)
    accounts = _make_accounts(_rng(seed, "accounts"), config)
    plans = _plan_courses(_rng(seed, "courses"), config, terms, accounts)
    users = _make_users(_rng(seed, "users"), config.users)
    sections = _make_sections(_rng(seed, "sections"), plans, config)
    enrollments = _make_enrollments(_rng(seed, "enrollments"), plans, users)
    courses = [plan.course for plan in plans]
    university = University(
        seed=seed,
        root_account_id=ROOT_ACCOUNT_ID,
        terms=terms,
        accounts=accounts,
        courses=courses,
        sections=sections,
        users=users,
        enrollments=enrollments,
        audit_events=_make_audit(_rng(seed, "audit"), plans, config.long_audit_courses),
        activity=_make_activity(_rng(seed, "activity"), plans, config.max_activity_days),
        tabs=_make_tabs(_rng(seed, "tabs"), courses, config.zoom_share),
        canvasdatadate=_canvasdatadate(_rng(seed, "udw")),
        extras={"generator": {"scale": scale, "config": dataclasses.asdict(config), "as_of": AS_OF}},
    )
    logger.debug("generated %s university (seed %d): %d courses, %d enrollments",
                 scale, seed, len(courses), len(enrollments))
    return university


def scale_config(scale: str = "small", **knobs: int | float) -> ScaleConfig:
    """The preset for `scale` with `knobs` applied; ValueError for unknown scales, knobs or bad values."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    unknown = set(knobs) - {f.name for f in dataclasses.fields(ScaleConfig)}
    if unknown:
        raise ValueError(f"unknown generator knobs: {sorted(unknown)}")
    config = dataclasses.replace(SCALES[scale], **knobs)
    if not 1 <= config.terms <= len(_CALENDAR) + 2:
        raise ValueError(f"terms must be between 1 and {len(_CALENDAR) + 2}")
    if config.colleges < 1 or config.departments_per_college < 1 or config.users < 1:
        raise ValueError("colleges, departments_per_college and users must be at least 1")
    if not 1 <= config.max_sections or not 0 <= config.zoom_share <= 1 or not 0 <= config.odd_name_share <= 1:
        raise ValueError("max_sections must be >= 1 and shares between 0 and 1")
    negative = [f.name for f in dataclasses.fields(config) if getattr(config, f.name) < 0]
    if negative:
        raise ValueError(f"knobs must not be negative: {negative}")
    return config


def describe(u: University) -> dict[str, int]:
    """Counts for logs and the CLI."""
    kept = kept_courses(u, [t.id for t in u.terms])
    return {
        "terms": len(u.terms),
        "accounts": len(u.accounts),
        "courses": len(u.courses),
        "kept_courses": len(kept),
        "sections": len(u.sections),
        "users": len(u.users),
        "enrollments": len(u.enrollments),
        "kept_enrollments": sum(len(u.graphql_enrollments(c.id)) for c in kept),
        "audit_events": len(u.audit_events),
        "activity_days": len(u.activity),
        "tabs": len(u.tabs),
        "zoom_tabs": sum(1 for t in u.tabs if t.label == "Zoom" and not t.hidden),
    }


# ---------------------------------------------------------------- helpers

def _rng(seed: int, concern: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so this is stable across runs and platforms.
    return random.Random(f"{seed}:{concern}")


class _Ids:
    """Increasing ids with random gaps, like a busy production sequence."""

    def __init__(self, rng: random.Random, start: int, max_gap: int) -> None:
        self._rng, self._next, self._max_gap = rng, start, max_gap

    def __call__(self) -> int:
        current = self._next
        self._next += 1 + int(self._rng.random() * self._max_gap)   # random() is much faster than randint()
        return current


class _SisIds:
    """Canvas keeps SIS ids unique per root account: numeric ones are redrawn, text ones renumbered."""

    def __init__(self, rng: random.Random, digits: int) -> None:
        self._rng, self._low, self._high = rng, 10 ** (digits - 1), 10**digits - 1
        self._used: set[str] = set()

    def numeric(self) -> str:
        candidate = str(self._rng.randint(self._low, self._high))
        while candidate in self._used:
            candidate = str(self._rng.randint(self._low, self._high))
        return self._claim(candidate)

    def text(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self._used:
            n += 1
            candidate = f"{base}-{n}"
        return self._claim(candidate)

    def numbered(self, pattern: str) -> str:
        """pattern holds `{n}`: the first free number (001, 002, ...) is used."""
        n = 1
        while (candidate := pattern.format(n=f"{n:03d}")) in self._used:
            n += 1
        return self._claim(candidate)

    def _claim(self, candidate: str) -> str:
        self._used.add(candidate)
        return candidate


class _Weighted:
    """Fast repeated weighted choice among labels."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self._labels = list(weights)
        self._cumulative = list(accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> str:
        index = bisect(self._cumulative, rng.random() * self._cumulative[-1])
        return self._labels[min(index, len(self._labels) - 1)]


def _assorted(rng: random.Random, n: int, weights: Mapping[str, float], minimum: int = 1) -> list[str]:
    """n labels drawn by weight, but each label with weight > 0 occurs `minimum` times when n allows."""
    labels = [label for label, weight in weights.items() if weight > 0]
    forced = [label for label in labels for _ in range(minimum)][:n]
    pick = _Weighted(weights)
    result = forced + [pick(rng) for _ in range(n - len(forced))]
    rng.shuffle(result)
    return result


def _at(day: date, rng: random.Random | None = None, hour: int = 4) -> datetime:
    """A whole-second UTC datetime on `day` (random time of day when rng is given)."""
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return moment if rng is None else moment + timedelta(seconds=rng.randint(0, 86_399))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# ---------------------------------------------------------------- terms and accounts

def _make_terms(rng: random.Random, count: int) -> list[Term]:
    academic = sorted(_TERM_PREFERENCE[: max(1, count - 2)], key=lambda name: _CALENDAR[name][1])
    specs: list[tuple[str, str | None, date | None, date | None]] = [(n, *_CALENDAR[n]) for n in academic]
    if count >= 2:
        specs.insert(0, ("Default Term", None, None, None))  # Canvas's default term: no SIS id, no dates
    if count >= 3:
        specs.insert(1, _MED_TERM)
    next_id = _Ids(rng, 101, 9)
    terms = []
    for name, sis_id, start, end in specs:
        term_id = DEFAULT_TERM_ID if name == "Default Term" else next_id()
        created = _at(start - timedelta(days=200), rng) if start else datetime(2016, 5, 2, 14, 3, 22, tzinfo=UTC)
        terms.append(Term(id=term_id, name=name, sis_term_id=sis_id, start_at=_at(start) if start else None,
                          end_at=_at(end, hour=5) if end else None, created_at=created))
    return terms


def _make_accounts(rng: random.Random, config: ScaleConfig) -> list[Account]:
    root = Account(id=ROOT_ACCOUNT_ID, name="Example University", parent_account_id=None,
                   sis_account_id="UM_ANN-ARBOR")
    next_id, sis = _Ids(rng, 100, 3), _SisIds(rng, 6)
    n_departments = config.colleges * config.departments_per_college
    college_sis = _assorted(rng, config.colleges, {"numeric": 4, "text": 4, "none": 2})
    department_sis = _assorted(rng, n_departments, {"numeric": 5, "text": 2.5, "none": 2.5})
    long_names = set(rng.sample(range(n_departments), min(n_departments, 2)))
    accounts, used_names = [root], {root.name}
    for c in range(config.colleges):
        base, short = _COLLEGES[c % len(_COLLEGES)]
        name = _unique(base, used_names)
        college = Account(id=next_id(), name=name, parent_account_id=root.id,
                          sis_account_id=_account_sis(sis, college_sis[c], f"UM_{short}"))
        accounts.append(college)
        for d in range(config.departments_per_college):
            index = c * config.departments_per_college + d
            subject, code = _SUBJECTS[index % len(_SUBJECTS)]
            name = _unique(subject + (_LONG_SUFFIX if index in long_names else ""), used_names, short)
            accounts.append(Account(id=next_id(), name=name, parent_account_id=college.id,
                                    sis_account_id=_account_sis(sis, department_sis[index], f"{short}_{code}")))
    return accounts


def _unique(name: str, used: set[str], qualifier: str = "") -> str:
    """Account names stay unique (Canvas does not require it, but the inventory's account table does)."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name} ({qualifier} {n})" if qualifier else f"{name} {n}"
    used.add(candidate)
    return candidate


def _account_sis(sis: _SisIds, kind: str, text: str) -> str | None:
    if kind == "none":
        return None
    return sis.numeric() if kind == "numeric" else sis.text(text)


def _make_users(rng: random.Random, count: int) -> list[User]:
    next_id = _Ids(rng, 300_000, 3)
    return [User(id=next_id(), name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}") for _ in range(count)]


def _canvasdatadate(rng: random.Random) -> datetime:
    # The warehouse lags Canvas by about a day; microseconds are never zero (real loads have them).
    lag = timedelta(hours=rng.randint(20, 40), seconds=rng.randint(0, 3_599), microseconds=rng.randint(1, 999_999))
    return AS_OF - lag


# ---------------------------------------------------------------- courses

@dataclass(slots=True)
class _Plan:
    """A course plus what the later stages need to know about how it was meant to look."""

    kind: str                        # "populated", "deleted" or one of _WITHOUT_KINDS
    course: Course
    term: Term
    size: int = 0                    # enrollments to create (populated/deleted)
    sections: list[Section] = field(default_factory=list)
    showcase: bool = False           # carries one enrollment of every type x state


def _phase(term: Term) -> str:
    if term.start_at is None or term.end_at is None or (term.end_at - term.start_at).days > 200:
        return "open"
    if term.end_at < AS_OF:
        return "past"
    return "future" if term.start_at > AS_OF else "current"


def _plan_courses(rng: random.Random, config: ScaleConfig, terms: list[Term],
                  accounts: list[Account]) -> list[_Plan]:
    kinds = (["populated"] * config.courses_with_students + ["deleted"] * config.deleted_courses
             + [_WITHOUT_KINDS[i % len(_WITHOUT_KINDS)] for i in range(config.courses_without_students)])
    rng.shuffle(kinds)
    populated = [i for i, kind in enumerate(kinds) if kind == "populated"]
    states = iter(_assorted(rng, len(populated), _STATE_MIX))
    names = _CourseNamer(rng, accounts, len(kinds), populated, config.odd_name_share)
    sis_kinds = _assorted(rng, len(kinds), {"numeric": 5, "text": 3, "none": 2})
    next_id, sis = _Ids(rng, 10_000, 4), _SisIds(rng, 9)
    departments = [a for a in accounts if a.parent_account_id not in (None, ROOT_ACCOUNT_ID)]
    upper = [a for a in accounts if a.parent_account_id in (None, ROOT_ACCOUNT_ID)]
    plans = []
    for index, kind in enumerate(kinds):
        state = next(states) if kind == "populated" else _other_state(rng, kind)
        term = _term_for(rng, terms, state)
        account = rng.choice(departments) if rng.random() < 0.9 else rng.choice(upper)
        name, code = names(index, account)
        course = Course(id=next_id(), name=name, course_code=code, account_id=account.id, term_id=term.id,
                        sis_course_id=_course_sis(sis, sis_kinds[index], term, code),
                        created_at=_created_at(rng, term), workflow_state=state)
        plans.append(_Plan(kind=kind, course=course, term=term))
    _size_courses(rng, plans, config)
    return plans


def _other_state(rng: random.Random, kind: str) -> str:
    if kind == "deleted":
        return "deleted"
    return _Weighted({"available": 5, "unpublished": 4, "completed": 1})(rng)


def _term_for(rng: random.Random, terms: list[Term], state: str) -> Term:
    weights = [_PHASE_WEIGHT[_phase(t)].get(state, 0.5) * (0.3 if _phase(t) == "open" else 1.0) for t in terms]
    if not any(weights):
        return rng.choice(terms)
    return rng.choices(terms, weights=weights)[0]


def _created_at(rng: random.Random, term: Term) -> datetime:
    if term.start_at is None:
        created = AS_OF - timedelta(days=rng.randint(30, 700), seconds=rng.randint(0, 86_399))
    else:
        created = term.start_at - timedelta(days=rng.randint(10, 150), seconds=rng.randint(0, 86_399))
    # Nothing may be created in the simulated future; audit histories need room after creation.
    return min(created, AS_OF - timedelta(days=7, seconds=rng.randint(0, 86_399)))


def _course_sis(sis: _SisIds, kind: str, term: Term, code: str) -> str | None:
    if kind == "none":
        return None
    if kind == "numeric":
        return sis.numeric()
    return sis.numbered(f"{term.sis_term_id or 'NOTERM'}-{code.replace(' ', '-')}-{{n}}")


class _CourseNamer:
    """Course names: a small catalogue per subject (so names repeat across terms) plus odd ones."""

    _ODD = ("emoji", "non_ascii", "long", "very_long", "repeat")

    def __init__(self, rng: random.Random, accounts: list[Account], n_courses: int, populated: list[int],
                 share: float) -> None:
        self._rng, self._given = rng, []
        departments = [a.id for a in accounts if a.parent_account_id not in (None, ROOT_ACCOUNT_ID)]
        self._subject = {account_id: _SUBJECTS[i % len(_SUBJECTS)] for i, account_id in enumerate(departments)}
        self._catalogue_size = max(3, n_courses // (2 * max(1, len(departments))))
        self._odd: dict[int, str] = {}
        for kind in self._ODD:                       # each odd kind on at least two courses with students
            for index in rng.sample(populated, min(len(populated), 2)):
                self._odd.setdefault(index, kind)
        for index in rng.sample(range(n_courses), round(share * n_courses)):
            self._odd.setdefault(index, rng.choice(self._ODD))

    def __call__(self, index: int, account: Account) -> tuple[str, str]:
        rng = self._rng
        topic, subject = self._subject.get(account.id, ("Interdisciplinary Studies", "UNIV"))
        topic = topic.split(" — ")[0].split(":")[0]
        code = f"{subject} {100 + 7 * rng.randrange(self._catalogue_size)}"
        kind = self._odd.get(index, "plain")
        if kind == "emoji":
            name = rng.choice(_EMOJI_NAMES)
        elif kind == "non_ascii":
            name = rng.choice(_NON_ASCII_NAMES)
        elif kind == "repeat" and self._given:
            name = rng.choice(self._given)           # an earlier course's name, usually another term
        elif kind in ("long", "very_long"):
            name = _long_name(rng, code, topic, *((101, 160) if kind == "long" else (230, 250)))
        else:
            name = f"{code}: {rng.choice(_TITLES).format(topic)}"
        self._given.append(name)
        return name, code


def _long_name(rng: random.Random, code: str, topic: str, shortest: int, longest: int) -> str:
    name = f"{code}: Special Topics in {topic}"
    for phrase in rng.sample(_LONG_PHRASES, len(_LONG_PHRASES)):
        if len(name) >= shortest:
            break
        name += " " + phrase
    return name[:longest].rstrip()


def _size_courses(rng: random.Random, plans: list[_Plan], config: ScaleConfig) -> None:
    """Heavy-tailed enrollment counts: a few big courses, lognormal sizes for the rest."""
    populated = [p for p in plans if p.kind == "populated"]
    big, rest = populated[: config.big_courses], populated[config.big_courses:]
    for plan in big:
        plan.size = config.big_course_size + rng.randint(0, config.big_course_size // 3)
    showcase = next((p for p in rest + big if p.course.workflow_state == "available" and p.term.start_at), None)
    if showcase is None and populated:
        showcase = populated[-1]
    if showcase is not None:
        showcase.showcase = True
    budget = config.enrollments - sum(p.size for p in big) - len(ENROLLMENT_TYPES) * len(ENROLLMENT_STATES)
    weights = [rng.lognormvariate(0.0, 1.0) for _ in rest]
    factor = max(budget, 2 * len(rest)) / (sum(weights) or 1.0)
    for plan, weight in zip(rest, weights, strict=True):
        plan.size = max(2, round(weight * factor))
    for plan in plans:
        if plan.kind == "deleted":
            plan.size = rng.randint(3, 40)


# ---------------------------------------------------------------- sections

def _make_sections(rng: random.Random, plans: list[_Plan], config: ScaleConfig) -> list[Section]:
    counts = [_section_count(rng, plan, config.max_sections) for plan in plans]
    sis_kinds = iter(_assorted(rng, sum(counts), {"numeric": 45, "text": 20, "long": 10, "none": 25}))
    next_id, sis = _Ids(rng, 20_000, 6), _SisIds(rng, 6)
    sections = []
    for plan, count in zip(plans, counts, strict=True):
        course = plan.course
        for number in range(count):
            # Canvas names a course's default section after the course.
            name = course.name if number == 0 else _section_name(rng, course.course_code, number)
            section = Section(id=next_id(), course_id=course.id, name=name,
                              sis_source_id=_section_sis(sis, next(sis_kinds), plan.term, course))
            plan.sections.append(section)
            sections.append(section)
    return sections


def _section_count(rng: random.Random, plan: _Plan, most: int) -> int:
    if plan.kind not in ("populated", "deleted"):
        return min(most, rng.randint(1, 2))
    wanted = 1 + rng.randint(0, 2) + plan.size // 150 + int(plan.showcase)
    return max(1, min(most, wanted))


def _section_name(rng: random.Random, code: str, number: int) -> str:
    roll = rng.random()
    if roll < 0.06:
        return f"{code} {number:03d} — Sección en español"
    if roll < 0.1:
        return f"{code} Groupe n° {number} (Séminaire)"
    return f"{code} {number:03d} {rng.choice(('LEC', 'DIS', 'LAB', 'SEM'))}"


def _section_sis(sis: _SisIds, kind: str, term: Term, course: Course) -> str | None:
    if kind == "none":
        return None
    if kind == "numeric":
        return sis.numeric()
    term_code = term.sis_term_id or "DFLT"
    if kind == "long":                                   # longer than 20 characters
        return sis.numbered(f"UM_ANN-ARBOR_{term_code}_{course.course_code.replace(' ', '_')}_SEC_{{n}}")
    return sis.numbered(f"{term_code}{course.course_code.split()[0][:4]}{{n}}")


# ---------------------------------------------------------------- users and enrollments

def _make_enrollments(rng: random.Random, plans: list[_Plan], users: list[User]) -> list[Enrollment]:
    next_id = _Ids(rng, 500_000, 3)
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


def _roles(rng: random.Random, plan: _Plan) -> list[tuple[str, str]]:
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


_STUDENT_PICK = _Weighted(_STUDENT_STATES)
_STAFF_PICK = _Weighted(_STAFF_STATES)


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


def _twins(rng: random.Random, plan: _Plan, created: list[Enrollment]) -> list[Enrollment]:
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


def _make_audit(rng: random.Random, plans: list[_Plan], long_count: int) -> list[AuditEvent]:
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
        events.append(AuditEvent(id=_uuid(rng), course_id=course.id, created_at=moment, event_type=event_type,
                                 event_source=source))
        moment += timedelta(seconds=rng.randint(1, max_gap))
    return events


# ---------------------------------------------------------------- analytics and tabs

def _make_activity(rng: random.Random, plans: list[_Plan], max_days: int) -> list[ActivityDay]:
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


def _activity_window(plan: _Plan) -> tuple[date, date]:
    first, last = plan.course.created_at.date(), AS_OF.date() - timedelta(days=1)
    if plan.term.start_at is not None:
        first = max(first, plan.term.start_at.date() - timedelta(days=14))
    if plan.term.end_at is not None:
        last = min(last, plan.term.end_at.date())
    return first, last


def _make_tabs(rng: random.Random, courses: list[Course], zoom_share: float) -> list[Tab]:
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
