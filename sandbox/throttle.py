"""Canvas's request throttle: a leaky bucket per client identifier, with canvas-lms's own arithmetic.

Sources: canvas-lms `app/middleware/request_throttle.rb` (`RequestThrottle#call`, `LeakyBucket`) and
`app/middleware/request_throttle/increment_bucket.lua`. Per request:

1. `reserve_capacity` first calls `increment(0, up_front_cost)`. The Lua script leaks the stored count
   (`count - outflow * (now - last_touched)`, only when the count is > 0 and the loss positive, *not* clamped),
   adds the amount, and only then clamps the result to [0, maximum];
2. `allowed?` refuses when `full?`, i.e. `count >= hwm` *after* that reservation: a request is refused when
   the remaining quota (hwm - count) before it arrived was <= its up-front cost;
3. the block runs either way (a refusal renders `rate_limit_exceeded`) and returns the request's cost (CPU +
   DB time; a refusal's is a sliver of CPU, modelled as `refusal_cost`);
4. `increment(cost, -up_front_cost)` replaces the reservation by that cost (same Lua arithmetic).

Response headers: `X-Request-Cost` = the cost (not on a refusal); `X-Rate-Limit-Remaining` = `hwm - count` after
step 4, also on a refusal, so it goes negative down to hwm - maximum. The count reaches Ruby through Lua's
`tostring` (Redis runs Lua 5.1: 14 significant digits) and Ruby prints Floats with `Float#to_s`.
Settings (maximum 800, hwm 600, outflow 10, up_front_cost 50) may differ per client (`custom_settings`).
Redis forgets a bucket an hour after its last write (`EXPIRE 3600`).

Events are dated (`at=`) with the instants the cost model gives rather than when a thread reports them, and a
completion may be registered ahead of its instant. The bucket only changes at events, as in Redis; an event
dated before the bucket's last one is applied at that last instant (the bucket never runs backwards).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus

BUCKET_TTL = 3600.0                    # increment_bucket.lua: EXPIRE 3600 on every write
SETTING_NAMES = ("maximum", "hwm", "leak", "up_front")


@dataclass(frozen=True)
class BucketSettings:
    """One client's bucket (request_throttle.rb defaults); `leak` is canvas-lms's `outflow` (units per second)."""

    maximum: float = 800.0
    hwm: float = 600.0
    leak: float = 10.0
    up_front: float = 50.0

    def __post_init__(self) -> None:
        if self.leak <= 0 or self.hwm <= 0 or self.maximum < self.hwm or self.up_front < 0:
            raise ValueError("throttle needs leak > 0, hwm > 0, maximum >= hwm and up_front >= 0")


@dataclass(frozen=True)
class ThrottleOptions:
    """Canvas defaults. Disabled unless a simulator opts in.

    `status`: Instructure's throttling page now says throttled requests get a 429
    (https://developerdocs.instructure.com/services/canvas/basics/file.throttling, which read 403 until late
    2024); request_throttle.rb's `rate_limit_exceeded` still answers 403, kept as an option.
    `overrides`: per client key (the access token), any of maximum/hwm/leak/up_front, like canvas-lms's
    `request_throttle.custom_settings`.
    """

    enabled: bool = False
    status: int = 429
    hwm: float = 600.0
    leak: float = 10.0
    up_front: float = 50.0
    maximum: float = 800.0
    refusal_cost: float = 0.0005       # seconds of CPU a refusal costs (its block only renders a string)
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in (403, 429):
            raise ValueError(f"throttle status must be 403 or 429, not {self.status}")
        if self.refusal_cost < 0:
            raise ValueError("refusal_cost must be >= 0")
        self.settings()
        for key, custom in self.overrides.items():
            unknown = set(custom) - set(SETTING_NAMES)
            if unknown:
                raise ValueError(f"unknown throttle settings for {key!r}: {sorted(unknown)}")
            self.settings(key)

    def settings(self, key: str | None = None) -> BucketSettings:
        base = BucketSettings(maximum=self.maximum, hwm=self.hwm, leak=self.leak, up_front=self.up_front)
        custom = self.overrides.get(key, {}) if key is not None else {}
        return replace(base, **{name: float(value) for name, value in custom.items()}) if custom else base

    def refusal_body(self) -> bytes:
        # rate_limit_exceeded: "#{status} #{Rack::Utils::HTTP_STATUS_CODES[status]} (Rate Limit Exceeded)\n"
        return f"{self.status} {HTTPStatus(self.status).phrase} (Rate Limit Exceeded)\n".encode()


def ruby_float(value: float) -> str:
    """Ruby's `Float#to_s`: the shortest round-trip digits, exponent form below 1e-4 or from 1e16 ("1.0e-05")."""
    text = repr(float(value))
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if "." not in mantissa:
        mantissa += ".0"
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"


