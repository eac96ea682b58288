"""Foundations shared by the university generator's stages: scale presets, fixed anchors, seeded primitives.

`ScaleConfig`/`SCALES`/`scale_config` hold every count the generator uses; `AS_OF` and `CALENDAR` are the
fixed anchors every date hangs off (never the wall clock); `Ids`, `SisIds`, `Weighted`, `assorted`, `day_at`
and `random_uuid` are the small deterministic helpers each stage draws its ids, SIS ids, labels and
timestamps from, always through a `random.Random` the caller passes in.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

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

# Academic calendar (name, numeric SIS id, first day, last day); sandbox.generator_catalog takes terms from it
# in an order that mixes past, current and future ones even when there are few.
CALENDAR = {
    "Winter 2024": ("2320", date(2024, 1, 10), date(2024, 5, 2)),
    "Fall 2024": ("2410", date(2024, 8, 26), date(2024, 12, 19)),
    "Winter 2025": ("2420", date(2025, 1, 8), date(2025, 5, 1)),
    "Spring 2025": ("2430", date(2025, 5, 5), date(2025, 6, 25)),
    "Summer 2025": ("2440", date(2025, 6, 30), date(2025, 8, 20)),
    "Fall 2025": ("2510", date(2025, 8, 25), date(2025, 12, 18)),
    "Winter 2026": ("2520", date(2026, 1, 7), date(2026, 4, 30)),
}


def scale_config(scale: str = "small", **knobs: int | float) -> ScaleConfig:
    """The preset for `scale` with `knobs` applied; ValueError for unknown scales, knobs or bad values."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    unknown = set(knobs) - {f.name for f in dataclasses.fields(ScaleConfig)}
    if unknown:
        raise ValueError(f"unknown generator knobs: {sorted(unknown)}")
    config = dataclasses.replace(SCALES[scale], **knobs)
    if not 1 <= config.terms <= len(CALENDAR) + 2:
        raise ValueError(f"terms must be between 1 and {len(CALENDAR) + 2}")
    if config.colleges < 1 or config.departments_per_college < 1 or config.users < 1:
        raise ValueError("colleges, departments_per_college and users must be at least 1")
    if not 1 <= config.max_sections or not 0 <= config.zoom_share <= 1 or not 0 <= config.odd_name_share <= 1:
        raise ValueError("max_sections must be >= 1 and shares between 0 and 1")
    negative = [f.name for f in dataclasses.fields(config) if getattr(config, f.name) < 0]
    if negative:
        raise ValueError(f"knobs must not be negative: {negative}")
    return config


# ---------------------------------------------------------------- seeded primitives

class Ids:
    """Increasing ids with random gaps, like a busy production sequence."""

    def __init__(self, rng: random.Random, start: int, max_gap: int) -> None:
        self._rng, self._next, self._max_gap = rng, start, max_gap

    def __call__(self) -> int:
        current = self._next
        self._next += 1 + int(self._rng.random() * self._max_gap)   # random() is much faster than randint()
        return current


class SisIds:
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


class Weighted:
    """Fast repeated weighted choice among labels."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self._labels = list(weights)
        self._cumulative = list(accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> str:
        index = bisect(self._cumulative, rng.random() * self._cumulative[-1])
        return self._labels[min(index, len(self._labels) - 1)]


def assorted(rng: random.Random, n: int, weights: Mapping[str, float], minimum: int = 1) -> list[str]:
    """n labels drawn by weight, but each label with weight > 0 occurs `minimum` times when n allows."""
    labels = [label for label, weight in weights.items() if weight > 0]
    forced = [label for label in labels for _ in range(minimum)][:n]
    pick = Weighted(weights)
    result = forced + [pick(rng) for _ in range(n - len(forced))]
    rng.shuffle(result)
    return result


def day_at(day: date, rng: random.Random | None = None, hour: int = 4) -> datetime:
    """A whole-second UTC datetime on `day` (random time of day when rng is given)."""
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return moment if rng is None else moment + timedelta(seconds=rng.randint(0, 86_399))


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
