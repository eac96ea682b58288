"""Second-day benchmark: the job twice on one sandbox, a day's changes in between (sandbox/next_day.py).

    python -m bench.course_inventory --second-day --scale medium --latency-ms 50 [--full-lookup]

Day 1 starts from an empty database (every published date looked up); then the sandbox moves to the next day
(SIGUSR1) and day 2 runs against the tables day 1 stored, keeping the stored published dates of courses
available on both days (or, with --full-lookup, looking every one up). For both runs it reports requests per
kind, charged cost, throttle utilisation, refusals and wall time, whether the loaded tables equal the expected
inventory row for row (sandbox/expected.py, computed here from the same seeded data), and, from the sandbox's
answer journal, how many of day 2's answers were the same as day 1's for the same logical request.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.course_inventory import (
    all_term_ids,
    bench_sandbox,
    run_worker,
    save,
    settings_text,
    wait_for_line,
    with_server,
)
from db.engine import create_inventory_engine
from sandbox.expected import TABLE_COLUMNS, expected_inventory, rows_as_sorted_tuples, warehouse_section_sis_ids
from sandbox.journal import PART_SUFFIX, SameAnswers, read_day, same_answers
from sandbox.udw_lag import UdwLag
from sandbox.university import University

KINDS = ("oauth", "terms", "courses", "accounts", "audit", "analytics", "graphql")
GRAPHQL_PAGES = "graphql course pages"
# course_inventory.collect: what became of the activity of the courses the last run stored as available
EARLY_OUTCOMES = ("asked early, used", "asked in order instead", "asked early, dropped", "not asked")


def request_kind(route: str) -> str:
    """The client's request kind of a sandbox route (the names the job's statistics use)."""
    if route.endswith(PART_SUFFIX):
        return GRAPHQL_PAGES
    rules = (("oauth2/token", "oauth"), ("/terms/", "terms"), ("/courses/{course_id:int}/analytics", "analytics"),
             ("/audit/", "audit"), ("/api/graphql", "graphql"), ("}/courses", "courses"), ("/accounts/", "accounts"))
    return next((kind for fragment, kind in rules if fragment in route), "other")


def answers_by_kind(counts: Mapping[str, SameAnswers]) -> dict[str, list[int]]:
    """kind -> [day-2 answers, asked on day 1 too, same answer as on day 1]."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for route, count in counts.items():
        row = totals[request_kind(route)]
        row[0], row[1], row[2] = row[0] + count.answers, row[1] + count.asked_before, row[2] + count.same
    return dict(totals)


