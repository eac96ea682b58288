"""The university's structure: terms, the account tree, users, planned courses and their sections.

Each `make_*`/`plan_courses` function draws from the `random.Random` it is given (one per concern, see
sandbox.generator). `plan_courses` returns a `CoursePlan` per course: the `Course` plus what the later stages
(sandbox.generator_records) need to know about how it was meant to look (kind, size, sections, showcase).
Names and SIS ids are deliberately messy: missing, numeric and text ids, repeated/long/emoji/non-ASCII names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sandbox.generator_base import (
    AS_OF,
    CALENDAR,
    DEFAULT_TERM_ID,
    ROOT_ACCOUNT_ID,
    Ids,
    ScaleConfig,
    SisIds,
    Weighted,
    assorted,
    day_at,
)
from sandbox.university import ENROLLMENT_STATES, ENROLLMENT_TYPES, Account, Course, Section, Term, User

# The order terms are taken in from the calendar, so that even few terms mix past, current and future ones.
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


# ---------------------------------------------------------------- terms, accounts and users

def make_terms(rng: random.Random, count: int) -> list[Term]:
    academic = sorted(_TERM_PREFERENCE[: max(1, count - 2)], key=lambda name: CALENDAR[name][1])
    specs: list[tuple[str, str | None, date | None, date | None]] = [(n, *CALENDAR[n]) for n in academic]
    if count >= 2:
        specs.insert(0, ("Default Term", None, None, None))  # Canvas's default term: no SIS id, no dates
    if count >= 3:
        specs.insert(1, _MED_TERM)
    next_id = Ids(rng, 101, 9)
    terms = []
    for name, sis_id, start, end in specs:
        term_id = DEFAULT_TERM_ID if name == "Default Term" else next_id()
        created = day_at(start - timedelta(days=200), rng) if start else datetime(2016, 5, 2, 14, 3, 22, tzinfo=UTC)
        terms.append(Term(id=term_id, name=name, sis_term_id=sis_id, start_at=day_at(start) if start else None,
                          end_at=day_at(end, hour=5) if end else None, created_at=created))
    return terms


def make_accounts(rng: random.Random, config: ScaleConfig) -> list[Account]:
    root = Account(id=ROOT_ACCOUNT_ID, name="Example University", parent_account_id=None,
                   sis_account_id="UM_ANN-ARBOR")
    next_id, sis = Ids(rng, 100, 3), SisIds(rng, 6)
    n_departments = config.colleges * config.departments_per_college
    college_sis = assorted(rng, config.colleges, {"numeric": 4, "text": 4, "none": 2})
    department_sis = assorted(rng, n_departments, {"numeric": 5, "text": 2.5, "none": 2.5})
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


def _account_sis(sis: SisIds, kind: str, text: str) -> str | None:
    if kind == "none":
        return None
    return sis.numeric() if kind == "numeric" else sis.text(text)


def make_users(rng: random.Random, count: int) -> list[User]:
    next_id = Ids(rng, 300_000, 3)
    return [User(id=next_id(), name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}") for _ in range(count)]


# ---------------------------------------------------------------- courses

@dataclass(slots=True)
class CoursePlan:
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


def plan_courses(rng: random.Random, config: ScaleConfig, terms: list[Term],
                  accounts: list[Account]) -> list[CoursePlan]:
    kinds = (["populated"] * config.courses_with_students + ["deleted"] * config.deleted_courses
             + [_WITHOUT_KINDS[i % len(_WITHOUT_KINDS)] for i in range(config.courses_without_students)])
    rng.shuffle(kinds)
    populated = [i for i, kind in enumerate(kinds) if kind == "populated"]
    states = iter(assorted(rng, len(populated), _STATE_MIX))
    names = _CourseNamer(rng, accounts, len(kinds), populated, config.odd_name_share)
    sis_kinds = assorted(rng, len(kinds), {"numeric": 5, "text": 3, "none": 2})
    next_id, sis = Ids(rng, 10_000, 4), SisIds(rng, 9)
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
        plans.append(CoursePlan(kind=kind, course=course, term=term))
    _size_courses(rng, plans, config)
    return plans


def _other_state(rng: random.Random, kind: str) -> str:
    if kind == "deleted":
        return "deleted"
    return Weighted({"available": 5, "unpublished": 4, "completed": 1})(rng)


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


def _course_sis(sis: SisIds, kind: str, term: Term, code: str) -> str | None:
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


def _size_courses(rng: random.Random, plans: list[CoursePlan], config: ScaleConfig) -> None:
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

def make_sections(rng: random.Random, plans: list[CoursePlan], config: ScaleConfig) -> list[Section]:
    counts = [_section_count(rng, plan, config.max_sections) for plan in plans]
    sis_kinds = iter(assorted(rng, sum(counts), {"numeric": 45, "text": 20, "long": 10, "none": 25}))
    next_id, sis = Ids(rng, 20_000, 6), SisIds(rng, 6)
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


def _section_count(rng: random.Random, plan: CoursePlan, most: int) -> int:
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


def _section_sis(sis: SisIds, kind: str, term: Term, course: Course) -> str | None:
    if kind == "none":
        return None
    if kind == "numeric":
        return sis.numeric()
    term_code = term.sis_term_id or "DFLT"
    if kind == "long":                                   # longer than 20 characters
        return sis.numbered(f"UM_ANN-ARBOR_{term_code}_{course.course_code.replace(' ', '_')}_SEC_{{n}}")
    return sis.numbered(f"{term_code}{course.course_code.split()[0][:4]}{{n}}")
