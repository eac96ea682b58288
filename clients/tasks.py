"""A group of tasks on a thread pool that may submit more tasks; the first failure stops the group.

Lets one job run its phases as a pipeline (a page of courses schedules those courses' audit, activity
and enrollment requests at once) instead of phase after phase, while the client's limiter decides how
many requests are really in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class TaskGroupStopped(Exception):
    """Raised inside a task that checks `group.check()` after another task failed."""


class TaskGroup:
    def __init__(self, workers: int, *, name: str = "tasks") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._changed = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._changed:
            if self._error is not None:
                return
            self._pending += 1
        self._pool.submit(self._run, fn, args)

    def check(self) -> None:
        """Call between long steps (e.g. pages) so work stops soon after another task failed."""
        if self._error is not None:
            raise TaskGroupStopped

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            if self._error is None:
                fn(*args)
        except TaskGroupStopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised by wait()
            with self._changed:
                if self._error is None:
                    self._error = exc
        finally:
            with self._changed:
                self._pending -= 1
                self._changed.notify_all()

    def wait(self) -> None:
        """Block until every task (including ones submitted by tasks) finished; re-raise the first failure."""
        try:
            with self._changed:
                while self._pending and self._error is None:
                    self._changed.wait()
                error = self._error
        except BaseException:  # interrupted (a stop signal, a deadline): workers stop at their next check()
            with self._changed:
                self._error = self._error or TaskGroupStopped()
            raise
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if error is not None:
            raise error

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            with self._changed:
                self._error = self._error or TaskGroupStopped()
        self._pool.shutdown(wait=True, cancel_futures=True)
