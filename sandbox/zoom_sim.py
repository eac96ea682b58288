"""Zoom LTI Pro simulator: the LTI 1.1 launch and the previous-meetings JSON API (a private API without public
documentation: the README's "The sandbox" says what is assumed).

- `POST /lti/rich` takes the form Canvas's launch page auto-submits. It checks the LTI fields and the OAuth 1.0a
  HMAC-SHA1 body signature (consumer key/secret as Canvas signs them, a timestamp window and single-use nonces,
  as a tool provider must), then answers with an app page whose script carries a per-launch `scid` and XSRF
  token, and sets a session cookie. Pages come in several layouts (quoting, spacing, one or many values per
  line); for a seeded share of courses the page carries neither value (Zoom changed its page).
- `GET /api/v1/lti/rich/meeting/history/COURSE/all` pages the course's previous meetings; it answers only with
  the launch's session cookie, its `X-XSRF-TOKEN` header and its `lti_scid` (else 401/403 JSON).

Meetings and broken pages come from `sandbox.zoom_data.ZoomData`, so tests can compute the expected output.
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

from sandbox.canvas_rest import oauth_signature, ruby_to_i
from sandbox.httpapp import App, Request, Response, html_response, json_response
from sandbox.httpserver import ServerOptions, SimServer
from sandbox.university import University
from sandbox.zoom_data import ZoomData, meeting_json

logger = logging.getLogger(__name__)

LAUNCH_PATH = "/lti/rich"
HISTORY_PATH = "/api/v1/lti/rich/meeting/history/COURSE/all"
SESSION_COOKIE = "zm_lti_sid"
REQUIRED_FIELDS = ("lti_message_type", "lti_version", "resource_link_id", "oauth_consumer_key", "oauth_nonce",
                   "oauth_signature_method", "oauth_timestamp", "oauth_signature")


@dataclass(frozen=True)
class ZoomSimOptions:
    consumer_key: str = "sandbox-zoom-key"        # what Canvas signs launches with (CanvasOptions.lti_*)
    shared_secret: str = "sandbox-zoom-secret"
    page_size: int = 10
    check_signature: bool = True
    check_nonce: bool = True                      # a replayed launch is refused, as a tool provider must
    timestamp_window_s: float = 600.0

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")


@dataclass(frozen=True)
class LtiSession:
    course_id: int
    scid: str
    xsrf_token: str


class ZoomLti:
    """Handlers of the Zoom side; sessions and seen nonces live in memory, guarded by one lock."""

    def __init__(self, data: ZoomData, options: ZoomSimOptions | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.data = data
        self.options = options or ZoomSimOptions()
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, LtiSession] = {}
        self._nonces: set[str] = set()
        self.launches = 0                          # accepted launches, for tests

    # ---- POST /lti/rich ----
    def launch(self, request: Request) -> Response:
        fields = {key: values[-1] for key, values in request.form().items()}
        problem = self._launch_problem(request, fields)
        if problem is not None:
            status, message = problem
            return html_response(_error_page(message), status=status)
        course_id = ruby_to_i(fields.get("custom_canvas_course_id", ""))
        with self._lock:
            self.launches += 1
        if not self.data.launch_has_values(course_id):
            return html_response(_page_without_values(fields.get("context_title", "")))
        session = LtiSession(course_id, secrets.token_hex(16), str(uuid.uuid4()))
        sid = secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[sid] = session
        layout = LAYOUTS[self.data.page_layout(course_id, len(LAYOUTS))]
        page = layout(session, fields.get("context_title", ""))
        return html_response(page, records=1,
                             headers={"Set-Cookie": f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=None"})

    def _launch_problem(self, request: Request, fields: Mapping[str, str]) -> tuple[int, str] | None:
        missing = [name for name in REQUIRED_FIELDS if not fields.get(name)]
        if missing:
            return 400, f"Invalid LTI launch: missing {', '.join(missing)}"
        if fields["lti_message_type"] != "basic-lti-launch-request" or fields["lti_version"] != "LTI-1p0":
            return 400, "Invalid LTI launch: unsupported message type or version"
        if not fields.get("custom_canvas_course_id", "").isdigit():
            return 400, "Invalid LTI launch: no Canvas course"
        o = self.options
        if fields["oauth_consumer_key"] != o.consumer_key or fields["oauth_signature_method"] != "HMAC-SHA1":
            return 401, "Invalid LTI launch: unknown consumer"
        if not fields["oauth_timestamp"].isdigit() or \
                abs(self._clock() - int(fields["oauth_timestamp"])) > o.timestamp_window_s:
            return 401, "Invalid LTI launch: expired timestamp"
        if o.check_signature:
            unsigned = {k: v for k, v in fields.items() if k != "oauth_signature"}
            wanted = oauth_signature("POST", f"{request.base_url}{LAUNCH_PATH}", unsigned, o.shared_secret)
            if not hmac.compare_digest(wanted, fields["oauth_signature"]):
                return 401, "Invalid LTI launch: bad signature"
        if o.check_nonce:
            with self._lock:
                if fields["oauth_nonce"] in self._nonces:
                    return 401, "Invalid LTI launch: nonce already used"
                self._nonces.add(fields["oauth_nonce"])
        return None

    # ---- GET history ----
    def history(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _api_error(401, 201, "Your session has expired. Please relaunch Zoom from your LMS.")
        token = request.headers.get("x-xsrf-token", "")
        if not hmac.compare_digest(token.encode(), session.xsrf_token.encode()):
            return _api_error(403, 403, "Invalid XSRF token")
        if not hmac.compare_digest((request.last("lti_scid") or "").encode(), session.scid.encode()):
            return _api_error(403, 403, "Invalid LTI session")
        meetings = self.data.meetings(session.course_id)
        size = self.options.page_size
        page = max(ruby_to_i(request.last("page") or "1"), 1)
        chunk = meetings[(page - 1) * size: page * size]
        client_timezone = request.last("client_timezone") or None
        body = {"status": True, "errorCode": 0, "errorMessage": None,
                "result": {"total": len(meetings), "pageSize": size, "pageNum": page,
                           "list": [meeting_json(m, client_timezone) for m in chunk]}}
        return json_response(body, records=len(chunk))

    def _session(self, request: Request) -> LtiSession | None:
        cookie = SimpleCookie()
        try:
            cookie.load(request.headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = cookie.get(SESSION_COOKIE)
        if morsel is None:
            return None
        with self._lock:
            return self._sessions.get(morsel.value)


def _api_error(status: int, code: int, message: str) -> Response:
    return json_response({"status": False, "errorCode": code, "errorMessage": message, "result": None},
                         status=status)


def _js(value: str) -> str:
    """A JSON string literal that is safe inside a <script> element."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def _head(title: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - Zoom</title>\n'
            '<script src="/static/js/vendor.3f9a.js"></script>\n')


