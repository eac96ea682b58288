"""Fault plans are reproducible from the seed; by default a request may fail any number of times in a row."""

from collections import Counter

import pytest

from sandbox.faults import FaultKind, FaultOptions, FaultPlan

KEYS = [f"GET /api/v1/courses/{i}?#" for i in range(400)]


def run(plan: FaultPlan, attempts: int = 3) -> list[FaultKind | None]:
    return [plan.decide(key) for key in KEYS for _ in range(attempts)]


def test_same_seed_same_faults_and_other_seed_differs():
    options = FaultOptions.uniform(0.3)
    first, again, other = (run(FaultPlan(options, seed)) for seed in (7, 7, 8))
    assert first == again
    assert first != other


def test_interleaving_does_not_change_faults():
    options = FaultOptions.uniform(0.3)
    in_order = FaultPlan(options, 3)
    expected = {key: [in_order.decide(key) for _ in range(3)] for key in KEYS}
    shuffled = FaultPlan(options, 3)
    got: dict[str, list] = {key: [] for key in KEYS}
    for _ in range(3):                                  # round-robin over keys instead of key by key
        for key in reversed(KEYS):
            got[key].append(shuffled.decide(key))
    assert got == expected


def test_rates_are_respected_roughly():
    options = FaultOptions(http500=0.1, reset=0.05)
    plan = FaultPlan(options, 1)
    kinds = Counter(plan.decide(f"k{i}") for i in range(20_000))
    assert kinds[FaultKind.HTTP500] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert kinds[FaultKind.RESET] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert kinds[FaultKind.SLOW] == 0


def test_by_default_nothing_forces_the_next_attempt_to_succeed():
    assert FaultOptions().max_consecutive is None
    plan = FaultPlan(FaultOptions(http500=1.0), 1)
    assert [plan.decide("same") for _ in range(10)] == [FaultKind.HTTP500] * 10


def test_default_draws_are_independent_so_long_runs_of_faults_happen():
    # At rate 0.5, some of 2,000 logical requests fail their first four attempts (expected ~125).
    plan = FaultPlan(FaultOptions(http500=0.5), 9)
    runs = [all(plan.decide(f"k{i}") is FaultKind.HTTP500 for _ in range(4)) for i in range(2_000)]
    assert 60 < sum(runs) < 200


def test_forcing_success_stays_available_as_an_option():
    plan = FaultPlan(FaultOptions(http500=1.0, max_consecutive=2), 1)
    decisions = [plan.decide("same") for _ in range(6)]
    assert decisions == [FaultKind.HTTP500, FaultKind.HTTP500, None] * 2


def test_not_applicable_kind_means_no_fault():
    plan = FaultPlan(FaultOptions(bad_json=1.0), 1)
    assert plan.decide("html page", applicable=frozenset({FaultKind.HTTP500})) is None


def test_invalid_rates_refused():
    with pytest.raises(ValueError):
        FaultOptions(http500=0.7, reset=0.5)
    with pytest.raises(ValueError):
        FaultOptions(slow=-0.1)
    with pytest.raises(ValueError):
        FaultOptions(max_consecutive=0)
