"""The Canvas limiter's starts and answers during a benchmark run, and their replay through a fresh arrival forecast.

    python -m bench.forecast_journal [RESULTS.json]     (default: the newest bench/results/course_inventory-*.json)

`ForecastJournal` records, for each request the Canvas limiter admits, its kind, start and expected size (or None),
and for each answer its time, `X-Rate-Limit-Remaining`, whether it was a refusal and its `X-Request-Cost`. The
sandbox charges a request the time it spends inside (sandbox/throttle.py) and dates its arrival one `--latency-ms`
after it was sent, so a request is inside from start + latency to start + latency + cost, and the true number inside
when each admitted request arrives follows from the journal alone. `replay` feeds the journal to a new `ArrivalGate`
in time order and compares, at each start the forecast was armed for, what it forecast inside at that request's
arrival with the true count: the forecast's bias and spread over the run. (On real Canvas the charge is CPU and
database time, so the true count is not known there.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.arrival_gate import ArrivalGate
from clients.limiter import AdaptiveLimiter

RESULTS = Path(__file__).resolve().parent / "results"


class ForecastJournal:
    """Wraps one limiter's forecast so each start and answer is also written down (bench use only)."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.starts: list[list[Any]] = []       # [ticket, kind, seconds, size]
        self.answers: list[list[Any]] = []      # [ticket, seconds, remaining, refused, cost]
        self._origin = time.monotonic()
        gate = limiter.forecast
        started, answered = gate.started, gate.answered

        def record_start(ticket: int, kind: str, now: float, size: float | None = None) -> None:
            self.starts.append([ticket, kind, now - self._origin, size])
            started(ticket, kind, now, size)

        def record_answer(ticket: int, now: float, *, remaining: float | None, throttled: bool,
                          reservation: float, cost: float | None = None) -> None:
            self.answers.append([ticket, now - self._origin, remaining, throttled, cost])
            answered(ticket, now, remaining=remaining, throttled=throttled, reservation=reservation, cost=cost)

        gate.started, gate.answered = record_start, record_answer      # type: ignore[method-assign]

    def as_dict(self) -> dict[str, list[list[Any]]]:
        return {"starts": self.starts, "answers": self.answers}


@dataclass(frozen=True)
class Check:
    at: float            # the start, seconds into the run
    forecast: float      # requests forecast inside when it arrives (its own not included)
    true: int            # requests inside then, from the sandbox's charges


def replay(journal: Mapping[str, Sequence[Sequence[Any]]], inward: float, reservation: float = 50.0) -> list[Check]:
    """Each armed start's forecast against the truth (`inward`: the sandbox's latency, seconds)."""
    # (Journals written before sizes were recorded have three fields a start: no size.)
    started = {row[0]: (row[1], row[2], row[3] if len(row) > 3 else None) for row in journal["starts"]}
    answers = [row for row in journal["answers"] if row[0] in started]
    # A served request is inside from its arrival to its arrival + its charge; sorted ends count it at an instant.
    served = {ticket: cost or 0.0 for ticket, _, _, refused, cost in answers if not refused}
    arrivals = sorted(started[ticket][1] + inward for ticket in served)
    departures = sorted(started[ticket][1] + inward + cost for ticket, cost in served.items())
    events = sorted([(at, 0, ticket, None) for ticket, (_, at, _) in started.items()]
                    + [(at, 1, ticket, (remaining, refused, cost)) for ticket, at, remaining, refused, cost in answers],
                    key=lambda event: event[:2])
    gate, checks = ArrivalGate(), []
    for at, is_answer, ticket, answer in events:
        if not is_answer:
            if gate.armed:
                moment = at + inward
                inside = bisect_right(arrivals, moment) - bisect_right(departures, moment)
                checks.append(Check(at, gate.forecast_inside(at), inside - (ticket in served)))   # less itself
            kind, _, size = started[ticket]
            gate.started(ticket, kind, at, size)
        else:
            remaining, refused, cost = answer
            gate.answered(ticket, at, remaining=remaining, throttled=refused, reservation=reservation, cost=cost)
    return checks


def summary(checks: Sequence[Check], step: float = 0.5) -> str:
    """Forecast, truth and bias per `step` seconds of the run, then over all of it."""
    lines = [f"  {'from (s)':>8} {'starts':>7} {'forecast':>9} {'true':>6} {'bias':>6} {'spread':>7}"]
    end = max((c.at for c in checks), default=0.0)
    edges = [i * step for i in range(int(end / step) + 1)] + [float("inf")]
    for low, high in zip(edges, edges[1:], strict=False):
        part = [c for c in checks if low <= c.at < high]
        if part:
            lines.append(_line(f"{low:8.1f}", part))
    lines.append(_line(f"{'all':>8}", list(checks)))
    return "\n".join(lines)


def _line(label: str, part: Sequence[Check]) -> str:
    errors = [c.forecast - c.true for c in part]
    mean = sum(errors) / len(errors)
    spread = (sum((e - mean) ** 2 for e in errors) / len(errors)) ** 0.5
    return (f"  {label} {len(part):7d} {sum(c.forecast for c in part) / len(part):9.2f} "
            f"{sum(c.true for c in part) / len(part):6.2f} {mean:6.2f} {spread:7.2f}")


def newest_results() -> Path | None:
    files = sorted(RESULTS.glob("course_inventory-*.json"), key=lambda path: path.stat().st_mtime)
    return files[-1] if files else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="a bench/results JSON file (default: the newest)")
    args = parser.parse_args(argv)
    path = args.results or newest_results()
    if path is None:
        print("no benchmark results yet: run python -m bench.course_inventory first", file=sys.stderr)
        return 1
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return 1
    runs = data.get("runs", [data])
    inward = float(data.get("latency_ms", 0.0)) / 1000.0
    print(f"{path.name}: forecast inside at arrival against the sandbox's count (latency {inward * 1000:.0f} ms)")
    for day, run in enumerate(runs, start=1):
        journal = run.get("forecast_journal")
        if not journal:
            print(f"run {day}: no forecast journal (results from before it was recorded)")
            continue
        print(f"run {day}:\n{summary(replay(journal, inward))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
