"""clients.arrival_gate: survival shares, what the gate learns from answers, its forecast and its margin."""

from __future__ import annotations

import logging
import random
import time

import pytest

from clients.arrival_gate import ArrivalGate, RoundTrips
from clients.limiter import AdaptiveLimiter, start_verdict

HWM, RESERVATION = 600.0, 50.0


def test_round_trips_give_the_share_still_out_among_those_out_so_long():
    trips = RoundTrips(window=4)
    for rtt in (0.1, 0.2, 0.3, 0.4):
        trips.add(rtt)
    assert trips.still_out(0.15, 0.25) == pytest.approx(2 / 3)    # of 0.2, 0.3, 0.4: 0.3 and 0.4
    assert trips.still_out(0.0, 0.35) == pytest.approx(1 / 4)
    assert trips.still_out(0.5, 0.6) == 1.0                        # out longer than any: counted inside
    trips.add(0.05)                                                # the oldest (0.1) leaves the window
    assert len(trips) == 4
    assert trips.still_out(0.0, 0.1) == pytest.approx(3 / 4)


def replay(gate: ArrivalGate, *, requests: int = 400, network: float = 0.05, charge_share: float = 1.0,
           seed: int = 1, start: float = 0.0, first_ticket: int = 0) -> float:
    """Requests started at random gaps (mean 10 ms), each inside the server 40-46 ms after `network` of travel
    (all of it inward), answered the moment they leave with the remaining of a bucket that holds a reservation per
    request inside; charged `charge_share` of their time inside. Returns the time of the last answer."""
    rng = random.Random(seed)
    starts, leaves, now = [], [], start
    for _ in range(requests):
        now += rng.expovariate(100.0)
        starts.append(now)
        leaves.append(now + network + rng.uniform(0.040, 0.046))
    events = sorted([(t, 0, i) for i, t in enumerate(starts)] + [(t, 1, i) for i, t in enumerate(leaves)])
    for when, kind, i in events:
        if kind == 0:
            gate.started(first_ticket + i, "rest", when)
            continue
        inside = sum(1 for j in range(requests) if j != i and starts[j] + network <= when < leaves[j])
        gate.answered(first_ticket + i, when, remaining=HWM - RESERVATION * inside, throttled=False,
                      reservation=RESERVATION,
                      cost=charge_share * (leaves[i] - starts[i] - network))
    return events[-1][0]


def test_the_network_time_and_the_free_bucket_are_learned_from_the_answers():
    gate = ArrivalGate()
    assert not gate.armed
    replay(gate)
    assert gate.armed
    assert gate.latency == pytest.approx(0.05, abs=1e-9)   # the round trip less the charge, the time inside
    assert gate.free == pytest.approx(HWM)                 # nothing but this client's reservations in the bucket


def test_when_the_charge_is_not_the_time_inside_the_steadiest_line_gives_the_network_time():
    # Charged a third of their time inside (Canvas charges CPU and database time): the round trip less the
    # charge is ~80 ms, which would count requests still on their way in as not inside.
    gate = ArrivalGate()
    replay(gate, charge_share=0.33, requests=600)
    assert gate.latency == pytest.approx(0.05, rel=0.03)
    assert gate.free == pytest.approx(HWM)


def test_the_forecast_counts_the_requests_still_out_when_a_new_one_would_arrive():
    gate = ArrivalGate()
    last = replay(gate)
    trips = [0.05 + 0.040 + 0.006 * k / 10 for k in range(11)]   # a kind whose round trips are known exactly
    for n, rtt in enumerate(trips):
        gate.started(10_000 + n, "graphql", last + n)
        gate.answered(10_000 + n, last + n + rtt, remaining=HWM, throttled=False, reservation=RESERVATION)
    now = last + 1.0
    gate.started(20_000, "graphql", now - 0.060)    # 60 ms out: answered by 110 ms for sure, 60 + 50 > 96
    gate.started(20_001, "graphql", now - 0.010)    # 10 ms out: of 91-96 ms trips, those longer than 60 ms: all
    gate.started(20_002, "new kind", now - 0.500)   # no round trips of its kind yet: inside until answered
    assert gate.forecast_inside(now) == pytest.approx(0.0 + 1.0 + 1.0)
    # Room for the new request's reservation beyond the margin: free 600 - 3 x 50 = 450 > 0.5 x 50.
    assert gate.admits(now, RESERVATION)
    for n in range(9):
        gate.started(30_000 + n, "new kind", now)
    assert gate.forecast_inside(now) == pytest.approx(11.0)
    assert not gate.admits(now, RESERVATION)          # 600 - 12 x 50 = 0: the request would be refused


def test_round_trips_nearest_in_size_stand_for_a_sized_request():
    trips = RoundTrips(window=8)
    for size, rtt in ((10, 0.1), (12, 0.11), (100, 0.3), (120, 0.32), (None, 0.5)):
        trips.add(rtt, size)
    near = trips.nearest(110, 2)
    assert near is not None and near.still_out(0.0, 0.305) == pytest.approx(1 / 2)   # of 0.3 and 0.32
    assert trips.nearest(11, 2).still_out(0.0, 0.105) == pytest.approx(1 / 2)       # of 0.1 and 0.11
    assert trips.nearest(11, 5) is None            # four round trips carried a size: too few for five


