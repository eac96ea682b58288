"""Canvas's request throttle: a leaky bucket per client key (protocol-notes §C.4).

Arithmetic, per key:
- the bucket level leaks at `leak` units per second (never below 0);
- a request whose key's level is >= `hwm` *when it starts* is refused;
- an admitted request reserves `up_front` units for its duration; at completion that reservation is
  replaced by the request's real cost (seconds of server time), and the level is capped at `maximum`;
- admitted responses report `X-Rate-Limit-Remaining = hwm - level` (after completion).

The class is pure apart from the injected clock, so tests can check the arithmetic exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


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
    """An admitted request's reservation; hand it back to `LeakyBucketThrottle.finish`."""

    key: str
    reserved: float


class LeakyBucketThrottle:
    """Thread-safe leaky buckets keyed by client identifier (e.g. the access token)."""

    def __init__(self, options: ThrottleOptions, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options
        self._clock = clock
        self._lock = threading.Lock()
        self._levels: dict[str, float] = {}
        self._updated: dict[str, float] = {}

    @property
    def options(self) -> ThrottleOptions:
        return self._options

    def begin(self, key: str) -> Ticket | None:
        """Admit a request (reserving `up_front`) or return None when the bucket is at/over the hwm."""
        with self._lock:
            level = self._leak(key)
            if level >= self._options.hwm:
                return None
            self._levels[key] = min(level + self._options.up_front, self._options.maximum)
            return Ticket(key, self._options.up_front)

    def finish(self, ticket: Ticket, cost: float) -> float:
        """Replace the reservation by the real cost; return X-Rate-Limit-Remaining (hwm - level)."""
        with self._lock:
            level = self._leak(ticket.key) - ticket.reserved + max(cost, 0.0)
            level = min(max(level, 0.0), self._options.maximum)
            self._levels[ticket.key] = level
            return self._options.hwm - level

    def level(self, key: str) -> float:
        """The key's current level (after leaking up to now)."""
        with self._lock:
            return self._leak(key)

    def remaining(self, key: str) -> float:
        return self._options.hwm - self.level(key)

    def reset(self) -> None:
        with self._lock:
            self._levels.clear()
            self._updated.clear()

    def _leak(self, key: str) -> float:
        # Caller holds the lock. Leaking is applied lazily, whenever a key is touched.
        now = self._clock()
        previous = self._updated.get(key, now)
        level = max(self._levels.get(key, 0.0) - self._options.leak * max(now - previous, 0.0), 0.0)
        self._levels[key] = level
        self._updated[key] = now
        return level
