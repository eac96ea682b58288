"""Zoom LTI Pro, reached as a browser reaches it from a Canvas course's Zoom tab (protocol-notes §D).

    zoom = ZoomLtiClient(ZoomSettings.from_env(env))
    with zoom.launch(lambda: fresh_launch_url_from_canvas()) as launch:   # GET page, POST form, read values
        meetings = launch.previous_meetings()                              # every history page

Each launch gets its own `requests.Session` (Zoom ties the scid and XSRF token to that session's cookie). The
launch is not idempotent (Canvas's verifier and the signed nonce are single-use), so a transient failure while
launching starts the whole chain again with a new launch URL instead of re-sending the same request; history
pages are plain GETs and retry like any other call. Neither URLs' query strings nor the scid/XSRF token are
ever logged or put into exception messages.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import requests

from clients.http import (
    AdaptiveLimiter,
    ClientStats,
    HttpClient,
    RetryPolicy,
    Timeouts,
    build_session,
    same_origin,
    sanitize_url,
)
from online_meetings.parse import HistoryPage, LaunchValues, history_page, launch_form, launch_values
from vocab import ConfigError, RetriableSourceError, SourceFormatError

logger = logging.getLogger(__name__)

ZOOM = "zoom"
DEFAULT_BASE_URL = "https://applications.zoom.us"
HISTORY_PATH = "api/v1/lti/rich/meeting/history/COURSE/all"
MAX_HISTORY_PAGES = 1_000                 # a course with more is a paging bug, not data


@dataclass(frozen=True)
class ZoomSettings:
    base_url: str = DEFAULT_BASE_URL
    max_attempts: int = 3
    num_workers: int = 8
    storage_timezone: str = "America/Montreal"   # what Zoom's own page sends
    client_timezone: str = "America/Detroit"     # the zone Zoom renders startTime in
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(connect=10.0, read=60.0))

    @classmethod
    def from_env(cls, env: Mapping[str, Any], *, timeouts: Timeouts | None = None) -> ZoomSettings:
        zoom = env.get("ZOOM") or {}
        base_url = zoom.get("BASE_URL", DEFAULT_BASE_URL) if isinstance(zoom, Mapping) else None
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError("invalid Zoom configuration", details=["ZOOM.BASE_URL: http(s) URL expected"])
        attempts, workers = env.get("MAX_REQ_ATTEMPTS", 3), env.get("NUM_ASYNC_WORKERS", 8)
        for key, value in (("MAX_REQ_ATTEMPTS", attempts), ("NUM_ASYNC_WORKERS", workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError("invalid configuration", details=[f"{key}: integer >= 1 expected"])
        settings = cls(base_url=base_url.rstrip("/"), max_attempts=attempts, num_workers=workers)
        return replace(settings, timeouts=timeouts) if timeouts is not None else settings


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
        """Page 1, then pages 2..ceil(total / pageSize) as page 1 announced them."""
        first = self._page(1)
        yield first
        if first.pages > MAX_HISTORY_PAGES:
            raise SourceFormatError(f"Zoom announces {first.pages} history pages", source=ZOOM)
        for number in range(2, first.pages + 1):
            yield self._page(number)

    def previous_meetings(self) -> list[dict[str, Any]]:
        return [meeting for page in self.history_pages() for meeting in page.meetings]

    def _page(self, number: int) -> HistoryPage:
        s = self._settings
        params = {"page": number, "lti_scid": self._values.scid, "total": 0,
                  "storage_timezone": s.storage_timezone, "client_timezone": s.client_timezone}
        body, _ = self._http.request_json("GET", f"{s.base_url}/{HISTORY_PATH}", kind="zoom history",
                                          limiter=self._limiter, params=params,
                                          headers={"X-XSRF-TOKEN": self._values.xsrf_token})
        return history_page(body)


class ZoomLtiClient:
    """Thread-safe: launches share only the settings, stats and the concurrency limiter."""

    def __init__(self, settings: ZoomSettings, *, policy: RetryPolicy | None = None,
                 session_factory: Callable[[], requests.Session] | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self.policy = policy or RetryPolicy(max_attempts=settings.max_attempts)
        self.limiter = AdaptiveLimiter(settings.num_workers, name="zoom")
        self._session_factory = session_factory or (lambda: build_session(4, keep_cookies=True))
        self._sleep, self._rng = sleep, rng or random.Random()

    def close(self) -> None:
        """Nothing pooled between launches; here for symmetry with the other clients."""

    def __enter__(self) -> ZoomLtiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def launch(self, new_launch_url: Callable[[], str]) -> ZoomLaunch:
        """Launch from a fresh Canvas launch URL; relaunch (new URL) after a transient failure.

        `new_launch_url` asks Canvas for a sessionless launch (its own retries apply). SourceFormatError (no
        form, no values) and fatal statuses are not retried: the same page would come back.
        """
        failures = 0
        while True:
            url = new_launch_url()
            try:
                return self._launch_once(url)
            except RetriableSourceError as exc:
                failures += 1
                if failures >= self.policy.max_attempts:
                    raise
                self.stats.record_retry()
                wait = min(self.policy.backoff_max, self.policy.backoff_initial * 2 ** (failures - 1))
                wait *= self._rng.uniform(0.5, 1.0)
                logger.warning("%s; launch attempt %d of %d failed, relaunching in %.2fs", exc, failures,
                               self.policy.max_attempts, wait)
                self._sleep(wait)

    def _launch_once(self, url: str) -> ZoomLaunch:
        session = self._session_factory()
        # Inside one launch nothing is re-sent: a retry would replay a used verifier or nonce.
        once = HttpClient(ZOOM, policy=replace(self.policy, max_attempts=1), timeouts=self.settings.timeouts,
                          session=session, stats=self.stats, sleep=self._sleep, rng=self._rng)
        try:
            page = once.request("GET", url, kind="lti launch page")
            form = launch_form(page.text, page.url or url)
            if form is None or form.method != "POST":
                raise SourceFormatError(f"no LTI launch form on {sanitize_url(url)}", source=ZOOM,
                                        url=sanitize_url(url))
            if not same_origin(form.action, self.settings.base_url):
                raise SourceFormatError(f"launch form posts to {sanitize_url(form.action)}, not to the configured "
                                        f"ZOOM.BASE_URL {sanitize_url(self.settings.base_url)}", source=ZOOM)
            answer = once.request("POST", form.action, kind="lti launch", limiter=self.limiter, data=form.fields)
            values = launch_values(answer.text)
            if values is None:
                raise SourceFormatError(f"Zoom page from {sanitize_url(form.action)} has no scid/XSRF token",
                                        source=ZOOM, url=sanitize_url(form.action))
        except BaseException:
            session.close()
            raise
        http = HttpClient(ZOOM, policy=self.policy, timeouts=self.settings.timeouts, session=session,
                          stats=self.stats, sleep=self._sleep, rng=self._rng)
        return ZoomLaunch(http, self.settings, values, self.limiter)