def test_a_large_request_is_not_forecast_to_leave_with_the_small_ones_of_its_kind():
    gate = ArrivalGate()
    last = replay(gate)
    # Pages of one kind: small ones (10 rows) take 100 ms, large ones (1,000 rows) 300 ms.
    for n in range(40):
        size, rtt = (10, 0.1) if n % 2 else (1000, 0.3)
        gate.started(10_000 + n, "graphql", last + n, size)
        gate.answered(10_000 + n, last + n + rtt, remaining=HWM, throttled=False, reservation=RESERVATION)
    now = last + 100.0
    gate.started(20_000, "graphql", now - 0.08, 1000)     # a large page 80 ms out: 220 ms to go, inside
    assert gate.forecast_inside(now) == pytest.approx(1.0)
    gate.started(20_001, "graphql", now - 0.08, 10)       # a small one: answered within the 50 ms
    assert gate.forecast_inside(now) == pytest.approx(1.0)
    # Without sizes the two are alike: of the round trips longer than 80 ms, all are longer than 130 ms only for
    # the large half, so each counts as half inside.
    gate.started(20_002, "graphql", now - 0.08)
    assert gate.forecast_inside(now) == pytest.approx(1.0 + 0.5)


def test_refusals_widen_the_margin_answers_narrow_it_and_at_its_bound_the_gate_gives_up():
    gate = ArrivalGate(margin=0.5, margin_step=0.2, refusal_target=0.005, margin_bounds=(-2.0, 4.0))
    replay(gate, requests=200)
    before = gate.margin
    gate.started(1, "rest", 10.0)
    gate.answered(1, 10.1, remaining=10.0, throttled=True, reservation=RESERVATION)
    assert gate.margin == pytest.approx(before + 0.2 * 0.995)
    for n in range(199):                              # the target share: one refusal in 200 answers
        gate.started(100 + n, "rest", 11.0)
        gate.answered(100 + n, 11.09, remaining=HWM, throttled=False, reservation=RESERVATION)
    assert gate.margin == pytest.approx(before, abs=1e-9)
    while not gate.gave_up:
        gate.started(1, "rest", 12.0)
        gate.answered(1, 12.1, remaining=10.0, throttled=True, reservation=RESERVATION)
    assert gate.margin == 4.0 and not gate.armed


def test_an_answer_without_a_remaining_teaches_nothing():
    # During an outage the load balancer answers at once, without Canvas's headers. Were its 2 ms round trip taken
    # as the shortest, no network time beyond it would be possible, and every request would be forecast gone.
    gate = ArrivalGate()
    last = replay(gate)
    for n in range(50):
        gate.started(40_000 + n, "rest", last + n * 0.01)
        gate.answered(40_000 + n, last + n * 0.01 + 0.002, remaining=None, throttled=False, reservation=RESERVATION)
    replay(gate, seed=2, start=last + 1.0, first_ticket=50_000)
    assert gate.latency == pytest.approx(0.05, abs=1e-9) and gate.free == pytest.approx(HWM)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ArrivalGate(refusal_target=0.0)
    with pytest.raises(ValueError):
        ArrivalGate(margin=5.0, margin_bounds=(-2.0, 4.0))


def answer(limiter: AdaptiveLimiter, *, remaining: float, throttled: bool, rtt: float = 0.02,
           cost: float = 0.01) -> None:
    """One request at a time through the limiter, answered `rtt` seconds after it starts."""
    with limiter.slot(kind="rest") as slot:
        time.sleep(rtt)
        slot.observe(remaining=remaining, throttled=throttled, cost=None if throttled else cost)


def test_the_limiter_lets_the_forecast_decide_once_armed_and_paces_again_once_it_gives_up(caplog):
    limiter = AdaptiveLimiter(32, name="canvas")
    gate = limiter._gate
    assert not start_verdict(limiter._core, gate, time.monotonic(), 0).forecast   # nothing learned yet
    for _ in range(20):                                # one request at a time: the bucket holds none of ours
        answer(limiter, remaining=HWM, throttled=False)
    assert start_verdict(limiter._core, gate, time.monotonic(), 0).forecast
    assert gate.latency == pytest.approx(0.01, abs=0.005)   # the round trip less its charge (and this thread's lag)
    with caplog.at_level(logging.WARNING, logger="clients.limiter"):
        while not gate.gave_up:
            answer(limiter, remaining=10.0, throttled=True, rtt=0.001)
    assert "pacing by rate for the rest of the run" in caplog.text
    assert not start_verdict(limiter._core, gate, time.monotonic(), 0).forecast


def test_a_request_that_ends_without_an_answer_is_not_forecast_inside():
    limiter = AdaptiveLimiter(4)
    gate = limiter._gate
    for _ in range(20):
        answer(limiter, remaining=HWM, throttled=False)
    with pytest.raises(OSError):
        with limiter.slot(kind="rest"):
            raise OSError("connection reset")
    assert gate.forecast_inside(time.monotonic()) == 0.0
