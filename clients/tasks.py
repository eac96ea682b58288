"""A group of tasks on a thread pool that may submit more tasks; the first failure stops the group.

Lets one job run its phases as a pipeline (a page of courses schedules those courses' audit, activity
and enrollment requests at once) instead of phase after phase, while the client's limiter decides how
many requests are really in flight. Queued tasks start in the order they were submitted, except that a task may
be queued `ahead` of the last few submitted before it: a long chain of pages submitted late (a large course on the
last page of a listing) then starts early enough to end with the rest instead of ending the run on its own. A `spare`
task starts only when no other task is waiting: it uses capacity the others leave idle (requests that may turn out
to be needed, asked while a listing that decides it is still being read) without delaying them.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from typing import Any


class TaskGroupStopped(Exception):
    """Raised inside a task that checks `group.check()` after another task failed."""


class TaskGroup:
    # concurrent.futures.ThreadPoolExecutor's queue is strictly FIFO, hence these few threads of our own.
    def __init__(self, workers: int, *, name: str = "tasks") -> None:
        if workers < 1:
            raise ValueError("a task group needs at least one worker")
        self._workers, self._name = workers, name
        self._changed = threading.Condition()
        # (spare, place, not moved ahead, order, fn, args): the heap's order is the start order.
        self._queue: list[tuple[bool, int, bool, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._pending = 0                  # queued or running
        self._error: BaseException | None = None
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any, ahead: int = 0, spare: bool = False) -> None:
        """Queue `fn(*args)` to start as if it had been submitted `ahead` tasks earlier (0: in submission order);
        a `spare` task starts after every other task queued when it would start, spare ones in their own order."""
        with self._changed:
            if self._error is not None or self._closed:
                return
            self._pending += 1
            order, ahead = next(self._order), max(ahead, 0)
            # Before the task submitted `ahead` places earlier (order - ahead), not after it.
            heapq.heappush(self._queue, (spare, order - ahead, ahead == 0, order, fn, args))
            if self._idle:
                self._changed.notify()
            # An idle thread takes one task at most: start another while more are queued than idle threads.
            if len(self._queue) > self._idle and len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def check(self) -> None:
        """Call between long steps (e.g. pages) so work stops soon after another task failed."""
        if self._error is not None:
            raise TaskGroupStopped

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._changed.wait()
                    self._idle -= 1
                if not self._queue:
                    return
                *_, fn, args = heapq.heappop(self._queue)
                skip = self._error is not None
            self._run(fn, args, skip)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], skip: bool) -> None:
        try:
            if not skip:
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
                # Only wait() needs this news; idle workers share the condition and would wake for nothing.
                if self._pending == 0 or self._error is not None:
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
            self._shutdown()
        if error is not None:
            raise error

    def _shutdown(self) -> None:
        """Drop what has not started and wait for the running tasks (after a failure they stop at check())."""
        with self._changed:
            self._closed = True
            self._pending -= len(self._queue)
            self._queue.clear()
            self._changed.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def __enter__(self) -> TaskGroup:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            with self._changed:
                self._error = self._error or TaskGroupStopped()
        self._shutdown()