def mismatched_tables(db: Mapping[str, str], expected: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """The inventory tables whose rows differ from `expected` (row for row)."""
    engine = create_inventory_engine(db)
    wrong = []
    try:
        with engine.connect() as conn:
            for table, columns in TABLE_COLUMNS.items():
                rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM `{table}`")).mappings().all()
                if rows_as_sorted_tuples(rows, columns) != rows_as_sorted_tuples(expected[table], columns):
                    wrong.append(table)
    finally:
        engine.dispose()
    return wrong


def expected_days(args: argparse.Namespace) -> tuple[University, dict, dict]:
    """Both days' expected inventories, from the sandbox's own seeded data and its default UDW lag."""
    from sandbox.generator import generate_university
    from sandbox.next_day import next_day

    first = generate_university(args.scale, args.seed)
    second = next_day(first)
    terms, lag = all_term_ids(args.scale, args.seed), UdwLag(seed=args.seed)
    day1 = expected_inventory(first, terms, section_sis_ids=warehouse_section_sis_ids(first, lag))
    previous = None if args.full_lookup else day1["course"]
    day2 = expected_inventory(second, terms, section_sis_ids=warehouse_section_sis_ids(second, lag),
                              previous_courses=previous)
    return second, day1, day2


def run_two_days(args: argparse.Namespace) -> int:
    second, *expected = expected_days(args)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as journal:
        with bench_sandbox(args, Path(journal)) as box:
            for day, mode in ((1, "reuse"), (2, "full" if args.full_lookup else "reuse")):
                if day == 2:
                    box.process.send_signal(signal.SIGUSR1)
                    if wait_for_line(box.process, "Day 2") is None:
                        raise SystemExit("the sandbox did not move to the next day")
                result = run_worker(box.env_file, args.workers, mode)
                if result is None:
                    return 1
                result["mismatched_tables"] = mismatched_tables(box.inventory_db, expected[day - 1])
                results.append(result)
        (answers1, stats1), (answers2, stats2) = (read_day(Path(journal) / f"day-{d}.json") for d in (1, 2))
    for result, stats in zip(results, (stats1, stats2), strict=True):
        with_server(result, stats["servers"]["canvas"], args)
    same = answers_by_kind(same_answers(answers1, answers2))
    print(report(results, same, second, args))
    save(f"course_inventory-second-day-{args.scale}", {**vars(args), "runs": results, "same_answers": same,
                                                       "changes": {k: len(v) for k, v in
                                                                   second.extras["day"]["changes"].items()}})
    return 0 if not any(r["mismatched_tables"] for r in results) else 1


def report(results: list[dict], same: Mapping[str, list[int]], second: University, args: argparse.Namespace) -> str:
    first, later = results
    changes = ", ".join(f"{kind} {len(ids)}" for kind, ids in second.extras["day"]["changes"].items())
    lines = [f"COURSE_INVENTORY second-day benchmark: scale={args.scale} latency={args.latency_ms}ms "
             f"workers(ceiling)={args.workers} {settings_text(args)}",
             f"  day 2 published dates: {'full lookup' if args.full_lookup else 'stored dates reused'}; "
             f"the day's changes (courses): {changes}",
             f"  {'':<28}{'day 1':>10}{'day 2':>10}{'day 2 / day 1':>15}"]
    rows = [("API phase wall time (s)", "api_wall_s"), ("total wall time (s)", "total_s"),
            ("requests", "total_requests"), *((f"  {kind}", kind) for kind in KINDS),
            ("charged cost (s)", "charged_cost"), ("throttle utilisation", "throttle_utilisation"),
            ("throttled refusals", "throttled"), ("refusal share (%)", "throttled_pct"), ("retries", "retries"),
            ("published dates reused", "reused_published_dates"), ("host CPU stolen (%)", "host_stolen_pct"),
            *((f"activity {what}", f"early:{what}") for what in EARLY_OUTCOMES)]
    for label, key in rows:
        a, b = _value(first, key), _value(later, key)
        ratio = f"{b / a:15.2f}" if a else f"{'':>15}"
        lines.append(f"  {label:<28}{_cell(a)}{_cell(b)}{ratio}")
    lines.append(f"  {'tables = expected':<28}{_verdict(first):>10}{_verdict(later):>10}")
    lines.append("  day 2 answers: total / asked on day 1 too / same answer as day 1")
    for kind in (*KINDS, GRAPHQL_PAGES):
        answers, asked, alike = same.get(kind, [0, 0, 0])
        share = f"({alike / answers:.0%} same)" if answers else ""
        lines.append(f"    {kind:<22}{answers:8d}{asked:8d}{alike:8d}  {share}")
    return "\n".join(lines)


def _value(result: dict, key: str) -> float:
    if key == "total_s":
        return result["api_wall_s"] + result["transform_and_udw_s"] + result["load_s"]
    if key == "throttled_pct":
        return 100 * result["throttled_share"]
    if key == "host_stolen_pct":
        return 100 * (result.get("host_cpu_stolen") or 0.0)
    if key in KINDS:
        return result["requests"].get(key, 0)
    if key.startswith("early:"):
        return result.get("early_activity", {}).get(key.removeprefix("early:"), 0)
    return result[key]


def _cell(value: float) -> str:
    return f"{value:10d}" if isinstance(value, int) else f"{value:10.2f}"


def _verdict(result: dict) -> str:
    return "yes" if not result["mismatched_tables"] else "NO: " + ",".join(result["mismatched_tables"])
