"""Zoom LTI Pro, reached as a browser reaches it from a Canvas course's Zoom tab.

    zoom = ZoomLtiClient(zoom_settings(env))                                # source_settings.zoom_settings
    history = zoom.previous_meetings(lambda: fresh_launch_url_from_canvas())   # launch, then every history page

Each launch gets its own `requests.Session` (Zoom ties the scid and XSRF token to that session's cookie). A launch
is not idempotent: Canvas's verifier is single-use (canvas-lms external_tools_controller.rb,
`fetch_and_delete_launch`) and the signed form carries a single-use nonce. So the page GET and the history GETs
retry like any other request, but the form POST is never re-sent: when it fails transiently, or when a step
answers that the launch is spent (the launch page 404/401, Zoom 401 for a used nonce or an expired session), the
whole chain starts again from a fresh launch URL — under the same time budget as every other retry. Neither URLs'
query strings nor the scid/XSRF token are ever logged or put into exception messages.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from clients.http import HttpClient, Timeouts, build_session, same_origin, sanitize_url
from clients.limiter import AdaptiveLimiter
from clients.retry import RetryPolicy, call_with_retries
from clients.stats import ClientStats
from clients.zoom_pages import HistoryPage, LaunchValues, NoLaunch, history_page, launch_form, launch_values
from vocab import FatalSourceError, RetriableSourceError, SourceError

logger = logging.getLogger(__name__)

ZOOM = "zoom"
HISTORY_PATH = "api/v1/lti/rich/meeting/history/COURSE/all"
MAX_HISTORY_PAGES = 1_000                 # a course with more is a paging bug, not data
SPENT_STATUSES = frozenset({401, 404})    # a launch (verifier, nonce, session) that can no longer be used


@dataclass(frozen=True)
class ZoomSettings:
    """What the client needs; a job builds it from the configuration (source_settings.zoom_settings)."""

    base_url: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    num_workers: int = 8
    storage_timezone: str = "America/Montreal"   # what Zoom's own page sends
    client_timezone: str = "America/Detroit"     # the zone Zoom renders startTime in
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(connect=10.0, read=60.0))


@dataclass(frozen=True)
class MeetingHistory:
    meetings: list[dict[str, Any]]
    announced_total: int                  # what Zoom's first page said; checked, never trusted for paging


class ZoomLaunch:
    """One launched LTI session: its cookie jar plus the page's scid and XSRF token. Close it when done."""

    def __init__(self, http: HttpClient, settings: ZoomSettings, values: LaunchValues,
                 limiter: AdaptiveLimiter | None) -> None:
        self._http, self._settings, self._values, self._limiter = http, settings, values, limiter

    def __enter__(self) -> ZoomLaunch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def history_pages(self) -> Iterator[HistoryPage]:
        """Pages 1, 2, ... until one comes back empty or shorter than its page size (at most MAX_HISTORY_PAGES).

        Zoom's `total` is not trusted for paging: a page may hold more items than the total announces.
        """
        for number in range(1, MAX_HISTORY_PAGES + 1):
            page = self._page(number)
            yield page
            if len(page.meetings) < page.page_size:
                return
        raise FatalSourceError(f"Zoom meeting history goes on past {MAX_HISTORY_PAGES} pages", source=ZOOM)

    def previous_meetings(self) -> MeetingHistory:
        meetings: list[dict[str, Any]] = []
        total = None
        for page in self.history_pages():
            total = page.total if total is None else total
            meetings.extend(page.meetings)
        return MeetingHistory(meetings, total or 0)

    def _page(self, number: int) -> HistoryPage:
        s = self._settings
        params = {"page": number, "lti_scid": self._values.scid, "total": 0,
                  "storage_timezone": s.storage_timezone, "client_timezone": s.client_timezone}
        body, _ = self._http.request_json("GET", f"{s.base_url}/{HISTORY_PATH}", kind="zoom history",
                                          limiter=self._limiter, params=params,
                                          headers={"X-XSRF-TOKEN": self._values.xsrf_token})
        return history_page(body)


