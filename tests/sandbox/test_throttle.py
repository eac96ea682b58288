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
