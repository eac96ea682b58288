"""Seeded, reproducible fault injection for the simulators.

Each request is identified by a *logical key* (method, path, canonical query and a digest of the body) and
by how many times that same logical request has reached the fault stage before (its ordinal). The fault is
a pure function of (seed, key, ordinal): the same sequence of requests gets the same faults whatever the
thread interleaving, and a retry of a request is a new draw. By default the draws are independent, as failures
of a real service are: a request can fail any number of times in a row, so a client needs a retry budget, not a
guarantee. `max_consecutive=N` is a friendlier option: after N faults in a row on one logical request the next
attempt is forced to succeed.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, fields
from enum import StrEnum


class FaultKind(StrEnum):
    HTTP500 = "http500"              # 500 with a Canvas-style JSON error
    HTTP502_503 = "http502_503"      # 502 or 503 with a gateway-style HTML page
    RESET = "reset"                  # connection closed without any response
    BAD_JSON = "bad_json"            # 200 with a truncated JSON body (JSON responses only)
    SLOW = "slow"                    # correct response, but only after `slow_seconds`


@dataclass(frozen=True)
class FaultOptions:
    """Probability of each fault kind per request (their sum must be <= 1)."""

    http500: float = 0.0
    http502_503: float = 0.0
    reset: float = 0.0
    bad_json: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 30.0       # longer than a sane client timeout
    max_consecutive: int | None = None   # None = independent draws; N = force success after N faults in a row

    def __post_init__(self) -> None:
        rates = self.rates()
        if any(rate < 0 for rate in rates.values()) or sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1: {rates}")
        if (self.max_consecutive is not None and self.max_consecutive < 1) or self.slow_seconds < 0:
            raise ValueError("max_consecutive must be None or >= 1, and slow_seconds >= 0")

    @classmethod
    def uniform(cls, total_rate: float, **overrides: float) -> FaultOptions:
        """Spread `total_rate` evenly over the five kinds; explicit per-kind rates override."""
        share = total_rate / len(FaultKind)
        rates: dict[str, float] = {kind.value: share for kind in FaultKind}
        rates.update(overrides)
        return cls(**rates)

    def rates(self) -> dict[FaultKind, float]:
        names = {f.name for f in fields(self)}
        return {kind: float(getattr(self, kind.value)) for kind in FaultKind if kind.value in names}

    @property
    def total_rate(self) -> float:
        return sum(self.rates().values())


def draw(seed: int, key: str, ordinal: int, salt: str = "") -> float:
    """A uniform number in [0, 1) derived only from its arguments."""
    digest = hashlib.blake2b(f"{seed}|{salt}|{key}|{ordinal}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultPlan:
    """Decides, thread-safely and reproducibly, which fault (if any) a request gets."""

    def __init__(self, options: FaultOptions, seed: int) -> None:
        self._options = options
        self._seed = seed
        self._lock = threading.Lock()
        self._ordinals: dict[str, int] = {}
        self._consecutive: dict[str, int] = {}
        # Cumulative thresholds in a fixed order, so a given draw always maps to the same kind.
        self._thresholds: list[tuple[float, FaultKind]] = []
        cumulative = 0.0
        for kind, rate in options.rates().items():
            cumulative += rate
            self._thresholds.append((cumulative, kind))

    @property
    def options(self) -> FaultOptions:
        return self._options

    def decide(self, key: str, applicable: frozenset[FaultKind] | None = None) -> FaultKind | None:
        """The fault for the next attempt of logical request `key` (None = serve normally).

        `applicable` restricts the kinds that make sense for this request (e.g. no BAD_JSON for HTML); a
        drawn kind outside it means "no fault".
        """
        if not self._thresholds or self._options.total_rate == 0:
            return None
        with self._lock:
            ordinal = self._ordinals.get(key, 0)
            self._ordinals[key] = ordinal + 1
            kind = self._kind_for(draw(self._seed, key, ordinal))
            if kind is not None and applicable is not None and kind not in applicable:
                kind = None
            limit = self._options.max_consecutive
            if kind is not None and limit is not None and self._consecutive.get(key, 0) >= limit:
                kind = None
            self._consecutive[key] = self._consecutive.get(key, 0) + 1 if kind is not None else 0
            return kind

    def variant(self, key: str, kind: FaultKind, choices: int) -> int:
        """A reproducible sub-choice for a fault (e.g. 502 versus 503), from the key alone."""
        return int(draw(self._seed, key, 0, salt=kind.value) * choices)

    def reset(self) -> None:
        with self._lock:
            self._ordinals.clear()
            self._consecutive.clear()

    def _kind_for(self, u: float) -> FaultKind | None:
        for threshold, kind in self._thresholds:
            if u < threshold:
                return kind
        return None
