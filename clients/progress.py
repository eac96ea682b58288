"""Progress of one job phase: a tqdm bar on a terminal, otherwise an INFO line every few seconds.

    with Progress("audit log", len(course_ids), logger, stats=canvas.stats) as progress:
        for done in canvas.map_concurrent(fetch, course_ids):
            ...
            progress.advance()

Never one line per item: batch logs stay readable at any size. A summary line is logged at the end either way.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

from clients.stats import ClientStats


class Progress:
    def __init__(self, phase: str, total: int | None, logger: logging.Logger, *, stats: ClientStats | None = None,
                 interval: float = 10.0, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.phase, self.total, self._logger = phase, total, logger
        self._stats, self._interval, self._clock = stats, interval, clock
        self._stream = stream if stream is not None else sys.stderr
        self._tty = tty if tty is not None else self._stream.isatty()
        self._lock = threading.Lock()
        self._bar: tqdm | None = None
        self.done = 0
        self._started = self._last_log = 0.0
        self._throttled_at_start = 0
        self._throttled_shown = 0

    def __enter__(self) -> Progress:
        self._started = self._last_log = self._clock()
        self._throttled_at_start = self._stats.throttled if self._stats else 0
        if self._tty:
            self._bar = tqdm(total=self.total, desc=self.phase, file=self._stream, unit="item",
                             dynamic_ncols=True, mininterval=0.5, leave=False)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        elapsed = self._clock() - self._started
        outcome = "finished" if exc_type is None else "stopped"
        self._logger.info("%s %s: %s in %.1fs (%.1f/s), %d throttled", self.phase, outcome, self._count(),
                          elapsed, self._rate(elapsed), self._throttled())

    def advance(self, n: int = 1) -> None:
        """Count `n` more items done; safe from any thread."""
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._update_bar(n)
                return
            now = self._clock()
            if now - self._last_log < self._interval:
                return
            self._last_log = now
            elapsed = now - self._started
        self._logger.info("%s: %s (%.1f/s), %d throttled", self.phase, self._count(), self._rate(elapsed),
                          self._throttled())

    def _update_bar(self, n: int) -> None:
        assert self._bar is not None
        throttled = self._throttled()
        if throttled != self._throttled_shown:
            self._throttled_shown = throttled
            self._bar.set_postfix_str(f"throttled={throttled}", refresh=False)
        self._bar.update(n)

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def _rate(self, elapsed: float) -> float:
        return self.done / elapsed if elapsed > 0 else 0.0

    def _throttled(self) -> int:
        return (self._stats.throttled - self._throttled_at_start) if self._stats else 0
