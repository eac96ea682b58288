"""Kaltura API v3 as `KalturaApiClient` speaks it: `session.start` and `media.list`
(https://developer.kaltura.com/api-docs/service).

Requests are POSTs to `/api_v3/service/{service}/action/{action}` with a JSON body of stringified values
(the 23.x client); the legacy flattened style (`filter:createdAtGreaterThanOrEqual=...` as form or query)
is accepted too. Every answer is XML with HTTP 200, errors included, as the real server does. A KS
(session token) from `session.start` is required by `media.list` and expires on the simulator's clock.
`media.list` filters, orders and pages the generated entries like the real service, including the refusal
to page at or beyond 10,000 matches (`QUERY_EXCEEDED_MAX_MATCHES_ALLOWED`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from sandbox.httpapp import App, Request, Response
from sandbox.httpserver import ServerOptions, SimServer
from sandbox.media_data import (
    KALTURA_MAX_PAGE,
    MAX_MATCHES,
    MediaData,
    MediaEntry,
    SimClock,
    listed_entries,
    media_data_for,
)

logger = logging.getLogger(__name__)

SESSION_ADMIN = 2
DEFAULT_PAGE_SIZE = 30
# Filter properties this simulator implements; anything else is refused rather than silently ignored.
SUPPORTED_FILTER_FIELDS = frozenset({
    "objectType", "orderBy", "createdAtGreaterThanOrEqual", "createdAtLessThanOrEqual",
    "categoriesFullNameIn", "idNotIn", "idIn",
})
SUPPORTED_ORDERS = {"+createdAt": False, "-createdAt": True}
_FLAT_KEY = re.compile(r"^(\w+)(?::|\[)(\w+)\]?$")


class KalturaApiError(Exception):
    """An API error the server reports inside `<result><error>`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class KalturaSimOptions:
    partner_id: int
    admin_secret: str
    max_ks_seconds: int = 86_400     # the server caps a session's expiry at this many seconds (0: born expired)


# ---------------------------------------------------------------- XML rendering (pure)
def _xml(result: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><xml><result>{result}</result>'
            f"<executionTime>0.004</executionTime></xml>").encode()


def render_scalar(value: str) -> bytes:
    return _xml(escape(value))


def render_error(code: str, message: str) -> bytes:
    return _xml(f"<error><code>{escape(code)}</code><message>{escape(message)}</message>"
                f"<objectType>KalturaAPIException</objectType><args></args></error>")


def entry_fields(entry: MediaEntry, partner_id: int) -> dict[str, Any]:
    """The entry as Kaltura serialises a KalturaMediaEntry (a representative subset of its ~50 fields)."""
    thumb = f"https://cfvod.kaltura.com/p/{partner_id}/sp/{partner_id}00/thumbnail/entry_id/{entry.id}/version/100001"
    return {
        "id": entry.id, "name": entry.name, "partnerId": partner_id, "userId": "kmsadmin",
        "creatorId": "kmsadmin", "description": "", "tags": "", "adminTags": "", "categories": entry.categories_text,
        "categoriesIds": ",".join(str(zlib.crc32(link.full_name.encode()) % 10**8) for link in entry.categories),
        "status": entry.status, "moderationStatus": 6, "moderationCount": 0, "type": 1, "createdAt": entry.created_at,
        "updatedAt": entry.created_at, "rank": 0, "totalRank": 0, "votes": 0, "downloadUrl": f"{thumb}/download",
        "searchText": "", "licenseType": -1, "version": 100001, "thumbnailUrl": thumb, "accessControlId": 1,
        "replacementStatus": 0, "partnerSortValue": 0, "conversionProfileId": 11, "rootEntryId": entry.id,
        "operationAttributes": "", "entitledUsersEdit": "", "entitledUsersPublish": "", "entitledUsersView": "",
        "capabilities": "", "displayInSearch": 1, "plays": entry.plays, "views": entry.plays,
        "lastPlayedAt": entry.created_at, "width": 1280, "height": 720, "duration": entry.duration,
        "msDuration": entry.duration * 1000, "durationType": "short", "mediaType": 1, "conversionQuality": 11,
        "sourceType": "1", "dataUrl": f"{thumb}/flavor", "flavorParamsIds": "0,487041,487051,487061",
    }


