"""How fast one token's requests may start: paced and bounded so they use Canvas's throttle without refusals.

- `ThrottleController`: the decisions (a start rate steered on the reported X-Rate-Limit-Remaining, a
  concurrency cap derived from it), free of locks and clocks so tests and simulations drive it directly.
- `clients.arrival_gate.ArrivalGate`: once armed, admits starts by forecasting the bucket at each request's arrival
  instead of pacing a rate (`start_verdict` says which of the two decides).
- `AdaptiveLimiter`: the thread-safe gate around both that `clients.http.HttpClient` passes each request through.
- `clients.gate_book.GateBookkeeping`: time spent in flight and waiting (and for what), so a job's summary can say
  what bounded it (`runner.summary`); counters only, it never changes a pacing decision.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from clients.arrival_gate import ArrivalGate
from clients.gate_book import GateBookkeeping, GateMeasurements

logger = logging.getLogger(__name__)


class ThrottleController:
    """The decisions of `AdaptiveLimiter`, without locks or clocks: times come in as arguments.

    State: a start rate (requests per second, paced evenly), the smoothed round trip and the smoothed
    reported remaining; the concurrency cap is derived from them. `AdaptiveLimiter` explains the reasoning.
    Not thread-safe; the limiter calls it under its lock, simulations call it directly.

    Nothing about the bucket is assumed: Canvas's high-water mark, leak and up-front cost can differ per token.
    The up-front cost (what a request in flight holds) is read off the headers. Between two answers close in time
    the count moves by whole reservations, one for each request that arrived or left (a finished request swaps
    its reservation for its cost, which is small beside it), so the jumps of the remaining are multiples of the
    up-front cost; their lower quartile is taken (the single jumps; the leak between the answers is too small to
    count). Refusals bound it from below (canvas-lms request_throttle.rb reserves it before the check, so a
    request is refused at a remaining at or below it): most recent refusals above the jumps mean the jumps read
    low. Until the remaining first jumps, it is taken as `prior_share` of the largest remaining seen (an eighth,
    a little above Canvas's default ratio of 50 to 600) or the second largest remaining a request was refused
    at, whichever is more; the first jump restarts the rate if it shows dearer reservations than that guess. A
    fixed `up_front_cost` may be given instead.

    The margin of the setpoint (`headroom_sigmas`, from 2.0) is itself steered so that refusals make up
    `refusal_target` (0.5 %) of the answers, within `sigma_bounds`: a fixed margin was too cautious on quiet
    workloads and too bold on noisy ones (README, "Benchmarks", has the figures). Each answer moves it by only
    0.025 %, so a run of a few thousand requests keeps it near its start (README says what a start of 1.5 did).
    """

    REFUSAL_CUT = 0.1               # rate cut for a refusal while the average headroom is healthy (a spike)
    CONGESTION_CUT = 0.3            # ...and while it is not, or when the server reports no headroom at all
    CATCH_UP = 1.0                  # starts a late pacer may make up at once (keeps the average rate)
    STEP_WINDOW = 63                # recent jumps of the remaining whose lower quartile is the up-front cost
    STEP_FLOOR_SHARE = 1 / 64       # a jump smaller than this share of the largest remaining is drift
    REFUSAL_WINDOW = 9              # recent refusals whose median remaining bounds it from below...
    REFUSAL_QUORUM = 3              # ...once there are this many: one refusal can read a reservation high

    def __init__(self, ceiling: int, *, initial: int = 2, up_front_cost: float | None = None,
                 prior_share: float = 1 / 8, min_reserves: float = 2.0,
                 headroom_sigmas: float = 2.0, gain: float = 0.125, max_step: float = 0.25,
                 smoothing_rtts: float = 2.0, spread_rtts: float = 8.0, window_slack: float = 2.0,
                 refusal_target: float | None = 0.005, sigma_bounds: tuple[float, float] = (0.5, 4.0),
                 sigma_gain: float = 0.05) -> None:
        if ceiling < 1 or (up_front_cost is not None and up_front_cost <= 0) or not 0 < prior_share < 1 \
                or min_reserves < 1 or headroom_sigmas < 0 or gain <= 0 \
                or not 0 < max_step < 1 or not 0 <= sigma_bounds[0] <= sigma_bounds[1] \
                or (refusal_target is not None and not 0 < refusal_target < 1):
            raise ValueError("need ceiling >= 1, up_front_cost > 0, 0 < prior_share < 1, min_reserves >= 1, "
                             "headroom_sigmas >= 0, "
                             "gain > 0, 0 < max_step < 1, 0 <= low <= high sigma bounds and 0 < refusal_target < 1")
        self.ceiling = ceiling
        self._initial = max(1, min(ceiling, initial))
        self._fixed_up_front, self._prior_share = up_front_cost, prior_share
        self._refused_at: list[float] = []   # the two largest remainings requests were refused at
        self._recent_refusals: deque[float] = deque(maxlen=self.REFUSAL_WINDOW)
        self._refusal_median = 0.0           # ...their median (the up-front cost is read on every answer)
        self._max_remaining = 0.0            # the largest remaining ever reported (about the high-water mark)
        self._last_report: tuple[float, float] | None = None   # (when, remaining) of the latest answer
        self._steps: deque[float] = deque(maxlen=self.STEP_WINDOW)   # recent jumps of the remaining
        self._step_cost: float | None = None   # their lower quartile (None before the first jump)
        self._jump_cost = 0.0                # the up-front cost the start rate was set for
        self._min_reserves, self._sigmas = min_reserves, headroom_sigmas
        self._gain, self._max_step = gain, max_step
        self._smoothing, self._spread_rtts, self._slack = smoothing_rtts, spread_rtts, window_slack
        self._spread = 0.0                   # mean absolute deviation of the remaining from its smoothed value
        self.rate: float | None = None       # starts per second; None until the first answer
        self.srtt: float | None = None       # smoothed round trip of admitted requests, seconds
        self.remaining: float | None = None  # smoothed X-Rate-Limit-Remaining; None while never reported
        self.cuts = 0                        # rate cuts after refusals
        self._remaining_at = 0.0
        self._next_start = -math.inf
        self._started = 0                    # sequence number of the latest start
        self._cut_after = 0                  # refusals of requests started up to here were already answered
        self._demand = False                 # a request waited for the pacer or the cap since the last rise
        self._refusal_target, self._sigma_bounds, self._sigma_gain = refusal_target, sigma_bounds, sigma_gain

    @property
    def limit(self) -> int:
        """Requests allowed in flight: twice what the rate keeps busy over a round trip (+1), within the ceiling."""
        if self.rate is None or self.srtt is None:
            return self._initial
        return max(1, min(self.ceiling, math.ceil(self._slack * self.rate * self.srtt) + 1))

    def start_time(self, now: float) -> float:
        """The earliest time the next request may start (the pacer's; the caller checks the cap)."""
        return now if self.rate is None else max(now, self._next_start)

    def waited(self) -> None:
        """A request could not start at once: the rate, not the workload, is what limits."""
        self._demand = True

    def start(self, now: float, *, paced: bool = True) -> int:
        """Record a start; returns its ticket for `observe`. `paced=False`: admitted by another gate (the arrival
        forecast), so the pacer's schedule is left where it was for when it paces again."""
        self._started += 1
        if paced and self.rate is not None:
            # A start taken late (a thread woke up late) may be made up for, but only CATCH_UP of them.
            self._next_start = max(now - self.CATCH_UP / self.rate, self._next_start) + 1.0 / self.rate
        return self._started

    def observe(self, ticket: int, rtt: float, now: float, *, remaining: float | None, throttled: bool,
                cost: float | None = None) -> None:
        """Account for the answer to the request started with `ticket`, `rtt` seconds after it started."""
        if remaining is None and not throttled and self.remaining is not None:
            return                   # a load balancer's error page, not Canvas: it says nothing about the bucket
        guessed = self._step_cost is None
        self._learn_bucket(remaining, throttled, now)
        if not throttled:            # refusals come back early: they would bias the round trip
            self.srtt = rtt if self.srtt is None else self.srtt + (max(rtt, 0.0) - self.srtt) / 8
        if self.srtt is None:
            return                   # only refusals so far: nothing to pace by yet
        if self.rate is None:
            # Start with as many requests per round trip as the reported headroom holds reservations (on an
            # idle bucket ~10): climbing there from `initial` would leave most of the first second unused.
            # (Only a served answer gets here: refusals never set the round trip this needs.)
            self._jump_cost = self.up_front
            self.rate = max(float(self._initial), self._fits(remaining)) / max(self.srtt, 1e-3)
        elif guessed and self._step_cost is not None and self.up_front > self._jump_cost:
            # The first jump of the remaining shows reservations dearer than the start guessed: start again
            # from what the headroom holds at that price, before the burst sent on the guess is refused.
            self.rate = min(self.rate, max(float(self._initial), self._fits(remaining)) / max(self.srtt, 1e-3))
        if remaining is not None:
            self._smooth(remaining, now)
        self._adapt_sigmas(throttled, remaining)
        if throttled:
            if ticket > self._cut_after:   # sent after the last cut: news, not an echo of the same wave
                healthy = self.remaining is not None and self.remaining >= self.target / 2
                self._scale(math.log1p(-(self.REFUSAL_CUT if healthy else self.CONGESTION_CUT)))
                self._cut_after = self._started
                self.cuts += 1
            return
        step = self._step()
        if step > 0 and not self._demand:
            return                   # the workload, not the rate, limits: growing would only store up a burst
        # Spread the per-round-trip step over the answers of one round trip.
        self._scale(step / max(1.0, self.rate * self.srtt))
        if step > 0:
            self._demand = False

    def _adapt_sigmas(self, throttled: bool, remaining: float | None) -> None:
        # Steer the refused share to `refusal_target`: each refusal widens the margin a little, each answer
        # narrows it a little, balanced exactly when refusals are at the target share.
        if self._refusal_target is None or (remaining is None and not throttled):
            return
        signal = (1.0 - self._refusal_target) if throttled else -self._refusal_target
        low, high = self._sigma_bounds
        self._sigmas = min(max(self._sigmas * math.exp(self._sigma_gain * signal), low), high)

    def _step(self) -> float:
        """The wanted relative change of the rate per round trip (log scale), from the smoothed remaining."""
        if self.remaining is None:                  # no throttle headers (another service): grow while needed
            return self._max_step
        if self.remaining < self.up_front:          # danger zone: not even one reservation of headroom
            return -self._max_step
        target = self.target
        error = (self.remaining - target) / target
        return max(-self._max_step, min(self._max_step, self._gain * error))

    @property
    def up_front(self) -> float:
        """The up-front cost a request in flight holds in the bucket, as far as the headers have told."""
        if self._fixed_up_front is not None:
            return self._fixed_up_front
        if self._step_cost is None:
            # The second largest: one refusal answered just as another request left the server reads too high.
            refused_at = self._refused_at[-1] if self._refused_at else 0.0
            return max(refused_at, self._prior_share * self._max_remaining, 1.0)
        # Refusals come at or below the up-front cost: most recent ones above what the jumps say means the jumps
        # read it low. (Their largest would creep up over a run: a refusal answered as others leave reads high.)
        return max(self._refusal_median, self._step_cost, 1.0)

    @property
    def reservation(self) -> float:
        """The up-front cost as the jumps of the remaining alone read it (`up_front` without the refusals' bound,
        which a drained bucket raises: a refusal then reports the drained part as well)."""
        if self._fixed_up_front is not None or self._step_cost is None:
            return self.up_front
        return max(self._step_cost, 1.0)

    def _fits(self, remaining: float | None) -> float:
        """Reservations beyond the setpoint's floor that a reported remaining holds."""
        return 0.0 if remaining is None else (remaining - self._min_target) / self.up_front

    @property
    def _min_target(self) -> float:
        # Two reservations, but within reach of the largest remaining seen with one request inside: on a small
        # bucket (or a learned up-front cost read a little high) an unreachable floor pins the rate at its minimum.
        floor = self._min_reserves * self.up_front
        return min(floor, self._max_remaining - self.up_front) if self._max_remaining > 2 * self.up_front else floor

    def _learn_bucket(self, remaining: float | None, throttled: bool, now: float) -> None:
        if remaining is None:
            return
        self._max_remaining = max(self._max_remaining, remaining)
        if throttled:
            self._refused_at = sorted([*self._refused_at, remaining], reverse=True)[:2]
            self._recent_refusals.append(remaining)
            # A refusal answered just as another request left the server reports one reservation more than was
            # left when it arrived; alone, it would double the learned cost (and the setpoint) for the rest of
            # the run. The median of three or more is not moved by one such answer.
            if len(self._recent_refusals) >= self.REFUSAL_QUORUM:
                self._refusal_median = statistics.median(self._recent_refusals)
        # Between two answers close in time the bucket's count moves by whole reservations (a request arriving
        # adds one, one finishing swaps its own for a cost that is small beside it) and barely leaks: the jumps
        # of the remaining are multiples of the up-front cost, mostly one of it. Answers further apart than half
        # a round trip are skipped, since the leak between them could pass for a jump.
        last, self._last_report = self._last_report, (now, remaining)
        if last is None or now - last[0] > 0.5 * (self.srtt or 0.1):
            return
        jump = abs(remaining - last[1])
        if jump > self.STEP_FLOOR_SHARE * self._max_remaining:
            self._steps.append(jump)
            self._step_cost = sorted(self._steps)[len(self._steps) // 4]

    @property
    def headroom_sigmas(self) -> float:
        """The current margin of the setpoint, in estimated standard deviations of the remaining."""
        return self._sigmas

    @property
    def target(self) -> float:
        """The setpoint of the smoothed remaining: the refusal line (Canvas refuses a request once remaining is at
        or below its up-front cost) plus `headroom_sigmas` of the remaining's fluctuation; at least `min_reserves`
        up-front costs."""
        # Mean absolute deviation x 1.25 estimates a standard deviation, and one stale sample (after a pause of
        # this process) moves it far less than it would move a variance.
        return max(self._min_target, self.up_front + self._sigmas * 1.25 * self._spread)

    def _smooth(self, remaining: float, now: float) -> None:
        # Time-weighted: a burst of answers at one instant is one observation of the bucket, not many.
        if self.remaining is None:
            self.remaining = remaining
        else:
            elapsed, rtt = max(now - self._remaining_at, 0.0), self.srtt or 0.1
            self.remaining += -math.expm1(-elapsed / (self._smoothing * rtt)) * (remaining - self.remaining)
            # The residual after smoothing: a change the average has followed (the first answer after a
            # quiet spell, when the bucket drained) is not a fluctuation to keep a margin for.
            residual = abs(remaining - self.remaining)
            self._spread += -math.expm1(-elapsed / (self._spread_rtts * rtt)) * (residual - self._spread)
        self._remaining_at = now

    def _scale(self, log_step: float) -> None:
        assert self.rate is not None and self.srtt is not None
        floor = 0.5 / self.srtt               # at least one start per two round trips
        ceiling = 2.0 * self.ceiling / self.srtt   # beyond this the concurrency ceiling binds anyway
        self.rate = min(max(self.rate * math.exp(log_step), floor), ceiling)


GATE_RECHECK = 0.003               # seconds between two looks at the arrival forecast while it holds a start back


@dataclass(frozen=True)
class StartVerdict:
    """Whether the head of the queue may start now, and if not, when to look again (None: at the next answer or
    freed slot). `forecast`: the arrival forecast decided, not the pacer."""

    start: bool
    retry_in: float | None
    forecast: bool


def forecasting(core: ThrottleController, gate: ArrivalGate | None) -> bool:
    """Whether the arrival forecast decides starts: it is armed and the server reports its remaining (Canvas)."""
    return gate is not None and core.remaining is not None and gate.armed


def start_verdict(core: ThrottleController, gate: ArrivalGate | None, now: float, in_flight: int) -> StartVerdict:
    """The start decision of `AdaptiveLimiter` for the head of its queue, free of threads and clocks (simulations
    call it directly). While `forecasting`, the forecast decides alone, below the ceiling; the pacer and the cap
    it derives stand aside. Before that, and for other services, the pacer and its cap decide."""
    if gate is not None and forecasting(core, gate):
        if in_flight >= core.ceiling:
            return StartVerdict(False, None, True)
        if gate.admits(now, core.reservation):
            return StartVerdict(True, None, True)
        return StartVerdict(False, GATE_RECHECK, True)
    if in_flight >= core.limit:
        return StartVerdict(False, None, False)
    delay = core.start_time(now) - now
    return StartVerdict(delay <= 0, delay if delay > 0 else None, False)


def record_start(core: ThrottleController, gate: ArrivalGate | None, kind: str, now: float, *,
                 forecast: bool, size: float | None = None) -> int:
    """Record a start `start_verdict` allowed (`size`: its expected answer, as `ArrivalGate.started` takes it);
    returns its ticket for the answer."""
    ticket = core.start(now, paced=not forecast)
    if gate is not None:
        gate.started(ticket, kind, now, size)
    return ticket


def record_answer(core: ThrottleController, gate: ArrivalGate | None, ticket: int, rtt: float, now: float, *,
                  remaining: float | None, throttled: bool, cost: float | None) -> None:
    """Account for the answer to `ticket` in both the controller and the forecast."""
    core.observe(ticket, rtt, now, remaining=remaining, throttled=throttled)
    if gate is not None:
        gate.answered(ticket, now, remaining=remaining, throttled=throttled, reservation=core.reservation,
                      cost=cost)


class AdaptiveLimiter:
    """Paces and bounds the requests of one token so they use Canvas's throttle budget without being refused.

    Canvas's throttle (canvas-lms app/middleware/request_throttle.rb) is a leaky bucket per token: it leaks
    `outflow` units a second (10 by default), reserves an up-front cost (50) for a request as it arrives and
    refuses it when the level, reservation included, reaches the high-water mark (600), then replaces the
    reservation by the real cost (CPU + DB seconds). All three may differ per token; the limiter learns what it
    needs from the headers (`ThrottleController`). The level thus moves in two ways: fast, by the up-front cost
    per request entering or leaving the server, and slowly, drifting at (cost rate - leak). Only the drift decides
    the sustainable rate: while the level stays below the mark the leak is fully used exactly when the cost rate
    equals the leak, however many requests that takes (the old limit of remaining / 50 requests in flight counted
    the ones still on the network as reserving, which wasted half of the budget). The client sees the `X-Rate-
    Limit-Remaining` (mark - level) of each answer, as it was when the answer left the server (requests sent since
    are not in it), and refusals.

    So the limiter controls a *start rate* and steers it on the reported remaining:
    - Starts are paced evenly at the rate. A window of requests released together arrives together, and
      each extra request inside the server holds the up-front cost; even spacing keeps the number inside close to
      rate x server time, so the level fluctuates far less at the same throughput.
    - The remaining is smoothed over ~2 round trips (one answer is stale and noisy) and steered towards a
      setpoint: one up-front cost (the refusal line) plus a margin of its own fluctuation (mean absolute deviation
      x 1.25, over ~8 round trips; the margin starts at 2.0 and is steered so that 0.5 % of requests are refused),
      and at least two reservations. Above the setpoint the rate rises, below it falls, in proportion to the error
      (at most 25 % per round trip, spread over that round trip's answers; faster growth overshoots, as the
      smoothed remaining lags); it rises only while requests actually wait for it. Because the bucket integrates
      (cost rate - leak), holding the remaining at a setpoint settles at cost rate = leak whatever the costs, the
      latency or the mix of requests, and a setpoint that scales with the observed fluctuation keeps refusals rare
      whether requests are uniform or not.
    - Danger zone (smoothed remaining below one reservation): the rate falls by 25 % per round trip.
    - A refusal cuts the rate at once: by 10 % while the average headroom is healthy (the peak of a
      fluctuation), by 30 % when it is not (the token is congested, e.g. another job started using it).
      Refusals of requests sent before the last cut are the same news and cut nothing more.
    - In flight is capped at twice what the rate keeps busy over a round trip (+1) and at `ceiling`
      (NUM_ASYNC_WORKERS), so a stalled server cannot collect a pile of requests.
    - Once a few answers have been read, the arrival forecast (`clients.arrival_gate`) takes over the starts: the
      pacer's even spacing still lets the number inside move with the mix of requests, while the forecast admits a
      request only while the bucket, forecast for the moment it arrives, holds its reservation beyond a margin. If
      refusals drive that margin to its bound, the forecast gives up and the pacer decides again.
    Every phase of a job shares the token's limiter; other jobs on the same token show up in the remaining
    and the rate yields to them. Without remaining headers (other services) it grows to the ceiling and
    cuts on refusals only; once a server has reported them, an answer without them (a load balancer's error
    page during an outage) is ignored. It starts with `initial` (2) requests until the first answer, as the bucket may
    already be busy and a reservation may be dear (three of Canvas's on a bucket of half its size would fill it).
    `ThrottleController` holds the arithmetic, free of threads and clocks.
    """

    def __init__(self, ceiling: int, *, name: str = "limiter", initial: int = 2,
                 up_front_cost: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._core = ThrottleController(ceiling, initial=initial, up_front_cost=up_front_cost)
        self._gate = ArrivalGate()
        self._clock = clock
        self._lock = threading.Lock()
        self._waiters: deque[threading.Condition] = deque()   # FIFO; only the head waits for the pacer
        self._urgent_waiting = 0                              # the first this many of them are urgent
        self._in_flight = 0
        self._peak = 0
        self._book = GateBookkeeping()

    @property
    def ceiling(self) -> int:
        return self._core.ceiling

    @property
    def limit(self) -> int:
        with self._lock:
            return self._core.limit

    @property
    def rate(self) -> float | None:
        """Starts per second allowed now (None before the first answer)."""
        with self._lock:
            return self._core.rate

    @property
    def remaining(self) -> float | None:
        """The smoothed X-Rate-Limit-Remaining (None while never reported)."""
        with self._lock:
            return self._core.remaining

    @property
    def target(self) -> float:
        """The setpoint the smoothed remaining is steered to."""
        with self._lock:
            return self._core.target

    @property
    def up_front(self) -> float:
        """The up-front cost per request in flight, as learned from the headers."""
        with self._lock:
            return self._core.up_front

    @property
    def headroom_sigmas(self) -> float:
        """The setpoint's current margin, in standard deviations of the remaining."""
        with self._lock:
            return self._core.headroom_sigmas

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """Requests ready to start and held back (by the forecast, the pacer, the cap or the ceiling)."""
        with self._lock:
            return len(self._waiters)

    @property
    def forecast_margin(self) -> float | None:
        """The arrival forecast's margin in reservations while it decides starts (None while it does not)."""
        with self._lock:
            return self._gate.margin if forecasting(self._core, self._gate) else None

    @property
    def forecast(self) -> ArrivalGate:
        """The arrival forecast itself (for diagnostics such as bench/forecast_journal.py; not to be driven)."""
        return self._gate

    @property
    def peak_in_flight(self) -> int:
        with self._lock:
            return self._peak

    def measurements(self) -> GateMeasurements:
        """Time in flight and waiting so far (for the job's summary)."""
        with self._lock:
            self._account(self._clock())
            return self._book.measurements(self.name, self._core.ceiling)

    def _account(self, now: float, *, forecast: bool = False) -> None:
        # Caller holds the lock. Bookkeeping only: what the head of the queue waits for, read off the same state
        # `_acquire` decides on. A start the arrival forecast holds back waits for the throttle's budget, as one
        # the pacer holds back does.
        core, waiting = self._core, ""
        if self._waiters and forecast:
            waiting = "ceiling" if self._in_flight >= core.ceiling else "pacer"
        elif self._waiters:
            if self._in_flight >= core.limit:
                waiting = "ceiling" if core.limit >= core.ceiling else "cap"
            elif core.start_time(now) > now:
                waiting = "pacer"       # (else the head was just woken to start: no wait to blame)
        self._book.update(now, in_flight=self._in_flight, waiting=waiting, remaining=core.remaining,
                          target=core.target if core.remaining is not None else 0.0)

    @contextmanager
    def slot(self, *, urgent: bool = False, kind: str = "", size: float | None = None) -> Iterator[Slot]:
        """Block until a request may start; the caller reports the response through the slot. An `urgent` request
        waits behind earlier urgent ones only. `kind` names the request's endpoint, whose round trips the arrival
        forecast learns; `size`, if known, how large its answer is expected to be (rows: the forecast judges it
        by the round trips of its kind's requests of about its size)."""
        # Urgent requests (GraphQL's follow-up pages) are a round-trip class of their own: one course's next page,
        # not a batch of courses' first pages.
        lane = f"{kind} (urgent)" if urgent else kind
        with self._lock:
            ticket, started = self._acquire(urgent, lane, size)
        try:
            yield Slot(self, ticket, started)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._gate.abandoned(ticket)          # (a no-op once the answer was observed)
                self._account(self._clock())
                self._wake_head()

    def _acquire(self, urgent: bool, kind: str, size: float | None) -> tuple[int, float]:
        # Caller holds the lock. Waiters queue in order (urgent ones ahead of the rest); the head alone watches the
        # pacer and the cap, so a start or a freed slot wakes one thread instead of all of them.
        waiter = threading.Condition(self._lock)
        if urgent:                           # (a head it displaces finds it is no longer the head when it wakes)
            self._waiters.insert(self._urgent_waiting, waiter)
            self._urgent_waiting += 1
        else:
            self._waiters.append(waiter)
        try:
            while True:
                now = self._clock()
                if self._waiters[0] is waiter:
                    verdict = start_verdict(self._core, self._gate, now, self._in_flight)
                    if verdict.start:
                        break
                    forecast, retry_in = verdict.forecast, verdict.retry_in
                else:
                    forecast, retry_in = forecasting(self._core, self._gate), None
                if not forecast:
                    self._core.waited()
                self._account(now, forecast=forecast)
                waiter.wait(retry_in)
        finally:
            self._waiters.remove(waiter)
            if urgent:
                self._urgent_waiting -= 1
            self._wake_head()
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        self._book.starts += 1
        self._account(now)
        return record_start(self._core, self._gate, kind, now, forecast=verdict.forecast, size=size), now

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].notify()

    def _observe(self, ticket: int, started: float, *, remaining: float | None, throttled: bool,
                 cost: float | None = None) -> None:
        with self._lock:
            now = self._clock()
            cuts, before = self._core.cuts, self._core.rate
            gave_up = self._gate.gave_up
            record_answer(self._core, self._gate, ticket, now - started, now, remaining=remaining,
                          throttled=throttled, cost=cost)
            if self._gate.gave_up and not gave_up:
                logger.warning("%s: refusals kept coming with starts admitted by the arrival forecast; pacing by "
                               "rate for the rest of the run", self.name)
            self._book.cost += cost or 0.0
            self._account(now)
            if self._core.cuts != cuts:
                logger.debug("%s throttled: rate %.1f -> %.1f/s, smoothed remaining %s", self.name,
                             before or 0.0, self._core.rate or 0.0, self._core.remaining)
            self._wake_head()


class Slot:
    """One admitted request: report its answer through `observe`."""

    __slots__ = ("_limiter", "_started", "_ticket")

    def __init__(self, limiter: AdaptiveLimiter, ticket: int, started: float) -> None:
        self._limiter, self._ticket, self._started = limiter, ticket, started

    def observe(self, *, remaining: float | None, throttled: bool, cost: float | None = None) -> None:
        self._limiter._observe(self._ticket, self._started, remaining=remaining, throttled=throttled, cost=cost)
