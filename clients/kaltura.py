"""Kaltura API client: an ADMIN session and media.list paging past the 10,000-match limit.

Wraps the real `KalturaClient` library (KalturaApiClient on PyPI: JSON requests, XML answers). The library has
no usable retry of its own (it wraps transport errors before its retry decorator sees them), so `_call` runs
each call through the shared policy (`clients.retry.call_with_retries`), and its posts never follow a redirect.
Secrets stay out of logs: the library is given no logger (it would log the request JSON, secret and KS
included), and Kaltura's own error messages are only repeated for codes that cannot carry a KS.

Paging: media.list refuses offsets at or beyond 10,000 matches (`QUERY_EXCEEDED_MAX_MATCHES_ALLOWED`).
`iter_media_pages` then restarts at page 1 with the lower bound moved to the newest createdAt seen and the
ids already seen at exactly that second excluded (`idNotIn`), so no entry is skipped or repeated.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaClientException, KalturaException
from KalturaClient.Plugins.Core import (
    KalturaDetachedResponseProfile,
    KalturaFilterPager,
    KalturaMediaEntryFilter,
    KalturaMediaEntryOrderBy,
    KalturaResponseProfileType,
    KalturaSessionType,
)

from clients.retry import RetryPolicy, call_with_retries
from vocab import FatalSourceError, RetriableSourceError, SourceError, SourceFormatError

logger = logging.getLogger(__name__)

SOURCE = "kaltura"
MAX_PAGE_SIZE = 500
MAX_MATCHES = 10_000                     # Kaltura's search stops at this offset
MAX_MATCHES_CODE = "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED"
# Only what the job stores: a full entry has ~50 fields, and parsing them dominates the client's time.
ENTRY_FIELDS = ("id", "name", "createdAt", "duration", "categories")
_SESSION_CODES = frozenset({"INVALID_KS", "MISSING_KS", "EXPIRED_KS"})
# Codes whose message may quote the KS or a secret: report the code only.
_UNQUOTABLE_CODES = _SESSION_CODES | {"START_SESSION_ERROR"}


@dataclass(frozen=True)
class KalturaSettings:
    service_url: str
    partner_id: int
    secret: str = field(repr=False)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    request_timeout_s: int = 120
    session_seconds: int = 6 * 3600          # asked-for KS lifetime; renewed a little before it runs out
    renew_margin_s: int = 300


class MaxMatchesExceeded(Exception):
    """Kaltura will not page further in this query (offset >= 10,000 matches)."""


@dataclass(frozen=True)
class MediaPage:
    entries: list[dict[str, Any]]      # id, name, createdAt, duration, categories (Kaltura's field names)
    total_count: int | None


class KalturaMediaClient:
    """One partner's media entries through `KalturaApiClient`, with retries and session renewal."""

    def __init__(self, settings: KalturaSettings, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings, self._sleep, self._clock = settings, sleep, clock
        config = KalturaConfiguration(serviceUrl=settings.service_url.rstrip("/"))
        config.requestTimeout = settings.request_timeout_s
        self._client = _NoRedirectKalturaClient(config)
        self._client.setResponseProfile(KalturaDetachedResponseProfile(
            type=KalturaResponseProfileType.INCLUDE_FIELDS, fields=",".join(ENTRY_FIELDS)))
        self._session_renew_at: float | None = None
        self._needs_new_session = False
        self._rng = random.Random()
        self.calls = 0
        self.restarts = 0

    # ---- sessions
    def _ensure_session(self, *, force: bool = False) -> None:
        if not force and self._session_renew_at is not None and self._clock() < self._session_renew_at:
            return
        s = self._settings
        ks = self._call("session.start", lambda: self._client.session.start(
            s.secret, "", KalturaSessionType.ADMIN, s.partner_id, s.session_seconds), with_session=False)
        self._client.setKs(ks)
        self._needs_new_session = False
        self._session_renew_at = self._clock() + max(s.session_seconds - s.renew_margin_s, 1)
        logger.info("Kaltura ADMIN session opened for partner %d", s.partner_id)

    # ---- media.list
    def list_media_page(self, *, created_from: int, categories_full_name_in: str, exclude_ids: Collection[str],
                        page_index: int, page_size: int = MAX_PAGE_SIZE) -> MediaPage:
        """One media.list page, ordered by createdAt ascending; raises MaxMatchesExceeded at the cap."""
        media_filter = KalturaMediaEntryFilter()
        media_filter.createdAtGreaterThanOrEqual = created_from
        media_filter.categoriesFullNameIn = categories_full_name_in
        media_filter.orderBy = KalturaMediaEntryOrderBy.CREATED_AT_ASC
        if exclude_ids:
            media_filter.idNotIn = ",".join(sorted(exclude_ids))
        pager = KalturaFilterPager(pageSize=page_size, pageIndex=page_index)
        result = self._call("media.list", lambda: self._client.media.list(media_filter, pager))
        objects = getattr(result, "objects", None)
        if objects is None or any(item is None for item in objects):
            raise SourceFormatError("Kaltura media.list answered without a media list", source=SOURCE)
        entries = [_entry_dict(item) for item in objects]
        if any(not isinstance(e["id"], str) or not isinstance(e["createdAt"], int) for e in entries):
            raise SourceFormatError("Kaltura media.list returned an entry without id or createdAt", source=SOURCE)
        total = getattr(result, "totalCount", None)
        return MediaPage(entries, total if isinstance(total, int) else None)

    def iter_media_pages(self, *, created_from: int, categories_full_name_in: str,
                         page_size: int = MAX_PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Every entry created at or after `created_from`, page by page, each exactly once, oldest first.

        The page size must divide 10,000: a page straddling the limit would come back short and look like
        the last one.
        """
        if not 0 < page_size <= MAX_PAGE_SIZE or MAX_MATCHES % page_size:
            raise ValueError(f"page size {page_size} must divide {MAX_MATCHES} and be at most {MAX_PAGE_SIZE}")
        lower, seen_at_lower = created_from, frozenset[str]()
        newest, seen_at_newest = created_from, set[str]()
        last_restart: tuple[int, frozenset[str]] | None = None
        while True:
            page_index, last_size = 1, page_size
            try:
                while last_size == page_size:
                    page = self.list_media_page(created_from=lower, categories_full_name_in=categories_full_name_in,
                                                exclude_ids=seen_at_lower, page_index=page_index,
                                                page_size=page_size)
                    last_size = len(page.entries)
                    for entry in page.entries:
                        if entry["createdAt"] > newest:
                            newest, seen_at_newest = entry["createdAt"], set()
                        seen_at_newest.add(entry["id"])
                    if page.entries:
                        yield page.entries
                    page_index += 1
                return
            except MaxMatchesExceeded:
                # Each restart must move the bound or exclude more ids; anything else would loop forever.
                state = (newest, frozenset(seen_at_newest))
                if page_index == 1 or state == last_restart:
                    raise SourceFormatError("Kaltura paging made no progress at the 10,000-match limit",
                                            source=SOURCE) from None
                self.restarts += 1
                last_restart = lower, seen_at_lower = state
                logger.info("Kaltura 10,000-match limit reached: restarting at createdAt %d excluding %d ids",
                            lower, len(seen_at_lower))

    # ---- one call with retries
    def _call(self, what: str, action: Callable[[], Any], *, with_session: bool = True) -> Any:
        """`action()` under the shared retry policy; a refused session is reopened once, at once."""
        relogged = False

        def attempt() -> Any:
            nonlocal relogged
            if with_session:
                self._ensure_session(force=self._needs_new_session)
            self.calls += 1
            try:
                return action()
            except KalturaException as exc:
                code = str(exc.code)
                if code == MAX_MATCHES_CODE:
                    raise MaxMatchesExceeded() from None
                if code in _SESSION_CODES and with_session and not relogged:
                    logger.warning("Kaltura %s refused the session (%s); opening a new one", what, code)
                    relogged, self._needs_new_session = True, True
                    raise _SessionRefused(f"Kaltura {what}: session refused ({code})", source=SOURCE) from None
                raise _server_error(what, code, exc) from None
            except KalturaClientException as exc:
                if exc.code == _REDIRECT_REFUSED:         # retrying cannot help; the message names hosts only
                    raise FatalSourceError(f"Kaltura {what}: {exc.message}", source=SOURCE) from None
                label = _CLIENT_ERRORS.get(exc.code, f"client error {exc.code}")
                raise RetriableSourceError(f"Kaltura {what}: {label}", source=SOURCE) from None
            except (AttributeError, TypeError, ValueError):
                # The library crashes on bodies that are not Kaltura XML (e.g. a proxy's JSON or HTML page).
                raise RetriableSourceError(f"Kaltura {what}: unreadable response", source=SOURCE) from None

        return call_with_retries(attempt, self._settings.policy, sleep=self._sleep, clock=self._clock, rng=self._rng)


class _SessionRefused(RetriableSourceError):
    """Kaltura refused the KS (expired or invalidated): one more attempt with a new session."""


_REDIRECT_REFUSED = "REDIRECT_NOT_FOLLOWED"


class _NoRedirectKalturaClient(KalturaClient):
    """KalturaClient whose POSTs never follow a redirect: the body carries the admin secret or the KS.

    The library posts with `requests.post`, which re-sends a POST body on a 307/308 to whatever host the
    Location names. Here a redirect is an error naming both hosts, and nothing is sent to the redirect's host.
    """

    @staticmethod
    def openRequestUrl(url: str, params: Any, files: Any, requestHeaders: dict, requestTimeout: Any) -> Any:  # noqa: N802, N803 - library's names
        requestHeaders["Accept"] = "text/xml"
        requestHeaders["Accept-encoding"] = "gzip"
        if files:
            raise KalturaClientException("file uploads are not used by this job", KalturaClientException.ERROR_GENERIC)
        requestHeaders["Content-Type"] = "application/json"
        body = params.get() or None
        try:
            response = requests.post(url, json=body, headers=requestHeaders, timeout=requestTimeout,
                                     allow_redirects=False)
        except requests.RequestException as exc:
            raise KalturaClientException(type(exc).__name__, KalturaClientException.ERROR_CONNECTION_FAILED) from None
        if 300 <= response.status_code < 400:
            target = urlsplit(urljoin(url, response.headers.get("Location", ""))).netloc or "(no Location)"
            raise KalturaClientException(f"HTTP {response.status_code} redirect from {urlsplit(url).netloc} to "
                                         f"{target} not followed (the request carries the secret or session)",
                                         _REDIRECT_REFUSED)
        return response


_CLIENT_ERRORS = {
    KalturaClientException.ERROR_INVALID_XML: "invalid XML response",
    KalturaClientException.ERROR_CONNECTION_FAILED: "connection failed",
    KalturaClientException.ERROR_READ_FAILED: "read failed",
    KalturaClientException.ERROR_RESULT_NOT_FOUND: "no result in the response",
    KalturaClientException.ERROR_READ_TIMEOUT: "read timed out",
}


def _server_error(what: str, code: str, exc: KalturaException) -> SourceError:
    detail = code if code in _UNQUOTABLE_CODES else f"{code}: {exc.message}"
    return FatalSourceError(f"Kaltura {what} failed: {detail}", source=SOURCE)


def _entry_dict(item: Any) -> dict[str, Any]:
    """The fields the job uses; the library leaves absent ones as NotImplemented."""
    def value(name: str) -> Any:
        found = getattr(item, name, None)
        return None if found is NotImplemented else found
    return {name: value(name) for name in ENTRY_FIELDS}