def render_entry(entry: MediaEntry, partner_id: int, keep: Callable[[str], bool] = lambda _: True) -> str:
    body = "".join(f"<{tag}>{escape(str(value))}</{tag}>" for tag, value in entry_fields(entry, partner_id).items()
                   if keep(tag))
    return f"<item><objectType>KalturaMediaEntry</objectType>{body}</item>"


def response_profile_filter(profile: Mapping[str, Any]) -> Callable[[str], bool]:
    """A detached response profile: type 1 keeps only `fields`, type 2 drops them (objectType always stays)."""
    fields = {f.strip() for f in str(profile.get("fields") or "").split(",") if f.strip()}
    kind = str(profile.get("type") or "")
    if kind == "1" and fields:
        return lambda tag: tag in fields
    if kind == "2":
        return lambda tag: tag not in fields
    return lambda _: True


def render_media_list(entries: list[MediaEntry], total: int, partner_id: int,
                      keep: Callable[[str], bool] = lambda _: True) -> bytes:
    items = "".join(render_entry(entry, partner_id, keep) for entry in entries)
    return _xml(f"<objectType>KalturaMediaListResponse</objectType><objects>{items}</objects>"
                f"<totalCount>{total}</totalCount>")


# ---------------------------------------------------------------- request parsing (pure)
def parse_params(request: Request) -> dict[str, Any]:
    """Action parameters from a JSON body, or from a flattened form body / query string."""
    content_type = request.headers.get("content-type", "")
    if "json" in content_type and request.body:
        try:
            body = request.json()
        except ValueError as exc:
            raise KalturaApiError("INVALID_JSON", "Invalid JSON request body") from exc
        return body if isinstance(body, dict) else {}
    flat = {key: values[-1] for key, values in request.query.items()}
    if request.body:
        flat.update({key: values[-1] for key, values in request.form().items()})
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        match = _FLAT_KEY.match(key)
        if match:
            nested.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            nested[key] = value
    return nested


def _int(value: Any, name: str) -> int:
    try:
        return int(float(value))             # the client stringifies ints, and floats as "1584676800.0"
    except (TypeError, ValueError) as exc:
        raise KalturaApiError("INVALID_PARAMETER_VALUE", f"Invalid value for parameter {name}") from exc


def _present(obj: Mapping[str, Any], name: str) -> bool:
    return name in obj and f"{name}__null" not in obj and obj[name] not in (None, "")


# ---------------------------------------------------------------- sessions
class KsIssuer:
    """Signed, expiring session tokens checked against the simulator clock."""

    def __init__(self, options: KalturaSimOptions, clock: SimClock) -> None:
        self._options, self._clock = options, clock
        self._key = hashlib.sha256(f"ks|{options.admin_secret}".encode()).digest()

    def start(self, params: Mapping[str, Any]) -> str:
        partner = _int(params.get("partnerId", -1), "partnerId") if _present(params, "partnerId") else -1
        secret = str(params.get("secret", ""))
        if partner != self._options.partner_id or not hmac.compare_digest(secret, self._options.admin_secret):
            raise KalturaApiError("START_SESSION_ERROR", f"Error while starting session for partner [{partner}]")
        expiry = _int(params.get("expiry", 86_400), "expiry") if _present(params, "expiry") else 86_400
        lifetime = max(min(expiry, self._options.max_ks_seconds), 0)
        expires = int(self._clock.now().timestamp()) + lifetime
        fields = f"{partner};{expires};{_int(params.get('type', 0), 'type')};{secrets.token_hex(8)}"
        signature = hmac.new(self._key, fields.encode(), hashlib.sha1).hexdigest()
        return base64.b64encode(f"{signature}|{fields}".encode()).decode()

    def check(self, ks: str | None) -> int:
        """The session type of a valid KS; raises MISSING_KS / INVALID_KS like the server."""
        if not ks:
            raise KalturaApiError("MISSING_KS", "Missing KS. Session not established")
        try:
            signature, fields = base64.b64decode(ks, validate=True).decode().split("|", 1)
            partner, expires, session_type, _ = fields.split(";")
        except ValueError:
            raise KalturaApiError("INVALID_KS", f"Invalid KS [{ks}]. Error [-1,INVALID_STR]") from None
        expected = hmac.new(self._key, fields.encode(), hashlib.sha1).hexdigest()
        if not hmac.compare_digest(signature, expected) or int(partner) != self._options.partner_id:
            raise KalturaApiError("INVALID_KS", f"Invalid KS [{ks}]. Error [-1,INVALID_STR]")
        if int(expires) <= int(self._clock.now().timestamp()):
            raise KalturaApiError("INVALID_KS", f"Invalid KS [{ks}]. Error [-5,EXPIRED]")
        return int(session_type)


