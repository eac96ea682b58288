"""runner/summary.py's rule on constructed measurements, and the limiter's bookkeeping it reads."""

from __future__ import annotations

import threading
import time

import pytest

from clients.gate_book import GateBookkeeping, GateMeasurements
from clients.limiter import AdaptiveLimiter
from clients.rollup import KindWindow
from clients.stats import ClientStats
from runner.summary import (
    CEILING,
    LATENCY,
    OWN_WORK,
    SOURCES,
    THROTTLE,
    UNMEASURED,
    Verdict,
    bound_verdict,
    ceiling_estimate,
    dominant_gate,
    summary_fields,
    summary_text,
)
from vocab import JobReport, RequestTotals


def gate(**overrides) -> GateMeasurements:
    """A Canvas limiter over a 40 s job: 4,000 requests of 67.5 ms, 35 s under way, cost 0.05 each."""
    values = dict(name="canvas", ceiling=8, starts=4000, active_seconds=35.0, busy_seconds=270.0,
                  pacer_wait_seconds=0.0, cap_wait_seconds=0.0, ceiling_wait_seconds=0.0, reported_seconds=35.0,
                  near_setpoint_seconds=0.0, cost=200.0)
    values.update(overrides)
    return GateMeasurements(**values)


def test_ready_requests_at_the_ceiling_while_the_throttle_had_room_blame_the_ceiling_with_a_hint():
    verdict = bound_verdict([gate(ceiling_wait_seconds=30.0, near_setpoint_seconds=2.0)], 40.0)
    assert verdict.bound == CEILING
    assert "waited for a free worker 86% of the time, all 8 busy" in verdict.reason
    # unused share: 1 - 200 / (35 s x 10/s) = 0.43; the estimate is checked in the next test
    assert verdict.hint.startswith("NUM_ASYNC_WORKERS=8 kept 0.4 of the throttle unused")
    assert "16 would have taken about 30s instead of 40s" in verdict.hint


def test_the_ceiling_estimate_follows_littles_law_and_the_throttles_rate():
    measured = gate(ceiling_wait_seconds=30.0)
    estimate = ceiling_estimate(measured, 40.0, leak=10.0, reach=0.9)
    rtt = 270.0 / 4000                              # 67.5 ms per request
    at_ceiling = 8 / rtt                            # 118.5 requests/s with 8 in flight
    throttle = 0.9 * 10.0 / (200.0 / 4000)          # 180 requests/s at 0.05 cost each
    assert estimate.workers == 16                   # 180/s x 67.5 ms = 12.2 in flight -> at least 2 x 8
    assert estimate.seconds == pytest.approx(40.0 - 30.0 * (1 - at_ceiling / min(16 / rtt, throttle)))
    assert estimate.unused == pytest.approx(1 - 200.0 / 350.0)


def test_without_cost_headers_the_estimate_quadruples_the_ceiling():
    measured = gate(starts=1000, busy_seconds=100.0, ceiling_wait_seconds=20.0, cost=0.0, reported_seconds=0.0)
    estimate = ceiling_estimate(measured, 30.0)
    assert (estimate.workers, estimate.unused) == (32, None)
    # 8 / 0.1 s = 80/s becomes 32 / 0.1 s = 320/s for the 20 s at the ceiling: 20 x (1 - 80/320) = 15 s saved
    assert estimate.seconds == pytest.approx(15.0)


def test_at_the_maximum_the_hint_says_more_would_not_help():
    verdict = bound_verdict([gate(ceiling=128, starts=40000, busy_seconds=3000.0, ceiling_wait_seconds=30.0,
                                  cost=100.0)], 40.0)
    assert verdict.bound == CEILING and "a higher value would not help" in verdict.hint


def test_pacing_with_the_remaining_at_its_setpoint_is_the_throttle():
    verdict = bound_verdict([gate(pacer_wait_seconds=15.0, cap_wait_seconds=5.0, near_setpoint_seconds=30.0)], 40.0)
    assert verdict == Verdict(THROTTLE, "canvas: requests waited for the limiter's pacing 57% of the time, the "
                                        "remaining near its setpoint 86% of the time")


def test_ceiling_waits_while_the_remaining_hovers_at_its_setpoint_are_still_the_throttle():
    verdict = bound_verdict([gate(ceiling_wait_seconds=25.0, near_setpoint_seconds=25.0)], 40.0)
    assert verdict.bound == THROTTLE and not verdict.hint


def test_few_in_flight_and_no_waiting_is_latency():
    # 1,000 requests of 0.2 s, 1.5 in flight on average; Canvas's own time 0.02 s of each
    verdict = bound_verdict([gate(starts=1000, busy_seconds=52.5, pacer_wait_seconds=1.0, cost=20.0)], 40.0)
    assert verdict.bound == LATENCY and "1.5 of 8 requests in flight" in verdict.reason


