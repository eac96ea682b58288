"""Stopping cleanly: SIGTERM, SIGINT and the job's deadline become exceptions in the main thread.

`StopState` is the decision rule (pure): what each event means now — raise, wait for the end of a bookkeeping
section, or nothing (a repeated signal). `Stopper` is the thin part: it installs the handlers, arms the deadline
(SIGALRM through `setitimer`) and owns the `threading.Event` handed to jobs as `stop`, set as soon as a stop is
decided so that worker threads waiting with `stop.wait(seconds)` (retry pauses) wake up at once.

The exceptions are BaseExceptions (vocab.JobInterrupted): a job's `except Exception` cannot swallow them; they
interrupt the main thread wherever it is (`TaskGroup.wait()`, a socket read, a load, whose transaction is then
rolled back), and `TaskGroup` stops its workers at their next `check()`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from vocab import DeadlineExceeded, JobInterrupted, StopRequested

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class StopState:
    """What the run has been asked, and whether an interruption must wait for a bookkeeping section to end."""

    requested: StopRequested | None = None
    deadline_armed: bool = False
    deferred_depth: int = 0
    pending: JobInterrupted | None = None

    def on_signal(self, signum: int, name: str) -> tuple[bool, JobInterrupted | None]:
        """(first time?, exception to raise now)."""
        if self.requested is not None:
            return False, None
        self.requested = StopRequested(signum, name)
        return True, self._now_or_later(self.requested)

    def on_deadline(self, reason: str) -> JobInterrupted | None:
        if not self.deadline_armed or self.requested is not None:
            return None
        self.deadline_armed = False
        return self._now_or_later(DeadlineExceeded(reason))

    def _now_or_later(self, exc: JobInterrupted) -> JobInterrupted | None:
        if self.deferred_depth == 0:
            return exc
        if self.pending is None or isinstance(exc, StopRequested):   # a stop outranks a deadline
            self.pending = exc
        return None

    def enter_deferred(self) -> None:
        self.deferred_depth += 1

    def leave_deferred(self) -> JobInterrupted | None:
        """The interruption that arrived during the section, once the outermost one ends."""
        self.deferred_depth -= 1
        if self.deferred_depth or self.pending is None:
            return None
        pending, self.pending = self.pending, None
        return pending

    def disarm_deadline(self) -> None:
        """The job ended: a deadline that fired meanwhile no longer applies."""
        self.deadline_armed = False
        if isinstance(self.pending, DeadlineExceeded):
            self.pending = None


class Stopper:
    """`with Stopper() as stopper:` handles SIGTERM/SIGINT until the block ends (then restores the handlers)."""

    def __init__(self) -> None:
        self.state = StopState()
        self.event = threading.Event()
        self._previous: dict[int, object] = {}
        self._deadline_reason = "stopped after exceeding its deadline"

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in (*STOP_SIGNALS, signal.SIGALRM):
                handler = self._on_alarm if signum == signal.SIGALRM else self._on_signal
                self._previous[signum] = signal.signal(signum, handler)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @property
    def requested(self) -> StopRequested | None:
        return self.state.requested

    def new_job_event(self) -> threading.Event:
        """The `stop` event of the next job: set already when the run is stopping."""
        self.event = threading.Event()
        if self.state.requested is not None:
            self.event.set()
        return self.event

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first, exc = self.state.on_signal(signum, name)
        if first:
            logger.warning("%s received: stopping at the next safe point; nothing partial is loaded", name)
        else:
            logger.warning("%s received again: already stopping", name)
        self.event.set()
        if exc is not None:
            raise exc

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        exc = self.state.on_deadline(self._deadline_reason)
        if exc is not None or self.state.pending is not None:
            self.event.set()
        if exc is not None:
            raise exc

    @contextmanager
    def deadline(self, seconds: float, reason: str) -> Iterator[None]:
        """Interrupt the block with DeadlineExceeded(reason) after `seconds`."""
        armed = bool(self._previous)
        self._deadline_reason = reason
        if armed:
            self.state.deadline_armed = True
            signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
            self.state.disarm_deadline()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Bookkeeping that must not be cut in half: an interruption arriving meanwhile is raised after it."""
        self.state.enter_deferred()
        try:
            yield
        finally:
            pending = self.state.leave_deferred()
            if pending is not None:
                raise pending