# ---------------------------------------------------------------- media.list
class MediaIndex:
    """The entries each category filter matches, sorted by creation, so a page is a bisect and a slice.

    Equivalent to `media_data.listed_entries` (the sandbox tests check that), only faster.
    """

    def __init__(self, data: MediaData) -> None:
        self._data = data
        self._lock = threading.Lock()
        self._by_prefix: dict[str, tuple[list[MediaEntry], list[int]]] = {}

    def select(self, *, created_from: int, visible_at: int, prefix: str, excluded: set[str]) -> list[MediaEntry]:
        entries, stamps = self._matching(prefix)
        window = entries[bisect_left(stamps, created_from):bisect_right(stamps, visible_at)]
        return [entry for entry in window if entry.id not in excluded] if excluded else window

    def _matching(self, prefix: str) -> tuple[list[MediaEntry], list[int]]:
        with self._lock:
            if prefix not in self._by_prefix:
                entries = listed_entries(self._data, created_from=0, visible_at=2**62, prefix=prefix)
                self._by_prefix[prefix] = (entries, [entry.created_at for entry in entries])
            return self._by_prefix[prefix]


def list_media(index: MediaIndex, filter_: Mapping[str, Any], pager: Mapping[str, Any],
               now: datetime) -> tuple[list[MediaEntry], int]:
    """One page of media.list and the total match count (Sphinx-style: offsets >= 10,000 refused)."""
    unsupported = sorted(k for k in filter_ if k not in SUPPORTED_FILTER_FIELDS and not k.endswith("__null"))
    if unsupported:
        raise KalturaApiError("SIMULATOR_UNSUPPORTED_FILTER", f"Filter properties not simulated: {unsupported}")
    order = str(filter_.get("orderBy") or "+createdAt")
    if order not in SUPPORTED_ORDERS:
        raise KalturaApiError("SIMULATOR_UNSUPPORTED_FILTER", f"orderBy {order} not simulated")
    created_from = _optional_int(filter_, "createdAtGreaterThanOrEqual", 0)
    created_to = _optional_int(filter_, "createdAtLessThanOrEqual", 2**62)
    visible_at = min(created_to, int(now.timestamp()))     # nothing exists after "now"
    prefix = str(filter_["categoriesFullNameIn"]) if _present(filter_, "categoriesFullNameIn") else ""
    excluded = {i.strip() for i in str(filter_["idNotIn"]).split(",")} if _present(filter_, "idNotIn") else set()
    matches = index.select(created_from=created_from, visible_at=visible_at, prefix=prefix, excluded=excluded)
    if _present(filter_, "idIn"):
        wanted = {i.strip() for i in str(filter_["idIn"]).split(",")}
        matches = [e for e in matches if e.id in wanted]
    if SUPPORTED_ORDERS[order]:
        matches = matches[::-1]
    size = max(min(_optional_int(pager, "pageSize", DEFAULT_PAGE_SIZE), KALTURA_MAX_PAGE), 0)
    index_ = max(_optional_int(pager, "pageIndex", 1), 1)
    offset = (index_ - 1) * size
    if offset >= MAX_MATCHES:
        raise KalturaApiError("QUERY_EXCEEDED_MAX_MATCHES_ALLOWED",
                              "Unable to generate list. max matches value was reached")
    return matches[offset:min(offset + size, MAX_MATCHES)], len(matches)


