"""Canvas's request throttle: a leaky bucket per client key (protocol-notes §C.4).

Arithmetic, per key:
- the bucket level leaks at `leak` units per second (never below 0);
- a request whose key's level is >= `hwm` *when it starts* is refused;
- an admitted request reserves `up_front` units for its duration; at completion that reservation is
  replaced by the request's real cost (seconds of server time), and the level is capped at `maximum`;
- admitted responses report `X-Rate-Limit-Remaining = hwm - level` (after completion).

Events may be dated (`at=`) with the instants the cost model gives rather than when a thread reports them.
The class is pure apart from the injected clock, so tests can check the arithmetic exactly.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ThrottleOptions:
    """Canvas defaults (request_throttle.rb). Disabled unless a simulator opts in."""

    enabled: bool = False
    status: int = 403                  # older Canvas answers 403, current docs say 429
    hwm: float = 600.0
    leak: float = 10.0                 # units per second
    up_front: float = 50.0
    maximum: float = 800.0

    def __post_init__(self) -> None:
        if self.status not in (403, 429):
            raise ValueError(f"throttle status must be 403 or 429, not {self.status}")
        if self.leak <= 0 or self.hwm <= 0 or self.maximum < self.hwm or self.up_front < 0:
            raise ValueError("throttle needs leak > 0, hwm > 0, maximum >= hwm and up_front >= 0")

    def refusal_body(self) -> bytes:
        # Instructure's current docs print "429 Forbidden (Rate Limit Exceeded)" too, so keep the wording.
        return f"{self.status} Forbidden (Rate Limit Exceeded)\n".encode()


@dataclass(frozen=True)
class Ticket:
    """An admitted request's reservation; hand it back to `LeakyBucketThrottle.complete` or `finish`."""

    key: str
    reserved: float


@dataclass
class _Bucket:
    level: float = 0.0
    updated: float | None = None
    # Completions dated ahead of the bucket's time: (at, sequence, reserved, cost), a heap by time.
    completions: list[tuple[float, int, float, float]] = field(default_factory=list)


class LeakyBucketThrottle:
    """Thread-safe leaky buckets keyed by client identifier (e.g. the access token).

    Every event may carry the instant it happens in the model (`at`, on the clock's scale) instead of
    the instant a thread gets round to reporting it: a busy simulator wakes its threads late, and a
    bucket moved by wake-up times would see arrivals bunched and reservations held too long, which real
    Canvas, not sharing a CPU with its clients, does not. A completion may be registered ahead of its
    time (`complete`); it takes effect when the bucket reaches that instant.
    """

    def __init__(self, options: ThrottleOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._sequence = itertools.count()

    @property
    def options(self) -> ThrottleOptions:
        return self._options

    def begin(self, key: str, at: float | None = None) -> Ticket | None:
        """Admit a request arriving at `at` (reserving `up_front`), or None when the bucket is at/over the hwm."""
        with self._lock:
            bucket = self._settle(key, at)
            if bucket.level >= self._options.hwm:
                return None
            bucket.level = min(bucket.level + self._options.up_front, self._options.maximum)
            return Ticket(key, self._options.up_front)

    def complete(self, ticket: Ticket, cost: float, at: float | None = None) -> None:
        """Replace the reservation by the real cost at `at` (now by default; may lie ahead)."""
        with self._lock:
            bucket = self._buckets.setdefault(ticket.key, _Bucket())
            when = self._clock() if at is None else at
            heapq.heappush(bucket.completions, (when, next(self._sequence), ticket.reserved, cost))

    def finish(self, ticket: Ticket, cost: float, at: float | None = None) -> float:
        """`complete` now (or at `at`) and return X-Rate-Limit-Remaining (hwm - level) as of then."""
        self.complete(ticket, cost, at)
        return self.remaining(ticket.key, at)

    def level(self, key: str, at: float | None = None) -> float:
        """The key's level as of `at` (now by default), after leaking and any completions due by then."""
        with self._lock:
            return self._settle(key, at).level

    def remaining(self, key: str, at: float | None = None) -> float:
        return self._options.hwm - self.level(key, at)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _settle(self, key: str, at: float | None) -> _Bucket:
        # Caller holds the lock. Brings the bucket to `at`: completions due by then in time order, then the leak.
        bucket = self._buckets.setdefault(key, _Bucket())
        when = self._clock() if at is None else at
        while bucket.completions and bucket.completions[0][0] <= when:
            done_at, _, reserved, cost = heapq.heappop(bucket.completions)
            self._leak(bucket, done_at)
            bucket.level = min(max(bucket.level - reserved + max(cost, 0.0), 0.0), self._options.maximum)
        self._leak(bucket, when)
        return bucket

    def _leak(self, bucket: _Bucket, when: float) -> None:
        # Leaking is applied lazily. An event dated before the bucket's time (its thread reported late) is
        # applied at the bucket's time: the bucket never runs backwards.
        if bucket.updated is not None and when > bucket.updated:
            bucket.level = max(bucket.level - self._options.leak * (when - bucket.updated), 0.0)
        if bucket.updated is None or when > bucket.updated:
            bucket.updated = when