class _LaunchSpent(RetriableSourceError):
    """A step said this launch can no longer be used; a fresh one may succeed."""


class ZoomLtiClient:
    """Thread-safe: launches share only the settings, stats and the concurrency limiter."""

    def __init__(self, settings: ZoomSettings, *, policy: RetryPolicy | None = None,
                 session_factory: Callable[[], requests.Session] | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self.policy = policy or settings.policy
        self.limiter = AdaptiveLimiter(settings.num_workers, name="zoom")
        self.stats.attach_gate(self.limiter)
        self._session_factory = session_factory or (lambda: build_session(4, keep_cookies=True))
        self._sleep, self._clock, self._rng = sleep, clock, rng or random.Random()

    def close(self) -> None:
        """Nothing pooled between launches; here for symmetry with the other clients."""

    def __enter__(self) -> ZoomLtiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def previous_meetings(self, new_launch_url: Callable[[], str]) -> MeetingHistory:
        """Launch from a fresh Canvas launch URL and read every history page; relaunch after a transient failure.

        `new_launch_url` asks Canvas for a sessionless launch (its own retries apply). NoLaunch (no form, no
        values) is not retried: the same page would come back. A spent launch is relaunched at most
        `max_attempts` times (a misconfigured consumer key would otherwise be retried for the whole budget).
        """
        spent, started = 0, self._clock()

        def attempt() -> MeetingHistory:
            nonlocal spent
            # The requests inside share what is left of this launch's budget, so retries never nest.
            left = max(0.0, self.policy.budget_seconds - (self._clock() - started))
            url = new_launch_url()           # Canvas's own errors are not a spent launch
            try:
                with self._launch(url, replace(self.policy, budget_seconds=left)) as launch:
                    return launch.previous_meetings()
            except FatalSourceError as exc:
                if exc.status not in SPENT_STATUSES or spent + 1 >= self.policy.max_attempts:
                    raise
                spent += 1
                raise _LaunchSpent(f"{exc}; launching again", source=ZOOM, status=exc.status, url=exc.url) from exc

        return call_with_retries(attempt, self.policy, sleep=self._sleep, clock=self._clock, rng=self._rng,
                                 on_retry=lambda exc: self.stats.record_retry())

    def _launch(self, url: str, policy: RetryPolicy) -> ZoomLaunch:
        session = self._session_factory()
        common: dict[str, Any] = dict(timeouts=self.settings.timeouts, session=session, stats=self.stats,
                                      sleep=self._sleep, clock=self._clock, rng=self._rng)
        http = HttpClient(ZOOM, policy=policy, **common)
        once = HttpClient(ZOOM, policy=replace(policy, max_attempts=1, budget_seconds=0), **common)
        try:
            page = http.request("GET", url, kind="lti launch page")
            form = launch_form(page.text, page.url or url)
            if form is None or form.method != "POST":
                raise NoLaunch(f"no LTI launch form on {sanitize_url(url)}", source=ZOOM, url=sanitize_url(url))
            if not same_origin(form.action, self.settings.base_url):
                raise SourceError(f"launch form posts to {sanitize_url(form.action)}, not to the configured "
                                  f"ZOOM.BASE_URL {sanitize_url(self.settings.base_url)}", source=ZOOM)
            # Never re-sent (single-use nonce); Zoom may redirect within its own site, as a browser would follow.
            answer = once.request("POST", form.action, kind="lti launch", limiter=self.limiter, data=form.fields,
                                  same_origin_redirects=3)
            values = launch_values(answer.text)
            if values is None:
                raise NoLaunch(f"Zoom page from {sanitize_url(form.action)} has no scid/XSRF token",
                               source=ZOOM, url=sanitize_url(form.action))
        except BaseException:
            session.close()
            raise
        return ZoomLaunch(http, self.settings, values, self.limiter)
