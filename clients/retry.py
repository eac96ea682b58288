"""How long one logical request keeps retrying: a time budget, capped exponential backoff, full jitter.

Real failures come in bursts (a deploy, a load-balancer blip, a gateway restart), so a request is not given a
fixed number of attempts but a budget of time: it keeps retrying transient failures and throttled refusals until
it succeeds or `budget_seconds` have passed since its first attempt — and never before it has made
`max_attempts` attempts (MAX_REQ_ATTEMPTS), so a budget spent by one slow timeout still leaves room for retries.
Throttled refusals do not use up attempts (a busy Canvas is not a failure), only time.

`next_retry` is the rule, free of clocks and threads; `RetryBudget` applies it to one request for tenacity, and
`call_with_retries` is the one retry loop every client uses (HTTP requests, Zoom relaunches, Kaltura calls,
BigQuery query runs).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying

from clients.tasks import TaskGroupStopped
from vocab import RetriableSourceError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3            # MAX_REQ_ATTEMPTS: attempts a failing request always gets
    budget_seconds: float = 300.0    # RETRY_BUDGET_SECONDS: then it gives up (rides out a 2-4 minute outage)
    backoff_initial: float = 0.5     # seconds; doubled per failure, full jitter in [50%, 100%]
    backoff_max: float = 30.0
    throttle_initial: float = 1.0    # pause after a refusal without Retry-After; doubled per refusal
    throttle_max: float = 20.0
    retry_after_max: float = 300.0   # never trust a Retry-After longer than this

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.budget_seconds < 0:
            raise ValueError("max_attempts must be >= 1 and budget_seconds >= 0")


@dataclass(frozen=True)
class RetryDecision:
    give_up: bool
    sleep: float = 0.0
    reason: str = ""


def next_retry(policy: RetryPolicy, *, failures: int, refusals: int, elapsed: float, throttled: bool,
               retry_after: float | None, jitter: float) -> RetryDecision:
    """What to do after a failed attempt: `failures`/`refusals` so far (this one included), `elapsed` seconds since
    the first attempt, `jitter` a uniform draw in [0, 1) (the caller's random source)."""
    p = policy
    if retry_after is not None:
        wanted = min(retry_after, p.retry_after_max) + 0.1 * jitter
    elif throttled:
        wanted = min(p.throttle_max, p.throttle_initial * 2 ** (refusals - 1)) * (0.5 + 0.5 * jitter)
    else:
        wanted = min(p.backoff_max, p.backoff_initial * 2 ** (failures - 1)) * (0.5 + 0.5 * jitter)
    if not throttled and failures < p.max_attempts:
        return RetryDecision(False, wanted)              # the minimum attempts come whatever the clock says
    left = p.budget_seconds - elapsed
    if left <= 0:
        return RetryDecision(True, reason=f"retry budget of {p.budget_seconds:.0f}s spent")
    if wanted > left:
        if retry_after is not None:                      # the server says: no use asking before the budget ends
            return RetryDecision(True, reason=f"Retry-After {retry_after:.0f}s exceeds the retry budget left")
        return RetryDecision(False, left)                # one last attempt as the budget ends
    return RetryDecision(False, wanted)


class RetryBudget:
    """One logical request's retry state, as tenacity's retry/stop/wait/before_sleep callbacks."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], rng: random.Random, *,
                 on_retry: Callable[[RetriableSourceError], None] = lambda exc: None) -> None:
        self.policy, self._clock, self._rng, self._on_retry = policy, clock, rng, on_retry
        self._started = clock()
        self.failures = self.refusals = 0
        self._decision = RetryDecision(True)

    @staticmethod
    def _error(state: RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome is not None else None

    def retry(self, state: RetryCallState) -> bool:
        exc = self._error(state)
        if not isinstance(exc, RetriableSourceError):
            return False
        if exc.throttled:
            self.refusals += 1
        else:
            self.failures += 1
        self._decision = next_retry(self.policy, failures=self.failures, refusals=self.refusals,
                                    elapsed=self._clock() - self._started, throttled=exc.throttled,
                                    retry_after=exc.retry_after, jitter=self._rng.random())
        return True

    def wait(self, state: RetryCallState) -> float:
        return self._decision.sleep

    def stop(self, state: RetryCallState) -> bool:
        exc = self._error(state)
        if self._decision.give_up:
            logger.warning("giving up after %d failed attempts and %d throttled refusals in %.0fs (%s): %s",
                           self.failures, self.refusals, self._clock() - self._started, self._decision.reason, exc)
        elif isinstance(exc, RetriableSourceError):
            self._on_retry(exc)          # every retry, refusals included: the caller tells them apart
        return self._decision.give_up

    def before_sleep(self, state: RetryCallState) -> None:
        exc = self._error(state)
        if isinstance(exc, RetriableSourceError) and exc.throttled:
            logger.debug("%s; pausing %.2fs", exc, state.upcoming_sleep)
        else:
            logger.warning("%s; attempt %d failed, retrying in %.2fs", exc, self.failures, state.upcoming_sleep)


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                      on_retry: Callable[[RetriableSourceError], None] = lambda exc: None) -> T:
    """`attempt()` until it returns, retrying a RetriableSourceError while `policy` allows; anything else, and
    the last retriable error, propagate unchanged."""
    budget = RetryBudget(policy, clock, rng or random.Random(), on_retry=on_retry)
    retrying = Retrying(retry=budget.retry, stop=budget.stop, wait=budget.wait, sleep=sleep,
                        before_sleep=budget.before_sleep, reraise=True)
    return retrying(attempt)


def stoppable_sleep(stop: threading.Event | None) -> Callable[[float], None]:
    """A retry pause that ends when the run is being stopped (the runner's `stop` event): the waiting request is
    then abandoned with TaskGroupStopped, which a TaskGroup worker ends on quietly, instead of retrying on
    through its budget while the process is asked to exit."""
    if stop is None:
        return time.sleep

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise TaskGroupStopped
    return sleep
