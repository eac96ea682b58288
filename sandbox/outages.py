"""Outages: windows of seconds during which a host (or several) answers nothing useful.

While a host is down every request it receives, on every route (the OAuth token endpoint included), gets what a
load balancer gives when the application behind it is away: a 502 or 503 HTML page, or a dropped connection. No
public source describes the university's gateway or Instructure's load balancers failing, so the model is the
most demanding plausible one: the three kinds mixed request by request (seeded), the window long enough to
outlast a client's retries, nothing throttled or charged (the request never reached the application), every
failure counted in the server's statistics.

An outage starts in one of three ways: scheduled (`OutageOptions.after_requests`: once that many requests were
received, counted across every server sharing the `OutageWindow`), imperatively (`OutageWindow.begin`, behind
`SimServer.begin_outage` and `Sandbox.outage`), or from the command line (`--outage-after-requests`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

from sandbox.faults import draw
from sandbox.httpapp import Response, html_response


class OutageMode(StrEnum):
    MIXED = "mixed"                  # 502, 503 or a dropped connection, drawn per request (seeded)
    HTTP502 = "502"
    HTTP503 = "503"
    DROP = "drop"                    # the connection is reset without an answer


_MIXED_KINDS = (OutageMode.HTTP502, OutageMode.HTTP503, OutageMode.DROP)


@dataclass(frozen=True)
class OutageOptions:
    after_requests: int | None = None    # scheduled: the outage begins once this many requests were received
    seconds: float = 30.0
    mode: OutageMode = OutageMode.MIXED

    def __post_init__(self) -> None:
        if self.after_requests is not None and self.after_requests < 0:
            raise ValueError("outage after_requests must be >= 0")
        if self.seconds <= 0:
            raise ValueError("outage seconds must be > 0")
        object.__setattr__(self, "mode", OutageMode(self.mode))


class OutageWindow:
    """When the hosts sharing this window are down; thread-safe, clock-injectable, reproducible from the seed."""

    def __init__(self, options: OutageOptions | None = None, seed: int = 42,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options or OutageOptions()
        self._seed = seed
        self._clock = clock
        self._lock = threading.Lock()
        self._received = 0
        self._failed = 0
        self._until: float | None = None
        self._mode = self.options.mode
        self._scheduled = self.options.after_requests is not None

    def begin(self, seconds: float | None = None, mode: OutageMode | str | None = None,
              at: float | None = None) -> None:
        """Take the hosts down now (or from `at`) for `seconds` (default: the options')."""
        length = self.options.seconds if seconds is None else seconds
        if length <= 0:
            raise ValueError("an outage lasts > 0 seconds")
        with self._lock:
            start = self._clock() if at is None else at
            self._until = start + length
            self._mode = self.options.mode if mode is None else OutageMode(mode)

    def observe(self, at: float | None = None) -> OutageMode | None:
        """Count one received request; the kind of failure it gets, or None when the hosts are up.

        The scheduled outage begins right after the `after_requests`-th request (that one is served).
        """
        with self._lock:
            now = self._clock() if at is None else at
            self._received += 1
            if self._scheduled and self._received > (self.options.after_requests or 0):
                self._scheduled = False
                self._until, self._mode = now + self.options.seconds, self.options.mode
            if self._until is None or now >= self._until:
                return None
            self._failed += 1
            if self._mode is not OutageMode.MIXED:
                return self._mode
            return _MIXED_KINDS[int(draw(self._seed, "outage", self._failed) * len(_MIXED_KINDS))]

    def down(self, at: float | None = None) -> bool:
        with self._lock:
            now = self._clock() if at is None else at
            return self._until is not None and now < self._until


def outage_status(kind: OutageMode) -> int | None:
    return {OutageMode.HTTP502: 502, OutageMode.HTTP503: 503}.get(kind)


def outage_response(kind: OutageMode) -> Response | None:
    """What the load balancer answers (None = drop the connection)."""
    status = outage_status(kind)
    if status is None:
        return None
    phrase = HTTPStatus(status).phrase
    return html_response(f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
                         f"<center><h1>{status} {phrase}</h1></center>\r\n</body>\r\n</html>\r\n", status=status)
