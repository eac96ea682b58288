"""How long one logical request keeps retrying: a time budget, capped exponential backoff, full jitter.

Real failures come in bursts (a deploy, a load-balancer blip, a gateway restart), so a request is not given a
fixed number of attempts but a budget of time: it keeps retrying transient failures and throttled refusals until
it succeeds or `budget_seconds` have passed since its first attempt — and never before it has made
`max_attempts` attempts (MAX_REQ_ATTEMPTS), so a budget spent by one slow timeout still leaves room for retries.
Throttled refusals do not use up attempts (a busy Canvas is not a failure), only time.

`next_retry` is the rule, free of clocks and threads; `RetryBudget` applies it to one request for tenacity, and
`call_with_retries` is the one retry loop every client uses (HTTP requests, Zoom relaunches, Kaltura calls,
BigQuery query runs).

Reporting: each retry is counted in a `clients.rollup.RequestRollup` under its endpoint kind and reason (one line
per kind per interval at INFO/WARNING, see `clients.rollup`); each attempt's detail is logged at DEBUG; giving up
logs one WARNING.
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

from clients.rollup import ROLLUP, RequestRollup
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


def retry_reason(exc: RetriableSourceError) -> str:
    """What a retried failure was, for counting: 'throttled', the HTTP status, 'invalid JSON', or the class of
    the transport error or library exception (pure; never a message, which may quote a URL)."""
    if exc.throttled:
        return "throttled"
    if exc.message.endswith("invalid JSON body"):
        return "invalid JSON"
    if exc.status is not None and exc.status >= 400:
        return str(exc.status)
    if exc.__cause__ is not None:
        return type(exc.__cause__).__name__
    return exc.message.rpartition(": ")[2][:40] or type(exc).__name__


class RetryBudget:
    """One logical request's retry state, as tenacity's retry/stop/wait/before_sleep callbacks."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float], rng: random.Random, *,
                 on_retry: Callable[[RetriableSourceError], None] = lambda exc: None, kind: str = "",
                 rollup: RequestRollup = ROLLUP, started: float | None = None) -> None:
        self.policy, self._clock, self._rng, self._on_retry = policy, clock, rng, on_retry
        self._kind, self._rollup = kind, rollup
        self._started = clock() if started is None else started   # when the first attempt began
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

    def _kind_of(self, exc: BaseException | None) -> str:
        return self._kind or getattr(exc, "source", "") or "request"

    def stop(self, state: RetryCallState) -> bool:
        exc = self._error(state)
        if self._decision.give_up:
            self._rollup.gave_up(self._kind_of(exc))
            logger.warning("%s: giving up after %d failed attempts and %d throttled refusals in %.0fs (%s): %s",
                           self._kind_of(exc), self.failures, self.refusals, self._clock() - self._started,
                           self._decision.reason, exc)
        elif isinstance(exc, RetriableSourceError):
            if exc.throttled:
                self._rollup.throttled(self._kind_of(exc))
            else:
                self._rollup.retried(self._kind_of(exc), retry_reason(exc))
            self._on_retry(exc)          # every retry, refusals included: the caller tells them apart
        return self._decision.give_up

    def before_sleep(self, state: RetryCallState) -> None:
        exc = self._error(state)
        if isinstance(exc, RetriableSourceError) and exc.throttled:
            logger.debug("%s; pausing %.2fs", exc, state.upcoming_sleep)
        else:   # rolled up per kind and interval at INFO (clients.rollup); the detail stays at DEBUG
            logger.debug("%s; attempt %d failed, retrying in %.2fs", exc, self.failures, state.upcoming_sleep)


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                      on_retry: Callable[[RetriableSourceError], None] = lambda exc: None, kind: str = "",
                      rollup: RequestRollup = ROLLUP) -> T:
    """`attempt()` until it returns, retrying a RetriableSourceError while `policy` allows; anything else, and
    the last retriable error, propagate unchanged. Retries are counted in `rollup` under `kind` (the endpoint
    kind, e.g. "canvas analytics"; the error's source when not given)."""
    # Most calls succeed at once, and a tenacity loop costs ~50 us a call: it starts at the first failure, which
    # it is handed as its first attempt, so the budget counts it and its time as before.
    started = clock()
    try:
        return attempt()
    except RetriableSourceError as exc:
        first_failure: RetriableSourceError | None = exc
    budget = RetryBudget(policy, clock, rng or random.Random(), on_retry=on_retry, kind=kind, rollup=rollup,
                         started=started)

    def replay_then_attempt() -> T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return attempt()

    retrying = Retrying(retry=budget.retry, stop=budget.stop, wait=budget.wait, sleep=sleep,
                        before_sleep=budget.before_sleep, reraise=True)
    return retrying(replay_then_attempt)


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
