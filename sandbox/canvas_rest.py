"""Canvas REST API simulator: the endpoints the jobs read, answered from a University.

`CanvasRest` holds the handlers (they check nothing about authentication); `install_canvas_routes` mounts
them on an `App` behind the Canvas token check, and `sandbox.gateway` mounts three of them behind the API
gateway's checks. Every absolute URL (Link headers, tab and launch URLs) is built from the serving server's
own base URL, so clients stay on loopback. Pagination: sandbox.canvas_pagination; LTI launches:
sandbox.canvas_lti; permissions a token may lack: CanvasOptions.token_permissions (sandbox.canvas_options).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.canvas_graphql import GraphQLEndpoint, graphql_throttle_key, install_graphql_route
from sandbox.canvas_lti import SessionlessLaunches, launch_form_html, no_form_html, oauth_signature
from sandbox.canvas_options import CanvasOptions, canvas_time, stable_uuid, unauthorized
from sandbox.canvas_pagination import (
    array_param,
    decode_bookmark,
    encode_bookmark,
    link_header,
    paginate_counted,
    paginate_lookahead,
    paginate_numbered,
    per_page_for,
    ruby_to_i,
)
from sandbox.faults import draw
from sandbox.httpapp import App, Request, Response, json_response, not_found
from sandbox.university import Account, AuditEvent, Course, University

__all__ = ["CanvasOptions", "CanvasRest", "build_canvas_app", "canvas_time", "install_canvas_routes",
           "launch_form_html", "no_form_html", "oauth_signature", "ruby_to_i", "stable_uuid", "truthy"]

INVALID_TOKEN_BODY = {"errors": [{"message": "Invalid access token."}]}
COURSE_STATE_FILTERS = {"created": {"unpublished"}, "claimed": {"unpublished"}, "available": {"available"},
                        "completed": {"completed"}, "deleted": {"deleted"}}
DEFAULT_COURSE_STATES = frozenset({"unpublished", "available", "completed"})
# instructure/analytics lib/analytics/permissions.rb require_course_with_analytics: Course.where(workflow_state:).
ANALYTICS_COURSE_STATES = frozenset({"available", "completed"})


def truthy(value: str | None) -> bool | None:
    """Rails' boolean parameter parsing; None when the parameter is absent or empty."""
    if value is None or value == "":
        return None
    return value.strip().lower() in {"1", "true", "t", "on", "yes", "y"}