def _optional_int(obj: Mapping[str, Any], name: str, default: int) -> int:
    return _int(obj[name], name) if _present(obj, name) else default


# ---------------------------------------------------------------- the service
class KalturaSimulator:
    """The simulated Kaltura partner: its entries, credentials and clock."""

    def __init__(self, data: MediaData, options: KalturaSimOptions, clock: SimClock | None = None) -> None:
        self.data, self.options = data, options
        self.clock = clock or SimClock()
        self.sessions = KsIssuer(options, self.clock)
        self.index = MediaIndex(data)
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def handle(self, service: str, action: str, params: Mapping[str, Any]) -> tuple[bytes, int]:
        """XML answer for one call and the number of entries it served."""
        with self._lock:
            self.calls[f"{service}.{action}"] = self.calls.get(f"{service}.{action}", 0) + 1
        try:
            if (service, action) == ("session", "start"):
                return render_scalar(self.sessions.start(params)), 0
            if (service, action) in {("media", "list"), ("baseentry", "list")}:
                self.sessions.check(params.get("ks"))
                entries, total = list_media(self.index, _object(params, "filter"), _object(params, "pager"),
                                            self.clock.now())
                keep = response_profile_filter(_object(params, "responseProfile"))
                return render_media_list(entries, total, self.options.partner_id, keep), len(entries)
            if service not in {"session", "media", "baseentry"}:
                raise KalturaApiError("SERVICE_DOES_NOT_EXISTS", f'Service "{service}" does not exists')
            raise KalturaApiError("ACTION_DOES_NOT_EXISTS",
                                  f'Action "{action}" does not exists for service "{service}"')
        except KalturaApiError as exc:
            return render_error(exc.code, exc.message), 0


def _object(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params.get(name)
    if isinstance(value, str) and value.startswith("{"):
        value = json.loads(value)
    return value if isinstance(value, Mapping) else {}


def build_kaltura_app(simulator: KalturaSimulator) -> App:
    app = App(throttle_key=lambda request: None)     # Kaltura has no Canvas-style throttle

    def call(request: Request, service: str, action: str) -> Response:
        try:
            params = parse_params(request)
        except KalturaApiError as exc:
            body, served = render_error(exc.code, exc.message), 0
        else:
            body, served = simulator.handle(service.lower(), action.lower(), params)
        return Response(200, body, {"Content-Type": "text/xml; charset=utf-8"}, records=served)

    for method in ("POST", "GET"):
        app.add_route(method, "/api_v3/service/{service}/action/{action}", call)
    return app


def start_kaltura_server(data: MediaData, options: KalturaSimOptions, *, clock: SimClock | None = None,
                         server_options: ServerOptions | None = None) -> tuple[SimServer, KalturaSimulator]:
    simulator = KalturaSimulator(data, options, clock)
    server = SimServer(build_kaltura_app(simulator), name="kaltura", options=server_options).start()
    return server, simulator


def kaltura_service_factory(university: Any, options: Mapping[str, Any] | None = None) -> tuple[SimServer, dict]:
    """For sandbox/runner.py: a started Kaltura simulator over the university's media, and its config keys."""
    options = dict(options or {})
    data = media_data_for(university)
    secret = options.get("kaltura_secret") or hashlib.sha256(f"kaltura|{university.seed}".encode()).hexdigest()
    sim_options = KalturaSimOptions(data.partner_id, secret, int(options.get("max_ks_seconds", 86_400)))
    server, _ = start_kaltura_server(data, sim_options, clock=options.get("clock"),
                                     server_options=options.get("server_options"))
    config = {"MIVIDEO": {"kaltura_service_url": server.url, "kaltura_partner_id": data.partner_id,
                          "kaltura_user_secret": secret, "kaltura_categories_full_name_in": data.category_root}}
    return server, config
