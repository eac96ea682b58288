"""A limiter's bookkeeping: how long requests were in flight and how long ready ones waited, and for what.

`clients.limiter.AdaptiveLimiter` updates it under its lock at each change of its state; `runner.summary` reads
the resulting `GateMeasurements` to say what bounded a job. Counters only: nothing here decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateMeasurements:
    """What one limiter saw over its life (a job): seconds are wall-clock time integrals."""

    name: str
    ceiling: int                     # NUM_ASYNC_WORKERS
    starts: int = 0                  # requests admitted
    active_seconds: float = 0.0      # a request in flight or waiting to start
    busy_seconds: float = 0.0        # the integral of requests in flight (the sum of their round trips)
    pacer_wait_seconds: float = 0.0  # a request was ready but waited for the pacer (the start rate)
    cap_wait_seconds: float = 0.0    # ... for the in-flight cap the rate sets, below the ceiling
    ceiling_wait_seconds: float = 0.0   # ... with `ceiling` requests in flight: every worker busy
    reported_seconds: float = 0.0    # time a smoothed X-Rate-Limit-Remaining was known
    near_setpoint_seconds: float = 0.0  # ... and it was within `GateBookkeeping.near` times its setpoint
    cost: float = 0.0                # X-Request-Cost of the answers (server CPU + DB seconds on Canvas)


class GateBookkeeping:
    """Integrates the limiter's state over time; `update` is called at each change with the new state, the
    elapsed segment being charged to the state before it. Not thread-safe (the limiter holds its lock)."""

    def __init__(self, near: float = 2.0) -> None:
        self.near = near                 # "near the setpoint": the smoothed remaining <= near x the setpoint
        self._at: float | None = None
        self._in_flight, self._waiting, self._remaining, self._target = 0, "", None, 0.0
        self.totals = {key: 0.0 for key in ("active", "busy", "pacer", "cap", "ceiling", "reported", "near")}
        self.starts, self.cost = 0, 0.0

    def update(self, now: float, *, in_flight: int, waiting: str, remaining: float | None, target: float) -> None:
        """`waiting`: "" (no request waits), "pacer", "cap" or "ceiling" (what the first waiting request waits for)."""
        if self._at is not None and now > self._at:
            dt, t = now - self._at, self.totals
            if self._in_flight or self._waiting:
                t["active"] += dt
            t["busy"] += self._in_flight * dt
            if self._waiting:
                t[self._waiting] += dt
            if self._remaining is not None and (self._in_flight or self._waiting):
                t["reported"] += dt
                t["near"] += dt if self._remaining <= self.near * self._target else 0.0
        self._at = now if self._at is None else max(self._at, now)
        self._in_flight, self._waiting, self._remaining, self._target = in_flight, waiting, remaining, target

    def measurements(self, name: str, ceiling: int) -> GateMeasurements:
        t = self.totals
        return GateMeasurements(name, ceiling, self.starts, t["active"], t["busy"], t["pacer"], t["cap"],
                                t["ceiling"], t["reported"], t["near"], self.cost)
