"""Canvas REST API simulator (protocol-notes §C): the endpoints the jobs read, answered from a University.

`CanvasRest` holds the handlers (they check nothing about authentication); `install_canvas_routes` mounts
them on an `App` behind the Canvas token check, and `sandbox.gateway` mounts three of them behind the API
gateway's checks. Every absolute URL (Link headers, tab and launch URLs) is built from the serving server's
own base URL, so clients stay on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from sandbox.canvas_graphql import GraphQLEndpoint, graphql_throttle_key, install_graphql_route
from sandbox.faults import draw
from sandbox.httpapp import App, Request, Response, html_response, json_response, not_found
from sandbox.university import AuditEvent, Course, Tab, University

INVALID_TOKEN_BODY = {"errors": [{"message": "Invalid access token."}]}
COURSE_STATE_FILTERS = {"created": {"unpublished"}, "claimed": {"unpublished"}, "available": {"available"},
                        "completed": {"completed"}, "deleted": {"deleted"}}
DEFAULT_COURSE_STATES = frozenset({"unpublished", "available", "completed"})
DEFAULT_PER_PAGE, MAX_PER_PAGE = 10, 100
# Parameters Canvas leaves out when it rebuilds a page URL for the Link header.
_LINK_DROPPED = frozenset({"page", "per_page", "access_token", "api_key"})


@dataclass(frozen=True)
class CanvasOptions:
    tokens: frozenset[str] = frozenset({"canvas-sandbox-token"})
    zoom_base_url: str = "https://applications.zoom.us"
    seed: int = 42
    no_form_share: float = 0.03               # share of courses whose launch page lacks the LTI form
    audit_pagination: str = "bookmark"        # "bookmark" (opaque page=bookmark:...) or "numbered"
    lti_consumer_key: str = "sandbox-zoom-key"
    lti_shared_secret: str = "sandbox-zoom-secret"
    single_use_verifier: bool = False         # real Canvas forgets a verifier once used


def canvas_time(value: datetime | None) -> str | None:
    """Canvas API timestamps: UTC, whole seconds, `Z` suffix."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_uuid(kind: str, ident: int, seed: int) -> str:
    return hashlib.blake2b(f"{seed}|{kind}|{ident}".encode(), digest_size=20).hexdigest()


def truthy(value: str | None) -> bool | None:
    """Rails' boolean parameter parsing; None when the parameter is absent or empty."""
    if value is None or value == "":
        return None
    return value.strip().lower() in {"1", "true", "t", "on", "yes", "y"}