def _layout_lines(session: LtiSession, title: str) -> str:
    """Each value on its own line, the shape the job was first written against; a stale value in a comment."""
    return (f"{_head(title)}<script>\nwindow.appConf = {{}};\n"
            '// appConf.scid = "0000-stale-from-a-comment";\n'
            f'appConf.scid = "{session.scid}";\n'
            f"appConf.contextTitle = {_js(title)};\n"
            "appConf.headers = {\n"
            f'  "X-XSRF-TOKEN": "{session.xsrf_token}"\n'
            "};\n</script></head>\n<body><div id=\"app\"></div></body></html>")


def _layout_one_line(session: LtiSession, title: str) -> str:
    """Everything on one line of JSON, with other quoted values beside the wanted ones."""
    state = {"lti": {"scid": session.scid, "courseTitle": title, "role": "Instructor"},
             "headers": {"X-XSRF-TOKEN": session.xsrf_token, "Accept": "application/json"}, "locale": "en-US"}
    return (f"{_head(title)}</head><body><div id=\"root\"></div>\n"
            '<script type="application/ld+json">{"@type": "WebApplication", "name": "Zoom"}</script>\n'
            f"<script>window.__INITIAL_STATE__ = {_js_object(state)};</script>\n</body></html>")


def _layout_single_quotes(session: LtiSession, title: str) -> str:
    """Single quotes, bracket notation and odd spacing; a comparison that must not count as a value."""
    return (f"{_head(title)}</head><body>\n<script type=\"text/javascript\">\n"
            "  var conf = window.conf || {};\n"
            "  if (conf.scid === 'undefined') { conf.reload = true; }\n"
            f"  conf [ 'scid' ]='{session.scid}' ;\n"
            f"  conf.headers = {{}}; conf.headers['X-XSRF-TOKEN'] = '{session.xsrf_token}' ; var lang = 'en';\n"
            "</script>\n</body></html>")


def _js_object(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


LAYOUTS: tuple[Callable[[LtiSession, str], str], ...] = (_layout_lines, _layout_one_line, _layout_single_quotes)


def _page_without_values(title: str) -> str:
    return (f"{_head(title)}<script>window.appConf = {{\"error\": \"LTI session could not be established\", "
            "\"scid\": \"\"};</script></head>\n"
            "<body><p>Something went wrong. Please try again later.</p></body></html>")


def _error_page(message: str) -> str:
    return f"<html><head><title>Zoom</title></head><body><h1>{html.escape(message)}</h1></body></html>"


# ---- assembly ----
def build_zoom_app(data: ZoomData, options: ZoomSimOptions | None = None,
                   clock: Callable[[], float] = time.time) -> tuple[App, ZoomLti]:
    zoom = ZoomLti(data, options, clock)
    app = App()
    app.add_route("POST", LAUNCH_PATH, zoom.launch)
    app.add_route("GET", HISTORY_PATH, zoom.history)
    return app, zoom


def start_zoom_server(data: ZoomData, options: ZoomSimOptions | None = None,
                      server_options: ServerOptions | None = None) -> tuple[SimServer, ZoomLti]:
    app, zoom = build_zoom_app(data, options)
    return SimServer(app, name="zoom", options=server_options).start(), zoom


def zoom_service_factory(university: University, options: Mapping[str, Any] | None = None
                         ) -> tuple[SimServer, dict[str, Any]]:
    """For sandbox/runner.py: a started Zoom simulator accepting Canvas's signed launches, and its config keys."""
    options = dict(options or {})
    data = ZoomData(university, no_values_share=float(options.get("no_values_share", 0.05)))
    sim_options = ZoomSimOptions(consumer_key=options.get("lti_consumer_key", ZoomSimOptions.consumer_key),
                                 shared_secret=options.get("lti_shared_secret", ZoomSimOptions.shared_secret),
                                 page_size=int(options.get("page_size", ZoomSimOptions.page_size)))
    server, _ = start_zoom_server(data, sim_options, options.get("server_options"))
    return server, {"ZOOM": {"BASE_URL": server.url}}
