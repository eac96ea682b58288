"""Seeded generator of the synthetic university that every sandbox simulator serves.

`generate_university(scale, seed, **knobs)` is deterministic: every random choice comes from
`random.Random` instances derived from the seed (one per concern, so changing one knob does not
reshuffle unrelated data), and every date hangs off fixed anchors (`AS_OF`, the term calendar),
never off the wall clock. The data is deliberately messy in the ways real Canvas data is: missing,
numeric and text SIS ids, repeated/long/emoji names, courses the inventory job must drop, every
enrollment type in every state, audit histories spanning several pages, hidden or mislabelled Zoom
tabs. The stages live in sandbox.generator_base (presets, anchors, seeded primitives),
sandbox.generator_catalog (terms, accounts, users, courses, sections) and sandbox.generator_records
(enrollments, audit events, activity, tabs); this module wires them together per concern.
tests/sandbox/test_generator.py checks each of these features on the small preset.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from datetime import datetime, timedelta

from sandbox.expected import kept_courses
from sandbox.generator_base import AS_OF, ROOT_ACCOUNT_ID, scale_config
from sandbox.generator_catalog import make_accounts, make_sections, make_terms, make_users, plan_courses
from sandbox.generator_records import make_activity, make_audit, make_enrollments, make_tabs
from sandbox.university import University

logger = logging.getLogger(__name__)


def generate_university(scale: str = "small", seed: int = 42, **knobs: int | float) -> University:
    """Build the university for a scale preset, with any ScaleConfig field overridden by keyword."""
    config = scale_config(scale, **knobs)
    terms = make_terms(_rng(seed, "terms"), config.terms)
    accounts = make_accounts(_rng(seed, "accounts"), config)
    plans = plan_courses(_rng(seed, "courses"), config, terms, accounts)
    users = make_users(_rng(seed, "users"), config.users)
    sections = make_sections(_rng(seed, "sections"), plans, config)
    enrollments = make_enrollments(_rng(seed, "enrollments"), plans, users)
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
        audit_events=make_audit(_rng(seed, "audit"), plans, config.long_audit_courses),
        activity=make_activity(_rng(seed, "activity"), plans, config.max_activity_days),
        tabs=make_tabs(_rng(seed, "tabs"), courses, config.zoom_share),
        canvasdatadate=_canvasdatadate(_rng(seed, "udw")),
        extras={"generator": {"scale": scale, "config": dataclasses.asdict(config), "as_of": AS_OF}},
    )
    logger.debug("generated %s university (seed %d): %d courses, %d enrollments",
                 scale, seed, len(courses), len(enrollments))
    return university


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


def _canvasdatadate(rng: random.Random) -> datetime:
    # The warehouse lags Canvas by about a day; microseconds are never zero (real loads have them).
    lag = timedelta(hours=rng.randint(20, 40), seconds=rng.randint(0, 3_599), microseconds=rng.randint(1, 999_999))
    return AS_OF - lag