def lua_tostring(count: float) -> float:
    """The count as Ruby reads it back from the Lua script: `tostring` (Lua 5.1, "%.14g"), then `to_f`."""
    return float(f"{count:.14g}")


class Ticket:
    """One request's reservation; `allowed` says whether the bucket admitted it (step 2)."""

    __slots__ = ("allowed", "key", "reserved", "result")

    def __init__(self, key: str, reserved: float, allowed: bool) -> None:
        self.key = key
        self.reserved = reserved
        self.allowed = allowed
        self.result: float | None = None       # the count right after this request's final increment


@dataclass
class _Bucket:
    settings: BucketSettings
    count: float = 0.0
    updated: float | None = None               # last_touched
    # Increments dated ahead of the bucket's time: (at, sequence, amount, ticket), a heap by time.
    pending: list[tuple[float, int, float, Ticket | None]] = field(default_factory=list)


class LeakyBucketThrottle:
    """Thread-safe leaky buckets keyed by client identifier (the access token, or "ip:<address>")."""

    def __init__(self, options: ThrottleOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._sequence = itertools.count()

    @property
    def options(self) -> ThrottleOptions:
        return self._options

    def reserve(self, key: str, at: float | None = None) -> Ticket:
        """Steps 1-2 for a request arriving at `at`: add the up-front cost, then judge `count >= hwm`."""
        with self._lock:
            bucket = self._settle(key, at)
            up_front = bucket.settings.up_front
            self._increment(bucket, up_front, self._when(at))
            return Ticket(key, up_front, allowed=bucket.count < bucket.settings.hwm)

    def complete(self, ticket: Ticket, cost: float, at: float | None = None) -> None:
        """Step 4 at `at` (now by default; may lie ahead): the reservation is replaced by `cost`."""
        with self._lock:
            bucket = self._bucket(ticket.key)
            amount = max(cost, 0.0) - ticket.reserved
            heapq.heappush(bucket.pending, (self._when(at), next(self._sequence), amount, ticket))

    def begin(self, key: str, at: float | None = None) -> Ticket | None:
        """Reserve; a refused request is completed at once at its refusal cost and None is returned."""
        ticket = self.reserve(key, at)
        if ticket.allowed:
            return ticket
        self.complete(ticket, self._options.refusal_cost, self._when(at) + self._options.refusal_cost)
        return None

    def finish(self, ticket: Ticket, cost: float, at: float | None = None) -> float:
        """`complete` now (or at `at`) and return X-Rate-Limit-Remaining as of then."""
        self.complete(ticket, cost, at)
        return self.remaining_after(ticket, at)

    def remaining_after(self, ticket: Ticket, at: float | None = None) -> float:
        """X-Rate-Limit-Remaining of `ticket`'s request: hwm - count after its final increment (due by `at`)."""
        with self._lock:
            bucket = self._settle(ticket.key, at)
            count = bucket.count if ticket.result is None else ticket.result
            return bucket.settings.hwm - lua_tostring(count)

    def level(self, key: str, at: float | None = None) -> float:
        """The stored count after every increment due by `at` (the bucket only changes at increments)."""
        with self._lock:
            return self._settle(key, at).count

    def remaining(self, key: str, at: float | None = None) -> float:
        with self._lock:
            bucket = self._settle(key, at)
            return bucket.settings.hwm - lua_tostring(bucket.count)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    # ---- internals (caller holds the lock) ----
    def _when(self, at: float | None) -> float:
        return self._clock() if at is None else at

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._options.settings(key))
        return bucket

    def _settle(self, key: str, at: float | None) -> _Bucket:
        """Apply, in time order, the increments registered for instants up to `at`."""
        bucket = self._bucket(key)
        when = self._when(at)
        while bucket.pending and bucket.pending[0][0] <= when:
            due, _, amount, ticket = heapq.heappop(bucket.pending)
            self._increment(bucket, amount, due)
            if ticket is not None:
                ticket.result = bucket.count
        return bucket

    @staticmethod
    def _increment(bucket: _Bucket, amount: float, when: float) -> None:
        """increment_bucket.lua: leak (unclamped), add, then clamp to [0, maximum]."""
        last = bucket.updated
        if last is not None and when - last > BUCKET_TTL:
            bucket.count, last = 0.0, None             # Redis expired the key
        now = when if last is None or when > last else last
        count = bucket.count
        if count > 0 and last is not None:
            loss = bucket.settings.leak * (now - last)
            if loss > 0:
                count -= loss
        bucket.count = min(max(count + amount, 0.0), bucket.settings.maximum)
        bucket.updated = now
