"""How far the simulated warehouse trails Canvas: some sections missing, some holding an older SIS id.

The UDW is built from Canvas Data 1 exports, whose latency is 24-48 hours (Instructure, "Canvas Data 2
Features and Timelines", community.canvaslms.com; the generator's `canvasdatadate` is 20-40 hours behind
Canvas), so its `course_section_dim` lacks the sections created since the last export and holds the
previous SIS id of sections whose id changed since. How many sections that touches is not published: the
default shares below are an assumption, on the demanding side of a day or two of changes early in a term.

Canvas's own value (`Section.sis_source_id`, served as GraphQL `Section.sisId`) stays the truth; these
pure functions only decide what the warehouse shows instead. Seeded: the same university and lag give the
same warehouse every time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from sandbox.university import Section


class Fate(Enum):
    CURRENT = "current"    # the warehouse row matches Canvas
    MISSING = "missing"    # no course_section_dim row: created after the last export
    STALE = "stale"        # the row holds the SIS id the section had at the last export


@dataclass(frozen=True)
class UdwLag:
    missing_share: float = 0.02
    stale_share: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("missing_share", "stale_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"UdwLag.{name} must be between 0 and 1, got {value}")
        if self.missing_share + self.stale_share > 1.0:
            raise ValueError("UdwLag.missing_share + stale_share must not exceed 1")


NO_LAG = UdwLag(missing_share=0.0, stale_share=0.0)


def section_fates(sections: Iterable[Section], lag: UdwLag, university_seed: int) -> dict[int, Fate]:
    """Each section's fate in the warehouse, drawn in section-id order from a seeded generator."""
    # String seeds are hashed with SHA-512 by `random`: stable across runs and platforms.
    rng = random.Random(f"{university_seed}:udw-lag:{lag.seed}")
    fates = {}
    for section in sorted(sections, key=lambda s: s.id):
        roll = rng.random()
        if roll < lag.missing_share:
            fates[section.id] = Fate.MISSING
        elif roll < lag.missing_share + lag.stale_share:
            fates[section.id] = Fate.STALE
        else:
            fates[section.id] = Fate.CURRENT
    return fates


def older_sis_id(section: Section) -> str | None:
    """The SIS id a stale warehouse row holds; always different from Canvas's current one.

    The three ways a SIS id changes between exports, alternating by section id: assigned since (the
    warehouse has none), replaced (the previous id), removed since (the warehouse still has one).
    """
    current = section.sis_source_id
    if current is None:
        return f"PREV-{section.id}"
    return None if section.id % 2 == 0 else f"PREV-{current}"


def warehouse_sis_ids(sections: Iterable[Section], lag: UdwLag, university_seed: int) -> dict[int, str | None]:
    """What course_section_dim holds: section id -> sis_source_id, for the sections that have a row."""
    listed = list(sections)
    fates = section_fates(listed, lag, university_seed)
    result: dict[int, str | None] = {}
    for section in listed:
        fate = fates[section.id]
        if fate is Fate.CURRENT:
            result[section.id] = section.sis_source_id
        elif fate is Fate.STALE:
            result[section.id] = older_sis_id(section)
    return result