class CanvasRest:
    """Handlers of the Canvas REST endpoints (no authentication here; see install_canvas_routes)."""

    def __init__(self, university: University, options: CanvasOptions | None = None,
                 launch_page_has_form: Callable[[int], bool] | None = None) -> None:
        self.university = university
        self.options = options or CanvasOptions()
        self.zoom_base_url = self.options.zoom_base_url   # settable once the Zoom simulator is up
        self._has_form = launch_page_has_form or self.default_launch_page_has_form
        self._verifiers: dict[str, tuple[int, int]] = {}
        self._verifier_lock = threading.Lock()

    # ---- hooks ----
    def default_launch_page_has_form(self, course_id: int) -> bool:
        return draw(self.options.seed, f"launch-form:{course_id}", 0) >= self.options.no_form_share

    def launch_page_has_form(self, course_id: int) -> bool:
        return self._has_form(course_id)

    # ---- JSON builders ----
    def term_json(self, term_id: int) -> dict[str, Any]:
        term = self.university.term_by_id[term_id]
        return {"id": term.id, "name": term.name, "start_at": canvas_time(term.start_at),
                "end_at": canvas_time(term.end_at), "created_at": canvas_time(term.created_at),
                "workflow_state": "active", "grading_period_group_id": None, "sis_term_id": term.sis_term_id,
                "sis_import_id": None if term.sis_term_id is None else 1, "overrides": {}}

    def account_json(self, account_id: int) -> dict[str, Any]:
        account = self.university.account_by_id[account_id]
        root = None if account.parent_account_id is None else self.university.root_account_id
        return {"id": account.id, "name": account.name, "workflow_state": "active",
                "parent_account_id": account.parent_account_id, "root_account_id": root,
                "uuid": stable_uuid("account", account.id, self.options.seed), "default_storage_quota_mb": 500,
                "default_user_storage_quota_mb": 50, "default_group_storage_quota_mb": 50,
                "default_time_zone": "America/Detroit", "sis_account_id": account.sis_account_id,
                "integration_id": None, "sis_import_id": None}

    def course_json(self, course: Course, base_url: str, include: Sequence[str] = ()) -> dict[str, Any]:
        uuid = stable_uuid("course", course.id, self.options.seed)
        body: dict[str, Any] = {
            "id": course.id, "sis_course_id": course.sis_course_id, "uuid": uuid, "integration_id": None,
            "name": course.name, "course_code": course.course_code, "account_id": course.account_id,
            "root_account_id": self.university.root_account_id, "enrollment_term_id": course.term_id,
            "created_at": canvas_time(course.created_at), "start_at": None, "end_at": None,
            "workflow_state": course.workflow_state, "default_view": "modules", "is_public": False,
            "is_public_to_auth_users": False, "public_syllabus": False, "storage_quota_mb": 2000,
            "hide_final_grades": False, "apply_assignment_group_weights": False,
            "restrict_enrollments_to_course_dates": False, "time_zone": "America/Detroit", "blueprint": False,
            "locale": None, "calendar": {"ics": f"{base_url}/feeds/calendars/course_{uuid}.ics"},
        }
        if "total_students" in include:
            body["total_students"] = self.university.total_students(course.id)
        return body

    # ---- handlers ----
    def term(self, request: Request, account_id: int, term_id: str) -> Response:
        if account_id not in self.university.account_by_id:
            return not_found()
        if account_id != self.university.root_account_id:
            return json_response({"message": "Terms only belong to root_accounts."}, status=400)
        found = self._find_term(term_id)
        return not_found() if found is None else json_response(self.term_json(found), records=1)

    def account(self, request: Request, account_id: int) -> Response:
        if account_id not in self.university.account_by_id:
            return not_found()
        return json_response(self.account_json(account_id), records=1)

    def account_courses(self, request: Request, account_id: int) -> Response:
        if account_id not in self.university.account_by_id:
            return not_found()
        term_param = request.last("enrollment_term_id")
        term_id = self._find_term(term_param) if term_param else None
        if term_param and term_id is None:
            return not_found()
        courses = self._filter_courses(request, account_id, term_id)
        page, headers = paginate_numbered(courses, request)
        include = request.query.get("include[]", [])
        return json_response([self.course_json(c, request.base_url, include) for c in page],
                             headers=headers, records=len(page))

    def course(self, request: Request, course_id: int) -> Response:
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        include = request.query.get("include[]", [])
        return json_response(self.course_json(course, request.base_url, include), records=1)

    def course_audit(self, request: Request, course_id: int) -> Response:
        if course_id not in self.university.course_by_id:
            return not_found()
        events = self.university.audit_by_course.get(course_id, [])
        if self.options.audit_pagination == "numbered":
            page, headers = paginate_numbered(events, request)
        else:
            page, headers = self._bookmark_page(events, request)
        body = {
            "links": {"events.course": f"{request.base_url}/api/v1/courses/{{events.course}}",
                      "events.user": None, "events.sis_batch": None},
            "events": [self._audit_event_json(event) for event in page],
            "linked": {"courses": [], "users": [], "page_views": []},
        }
        return json_response(body, headers=headers, records=len(page))

    def course_activity(self, request: Request, course_id: int) -> Response:
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state != "available":
            return not_found()
        rows = [{"date": day.date.isoformat(), "views": day.views, "participations": day.participations, "id": None}
                for day in self.university.activity_by_course.get(course_id, [])]
        return json_response(rows, records=len(rows))

    def course_tabs(self, request: Request, course_id: int) -> Response:
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        base = request.base_url
        tabs = []
        for tab in self.university.tabs_by_course.get(course_id, []):
            external = tab.type == "external" and tab.tool_id is not None
            html_url = (f"/courses/{course_id}/external_tools/{tab.tool_id}" if external
                        else f"/courses/{course_id}" if tab.id == "home" else f"/courses/{course_id}/{tab.id}")
            entry: dict[str, Any] = {"id": tab.id, "html_url": html_url, "full_url": f"{base}{html_url}",
                                     "position": tab.position, "visibility": "public", "label": tab.label,
                                     "type": tab.type}
            if tab.hidden:                     # Canvas sends `hidden` only when true
                entry["hidden"] = True
                entry["visibility"] = "none" if external else "admins"
            if external:
                entry["url"] = (f"{base}/api/v1/courses/{course_id}/external_tools/sessionless_launch"
                                f"?id={tab.tool_id}&launch_type=course_navigation")
            tabs.append(entry)
        return json_response(tabs, records=len(tabs))

    def sessionless_launch(self, request: Request, course_id: int) -> Response:
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        tool_id = ruby_to_i(request.last("id") or "")
        if not request.last("id") and not request.last("url"):
            return json_response({"errors": {"id": [{"message": "An id or a url must be provided"}]}}, status=400)
        tab = next((t for t in self.university.tabs_by_course.get(course_id, []) if t.tool_id == tool_id), None)
        if tab is None:
            return json_response({"errors": {"external_tool": "Unable to find a matching external tool"}},
                                 status=404)
        verifier = self._new_verifier(course_id, tool_id)
        url = f"{request.base_url}/courses/{course_id}/external_tools/sessionless_launch?verifier={verifier}"
        return json_response({"id": tool_id, "name": tab.label, "url": url}, records=1)

    def launch_page(self, request: Request, course_id: int) -> Response:
        """The non-API page a browser opens: an auto-submitting LTI 1.1 form (or, for some courses, none)."""
        with self._verifier_lock:
            verifier = request.last("verifier") or ""
            found = (self._verifiers.pop(verifier, None) if self.options.single_use_verifier
                     else self._verifiers.get(verifier))
        course = self.university.course_by_id.get(course_id)
        if found is None or found[0] != course_id or course is None:
            return no_form_html("The launch session has expired or is invalid.", status=401)
        if not self.launch_page_has_form(course_id):
            return no_form_html("This tool could not be launched. Please contact your administrator.")
        tab = next(t for t in self.university.tabs_by_course[course_id] if t.tool_id == found[1])
        return launch_form_html(course, tab, self.zoom_base_url, request.base_url, self.options)

    # ---- helpers ----
    def _find_term(self, raw: str) -> int | None:
        if raw.startswith("sis_term_id:"):
            sis = raw.removeprefix("sis_term_id:")
            return next((t.id for t in self.university.terms if t.sis_term_id == sis), None)
        term_id = int(raw) if raw.isdigit() else None
        return term_id if term_id in self.university.term_by_id else None

    def _filter_courses(self, request: Request, account_id: int, term_id: int | None) -> list[Course]:
        accounts = self.university.subaccount_ids[account_id]
        states = set(DEFAULT_COURSE_STATES)
        wanted_states = request.query.get("state[]", [])
        if wanted_states:
            states = (set(DEFAULT_COURSE_STATES) | {"deleted"} if "all" in wanted_states
                      else set().union(*(COURSE_STATE_FILTERS.get(s, set()) for s in wanted_states)))
        published = truthy(request.last("published"))
        with_enrollments = truthy(request.last("with_enrollments"))
        types = set(request.query.get("enrollment_type[]", [])) or None
        result = []
        for course in sorted(self.university.courses, key=lambda c: c.id):
            if course.account_id not in accounts or course.workflow_state not in states:
                continue
            if term_id is not None and course.term_id != term_id:
                continue
            if published is not None and (course.workflow_state == "available") != published:
                continue
            if types is not None and not self.university.has_enrollment_of_type(course.id, types):
                continue
            if with_enrollments is not None and self.university.has_enrollment_of_type(course.id, None) != \
                    with_enrollments:
                continue
            result.append(course)
        return result

    def _audit_event_json(self, event: AuditEvent) -> dict[str, Any]:
        course = self.university.course_by_id[event.course_id]
        data: dict[str, Any] = {}
        if event.event_type == "created":
            data = {"name": [None, course.name], "workflow_state": [None, "claimed"]}
        elif event.event_type == "updated":
            data = {"name": [course.name, course.name]}
        user = None if event.event_source == "sis" else 1
        return {"id": event.id, "created_at": canvas_time(event.created_at), "event_type": event.event_type,
                "event_source": event.event_source, "event_data": data,
                "links": {"course": event.course_id, "user": user, "page_view": None,
                          "sis_batch": 1 if event.event_source == "sis" else None}}

    def _bookmark_page(self, events: list[AuditEvent], request: Request) -> tuple[list[AuditEvent], dict[str, str]]:
        per_page = per_page_for(request)
        start = 0
        raw = request.last("page") or ""
        if raw.startswith("bookmark:"):
            start = _decode_bookmark(raw.removeprefix("bookmark:"), events)
        page = events[start:start + per_page]
        next_page = None
        if start + per_page < len(events):
            next_page = "bookmark:" + _encode_bookmark(page[-1])
        links = {"current": raw or "first", "next": next_page, "first": "first"}
        return page, {"Link": link_header(request, links, per_page)}

    def _new_verifier(self, course_id: int, tool_id: int) -> str:
        with self._verifier_lock:
            ordinal = len(self._verifiers)
            verifier = hashlib.blake2b(f"{self.options.seed}|{course_id}|{tool_id}|{ordinal}".encode(),
                                       digest_size=16).hexdigest()
            self._verifiers[verifier] = (course_id, tool_id)
            return verifier


