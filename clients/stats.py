"""Counters a client's requests share across threads: attempts per endpoint kind, retries, refusals, cost, and
the measurements of the limiters its requests pass (for the job's summary)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from clients.gate_book import GateMeasurements


class MeasuredGate(Protocol):
    def measurements(self) -> GateMeasurements: ...


@dataclass(frozen=True)
class StatsSnapshot:
    requests: Mapping[str, int]      # attempts sent, per endpoint kind
    retries: int                     # attempts repeated after a transient failure
    throttled: int                   # refusals by the rate limiter
    errors: int                      # logical requests that failed (incl. a gateway 401 fixed by renewal)
    cost: float                      # sum of X-Request-Cost
    bytes: int                       # response body bytes
    gates: tuple[GateMeasurements, ...] = ()   # each attached limiter's, at the time of the snapshot

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class ClientStats:
    """Counters shared by every thread of a client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._retries = self._throttled = self._errors = self._bytes = 0
        self._cost = 0.0
        self._gates: list[MeasuredGate] = []

    def attach_gate(self, gate: MeasuredGate) -> None:
        """A limiter this client's requests pass through; its measurements come with every snapshot."""
        with self._lock:
            self._gates.append(gate)

    def record_attempt(self, kind: str, *, nbytes: int = 0, cost: float | None = None, throttled: bool = False) -> None:
        with self._lock:
            self._requests[kind] += 1
            self._bytes += nbytes
            self._cost += cost or 0.0
            self._throttled += int(throttled)

    def record_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def record_error(self) -> None:
        with self._lock:
            self._errors += 1

    @property
    def throttled(self) -> int:
        with self._lock:
            return self._throttled

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            gates = list(self._gates)
            snapshot = StatsSnapshot(MappingProxyType(dict(self._requests)), self._retries, self._throttled,
                                     self._errors, self._cost, self._bytes)
        if not gates:
            return snapshot
        # Outside our lock: a limiter takes its own.
        return StatsSnapshot(snapshot.requests, snapshot.retries, snapshot.throttled, snapshot.errors,
                             snapshot.cost, snapshot.bytes, tuple(gate.measurements() for gate in gates))
