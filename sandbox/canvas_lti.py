"""Canvas's LTI 1.1 sessionless launch of a course-navigation tool (Zoom), as canvas-lms implements it.

canvas-lms `app/controllers/external_tools_controller.rb` (`generate_sessionless_launch`,
`generate_common_sessionless_launch`, `sessionless_launch`) and `lib/lti/redis_message_client.rb`:
- the API call caches the launch under a random verifier (`SecureRandom.hex(64)`) for `TTL` = 5 minutes and
  answers `{id, name, url}`; the url's query is `{verifier:, session_token:}.compact.to_query`, keys sorted;
- with only a tool `id`, `find_tool` looks the tool up for that placement; none found -> `redirect_to` the
  course page (302). A tool `url` matching no tool -> 200 `{"errors": {"external_tool": "Unable to find a
  matching external tool"}}`. Neither given -> 400 with Canvas's per-parameter errors;
- the page (`sessionless_launch`) fetches *and deletes* the cached launch (`fetch_and_delete_launch`): a
  verifier works once; a reused, expired or unknown one answers 404, text/plain, "Cannot locate launch
  request, please try again.". The key does not name the course, so any course path finds the launch.
The page itself is an auto-submitting form signed with OAuth 1.0a HMAC-SHA1, as an LTI 1.1 consumer signs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode, urlsplit

from sandbox.canvas_options import CanvasOptions, stable_uuid
from sandbox.httpapp import Request, Response, html_response, json_response, not_found, text_response
from sandbox.university import Course, Tab, University

MISSING_LAUNCH = "Cannot locate launch request, please try again."
NO_MATCHING_TOOL = {"errors": {"external_tool": "Unable to find a matching external tool"}}
_NEEDS_A_TOOL = "A tool id, tool url, module item id, or resource link lookup uuid must be provided"
# Lti::ToolFinder.from_id(..., placement:) only finds the Zoom tool for its own placement (or none given).
TOOL_PLACEMENTS = frozenset({"course_navigation"})


class SessionlessLaunches:
    """The launch API and the launch page, with the cached launches (verifier -> course, tool, created)."""

    def __init__(self, university: University, options: CanvasOptions, zoom_base_url: Callable[[], str],
                 has_form: Callable[[int], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self.university = university
        self.options = options
        self._zoom_base_url = zoom_base_url
        self._has_form = has_form
        self._clock = clock
        self._lock = threading.Lock()
        self._launches: dict[str, tuple[int, int, float]] = {}
        self._issued = 0

    def api_launch(self, request: Request, course_id: int) -> Response:
        """GET /api/v1/courses/:id/external_tools/sessionless_launch"""
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        tool_param, url_param = request.last("id"), request.last("url")
        if not tool_param and not url_param:
            errors = {name: [{"attribute": name, "type": _NEEDS_A_TOOL, "message": _NEEDS_A_TOOL}]
                      for name in ("id", "url", "module_item_id", "resource_link_lookup_uuid")}
            return json_response({"errors": errors}, status=400)
        tab = self._tool_by_url(course_id, url_param) if url_param else \
            self._tool_by_id(course_id, tool_param or "", request.last("launch_type"))
        if tab is None and url_param:
            return json_response(NO_MATCHING_TOOL)
        if tab is None or tab.tool_id is None:            # find_tool: flash + redirect to the course
            location = f"{request.base_url}/courses/{course_id}"
            return html_response(f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.'
                                 "</body></html>", status=302, headers={"Location": location})
        query = urlencode(sorted({"verifier": self._cache(course_id, tab.tool_id),
                                  "session_token": secrets.token_urlsafe(32)}.items()))
        url = f"{request.base_url}/courses/{course_id}/external_tools/sessionless_launch?{query}"
        return json_response({"id": tab.tool_id, "name": tab.label, "url": url}, records=1)

    def launch_page(self, request: Request, course_id: int) -> Response:
        """GET /courses/:id/external_tools/sessionless_launch?verifier=... (the page a browser opens)."""
        if course_id not in self.university.course_by_id:
            return no_form_html("The page you were looking for doesn't exist.", status=404)
        found = self._fetch(request.last("verifier") or "")
        if found is None:
            return text_response(MISSING_LAUNCH, status=404)
        launch_course_id, tool_id = found
        if not self._has_form(launch_course_id):
            return no_form_html("This tool could not be launched. Please contact your administrator.")
        course = self.university.course_by_id[launch_course_id]
        tab = next(t for t in self.university.tabs_by_course[launch_course_id] if t.tool_id == tool_id)
        return launch_form_html(course, tab, self._zoom_base_url(), request.base_url, self.options)

    # ---- helpers ----
    def _tool_by_id(self, course_id: int, raw_id: str, launch_type: str | None) -> Tab | None:
        if launch_type is not None and launch_type not in TOOL_PLACEMENTS:
            return None
        tool_id = int(raw_id) if raw_id.isdigit() else None
        return next((t for t in self.university.tabs_by_course.get(course_id, []) if t.tool_id == tool_id), None)

    def _tool_by_url(self, course_id: int, url: str) -> Tab | None:
        # Lti::ToolFinder.from_url matches a tool by its domain: here the Zoom tool's.
        if urlsplit(url).netloc != urlsplit(self._zoom_base_url()).netloc:
            return None
        return next((t for t in self.university.tabs_by_course.get(course_id, []) if t.tool_id is not None), None)

    def _cache(self, course_id: int, tool_id: int) -> str:
        with self._lock:
            self._issued += 1
            verifier = hashlib.blake2b(f"{self.options.seed}|{course_id}|{tool_id}|{self._issued}".encode(),
                                       digest_size=64).hexdigest()          # 128 hex digits, like hex(64)
            now = self._clock()
            self._launches = {v: entry for v, entry in self._launches.items()
                              if now - entry[2] < self.options.launch_ttl}  # Redis expires them
            self._launches[verifier] = (course_id, tool_id, now)
            return verifier

    def _fetch(self, verifier: str) -> tuple[int, int] | None:
        with self._lock:
            entry = (self._launches.pop(verifier, None) if self.options.single_use_verifier
                     else self._launches.get(verifier))
        if entry is None or self._clock() - entry[2] >= self.options.launch_ttl:
            return None
        return entry[0], entry[1]


def no_form_html(message: str, status: int = 200) -> Response:
    return html_response(f"<html><head><title>Launch</title></head><body><p>{html.escape(message)}</p></body></html>",
                         status=status)


def oauth_signature(method: str, url: str, params: dict[str, str], consumer_secret: str) -> str:
    """OAuth 1.0a HMAC-SHA1 body signature, as an LTI 1.1 consumer signs a launch."""
    encoded = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in params.items())
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    base = "&".join(quote(part, safe="~") for part in (method.upper(), url, normalized))
    digest = hmac.new(f"{quote(consumer_secret, safe='~')}&".encode(), base.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def launch_form_html(course: Course, tab: Tab, zoom_base_url: str, canvas_base_url: str,
                     options: CanvasOptions) -> Response:
    action = f"{zoom_base_url.rstrip('/')}/lti/rich"
    params = _launch_params(course, tab, canvas_base_url, options)
    params["oauth_signature"] = oauth_signature("POST", action, params, options.lti_shared_secret)
    inputs = "\n".join(f' <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                       for k, v in params.items())
    page = (f"<html><head><title>{html.escape(tab.label)}</title></head>\n"
            "<body onload=\"document.getElementById('tool_form').submit()\">\n"
            f'<form id="tool_form" action="{html.escape(action)}" method="POST" target="_self">\n'
            f"{inputs}\n</form></body></html>")
    return html_response(page, records=1)


def _launch_params(course: Course, tab: Tab, canvas_base_url: str, options: CanvasOptions) -> dict[str, str]:
    return {
        "lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
        "resource_link_id": stable_uuid("link", course.id * 1000 + (tab.tool_id or 0), options.seed),
        "resource_link_title": tab.label, "user_id": stable_uuid("user", 1, options.seed),
        "user_image": "", "roles": "Instructor", "custom_canvas_enrollment_state": "active",
        "context_id": stable_uuid("context", course.id, options.seed), "context_title": course.name,
        "context_label": course.course_code, "custom_canvas_course_id": str(course.id),
        "custom_canvas_api_domain": canvas_base_url.split("://")[-1],
        "launch_presentation_locale": "en", "launch_presentation_document_target": "iframe",
        "launch_presentation_return_url": f"{canvas_base_url}/courses/{course.id}/external_content/success/"
                                          "external_tool_redirect",
        "tool_consumer_instance_guid": stable_uuid("instance", 0, options.seed),
        "tool_consumer_instance_name": "Sandbox University", "tool_consumer_instance_contact_email": "lms@example.edu",
        "tool_consumer_info_product_family_code": "canvas", "tool_consumer_info_version": "cloud",
        "oauth_callback": "about:blank", "oauth_consumer_key": options.lti_consumer_key,
        "oauth_nonce": secrets.token_hex(16), "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": str(int(time.time())), "oauth_version": "1.0",
    }
