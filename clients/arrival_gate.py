"""A start gate that forecasts the throttle's count at the moment a request would reach Canvas.

`clients.limiter.ThrottleController` paces a start *rate*. At a steady rate the number of requests inside the
server still fluctuates with the mix of short and long requests, and the margin that fluctuation needs is budget
left unused (README, "Benchmarks"). This gate looks at the requests in flight one by one instead, and admits a
start only while the bucket, as forecast for the moment the new request arrives, has room for its reservation.

canvas-lms app/middleware/request_throttle.rb: a request reserves an up-front cost as it arrives, the reservation
is replaced by its cost when it leaves, and it is refused when the count, reservation included, reaches the
high-water mark; `X-Rate-Limit-Remaining` is the mark less the count as the answer left. So the count is one
reservation per request inside plus what the charged costs left after leaking (plus whatever other clients of the
token hold), and the gate keeps:

- **the free bucket**, the mark less everything but this client's reservations: each answer's remaining plus one
  reservation per other request in flight that started at least a network time before the answer arrived (those
  were inside when it left). It moves slowly. A request whose answer this process has not read yet, though the
  server sent it, is counted as still inside, so single readings err high; the second lowest of recent ones is
  used.
- **the network time**, the time a round trip spends outside the server, both ways together. The line it draws
  between requests that were inside when an answer left and the ones still on their way in is right when the
  free bucket read off consecutive answers is steadiest (a wrong line counts the requests started near it on the
  wrong side, and the reading jumps by their reservations): each of a range of candidates is scored so. Where the
  charged cost is the time a request holds its reservation (the sandbox), the round trip less that cost gives the
  network time far finer than the scores can, and is used while its line scores about as steady as the best;
  on Canvas the charge is CPU and database time only, that line scores rougher, and the steadiest is used.
- **per request kind, recent round trips**: a request that has been out `e` seconds is still unanswered `e + h`
  seconds after its start with the share of those round trips longer than `e + h` among those longer than `e`.
  A request started with a `size` (the rows it is expected to return: a GraphQL page of several courses' rosters
  costs from one to twenty pages' worth) is judged by the round trips of the requests of its kind nearest to it in
  size, so a large page out as long as small ones take is not forecast to leave with them.

A request started now arrives one inward trip later. The requests inside then are those in flight now whose
answers come more than a network time from now, in and out (the outward trip of theirs stands for the inward
trip of the new one, so how the network time splits between the directions drops out). It is admitted while
the free bucket less the reservations forecast inside, its own included, stays above a margin, in reservations,
that refusals steer to `refusal_target` of the answers as `ThrottleController` steers its own. Should the margin
reach its upper bound, the forecast is not working for this token and the gate gives up (`gave_up`): the caller
paces by rate again.

Until the network time and the free bucket are known (a few answers), the gate is not armed and the caller paces
as before; a request of a kind with too few round trips yet is forecast inside until it is answered. Clock-free
and not thread-safe: `clients.limiter.AdaptiveLimiter` calls it under its lock with its own times (seconds).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np


class RoundTrips:
    """A window of recent durations kept sorted: one request kind's round trips, for survival shares (and the
    round trips less their charges, for a quantile). Each may carry the size of its request (`nearest`)."""

    __slots__ = ("_recent", "_sizes", "_sorted", "version")

    def __init__(self, window: int) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._sizes: deque[float | None] = deque(maxlen=window)
        self._sorted: list[float] = []
        self.version = 0                     # counts additions, so a view of the window knows it is stale

    def add(self, rtt: float, size: float | None = None) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._sorted.pop(bisect.bisect_left(self._sorted, self._recent[0]))
        self._recent.append(rtt)
        self._sizes.append(size)
        bisect.insort(self._sorted, rtt)
        self.version += 1

    def nearest(self, size: float, count: int) -> RoundTrips | None:
        """The round trips of the `count` sized requests nearest to `size` (by ratio), or None while fewer than
        `count` requests carried a size."""
        sized = [(abs(math.log(other / size)), rtt) for other, rtt in zip(self._sizes, self._recent, strict=True)
                 if other is not None]
        if len(sized) < count:
            return None
        view = RoundTrips(count)
        for _, rtt in heapq.nsmallest(count, sized):
            view.add(rtt)
        return view

    def __len__(self) -> int:
        return len(self._sorted)

    def quantile(self, share: float) -> float:
        """The value `share` of the way up the sorted window (which must not be empty)."""
        return self._sorted[int(len(self._sorted) * share)]

    def still_out(self, elapsed: float, later: float) -> float:
        """The share of the round trips longer than `elapsed` that are longer than `later` too."""
        longer = len(self._sorted) - bisect.bisect_right(self._sorted, elapsed)
        if longer == 0:
            return 1.0          # out longer than any recent answer: a stall, or the kind changed; count it inside
        return (len(self._sorted) - bisect.bisect_right(self._sorted, later)) / longer


@dataclass
class _Flight:
    kind: str
    started: float
    size: float | None = None
    neighbours: tuple[int, RoundTrips] | None = None    # (the window's version, round trips of its size)


class ArrivalGate:
    """Forecasts the count a start would meet at the bucket; `admits` says whether it fits."""

    COMPARE_WITHIN = 0.05         # consecutive answers further apart than this are not compared (leak, drift)
    SCORE_ANSWERS = 64            # answers each candidate network time's score is averaged over
    QUICK_ANSWERS = 8             # compared answers before the charged cost's network time is used...
    CONFIRM_ANSWERS = 32          # ...and before its line's score may reject it
    STEADIEST_ANSWERS = 96        # ...before the steadiest candidate is trusted on its own
    LAG_ALLOWANCE = 1.05          # ...and is no longer than this times the shortest round trip (+ 2 ms)
    AGREEMENT = 1.25              # the charged cost's line is kept while it scores within this factor of the best
    SCORE_NOISE = 0.05            # ...plus this (reservations per answer)
    MIN_ROUND_TRIPS = 4           # round trips of a kind before its requests are forecast (else: inside)
    SIZE_NEIGHBOURS = 12          # round trips of the nearest sizes a sized request is forecast by
    FREE_READINGS = 16            # recent readings of the free bucket, whose second lowest is used

    def __init__(self, *, window: int = 96, margin: float = 0.5, refusal_target: float = 0.005,
                 margin_step: float = 0.2, margin_bounds: tuple[float, float] = (-2.0, 4.0)) -> None:
        if not 0 < refusal_target < 1 or margin_step <= 0 or not margin_bounds[0] <= margin <= margin_bounds[1]:
            raise ValueError("need 0 < refusal_target < 1, margin_step > 0 and the margin within its bounds")
        self._window = window
        self._flights: dict[int, _Flight] = {}
        self._trips: dict[str, RoundTrips] = {}
        self._uncharged = RoundTrips(window)  # round trip less the charged cost, per answer
        self._shortest = float("inf")        # no network time is longer than any round trip
        self._latency: float | None = None
        # Candidate network times 1 % apart from 0.5 ms to 2 s, each scored by the mean jump (in reservations)
        # of the free bucket read with it off consecutive answers.
        self._candidates = np.concatenate(([0.0], np.geomspace(0.0005, 2.0, 835)))
        self._scores = np.zeros_like(self._candidates)
        self._previous: tuple[float, np.ndarray] | None = None
        self._compared = 0
        self._free: deque[float] = deque(maxlen=self.FREE_READINGS)
        self.free: float | None = None       # the free bucket, in the remaining's units
        self.margin = margin                 # in reservations (negative: the forecast reads high on average)
        self.gave_up = False
        self._refusal_target, self._margin_step, self._margin_bounds = refusal_target, margin_step, margin_bounds

    @property
    def latency(self) -> float | None:
        """The network time, both ways (seconds); None until learned."""
        return self._latency

    @property
    def armed(self) -> bool:
        """Whether starts can be forecast: the network time and the free bucket are known. (Requests of a kind
        with too few round trips yet are forecast inside until answered.)"""
        return not self.gave_up and self._latency is not None and self.free is not None

    def started(self, ticket: int, kind: str, now: float, size: float | None = None) -> None:
        """A request admitted at `now`; `size` (> 0), if known, is how large its answer is expected to be, in any
        unit its kind keeps to (rows, say)."""
        self._flights[ticket] = _Flight(kind, now, size if size is not None and size > 0 else None)

    def abandoned(self, ticket: int) -> None:
        """A request that ended without an answer (a transport error): it tells nothing."""
        self._flights.pop(ticket, None)

    def answered(self, ticket: int, now: float, *, remaining: float | None, throttled: bool,
                 reservation: float, cost: float | None = None) -> None:
        """The answer to `ticket`: its `X-Rate-Limit-Remaining`, whether it was a refusal, the up-front cost as
        learned so far and, when served, its `X-Request-Cost` (seconds)."""
        flight = self._flights.pop(ticket, None)
        if flight is None or remaining is None:
            return                           # (no remaining: a load balancer's page, not Canvas's round trip)
        rtt = max(now - flight.started, 0.0)
        self._shortest = min(self._shortest, rtt)
        if not throttled:                    # refusals come back early: they are not the kind's round trip
            self._trips.setdefault(flight.kind, RoundTrips(self._window)).add(rtt, flight.size)
            if cost is not None:
                self._uncharged.add(max(rtt - cost, 0.0))
        starts = np.sort(np.fromiter((other.started for other in self._flights.values()), float))
        self._score(now, remaining, reservation, starts)
        self._choose_latency()
        if self._latency is not None:
            inside = int(np.searchsorted(starts, now - self._latency, side="right"))
            self._free.append(remaining + reservation * inside)
            self.free = sorted(self._free)[min(1, len(self._free) - 1)]
        self._steer_margin(throttled)

    def _score(self, now: float, remaining: float, reservation: float, starts: np.ndarray) -> None:
        # `starts`: of the other requests in flight, sorted.
        inside = remaining / reservation + np.searchsorted(starts, now - self._candidates, side="right")
        previous, self._previous = self._previous, (now, inside)
        if previous is not None and now - previous[0] <= self.COMPARE_WITHIN:
            self._scores += (np.abs(inside - previous[1]) - self._scores) / self.SCORE_ANSWERS
            self._compared += 1

    def _choose_latency(self) -> None:
        if self._compared < self.QUICK_ANSWERS:
            return
        possible = int(np.searchsorted(self._candidates, self._shortest, side="right"))
        if not possible:
            return
        scores = self._scores[:possible]
        best = int(np.argmin(scores))
        if len(self._uncharged):
            # A low quantile: this process's own delays only ever lengthen a round trip. It cannot exceed the
            # shortest round trip (a refusal's, often) but by that lag; and its line is rejected only once enough
            # answers have been compared for the scores to tell lines apart.
            uncharged = self._uncharged.quantile(0.1)
            above = min(int(np.searchsorted(self._candidates, uncharged)), possible - 1)
            bracket = scores[max(above - 1, 0):above + 1].min()      # the candidates on either side of it
            plausible = uncharged <= self.LAG_ALLOWANCE * self._shortest + 0.002
            steady = self._compared < self.CONFIRM_ANSWERS \
                or bracket <= self.AGREEMENT * scores[best] + self.SCORE_NOISE
            if plausible and steady:
                self._latency = uncharged
                return
        self._latency = float(self._candidates[best]) if self._compared >= self.STEADIEST_ANSWERS else None

    def _steer_margin(self, throttled: bool) -> None:
        # Each refusal widens the margin, each served answer narrows it, balanced at the target share.
        signal = (1.0 - self._refusal_target) if throttled else -self._refusal_target
        low, high = self._margin_bounds
        self.margin = min(max(self.margin + self._margin_step * signal, low), high)
        if self.margin >= high:
            self.gave_up = True

    def forecast_inside(self, now: float) -> float:
        """This client's requests forecast to be inside the server when a request started now arrives."""
        assert self._latency is not None
        inside = 0.0
        for flight in self._flights.values():
            trips = self._trips.get(flight.kind)
            if trips is None or len(trips) < self.MIN_ROUND_TRIPS:
                inside += 1.0                # nothing to forecast by: inside until answered
                continue
            if flight.size is not None:
                trips = self._sized(flight, trips)
            elapsed = now - flight.started
            inside += trips.still_out(elapsed, elapsed + self._latency)
        return inside

    def _sized(self, flight: _Flight, trips: RoundTrips) -> RoundTrips:
        # The round trips of its nearest sizes, looked up again only once the kind's window has moved on.
        assert flight.size is not None
        if flight.neighbours is None or flight.neighbours[0] != trips.version:
            flight.neighbours = (trips.version, trips.nearest(flight.size, self.SIZE_NEIGHBOURS) or trips)
        return flight.neighbours[1]

    def admits(self, now: float, reservation: float) -> bool:
        """Whether a request started now fits: the free bucket less the reservations forecast inside, its own
        included, stays above the margin. Call only while `armed`."""
        assert self.free is not None
        return self.free - reservation * (self.forecast_inside(now) + 1.0) > reservation * self.margin