class CanvasRest:
    """Handlers of the Canvas REST endpoints (no authentication here; see install_canvas_routes)."""

    def __init__(self, university: University, options: CanvasOptions | None = None,
                 launch_page_has_form: Callable[[int], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.university = university
        self.options = options or CanvasOptions()
        self.zoom_base_url = self.options.zoom_base_url   # settable once the Zoom simulator is up
        self.base_url: str | None = None                  # set when the Canvas server starts (see build_canvas_app)
        self._has_form = launch_page_has_form or self.default_launch_page_has_form
        self.launches = SessionlessLaunches(university, self.options, lambda: self.zoom_base_url,
                                            self.launch_page_has_form, clock)
        self.graphql: GraphQLEndpoint | None = None       # set by build_canvas_app

    # ---- hooks ----
    def default_launch_page_has_form(self, course_id: int) -> bool:
        return draw(self.options.seed, f"launch-form:{course_id}", 0) >= self.options.no_form_share

    def launch_page_has_form(self, course_id: int) -> bool:
        return self._has_form(course_id)

    def set_base_url(self, url: str) -> None:
        self.base_url = url

    def set_university(self, university: University) -> None:
        """Serve `university` from now on (the next day, sandbox.next_day); GraphQL too once it is mounted."""
        self.university = university
        self.launches.university = university
        if self.graphql is not None:
            self.graphql.set_university(university)

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

    def sub_accounts(self, request: Request, account_id: int) -> Response:
        """accounts_controller.rb#sub_accounts: `recursive` = the whole tree below, tier by tier (sub_accounts_
        recursive_sql's default order; within a tier Canvas has no ORDER BY: assumed ascending id), paged by
        offset with a look-ahead row (no `last` link); otherwise the direct children by id, counted."""
        if account_id not in self.university.account_by_id:
            return not_found()
        if truthy(request.last("recursive")):
            page, headers = paginate_lookahead(self._account_tiers(account_id), request)
        else:
            children = sorted((a for a in self.university.accounts if a.parent_account_id == account_id),
                              key=lambda a: a.id)
            page, headers = paginate_counted(children, request)
        return json_response([self.account_json(a.id) for a in page], headers=headers, records=len(page))

    def _account_tiers(self, account_id: int) -> list[Account]:
        tiers, current = [], {account_id}
        while current:
            tier = sorted((a for a in self.university.accounts if a.parent_account_id in current),
                          key=lambda a: a.id)
            tiers += tier
            current = {a.id for a in tier}
        return tiers

    def account_courses(self, request: Request, account_id: int) -> Response:
        if account_id not in self.university.account_by_id:
            return not_found()
        term_param = request.last("enrollment_term_id")
        term_id = self._find_term(term_param) if term_param else None
        if term_param and term_id is None:
            return not_found()
        courses = self._filter_courses(request, account_id, term_id)
        page, headers = paginate_numbered(courses, request)
        include = array_param(request, "include")          # accounts_controller: Array(params[:include])
        return json_response([self.course_json(c, request.base_url, include) for c in page],
                             headers=headers, records=len(page))

    def course(self, request: Request, course_id: int) -> Response:
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        include = array_param(request, "include")
        return json_response(self.course_json(course, request.base_url, include), records=1)

    def course_audit(self, request: Request, course_id: int) -> Response:
        """course_audit_api_controller.rb for_course: Course.active.find, then :view_course_changes."""
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state == "deleted":
            return not_found()
        if not self.options.allows("view_course_changes"):
            return unauthorized()
        events = self.university.audit_by_course.get(course_id, [])
        if self.options.audit_pagination == "numbered":
            page, headers = paginate_numbered(events, request)
        else:
            page, headers = bookmark_page(events, request)
        body = {
            "links": {"events.course": f"{request.base_url}/api/v1/courses/{{events.course}}",
                      "events.user": None, "events.sis_batch": None},
            "events": [self._audit_event_json(event) for event in page],
            "linked": {"courses": [], "users": [], "page_views": []},
        }
        return json_response(body, headers=headers, records=len(page))

    def course_activity(self, request: Request, course_id: int) -> Response:
        """analytics permissions.rb require_course_with_analytics: course available or completed (else 404),
        :view_analytics (else 401), then Analytics::Course#available? (an active/completed student, else 404)."""
        course = self.university.course_by_id.get(course_id)
        if course is None or course.workflow_state not in ANALYTICS_COURSE_STATES:
            return not_found()
        if not self.options.allows("view_analytics"):
            return unauthorized()
        if not self.university.has_analytics_students(course_id):
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
        return self.launches.api_launch(request, course_id)

    def launch_page(self, request: Request, course_id: int) -> Response:
        return self.launches.launch_page(request, course_id)

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


def bookmark_page(events: list[AuditEvent], request: Request) -> tuple[list[AuditEvent], dict[str, str]]:
    """Auditors' bookmarked pages: `page=bookmark:<opaque>`, a `next` link while events remain."""
    per_page = per_page_for(request)
    start = 0
    raw = request.last("page") or ""
    if raw.startswith("bookmark:"):
        start = decode_bookmark(raw.removeprefix("bookmark:"), events)
    page = events[start:start + per_page]
    next_page = None
    if start + per_page < len(events):
        next_page = "bookmark:" + encode_bookmark(page[-1])
    links = {"current": raw or "first", "next": next_page, "first": "first"}
    return page, {"Link": link_header(request, links, per_page)}


def canvas_throttle_key(request: Request) -> str:
    """RequestThrottle#client_identifiers: the access token, else (no Canvas sessions here) the client's IP."""
    token = graphql_throttle_key(request)
    return token if token is not None else f"ip:{request.client}"


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
    app.add_route("GET", f"{api}/accounts/{{account_id:int}}/sub_accounts", guarded(rest.sub_accounts))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}", guarded(rest.course))
    app.add_route("GET", f"{api}/audit/course/courses/{{course_id:int}}", guarded(rest.course_audit))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/analytics/activity", guarded(rest.course_activity))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/tabs", guarded(rest.course_tabs))
    app.add_route("GET", f"{api}/courses/{{course_id:int}}/external_tools/sessionless_launch",
                  guarded(rest.sessionless_launch))
    app.add_route("GET", "/courses/{course_id:int}/external_tools/sessionless_launch", rest.launch_page)


def build_canvas_app(university: University, options: CanvasOptions | None = None,
                     launch_page_has_form: Callable[[int], bool] | None = None) -> tuple[App, CanvasRest]:
    """The Canvas instance: REST + GraphQL on one App, throttled per access token (else per client IP)."""
    rest = CanvasRest(university, options, launch_page_has_form)
    app = App(throttle_key=canvas_throttle_key)
    app.on_start.append(rest.set_base_url)         # the gateway builds Canvas-host links from it
    install_canvas_routes(app, rest)
    o = rest.options
    rest.graphql = GraphQLEndpoint(university, o.tokens, roster_churn=o.roster_churn, seed=o.seed,
                                   roster_allowed=o.allows("read_roster", "view_all_grades", "manage_grades"))
    install_graphql_route(app, rest.graphql)
    return app, rest
