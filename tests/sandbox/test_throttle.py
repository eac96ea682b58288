"""Leaky-bucket arithmetic of sandbox.throttle, checked against canvas-lms's rules with an injected clock.

Every expectation is worked out by hand from request_throttle.rb and increment_bucket.lua: reserve the up-front
cost, refuse when the count then reaches the hwm, replace the reservation by the cost; each increment leaks
first (unclamped, only from a positive count), adds, then clamps to [0, maximum].
"""

import pytest

from sandbox.throttle import LeakyBucketThrottle, ThrottleOptions, lua_tostring, ruby_float


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


OPTIONS = ThrottleOptions(enabled=True, hwm=600.0, leak=10.0, up_front=50.0, maximum=800.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fill(bucket: LeakyBucketThrottle, key: str, count: float) -> None:
    """One admitted request whose cost leaves the bucket at `count` (no time passes)."""
    bucket.finish(bucket.begin(key), count)


def test_defaults_are_canvas_defaults_and_the_refusal_status_is_429():
    options = ThrottleOptions()
    assert (options.maximum, options.hwm, options.leak, options.up_front) == (800.0, 600.0, 10.0, 50.0)
    assert options.status == 429
    assert options.refusal_body() == b"429 Too Many Requests (Rate Limit Exceeded)\n"
    assert ThrottleOptions(status=403).refusal_body() == b"403 Forbidden (Rate Limit Exceeded)\n"
    with pytest.raises(ValueError):
        ThrottleOptions(status=500)


def test_reservation_is_replaced_by_real_cost(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    ticket = bucket.begin("tok")
    assert ticket is not None and bucket.level("tok") == 50.0
    assert bucket.finish(ticket, 2.5) == 600.0 - 2.5
    assert bucket.level("tok") == 2.5


def test_the_check_comes_after_the_reservation(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    fill(bucket, "tok", 550.0)                   # remaining 50 = the up-front cost: 550 + 50 reaches the hwm
    refused = bucket.reserve("tok")
    assert not refused.allowed and bucket.level("tok") == 600.0
    bucket.complete(refused, OPTIONS.refusal_cost)
    assert bucket.remaining_after(refused) == 600.0 - 550.0005   # the refusal's own tiny cost stays
    other = LeakyBucketThrottle(OPTIONS, clock)
    fill(other, "tok", 549.9)                    # remaining 50.1 > 50: 599.9 stays under the hwm
    assert other.reserve("tok").allowed


def test_in_flight_reservations_admit_eleven_not_twelve(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    tickets = [bucket.begin("tok") for _ in range(11)]
    assert all(tickets) and bucket.level("tok") == 550.0
    assert bucket.begin("tok") is None           # the 12th would bring the count to 600 = hwm
    assert bucket.begin("other") is not None     # buckets are per key
    for ticket in tickets:
        bucket.finish(ticket, 0.1)
    assert bucket.level("tok") == pytest.approx(11 * 0.1 + 50.0)    # the refusal completes 0.5 ms later:
    clock.now += 0.0005                                              # leak 0.005, + 0.0005 - 50
    assert bucket.level("tok") == pytest.approx(11 * 0.1 + 50.0 - 0.005 + 0.0005 - 50.0)


def test_the_leak_may_go_below_zero_before_the_amount_is_added(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    fill(bucket, "tok", 10.0)
    clock.now += 5.0                             # leaks 50 > 10: 10 - 50 = -40, then + 50 = 10 (not 50)
    bucket.begin("tok")
    assert bucket.level("tok") == 10.0


def test_an_empty_bucket_does_not_leak(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    fill(bucket, "tok", 0.0)
    clock.now += 5.0                             # count 0: the Lua leak is skipped, 0 + 50
    bucket.begin("tok")
    assert bucket.level("tok") == 50.0


def test_the_bucket_only_changes_at_increments(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    fill(bucket, "tok", 30.0)
    clock.now += 1.5
    assert bucket.level("tok") == 30.0           # nothing happened in Redis
    bucket.begin("tok")                          # 30 - 15 + 50
    assert bucket.level("tok") == 65.0


def test_remaining_goes_negative_down_to_hwm_minus_maximum(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    assert bucket.finish(bucket.begin("tok"), 5000.0) == 600.0 - 800.0
    refused = bucket.reserve("tok")
    bucket.complete(refused, OPTIONS.refusal_cost)
    assert bucket.remaining_after(refused) == 600.0 - 750.0005   # 800 (clamped), then + 0.0005 - 50


def test_remaining_is_computed_from_lua_s_14_digit_count(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    remaining = bucket.finish(bucket.begin("tok"), 100.123456789012345)
    assert remaining == 600.0 - 100.12345678901      # tostring keeps 14 significant digits
    assert lua_tostring(581.5078553055801234) == 581.50785530558


@pytest.mark.parametrize(("value", "text"), [
    (18.49214469441995, "18.49214469441995"), (600.0, "600.0"), (-200.0, "-200.0"), (0.0, "0.0"),
    (0.0001, "0.0001"), (0.00001, "1.0e-05"), (2.5e-07, "2.5e-07"), (1e16, "1.0e+16"),
    (9999999999999998.0, "9999999999999998.0"), (0.0401, "0.0401"),
])
def test_headers_print_floats_as_ruby_does(value, text):
    assert ruby_float(value) == text


def test_per_token_settings_override_the_defaults(clock):
    options = ThrottleOptions(enabled=True, overrides={"small": {"hwm": 100.0, "up_front": 60.0}})
    bucket = LeakyBucketThrottle(options, clock)
    assert bucket.begin("small") is not None     # 60 < 100
    assert bucket.begin("small") is None         # 120 >= 100
    assert bucket.begin("other") is not None and bucket.level("other") == 50.0
    clock.now += 0.0005                          # the refusal's final increment: leak 0.005, + 0.0005 - 60
    assert bucket.remaining("small") == pytest.approx(100.0 - (120.0 - 0.005 + 0.0005 - 60.0))
    with pytest.raises(ValueError):
        ThrottleOptions(overrides={"t": {"outflow": 1.0}})   # the leak rate is named `leak` here


def test_redis_forgets_a_bucket_an_hour_after_its_last_write(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    fill(bucket, "tok", 500.0)
    clock.now += 3601.0                          # expired: a fresh bucket, 0 + 50 (a leak would give 0)
    bucket.begin("tok")
    assert bucket.level("tok") == 50.0


def test_events_dated_in_the_model_apply_in_time_order_whatever_order_they_are_reported(clock):
    bucket = LeakyBucketThrottle(OPTIONS, clock)
    first = bucket.begin("tok", at=1000.0)
    bucket.complete(first, 0.5, at=1000.2)                  # registered ahead of its instant
    assert bucket.level("tok", at=1000.1) == 50.0           # still reserved; nothing incremented since
    second = bucket.begin("tok", at=1000.1)                 # 50 - 10 x 0.1 + 50
    assert bucket.level("tok", at=1000.1) == pytest.approx(99.0)
    # At 1000.2 the first reservation is replaced by its cost: 99 - 1 + 0.5 - 50.
    assert bucket.remaining_after(first, at=1000.2) == pytest.approx(600.0 - 48.5)
    # A report dated before the bucket's time (a thread woke late) applies at that time, without leaking.
    bucket.complete(second, 0.25, at=1000.15)
    assert bucket.level("tok", at=1000.3) == 0.0            # 48.5 + 0.25 - 50 < 0, clamped


def test_a_request_arriving_after_a_modelled_completion_is_admitted_even_if_reported_late(clock):
    options = ThrottleOptions(enabled=True, hwm=100.0, leak=1.0, up_front=60.0, maximum=200.0)
    bucket = LeakyBucketThrottle(options, clock)
    first = bucket.begin("tok", at=1000.0)                  # 60
    bucket.complete(first, 0.01, at=1000.01)
    assert bucket.begin("tok", at=1000.005) is None         # 59.995 + 60 >= 100 while the first is inside
    clock.now = 1000.3                                      # the simulator got round to the next one late
    # 1000.0055: 119.995 - 0.0005 + 0.0005 - 60; 1000.01: - 0.0045 + 0.01 - 60 -> 0.0005; 1000.02: -0.01 + 60.
    assert bucket.begin("tok", at=1000.02) is not None
    assert bucket.level("tok", at=1000.02) == pytest.approx(59.9905)
