"""Request statistics of one simulator server: what was asked, answered, refused, faulted, failed by an outage
and charged."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sandbox.faults import FaultKind


class Counters:
    """Thread-safe request statistics of one server."""

    def __init__(self, leak: float) -> None:
        self._leak = leak
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._statuses: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._outages: Counter[str] = Counter()
            self._throttled = 0
            self._handler_errors = 0
            self._charged = 0.0
            self._late = 0.0
            self._late_max = 0.0
            self._late_10ms = 0
            self._records = 0
            self._in_flight = 0
            self._peak_in_flight = 0

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def throttled(self) -> None:
        with self._lock:
            self._throttled += 1
            self._statuses["throttled"] += 1

    def outage(self, kind: str, status: int | None) -> None:
        with self._lock:
            self._outages[kind] += 1
            self._statuses["reset" if status is None else str(status)] += 1

    def handler_error(self) -> None:
        with self._lock:
            self._handler_errors += 1

    def fault(self, kind: FaultKind) -> None:
        with self._lock:
            self._faults[kind.value] += 1

    def served(self, cost: float, records: int, status: int | None, late: float) -> None:
        with self._lock:
            self._charged += cost
            self._late += late
            self._late_max = max(self._late_max, late)
            self._late_10ms += late >= 0.010
            self._records += records
            self._statuses["reset" if status is None else str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain-data copy: requests per endpoint (route pattern), faults per kind, cost, bounds."""
        with self._lock:
            return {
                "requests": sum(self._requests.values()),
                "requests_by_endpoint": dict(self._requests),
                "statuses": dict(self._statuses),
                "throttled": self._throttled,
                "faults": {kind.value: self._faults.get(kind.value, 0) for kind in FaultKind},
                "outage_failures": sum(self._outages.values()),
                "outages": dict(self._outages),
                "handler_errors": self._handler_errors,
                "records": self._records,
                "charged_cost_s": round(self._charged, 6),
                # How much later than the model responses left (this process busy elsewhere): the client
                # sees it as network jitter; the throttle does not see it at all.
                "late_s": round(self._late, 6),
                "late_max_s": round(self._late_max, 6),
                "late_10ms": self._late_10ms,
                # The least wall time the throttle allows for this much work at this leak rate.
                "throttle_bound_s": round(self._charged / self._leak, 6),
                "in_flight": self._in_flight,
                "peak_in_flight": self._peak_in_flight,
            }
