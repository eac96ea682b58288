"""Answers asked before the course listing says whether they are needed (thread-safe bookkeeping, no I/O).

On a second day most of the courses the listing will return were in the last run's `course` table. Their
per-course requests can start while the listing's first pages are still on their way, when the throttle would
otherwise sit idle; the listing then decides what each answer is worth. An answer is used exactly when the
listing confirms its course (and used once); the answer of a course the listing does not confirm is dropped,
and so is its error: the course is gone, and the request would not have been made. An error of a confirmed
course is raised just as the request asked after the listing would have raised it, so nothing changes but when
the request was made. A course confirmed before its early request started is asked in the listing's order
instead (`confirm` answers NOT_ASKED and the early request is withdrawn): early requests only fill what would
otherwise be idle, and the listing's order, which mixes each page's kinds of request, stays the rule.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What one early request returned, or the expected failure it raised."""

    value: T | None = None
    error: Exception | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class Claim:
    """What `EarlyAnswers.confirm` found: NOT_ASKED (ask in the listing's order), PENDING (the early request is
    on its way and will deliver)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NOT_ASKED, PENDING = Claim("NOT_ASKED"), Claim("PENDING")


class EarlyAnswers(Generic[T]):
    """For each key asked early: not started, on its way, answered; and whether the listing confirmed it."""

    def __init__(self, keys: Iterable[int]) -> None:
        self._lock = threading.Lock()
        self._queued = set(keys)              # early request not started yet
        self._on_the_way: set[int] = set()    # started, not answered
        self._confirmed: set[int] = set()     # confirmed while on the way: deliver() hands the answer over
        self._answers: dict[int, Answer[T]] = {}     # answered, not confirmed yet
        self._listing_complete = False
        self.used = 0
        self.dropped = 0                      # answered for a course the listing did not return
        self.withdrawn = 0                    # confirmed before the early request started: asked in order
        self.skipped = 0                      # not asked: the listing was complete without the course by then

    def should_ask(self, key: int) -> bool:
        """Called as the early request would start: False once it is withdrawn, or the listing is complete
        without its course; else it is on its way."""
        with self._lock:
            if key not in self._queued:
                return False
            self._queued.discard(key)
            if self._listing_complete:
                self.skipped += 1
                return False
            self._on_the_way.add(key)
            return True

    def confirm(self, key: int) -> Answer[T] | Claim:
        """The listing returned `key`: its early answer if it is in, PENDING if it is on its way, else NOT_ASKED
        (never asked early, or not started: withdrawn)."""
        with self._lock:
            if key in self._queued:
                self._queued.discard(key)
                self.withdrawn += 1
                return NOT_ASKED
            if key in self._on_the_way:
                self._confirmed.add(key)
                return PENDING
            answer = self._answers.pop(key, None)
            if answer is None:
                return NOT_ASKED
            self.used += 1
            return answer

    def deliver(self, key: int, answer: Answer[T]) -> bool:
        """An early request ended: True when its course is confirmed, so the caller uses the answer now;
        otherwise it is kept for `confirm`, or dropped when the listing is already complete."""
        with self._lock:
            self._on_the_way.discard(key)
            if key in self._confirmed:
                self._confirmed.discard(key)
                self.used += 1
                return True
            if self._listing_complete:
                self.dropped += 1
            else:
                self._answers[key] = answer
            return False

    def complete_listing(self) -> None:
        """Every listing is read: answers not confirmed by now belong to courses no longer listed."""
        with self._lock:
            self._listing_complete = True
            self.dropped += len(self._answers)
            self._answers.clear()
