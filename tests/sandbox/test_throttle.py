"""Leaky-bucket arithmetic of sandbox.throttle, driven by an injected clock."""

import pytest

from sandbox.throttle import LeakyBucketThrottle, ThrottleOptions


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


OPTIONS = ThrottleOptions(enabled=True, hwm=600.0, leak=10.0, up_front=50.0, maximum=800.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_reservation_is_replaced_by_real_cost(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    ticket = bucket.begin("tok")
    assert ticket is not None
    assert bucket.level("tok") == pytest.approx(OPTIONS.up_front)
    remaining = bucket.finish(ticket, 2.5)
    assert remaining == pytest.approx(OPTIONS.hwm - 2.5)
    assert bucket.level("tok") == pytest.approx(2.5)


def test_level_leaks_at_leak_rate_and_not_below_zero(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    bucket.finish(bucket.begin("tok"), 30.0)
    clock.now += 1.5
    assert bucket.level("tok") == pytest.approx(30.0 - 1.5 * OPTIONS.leak)
    clock.now += 100
    assert bucket.level("tok") == 0.0


def test_refused_at_hwm_at_request_start_then_admitted_after_leak(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    bucket.finish(bucket.begin("tok"), OPTIONS.hwm)         # level exactly at the hwm
    assert bucket.begin("tok") is None                      # ">= hwm" refuses
    assert bucket.level("tok") == pytest.approx(OPTIONS.hwm)  # a refusal costs nothing
    clock.now += 0.1                                        # leaks 1 unit: just under the hwm
    assert bucket.begin("tok") is not None


def test_in_flight_reservations_throttle_concurrent_requests(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    allowed = int(OPTIONS.hwm // OPTIONS.up_front)
    tickets = [bucket.begin("tok") for _ in range(allowed)]
    assert all(tickets)
    assert bucket.begin("tok") is None                      # 12 x 50 reserved = hwm
    assert bucket.begin("other") is not None                # buckets are per key
    for ticket in tickets:
        bucket.finish(ticket, 0.1)
    assert bucket.level("tok") == pytest.approx(allowed * 0.1)


def test_level_is_capped_at_maximum(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    assert bucket.finish(bucket.begin("tok"), 5000.0) == pytest.approx(OPTIONS.hwm - OPTIONS.maximum)


def test_options_validate_status():
    with pytest.raises(ValueError):
        ThrottleOptions(status=500)
    assert ThrottleOptions(status=429).refusal_body().startswith(b"429 ")
    assert ThrottleOptions(status=403).refusal_body() == b"403 Forbidden (Rate Limit Exceeded)\n"


def test_events_dated_in_the_model_apply_in_time_order_whatever_order_they_are_reported(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    first = bucket.begin("tok", at=1000.0)
    bucket.complete(first, 0.5, at=1000.2)                 # registered ahead of its instant
    assert bucket.level("tok", at=1000.1) == pytest.approx(50.0 - 1.0)      # still reserved, leaking
    second = bucket.begin("tok", at=1000.1)                 # arrives before the first completes
    assert bucket.level("tok", at=1000.1) == pytest.approx(99.0)
    # At 1000.2 the first reservation is replaced by its cost: 99 - 10 x 0.1 - 50 + 0.5.
    assert bucket.remaining("tok", at=1000.2) == pytest.approx(OPTIONS.hwm - 48.5)
    # A report dated before the bucket's time (a thread woke late) applies now; the bucket never runs backwards.
    bucket.complete(second, 0.25, at=1000.15)
    assert bucket.level("tok", at=1000.3) == pytest.approx(max(48.5 - 50.0 + 0.25, 0.0))


def test_a_request_arriving_after_a_modelled_completion_is_admitted_even_if_reported_late(clock):
    options = ThrottleOptions(enabled=True, hwm=100.0, leak=1.0, up_front=150.0, maximum=200.0)
    bucket = LeakyBucketThrottle(options, clock)
    first = bucket.begin("tok", at=1000.0)
    bucket.complete(first, 0.01, at=1000.01)
    assert bucket.begin("tok", at=1000.005) is None           # while the first is inside the server
    clock.now = 1000.3                                          # the simulator got round to it late
    assert bucket.begin("tok", at=1000.02) is not None          # arrived after the modelled completion