def test_the_servers_own_time_dominating_the_round_trip_is_the_sources_speed():
    verdict = bound_verdict([gate(starts=500, busy_seconds=250.0, cost=200.0)], 40.0)   # 0.4 s of each 0.5 s
    assert verdict.bound == SOURCES and "0.40s of each 0.50s round trip" in verdict.reason
    busy = bound_verdict([gate(starts=4000, busy_seconds=270.0, cost=0.0)], 40.0)        # 7.7 in flight, no wait
    assert busy.bound == SOURCES


def test_little_time_under_way_is_the_jobs_own_work_and_no_limiter_is_unmeasured():
    assert bound_verdict([gate(active_seconds=10.0, busy_seconds=70.0)], 100.0).bound == OWN_WORK
    assert bound_verdict([], 12.0).bound == UNMEASURED
    assert bound_verdict([gate(starts=0, busy_seconds=0.0)], 12.0).bound == UNMEASURED


def test_the_limiter_carrying_most_request_seconds_is_judged():
    gateway = gate(name="canvas gateway", starts=40, busy_seconds=8.0, active_seconds=35.0)
    canvas = gate(ceiling_wait_seconds=30.0)
    assert dominant_gate([gateway, canvas]) is canvas
    assert bound_verdict([gateway, canvas], 40.0).bound == CEILING


def test_summary_line_and_fields():
    kinds = [KindWindow("canvas analytics", {"502": 9, "ConnectionError": 5}, throttled=2, responses=900, slow=2,
                        slowest=8.2),
             KindWindow("canvas graphql", {"502": 1}, responses=300)]
    verdict = Verdict(CEILING, "why", "hint")
    rows = {"term": 3, "course": 2000}
    totals = RequestTotals(requests=1200, retries=15, throttled=2)
    text = summary_text("COURSE_INVENTORY", "succeeded", 75.24, rows, totals, kinds, verdict)
    assert text == ("job COURSE_INVENTORY summary: succeeded in 75.2s; rows: term 3, course 2000; 1200 requests, "
                    "15 retries (502 x10, ConnectionError x5), 2 throttled, 2 slow responses (canvas analytics 2; "
                    "slowest 8.2s); bound by the worker ceiling: why; hint: hint")
    fields = summary_fields("COURSE_INVENTORY", "succeeded", 75.24, rows, totals, kinds, verdict)
    assert fields["rows"] == rows and fields["retry_reasons"] == {"502": 10, "ConnectionError": 5}
    assert fields["slow_responses"] == {"canvas analytics": 2} and fields["bound"] == CEILING


# ---- the limiter's bookkeeping ----
def test_bookkeeping_charges_each_segment_to_the_state_before_it():
    book = GateBookkeeping(near=2.0)
    book.update(0.0, in_flight=1, waiting="", remaining=500.0, target=100.0)
    book.update(1.0, in_flight=2, waiting="ceiling", remaining=150.0, target=100.0)
    book.update(3.0, in_flight=0, waiting="", remaining=None, target=0.0)
    book.update(10.0, in_flight=1, waiting="pacer", remaining=None, target=0.0)   # 7 s idle: not active
    book.update(11.0, in_flight=0, waiting="", remaining=None, target=0.0)
    m = book.measurements("g", 2)
    assert (m.active_seconds, m.busy_seconds, m.ceiling_wait_seconds, m.pacer_wait_seconds, m.cap_wait_seconds) \
        == (4.0, 6.0, 2.0, 1.0, 0.0)
    assert (m.reported_seconds, m.near_setpoint_seconds) == (3.0, 2.0)   # 500 is not within 2 x 100; 150 is


@pytest.mark.parametrize(("ceiling", "initial", "waits_at"), [(1, 1, "ceiling"), (4, 1, "cap")])
def test_a_real_limiter_measures_a_request_waiting_for_a_slot(ceiling, initial, waits_at):
    limiter = AdaptiveLimiter(ceiling, initial=initial)
    stats = ClientStats()
    stats.attach_gate(limiter)
    holding = threading.Event()

    def first() -> None:
        with limiter.slot():
            holding.set()
            time.sleep(0.3)

    def second() -> None:
        holding.wait()
        with limiter.slot():
            time.sleep(0.1)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (m,) = stats.snapshot().gates
    waited = m.ceiling_wait_seconds if waits_at == "ceiling" else m.cap_wait_seconds
    other = m.cap_wait_seconds if waits_at == "ceiling" else m.ceiling_wait_seconds
    assert m.starts == 2 and 0.05 < waited <= 0.6 and other == 0.0 and m.pacer_wait_seconds == 0.0
    assert 0.35 < m.busy_seconds < 1.0 and 0.35 < m.active_seconds < 1.0   # 0.3 s + 0.1 s held, loose: 2 cores
    report = JobReport()
    report.track(stats)
    assert report.snapshots()[0].gates[0].starts == 2
