"""Canvas REST simulator: auth, pagination (lib/api.rb), filters, audit log, analytics, tabs and LTI launch."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.canvas_rest import CanvasOptions, build_canvas_app, oauth_signature
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.university import (
    Account,
    ActivityDay,
    AuditEvent,
    Course,
    Enrollment,
    Section,
    Tab,
    Term,
    University,
    User,
)

TOKEN = "canvas-test-token"
T0 = datetime(2020, 8, 1, 12, 0, 0, tzinfo=UTC)
STATES = ("available", "unpublished", "completed", "deleted")
FREE = ServerOptions(cost=CostModel(overhead_ms=0, per_record_ms=0))


def tiny_university() -> University:
    """Root 1 > 2 > 3, root 1 > 4; term 7; courses 101..130; course 101 has 230 enrollments.

    Analytics cases: 101 (available, students, activity), 103 (completed, a completed student, activity),
    105 (available, only an invited student), 109 (available, an active student, no activity).
    """
    accounts = [Account(1, "Root", None, "UM_ROOT"), Account(2, "College", 1, "COL"),
                Account(3, "Dept", 2, None), Account(4, "Other", 1, "OTHER")]
    terms = [Term(1, "Default Term", None, None, None, T0),
             Term(7, "Fall 2020", "2310", T0, T0 + timedelta(days=100), T0)]
    courses, sections, enrollments = [], [], []
    for n in range(30):
        cid = 101 + n
        courses.append(Course(cid, f"Course {cid}", f"C{cid}", account_id=1 + n % 4, term_id=7 if n < 27 else 1,
                              sis_course_id=None if n % 5 == 0 else f"SIS{cid}", created_at=T0 + timedelta(hours=n),
                              workflow_state=STATES[n % 4]))
        sections.append(Section(3000 + n, cid, f"Section {cid}", f"S{cid}"))
    users = [User(5000 + i, f"User {i}") for i in range(300)]
    eid = 9000
    for i in range(230):                                    # course 101: many students, a few teachers
        state = "deleted" if i % 50 == 7 else ("completed" if i % 40 == 3 else "active")
        kind = "TeacherEnrollment" if i < 3 else "StudentEnrollment"
        enrollments.append(Enrollment(eid, 101, 3000, 5000 + i, kind, state))
        eid += 1
    for n in range(1, 27, 2):                               # every other course gets one enrollment
        kind = "TaEnrollment" if n % 3 == 0 else "StudentEnrollment"
        enrollments.append(Enrollment(eid, 101 + n, 3000 + n, 5000 + n, kind, "active"))
        eid += 1
    for cid, state in ((103, "completed"), (105, "invited"), (109, "active")):
        enrollments.append(Enrollment(eid, cid, 3000 + cid - 101, 5290 + cid - 101, "StudentEnrollment", state))
        eid += 1
    audit = [AuditEvent(f"ev-{i:03d}", 101, T0 + timedelta(hours=i), "published" if i == 4 else "updated", "manual")
             for i in range(23)]
    activity = [ActivityDay(cid, date(2020, 9, 1) + timedelta(days=i), 10 * i + cid, i) for cid in (101, 103)
                for i in range(5)]
    tabs = [Tab(101, "home", "Home", "internal", 1), Tab(101, "context_external_tool_123", "Zoom", "external", 2,
                                                              tool_id=123),
            Tab(102, "home", "Home", "internal", 1), Tab(102, "context_external_tool_123", "Zoom", "external", 2,
                                                              hidden=True, tool_id=123)]
    return University(seed=1, root_account_id=1, terms=terms, accounts=accounts, courses=courses, sections=sections,
                      users=users, enrollments=enrollments, audit_events=audit, activity=activity, tabs=tabs,
                      canvasdatadate=T0)


@pytest.fixture(scope="module")
def university() -> University:
    return tiny_university()


@pytest.fixture(scope="module")
def canvas(university):
    options = CanvasOptions(tokens=frozenset({TOKEN}), zoom_base_url="http://zoom.invalid:1")
    app, rest = build_canvas_app(university, options, launch_page_has_form=lambda cid: cid != 102)
    with SimServer(app, name="canvas", options=FREE) as server:
        yield server


def get(server: SimServer, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, **kwargs)


def links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers["Link"])}


def test_bad_or_missing_token_is_401_with_www_authenticate(canvas):
    for headers in ({}, {"Authorization": "Bearer nope"}):
        got = requests.get(f"{canvas.url}/api/v1/accounts/1", headers=headers, timeout=5)
        assert got.status_code == 401
        assert got.json() == {"errors": [{"message": "Invalid access token."}]}
        assert "WWW-Authenticate" in got.headers


@pytest.mark.parametrize("path", ["/api/v1/accounts/99", "/api/v1/courses/999", "/api/v1/accounts/1/terms/5",
                                  "/api/v1/audit/course/courses/999", "/api/v1/courses/999/tabs",
                                  "/api/v1/accounts/1/courses?enrollment_term_id=55"])
def test_unknown_ids_are_canvas_404(canvas, path):
    got = get(canvas, path)
    assert got.status_code == 404
    assert got.json() == {"errors": [{"message": "The specified resource does not exist."}]}


def test_term_and_account_json(canvas, university):
    term = get(canvas, "/api/v1/accounts/1/terms/7").json()
    assert (term["id"], term["sis_term_id"], term["start_at"]) == (7, "2310", "2020-08-01T12:00:00Z")
    assert get(canvas, "/api/v1/accounts/1/terms/sis_term_id:2310").json()["id"] == 7
    assert get(canvas, "/api/v1/accounts/2/terms/7").status_code == 400          # root account only
    account = get(canvas, "/api/v1/accounts/3").json()
    assert (account["name"], account["parent_account_id"], account["sis_account_id"]) == ("Dept", 2, None)


def all_pages(server: SimServer, path: str) -> tuple[list, list[requests.Response]]:
    responses = [get(server, path)]
    while "next" in links(responses[-1]):
        responses.append(requests.get(links(responses[-1])["next"], headers={"Authorization": f"Bearer {TOKEN}"},
                                      timeout=5))
    return [item for r in responses for item in r.json()], responses


def test_account_courses_default_states_subaccounts_and_order(canvas, university):
    courses, _ = all_pages(canvas, "/api/v1/accounts/2/courses?per_page=4")
    expected = sorted(c.id for c in university.courses
                      if c.account_id in (2, 3) and c.workflow_state != "deleted")
    assert [c["id"] for c in courses] == expected
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["created_at"]) for c in courses)


def test_account_courses_filters_match_university_rules(canvas, university):
    path = ("/api/v1/accounts/1/courses?with_enrollments=true&enrollment_type[]=student&enrollment_type[]=teacher"
            "&enrollment_term_id=7&include[]=total_students&per_page=100")
    courses = get(canvas, path).json()
    expected = [c for c in sorted(university.courses, key=lambda c: c.id)
                if c.term_id == 7 and c.workflow_state != "deleted"
                and university.has_enrollment_of_type(c.id, {"student", "teacher"})]
    assert [c["id"] for c in courses] == [c.id for c in expected]
    assert {c["id"]: c["total_students"] for c in courses} == {c.id: university.total_students(c.id) for c in expected}
    published = get(canvas, "/api/v1/accounts/1/courses?published=true&per_page=100").json()
    assert {c["workflow_state"] for c in published} == {"available"}
    assert "total_students" not in published[0]


@pytest.mark.parametrize("include", ["include=total_students", "include[]=total_students",
                                     "include[]=teachers&include[]=total_students"])
def test_include_is_read_like_rails_array_params(canvas, university, include):
    listed = get(canvas, f"/api/v1/accounts/1/courses?per_page=100&{include}").json()
    assert listed and all(c["total_students"] == university.total_students(c["id"]) for c in listed)
    single = get(canvas, f"/api/v1/courses/101?{include}").json()
    assert single["total_students"] == university.total_students(101) > 0
    page = get(canvas, f"/api/v1/accounts/1/courses?per_page=2&{include}")
    assert links(page)["next"].startswith(f"{canvas.url}/api/v1/accounts/1/courses?{include.replace('[]', '%5B%5D')}&")


def test_link_header_format_and_last_duplicate_per_page(canvas, university):
    total = sum(1 for c in university.courses if c.workflow_state != "deleted")
    first = get(canvas, "/api/v1/accounts/1/courses?enrollment_type[]=teacher&enrollment_type[]=student"
                        "&per_page=50&enrollment_term_id=7&per_page=3&access_token=zzz")
    assert len(first.json()) == 3                               # the last per_page wins
    header = first.headers["Link"]
    assert ", " not in header and "access_token" not in header
    rels = links(first)
    assert list(rels) == ["current", "next", "first"]           # a full page: no prev, no last
    assert rels["next"] == (f"{canvas.url}/api/v1/accounts/1/courses?enrollment_term_id=7"
                            "&enrollment_type%5B%5D=teacher&enrollment_type%5B%5D=student&page=2&per_page=3")
    items, responses = all_pages(canvas, "/api/v1/accounts/1/courses?per_page=7")
    assert len(items) == total and len({c["id"] for c in items}) == total
    last = links(responses[-1])
    assert list(last) == ["current", "prev", "first", "last"] and last["last"] == last["current"]


@pytest.mark.parametrize(("raw", "size"), [("0", 1), ("-5", 1), ("abc", 1), ("1000", 100), ("2", 2), ("7x", 7)])
def test_per_page_is_clamped(canvas, raw, size):
    got = get(canvas, f"/api/v1/accounts/1/courses?state[]=all&per_page={raw}")
    assert len(got.json()) == min(size, 30)
    assert links(got)["current"].endswith(f"page=1&per_page={size}")


def test_default_per_page_is_10(canvas):
    assert len(get(canvas, "/api/v1/accounts/1/courses").json()) == 10


def test_exactly_full_last_page_links_to_an_empty_page(canvas, university):
    total = len(university.courses)                         # state[]=all includes deleted courses
    divisor = next(d for d in range(2, 10) if total % d == 0)
    items, responses = all_pages(canvas, f"/api/v1/accounts/1/courses?state[]=all&per_page={divisor}")
    assert sorted(c["id"] for c in items) == sorted(c.id for c in university.courses)
    assert responses[-1].json() == [] and len(responses) == total // divisor + 1
    assert "last" not in links(responses[-2]) and "next" in links(responses[-2])
    assert "next" not in links(responses[-1])


@pytest.mark.parametrize("style", ["bookmark", "numbered"])
def test_audit_log_newest_first_compound_document(university, style):
    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN}), audit_pagination=style))
    with SimServer(app, options=FREE) as server:
        first = get(server, "/api/v1/audit/course/courses/101?per_page=10").json()
        assert set(first) == {"links", "events", "linked"}
        assert first["links"]["events.course"] == f"{server.url}/api/v1/courses/{{events.course}}"
        events, responses = [], [get(server, "/api/v1/audit/course/courses/101?per_page=10")]
        while True:
            events += responses[-1].json()["events"]
            if "next" not in links(responses[-1]):
                break
            responses.append(requests.get(links(responses[-1])["next"], timeout=5,
                                          headers={"Authorization": f"Bearer {TOKEN}"}))
    expected = university.audit_by_course[101]
    assert [e["id"] for e in events] == [e.id for e in expected]
    assert len(responses) == 3
    if style == "bookmark":
        assert "page=bookmark:" in links(responses[0])["next"]
    published = next(e for e in events if e["event_type"] == "published")
    assert published["links"]["course"] == 101 and published["created_at"].endswith("Z")


def activity_rows(university: University, course_id: int) -> list[dict]:
    return [{"date": d.date.isoformat(), "views": d.views, "participations": d.participations, "id": None}
            for d in university.activity_by_course[course_id]]


def test_analytics_needs_an_available_or_completed_course_with_an_active_or_completed_student(canvas, university):
    assert get(canvas, "/api/v1/courses/101/analytics/activity").json() == activity_rows(university, 101)
    assert get(canvas, "/api/v1/courses/103/analytics/activity").json() == activity_rows(university, 103)  # completed
    assert get(canvas, "/api/v1/courses/109/analytics/activity").json() == []    # a student, no history
    for course_id in (105, 113, 102, 104, 999):     # invited student only; no student; unpublished; deleted; none
        missing = get(canvas, f"/api/v1/courses/{course_id}/analytics/activity")
        assert missing.status_code == 404
        assert missing.json() == {"errors": [{"message": "The specified resource does not exist."}]}


UNAUTHORIZED = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}


def test_tokens_without_permissions_get_canvas_s_unauthorized_answers(university):
    options = CanvasOptions(tokens=frozenset({TOKEN}), token_permissions=frozenset({"view_course_changes"}))
    app, _ = build_canvas_app(university, options)
    with SimServer(app, options=FREE) as server:
        denied = get(server, "/api/v1/courses/101/analytics/activity")
        assert denied.status_code == 401 and denied.json() == UNAUTHORIZED
        assert get(server, "/api/v1/courses/102/analytics/activity").status_code == 404   # the course check first
        assert get(server, "/api/v1/audit/course/courses/101").status_code == 200
    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN}), token_permissions=frozenset()))
    with SimServer(app, options=FREE) as server:
        denied = get(server, "/api/v1/audit/course/courses/101")
        assert denied.status_code == 401 and denied.json() == UNAUTHORIZED
        assert get(server, "/api/v1/audit/course/courses/104").status_code == 404         # deleted: not found
    with pytest.raises(ValueError, match="unknown Canvas permissions"):
        CanvasOptions(token_permissions=frozenset({"read_everything"}))


def test_tabs_hidden_only_when_true_and_launch_chain(canvas):
    tabs = get(canvas, "/api/v1/courses/101/tabs").json()
    assert [t["position"] for t in tabs] == [1, 2]
    assert all("hidden" not in t for t in tabs)
    zoom = tabs[1]
    assert zoom["url"] == (f"{canvas.url}/api/v1/courses/101/external_tools/sessionless_launch"
                           "?id=123&launch_type=course_navigation")
    hidden = get(canvas, "/api/v1/courses/102/tabs").json()[1]
    assert hidden["hidden"] is True and hidden["visibility"] == "none"
    launch = get(canvas, zoom["url"].removeprefix(canvas.url)).json()
    assert set(launch) == {"id", "name", "url"} and launch["name"] == "Zoom"
    page = requests.get(launch["url"], timeout=5).text                            # no auth needed
    assert 'action="http://zoom.invalid:1/lti/rich"' in page
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    assert fields["lti_message_type"] == "basic-lti-launch-request"
    assert fields["custom_canvas_course_id"] == "101"
    signature = fields.pop("oauth_signature")
    assert signature == oauth_signature("POST", "http://zoom.invalid:1/lti/rich", fields, "sandbox-zoom-secret")


MISSING_LAUNCH = "Cannot locate launch request, please try again."


def test_launch_page_without_form_for_flagged_course(canvas):
    launch = get(canvas, "/api/v1/courses/102/external_tools/sessionless_launch?id=123"
                         "&launch_type=course_navigation").json()
    page = requests.get(launch["url"], timeout=5)
    assert page.status_code == 200 and "<form" not in page.text


def test_a_verifier_works_once_and_unknown_ones_are_not_found(canvas):
    launch = get(canvas, "/api/v1/courses/101/external_tools/sessionless_launch?id=123"
                         "&launch_type=course_navigation").json()
    query = parse_qs(urlsplit(launch["url"]).query)
    assert list(query) == ["session_token", "verifier"]                # {verifier:, session_token:}.to_query
    assert re.fullmatch(r"[0-9a-f]{128}", query["verifier"][0])         # SecureRandom.hex(64)
    assert requests.get(launch["url"], timeout=5).status_code == 200
    for url in (launch["url"], f"{canvas.url}/courses/101/external_tools/sessionless_launch?verifier=forged"):
        again = requests.get(url, timeout=5)
        assert again.status_code == 404 and again.text == MISSING_LAUNCH
        assert again.headers["Content-Type"].startswith("text/plain")


def test_reusable_verifiers_stay_available_as_an_option_and_launches_expire(university):
    from sandbox.canvas_rest import CanvasRest, install_canvas_routes
    from sandbox.httpapp import App

    now = [0.0]
    rest = CanvasRest(university, CanvasOptions(tokens=frozenset({TOKEN}), single_use_verifier=False),
                      clock=lambda: now[0])
    app = App()
    install_canvas_routes(app, rest)
    with SimServer(app, options=FREE) as server:
        url = get(server, "/api/v1/courses/101/external_tools/sessionless_launch?id=123").json()["url"]
        assert [requests.get(url, timeout=5).status_code for _ in range(2)] == [200, 200]
        now[0] += 300.0                                                  # Lti::RedisMessageClient::TTL
        assert requests.get(url, timeout=5).text == MISSING_LAUNCH


def test_launch_api_errors_follow_external_tools_controller(canvas):
    path = "/api/v1/courses/101/external_tools/sessionless_launch"
    for query in ("?id=999&launch_type=course_navigation", "?id=123&launch_type=assignment_selection"):
        moved = get(canvas, path + query, allow_redirects=False)           # find_tool: redirect to the course
        assert moved.status_code == 302 and moved.headers["Location"] == f"{canvas.url}/courses/101"
    unmatched = get(canvas, path + "?url=https://tool.invalid/launch")
    assert unmatched.status_code == 200
    assert unmatched.json() == {"errors": {"external_tool": "Unable to find a matching external tool"}}
    matched = get(canvas, path + "?url=http://zoom.invalid:1/lti/rich").json()
    assert matched["id"] == 123 and "verifier=" in matched["url"]
    neither = get(canvas, path)
    assert neither.status_code == 400 and set(neither.json()["errors"]) == {
        "id", "url", "module_item_id", "resource_link_lookup_uuid"}


def test_unauthenticated_canvas_requests_are_throttled_by_client_ip(university):
    from sandbox.throttle import ThrottleOptions

    app, _ = build_canvas_app(university, CanvasOptions(tokens=frozenset({TOKEN})))
    options = ServerOptions(cost=CostModel(40, 0), throttle=ThrottleOptions(enabled=True, leak=0.001))
    with SimServer(app, options=options) as server:
        launch = get(server, "/api/v1/courses/101/external_tools/sessionless_launch?id=123").json()
        page = requests.get(launch["url"], timeout=5)                     # no token: RequestThrottle keys "ip:..."
        assert page.headers["X-Request-Cost"] == "0.04" and "X-Rate-Limit-Remaining" in page.headers
        # Each bucket holds one request's 0.04 (less a leak of 0.001/s): the page went to the IP's bucket.
        assert server.throttle.level("ip:127.0.0.1") == pytest.approx(0.04, abs=1e-4)
        assert server.throttle.level(TOKEN) == pytest.approx(0.04, abs=1e-4)


def test_default_launch_form_choice_is_seeded_and_rare(university):
    from sandbox.canvas_rest import CanvasRest

    first, again = CanvasRest(university, CanvasOptions(seed=3)), CanvasRest(university, CanvasOptions(seed=3))
    choices = [first.launch_page_has_form(cid) for cid in range(1, 5001)]
    assert choices == [again.launch_page_has_form(cid) for cid in range(1, 5001)]
    assert 0.01 < choices.count(False) / len(choices) < 0.05


def test_sub_accounts_recursive_lists_the_tree_tier_by_tier_with_look_ahead_pages(canvas):
    """accounts_controller.rb#sub_accounts: recursive pages read one row ahead, so no empty last page and no
    `last` link; without `recursive`, the direct children by id with a counted `last`."""
    first = get(canvas, "/api/v1/accounts/1/sub_accounts", params={"recursive": "true", "per_page": 2})
    assert [a["id"] for a in first.json()] == [2, 4]                      # tier 1, then tier 2
    assert set(links(first)) == {"current", "next", "first"}
    second = requests.get(links(first)["next"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert [a["id"] for a in second.json()] == [3] and set(links(second)) == {"current", "prev", "first"}
    assert second.json()[0] == get(canvas, "/api/v1/accounts/3").json()   # the same JSON as the account itself
    whole = get(canvas, "/api/v1/accounts/2/sub_accounts", params={"recursive": "1"})
    assert [a["id"] for a in whole.json()] == [3]
    direct = get(canvas, "/api/v1/accounts/1/sub_accounts", params={"per_page": 1})
    assert [a["id"] for a in direct.json()] == [2]
    assert "page=2&per_page=1" in links(direct)["last"] and "next" in links(direct)
    assert get(canvas, "/api/v1/accounts/3/sub_accounts").json() == []
    assert get(canvas, "/api/v1/accounts/99/sub_accounts").status_code == 404
