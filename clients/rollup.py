"""Retries and slow responses rolled up per endpoint kind, instead of one WARNING per retry.

    canvas analytics: 14 retries in the last 10 s (502 x9, ConnectionError x5), 3 throttled, slowest response 8.2 s

- `RequestRollup`: the thread-safe counters every retry loop and HTTP client feed (`ROLLUP`, process-wide like
  the logging module's loggers, unless a client is given its own).
- `KindWindow`, `merge_windows`, `rollup_line`: the pure part — what one interval holds and how it reads.
- `RollupReporter`: the thin thread that logs one line per endpoint kind every interval while a job runs.

An endpoint kind is the source and the kind of request ("canvas analytics", "canvas gateway courses", "kaltura"),
never a URL or a query string.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType

SLOW_SECONDS = 5.0        # a response slower than this is counted as slow (and shown even without retries)


@dataclass(frozen=True)
class KindWindow:
    """What one endpoint kind went through during a window."""

    kind: str
    retries: Mapping[str, int] = field(default_factory=dict)   # reason (HTTP status, exception class) -> count
    throttled: int = 0                                         # refusals by a rate limiter, retried
    gave_up: int = 0                                           # logical requests whose retries were spent
    responses: int = 0                                         # attempts answered or failed in transport
    slow: int = 0                                              # ... that took SLOW_SECONDS or more
    slowest: float = 0.0                                       # seconds

    @property
    def retry_count(self) -> int:
        return sum(self.retries.values())


def merge_windows(a: KindWindow, b: KindWindow) -> KindWindow:
    """Both windows of one kind as one (pure)."""
    return KindWindow(a.kind, MappingProxyType(dict(Counter(a.retries) + Counter(b.retries))),
                      a.throttled + b.throttled, a.gave_up + b.gave_up, a.responses + b.responses,
                      a.slow + b.slow, max(a.slowest, b.slowest))


def reasons_text(retries: Mapping[str, int]) -> str:
    """'502 x9, ConnectionError x5': most frequent first, then by name (pure)."""
    return ", ".join(f"{reason} x{count}" for reason, count in sorted(retries.items(), key=lambda i: (-i[1], i[0])))


def rollup_line(window: KindWindow, seconds: float, slow_seconds: float = SLOW_SECONDS) -> tuple[int, str] | None:
    """(log level, line) for one kind's window, or None when nothing is worth a line: only retries and slow
    responses are (throttled refusals alone are the limiter's normal work, counted on the progress lines)."""
    if not window.retry_count and not window.slow:
        return None
    parts = [f"{window.kind}:"]
    if window.retry_count:
        count = window.retry_count
        parts.append(f"{count} {'retry' if count == 1 else 'retries'} in the last {seconds:.0f} s "
                     f"({reasons_text(window.retries)})")
    else:
        parts.append(f"{window.slow} response(s) slower than {slow_seconds:g} s in the last {seconds:.0f} s")
    extras = []
    if window.retry_count and window.slow:
        extras.append(f"{window.slow} slower than {slow_seconds:g} s")
    if window.throttled:
        extras.append(f"{window.throttled} throttled")
    extras.append(f"slowest response {window.slowest:.1f} s")
    line = " ".join(parts) + ", " + ", ".join(extras)
    return (logging.WARNING if window.retry_count else logging.INFO), line


class RequestRollup:
    """Counters per endpoint kind since the last `drain()`; thread-safe and cheap (one lock, a few additions)."""

    def __init__(self, slow_seconds: float = SLOW_SECONDS) -> None:
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._retries: dict[str, Counter[str]] = {}
        self._throttled: Counter[str] = Counter()
        self._gave_up: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()
        self._slow: Counter[str] = Counter()
        self._slowest: dict[str, float] = {}

    def retried(self, kind: str, reason: str) -> None:
        with self._lock:
            self._retries.setdefault(kind, Counter())[reason] += 1

    def throttled(self, kind: str) -> None:
        with self._lock:
            self._throttled[kind] += 1

    def gave_up(self, kind: str) -> None:
        with self._lock:
            self._gave_up[kind] += 1

    def responded(self, kind: str, seconds: float) -> None:
        with self._lock:
            self._responses[kind] += 1
            if seconds >= self.slow_seconds:
                self._slow[kind] += 1
            if seconds > self._slowest.get(kind, 0.0):
                self._slowest[kind] = seconds

    def drain(self) -> list[KindWindow]:
        """Every kind's window since the previous drain (sorted by kind), the counters reset."""
        with self._lock:
            kinds = sorted(set(self._retries) | set(self._throttled) | set(self._gave_up) | set(self._responses))
            windows = [KindWindow(kind, MappingProxyType(dict(self._retries.get(kind, {}))), self._throttled[kind],
                                  self._gave_up[kind], self._responses[kind], self._slow[kind],
                                  self._slowest.get(kind, 0.0)) for kind in kinds]
            self._reset()
        return windows


ROLLUP = RequestRollup()


class RollupReporter:
    """Logs the rollup's lines every `interval` seconds from its own thread while a job runs, and keeps the
    job's totals per kind for its summary. `with RollupReporter(...) as reporter:` flushes once more on exit."""

    def __init__(self, rollup: RequestRollup, logger: logging.Logger, *, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rollup, self._logger, self._interval, self._clock = rollup, logger, interval, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._since = clock()
        self._totals: dict[str, KindWindow] = {}

    def start(self) -> RollupReporter:
        self._rollup.drain()                     # what an earlier job's stragglers left is not this job's
        self._since = self._clock()
        self._thread = threading.Thread(target=self._run, name="log-rollup", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and log what is left (the last, partial interval)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def __enter__(self) -> RollupReporter:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        """Log one line per kind with retries or slow responses since the last flush; add the window to totals."""
        with self._lock:
            now = self._clock()
            seconds, self._since = now - self._since, now
            windows = self._rollup.drain()
            for window in windows:
                known = self._totals.get(window.kind)
                self._totals[window.kind] = window if known is None else merge_windows(known, window)
        for window in windows:
            line = rollup_line(window, seconds, self._rollup.slow_seconds)
            if line is not None:
                self._logger.log(line[0], "%s", line[1])

    def totals(self) -> list[KindWindow]:
        """The job's windows so far, per kind (sorted)."""
        with self._lock:
            return [self._totals[kind] for kind in sorted(self._totals)]


def totals_by_reason(windows: Iterable[KindWindow]) -> dict[str, int]:
    """Retries per reason over every kind (pure)."""
    total: Counter[str] = Counter()
    for window in windows:
        total.update(window.retries)
    return dict(total)
