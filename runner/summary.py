"""One summary per job attempt: rows per table, requests, retries, throttled refusals, slow responses, duration,
and what bounded the run, with a concrete hint when the worker ceiling did.

`bound_verdict` is the rule (measurements in, verdict out), `ceiling_hint` its arithmetic for the ceiling,
`summary_text`/`summary_fields` the line and its JSON fields: all pure. `log_summary` is the thin part the
runner calls; the measurements are counters kept by the limiters (`clients.gate_book`) and the clients.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clients.gate_book import GateMeasurements
from clients.rollup import KindWindow, reasons_text, totals_by_reason
from vocab import JobReport, RequestTotals

logger = logging.getLogger(__name__)

THROTTLE, CEILING, LATENCY, SOURCES, OWN_WORK, UNMEASURED = (
    "the throttle", "the worker ceiling", "latency", "the sources' own speed", "the job's own work", "not measured")
LEAK_PER_SECOND = 10.0   # Canvas's default outflow per token (canvas-lms app/middleware/request_throttle.rb)
REACHABLE_SHARE = 0.9    # share of the leak the limiter sustains (README "Benchmarks": utilisation 0.88-0.94)
MAX_WORKERS = 128        # NUM_ASYNC_WORKERS' maximum (config/env_schema.hjson)


@dataclass(frozen=True)
class BoundRule:
    """Thresholds of `bound_verdict`, as shares."""

    wait_share: float = 0.25      # ready requests waited for the limiter this share of its active time: it bound
    hovering_share: float = 0.5   # the remaining sat near its setpoint this share of the time: the throttle was full
    server_share: float = 0.5     # the server's own time (X-Request-Cost) was this share of a round trip
    busy_share: float = 0.5       # fewer requests in flight on average than this share of the ceiling
    api_share: float = 0.5        # requests under way less than this share of the run


@dataclass(frozen=True)
class Verdict:
    bound: str
    reason: str
    hint: str = ""


def dominant_gate(gates: Sequence[GateMeasurements]) -> GateMeasurements | None:
    """The limiter that carried the most request-seconds (Canvas's, for the Canvas jobs); None without requests."""
    used = [gate for gate in gates if gate.starts > 0 and gate.busy_seconds > 0]
    return max(used, key=lambda gate: gate.busy_seconds, default=None)


def bound_verdict(gates: Sequence[GateMeasurements], duration: float, rule: BoundRule = BoundRule(), *,
                  leak: float = LEAK_PER_SECOND, max_workers: int = MAX_WORKERS) -> Verdict:
    """What bounded a job, from its limiters' measurements (pure).

    In order: no paced requests -> not measured; requests under way less than `api_share` of the run -> the job's
    own work; ready requests seldom waited for the limiter (< `wait_share` of its active time) -> the sources'
    own speed when the server's time (cost per request) is most of a round trip, latency when few requests were
    in flight (chains of dependent requests: pages), else the sources' own speed; they did wait -> the worker
    ceiling when most of the wait was at the ceiling while the remaining was not near its setpoint (the throttle
    had room), else the throttle (the pacing held them back while the remaining hovered near its setpoint).
    """
    gate = dominant_gate(gates)
    if gate is None:
        return Verdict(UNMEASURED, "no request went through a paced client")
    active, ceiling = gate.active_seconds, gate.ceiling
    under_way = max(g.active_seconds for g in gates)
    if duration > 0 and under_way < rule.api_share * duration:
        return Verdict(OWN_WORK, f"requests were under way {under_way:.1f}s of the {duration:.1f}s run; the rest "
                                 "was transforming and loading")
    rtt, in_flight = gate.busy_seconds / gate.starts, gate.busy_seconds / active
    pacing = gate.pacer_wait_seconds + gate.cap_wait_seconds
    waited = (pacing + gate.ceiling_wait_seconds) / active
    if waited < rule.wait_share:
        server = gate.cost / gate.starts
        if gate.cost > 0 and server >= rule.server_share * rtt:
            return Verdict(SOURCES, f"{gate.name}'s own time (X-Request-Cost) was {server:.2f}s of each {rtt:.2f}s "
                                    "round trip")
        if in_flight < rule.busy_share * ceiling:
            return Verdict(LATENCY, f"{gate.name}: {in_flight:.1f} of {ceiling} requests in flight on average, "
                                    f"each {rtt:.2f}s round trip waiting for the one before (pages)")
        return Verdict(SOURCES, f"{gate.name}: {in_flight:.1f} of {ceiling} requests in flight, seldom waiting "
                                f"({waited:.0%} of the time): the sources answered as fast as they could")
    near = gate.near_setpoint_seconds / gate.reported_seconds if gate.reported_seconds > 0 else 0.0
    if gate.ceiling_wait_seconds >= pacing and not (gate.reported_seconds > 0 and near >= rule.hovering_share):
        reason = (f"{gate.name}: requests waited for a free worker {gate.ceiling_wait_seconds / active:.0%} of the "
                  f"time, all {ceiling} busy, while the throttle had room (remaining near its setpoint "
                  f"{near:.0%} of the time)")
        return Verdict(CEILING, reason, ceiling_hint(gate, duration, leak=leak, max_workers=max_workers))
    return Verdict(THROTTLE, f"{gate.name}: requests waited for the limiter's pacing {pacing / active:.0%} of the "
                             f"time, the remaining near its setpoint {near:.0%} of the time")


@dataclass(frozen=True)
class CeilingEstimate:
    workers: int                  # the suggested NUM_ASYNC_WORKERS
    seconds: float                # the run's predicted duration with it
    unused: float | None          # share of the throttle's leak left unused (None without X-Request-Cost)


def ceiling_estimate(gate: GateMeasurements, duration: float, *, leak: float = LEAK_PER_SECOND,
                     reach: float = REACHABLE_SHARE, max_workers: int = MAX_WORKERS) -> CeilingEstimate:
    """How long the run would have taken with a higher ceiling (pure).

    From the measurements: n requests started, B request-seconds in flight, A seconds with requests under way,
    W seconds during which ready requests waited with all C workers busy, and the charged cost K.
    - R = B / n is the mean round trip; while the ceiling binds, C requests are in flight, so the throughput is
      X_c = C / R (Little's law).
    - The throttle sustains X_t = reach x leak / (K / n) requests a second (mean cost per request; the limiter holds
      about `reach` of the leak, Canvas's 10 units/s by default); without cost headers, X_t is unbounded. The run
      used K / (A x leak) of the leak.
    - The suggested ceiling C' is the smallest power of two >= max(2C, X_t x R) (the in-flight X_t needs), at most
      `max_workers`; with it those requests go at X' = min(C' / R, X_t).
    - Only the W seconds change: their work takes W x X_c / X', so the run takes duration - W x (1 - X_c / X').
    An estimate: it assumes round trips stay as measured when more requests are in flight.
    """
    n, rtt, ceiling = gate.starts, gate.busy_seconds / gate.starts, gate.ceiling
    unused = max(0.0, 1.0 - gate.cost / (gate.active_seconds * leak)) if gate.cost > 0 else None
    throttle_rate = reach * leak / (gate.cost / n) if gate.cost > 0 else math.inf
    needed = max(2 * ceiling, throttle_rate * rtt) if math.isfinite(throttle_rate) else 4 * ceiling
    workers = min(max_workers, 2 ** math.ceil(math.log2(max(needed, 1))))
    current, better = ceiling / rtt, min(workers / rtt, throttle_rate)
    if workers <= ceiling or better <= current:
        return CeilingEstimate(ceiling, duration, unused)
    saved = gate.ceiling_wait_seconds * (1 - current / better)
    return CeilingEstimate(workers, max(duration - saved, 0.0), unused)


def ceiling_hint(gate: GateMeasurements, duration: float, *, leak: float = LEAK_PER_SECOND,
                 max_workers: int = MAX_WORKERS) -> str:
    estimate = ceiling_estimate(gate, duration, leak=leak, max_workers=max_workers)
    unused = (f" kept {estimate.unused:.1f} of the throttle unused (at a leak of {leak:g} units/s)"
              if estimate.unused is not None else " kept requests waiting")
    if estimate.workers <= gate.ceiling:
        return f"NUM_ASYNC_WORKERS={gate.ceiling}{unused}; a higher value would not help (its maximum or the throttle)"
    return (f"NUM_ASYNC_WORKERS={gate.ceiling}{unused}; {estimate.workers} would have taken about "
            f"{estimate.seconds:.0f}s instead of {duration:.0f}s (if round trips stay as measured)")


def slow_text(kinds: Sequence[KindWindow]) -> str:
    slow = [k for k in kinds if k.slow]
    if not slow:
        return "0 slow responses"
    worst = max(k.slowest for k in slow)
    return (f"{sum(k.slow for k in slow)} slow responses ({', '.join(f'{k.kind} {k.slow}' for k in slow)}; "
            f"slowest {worst:.1f}s)")


def summary_text(name: str, status: str, seconds: float, rows: Mapping[str, int], totals: RequestTotals,
                 kinds: Sequence[KindWindow], verdict: Verdict) -> str:
    """The summary line (pure)."""
    reasons = totals_by_reason(kinds)
    retries = f"{totals.retries} retries" + (f" ({reasons_text(reasons)})" if reasons else "")
    tables = ", ".join(f"{table} {count}" for table, count in rows.items()) or "none"
    text = (f"job {name} summary: {status} in {seconds:.1f}s; rows: {tables}; {totals.requests} requests, "
            f"{retries}, {totals.throttled} throttled, {slow_text(kinds)}; bound by {verdict.bound}: "
            f"{verdict.reason}")
    return text + (f"; hint: {verdict.hint}" if verdict.hint else "")


def summary_fields(name: str, status: str, seconds: float, rows: Mapping[str, int], totals: RequestTotals,
                   kinds: Sequence[KindWindow], verdict: Verdict) -> dict[str, Any]:
    """The same, as a JSON object (pure)."""
    return {"job": name, "status": status, "seconds": round(seconds, 3), "rows": dict(rows),
            "requests": totals.requests, "retries": totals.retries, "retry_reasons": totals_by_reason(kinds),
            "throttled": totals.throttled, "slow_responses": {k.kind: k.slow for k in kinds if k.slow},
            "bound": verdict.bound, "reason": verdict.reason, "hint": verdict.hint}


def log_summary(name: str, status: str, seconds: float, report: JobReport, kinds: Sequence[KindWindow]) -> None:
    """Log the job's summary (one INFO record; under --log-format json its fields also as `summary`)."""
    gates = [gate for snapshot in report.snapshots() for gate in getattr(snapshot, "gates", ())]
    verdict = bound_verdict(gates, seconds)
    rows, totals = report.rows_loaded, report.request_totals()
    logger.info("%s", summary_text(name, status, seconds, rows, totals, kinds, verdict),
                extra={"summary": summary_fields(name, status, seconds, rows, totals, kinds, verdict)})