def _encode_bookmark(event: AuditEvent) -> str:
    raw = json.dumps([event.created_at.timestamp(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_bookmark(token: str, events: list[AuditEvent]) -> int:
    """Index of the first event after the bookmarked one (events are newest first); 0 when unreadable."""
    try:
        created_at, event_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return 0
    for index, event in enumerate(events):
        if (event.created_at.timestamp(), event.id) < (created_at, event_id):
            return index
    return len(events)


# ---- pagination (§C.3) ----
def ruby_to_i(text: str) -> int:
    """Ruby's String#to_i: the leading integer, 0 when there is none."""
    found = re.match(r"\s*([+-]?\d+)", text)
    return int(found.group(1)) if found else 0


def per_page_for(request: Request) -> int:
    """`per_page` clamped to 1..100 (Api.per_page_for); the last duplicate wins; default 10."""
    raw = request.last("per_page")
    return DEFAULT_PER_PAGE if raw is None else min(max(ruby_to_i(raw), 1), MAX_PER_PAGE)


def page_number(request: Request) -> int:
    return max(ruby_to_i(request.last("page") or "1"), 1)


def rails_query(query: dict[str, list[str]]) -> str:
    """Rails' to_query of the request parameters minus paging/auth: pieces sorted, arrays as key%5B%5D=v."""
    pieces = []
    for key, values in query.items():
        if key in _LINK_DROPPED or not values:
            continue
        if key.endswith("[]"):
            pieces.append("&".join(f"{quote_plus(key)}={quote_plus(v)}" for v in values))
        else:
            pieces.append(f"{quote_plus(key)}={quote_plus(values[-1])}")   # last duplicate wins
    return "&".join(sorted(pieces))


def link_header(request: Request, pages: dict[str, str | int | None], per_page: int) -> str:
    """`<url>; rel="name"` joined by "," without spaces, in Canvas's order current, next, prev, first, last."""
    base = f"{request.base_url}{request.path}?"
    query = rails_query(request.query)
    prefix = f"{base}{query}&" if query else base
    links = []
    for rel in ("current", "next", "prev", "first", "last"):
        page = pages.get(rel)
        if page is not None:
            links.append(f'<{prefix}page={quote(str(page), safe=":")}&per_page={per_page}>; rel="{rel}"')
    return ",".join(links)


def paginate_numbered(items: Sequence[Any], request: Request) -> tuple[list[Any], dict[str, str]]:
    """A numbered page of `items` and its Link header.

    Like Canvas's collections without a count query: a full page links to the next page (which is `[]`
    when the previous page was exactly full) and has no `last`; a partial page knows the total, so it has
    `last` and no `next`.
    """
    per_page, page = per_page_for(request), page_number(request)
    chunk = list(items[(page - 1) * per_page: page * per_page])
    full = len(chunk) == per_page
    total_known = not full and (page == 1 or len(chunk) > 0)
    pages: dict[str, str | int | None] = {
        "current": page,
        "next": page + 1 if full else None,
        "prev": page - 1 if page > 1 else None,
        "first": 1,
        "last": page if total_known else None,
    }
    return chunk, {"Link": link_header(request, pages, per_page)}


# ---- LTI 1.1 launch page (§C.11, §D.2) ----
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
    opaque = stable_uuid("context", course.id, options.seed)
    params = {
        "lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
        "resource_link_id": stable_uuid("link", course.id * 1000 + (tab.tool_id or 0), options.seed),
        "resource_link_title": tab.label, "user_id": stable_uuid("user", 1, options.seed),
        "user_image": "", "roles": "Instructor", "custom_canvas_enrollment_state": "active",
        "context_id": opaque, "context_title": course.name, "context_label": course.course_code,
        "custom_canvas_course_id": str(course.id), "custom_canvas_api_domain": canvas_base_url.split("://")[-1],
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
    params["oauth_signature"] = oauth_signature("POST", action, params, options.lti_shared_secret)
    inputs = "\n".join(f' <input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                       for k, v in params.items())
    page = (f"<html><head><title>{html.escape(tab.label)}</title></head>\n"
            "<body onload=\"document.getElementById('tool_form').submit()\">\n"
            f'<form id="tool_form" action="{html.escape(action)}" method="POST" target="_self">\n'
            f"{inputs}\n</form></body></html>")
    return html_response(page, records=1)


def install_canvas_routes(app: App, rest: CanvasRest) -> None:
    """Mount every Canvas REST endpoint on `app` behind the Canvas token check."""
    def guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
        def check(request: Request, **params: Any) -> Response:
            token = request.bearer_token() or request.last("access_token")
            if token not in rest.options.tokens:
                return json_response(INVALID_TOKEN_BODY, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'})
            return handler(request, **params)
        return check

    api = "/api/v1"
    app.add_route("GET", f"{api}/accounts/{{account_id:int}}/terms/{{term_id}}", guarded(rest.term))
    app.add_route("GET", f"{api}/accounts/{{account_id:int}}", guarded(rest.account))
    app.add_route("GET", f"{api}/accounts/{{account_id:int}}/courses", guarded(rest.account_courses))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}", guarded(rest.course))
    app.add_route("GET", f"{api}/audit/course/courses/{{course_id:int}}", guarded(rest.course_audit))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/analytics/activity", guarded(rest.course_activity))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/tabs", guarded(rest.course_tabs))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/external_tools/sessionless_launch",
                  guarded(rest.sessionless_launch))
    app.add_route("GET", "/courses/{course_id:int}/external_tools/sessionless_launch", rest.launch_page)


def build_canvas_app(university: University, options: CanvasOptions | None = None,
                     launch_page_has_form: Callable[[int], bool] | None = None) -> tuple[App, CanvasRest]:
    """The Canvas instance: REST + GraphQL on one App, throttled per access token."""
    rest = CanvasRest(university, options, launch_page_has_form)
    app = App(throttle_key=graphql_throttle_key)
    install_canvas_routes(app, rest)
    install_graphql_route(app, GraphQLEndpoint(university, rest.options.tokens))
    return app, rest
