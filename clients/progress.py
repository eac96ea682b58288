"""Progress of one job phase: a tqdm bar on a terminal, otherwise an INFO line every few seconds.

    with Progress("enrollments", None, logger, stats=canvas.stats) as progress:
        progress.expect(len(courses))          # as each page of the listing arrives: the total grows
        ...
        progress.advance()                      # from any thread
        progress.total_known()                  # once the listing is complete: the total is final

While the total may still grow it is shown as a lower bound ("120/400+", no percentage, no ETA); once final, the
bar and the lines show done/total, the percentage and an ETA. Never one line per item: batch logs stay readable at
any size. A summary line is logged at the end either way. Log lines and bars share stderr without tearing each
other because `log_setup.ConsoleHandler` writes through `tqdm.write`.
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

# tqdm's formats: without percentage and ETA while the total is a lower bound, the default once it is final.
GROWING_BAR = "{desc}: {n_fmt}/{total_fmt}+ [{elapsed}, {rate_fmt}{postfix}]"
UNKNOWN_BAR = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def duration_text(seconds: float) -> str:
    """'42s', '4m05s', '2h03m' (pure)."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_text(phase: str, done: int, total: int | None, final: bool, elapsed: float, throttled: int) -> str:
    """One periodic progress line (pure): the ETA assumes the rate so far holds, and only a final total has one."""
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = [f"{phase}: {done}"]
    if total is not None and not final:
        parts[0] += f"/{total}+ so far"
    elif total is not None:
        parts[0] += f"/{total} ({done / total if total else 1.0:.0%})"
    parts.append(f"{rate:.1f}/s")
    if total is not None and final and rate > 0 and done < total:
        parts.append(f"ETA {duration_text((total - done) / rate)}")
    parts.append(f"{throttled} throttled")
    return ", ".join(parts)


class Progress:
    def __init__(self, phase: str, total: int | None, logger: logging.Logger, *, stats: ClientStats | None = None,
                 interval: float = 10.0, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, final: bool | None = None) -> None:
        """`final`: whether `total` can no longer grow (by default: when a total is given)."""
        self.phase, self.total, self._logger = phase, total, logger
        self.final = total is not None if final is None else final
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
                             dynamic_ncols=True, mininterval=0.5, leave=False, bar_format=self._bar_format())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        elapsed = self._clock() - self._started
        outcome = "finished" if exc_type is None else "stopped"
        self._logger.info("%s %s: %s in %.1fs (%.1f/s), %d throttled", self.phase, outcome, self._count(),
                          elapsed, self._rate(elapsed), self._throttled())

    def expect(self, n: int) -> None:
        """`n` more items will come (the total grows; call before their work is scheduled); any thread."""
        with self._lock:
            self.total = (self.total or 0) + n
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.bar_format = self._bar_format()

    def total_known(self) -> None:
        """No more `expect`: the total is final (a phase without one takes what is done so far)."""
        with self._lock:
            self.final = True
            if self.total is None:
                self.total = self.done
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.bar_format = self._bar_format()
                self._bar.refresh()

    def _bar_format(self) -> str | None:
        if self.total is None:
            return UNKNOWN_BAR
        return None if self.final else GROWING_BAR

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
            line = progress_text(self.phase, self.done, self.total, self.final, now - self._started,
                                 self._throttled())
        self._logger.info("%s", line)

    def _update_bar(self, n: int) -> None:
        assert self._bar is not None
        throttled = self._throttled()
        if throttled != self._throttled_shown:
            self._throttled_shown = throttled
            self._bar.set_postfix_str(f"throttled={throttled}", refresh=False)
        self._bar.update(n)

    def _count(self) -> str:
        if self.total is None:
            return str(self.done)
        return f"{self.done}/{self.total}" + ("" if self.final else "+")

    def _rate(self, elapsed: float) -> float:
        return self.done / elapsed if elapsed > 0 else 0.0

    def _throttled(self) -> int:
        return (self._stats.throttled - self._throttled_at_start) if self._stats else 0
