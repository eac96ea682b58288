"""Zoom LTI simulator: generated meetings, launch checks (fields, signature, nonce), sessions and history paging."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

import pytest
import requests

from sandbox.canvas_rest import CanvasOptions, build_canvas_app, oauth_signature
from sandbox.generator import generate_university
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.zoom_data import TOPIC_MAX, ZoomData, expected_zoom_output, meeting_json, start_time_text
from sandbox.zoom_sim import (
    HISTORY_PATH,
    LAUNCH_PATH,
    LAYOUTS,
    SESSION_COOKIE,
    ZoomSimOptions,
    start_zoom_server,
    zoom_service_factory,
)
from tests.sandbox.test_canvas_rest import tiny_university

FREE = ServerOptions(cost=CostModel(overhead_ms=0, per_record_ms=0))
KEY, SECRET = "zoom-test-key", "zoom-test-secret"


@pytest.fixture(scope="module")
def university():
    return generate_university("small", seed=7)


@pytest.fixture(scope="module")
def data(university):
    return ZoomData(university, no_values_share=0.2)


@pytest.fixture(scope="module")
def zoom(data):
    server, lti = start_zoom_server(data, ZoomSimOptions(consumer_key=KEY, shared_secret=SECRET), FREE)
    yield server, lti
    server.stop()


def signed_form(url: str, course_id: int, *, nonce: str | None = None, secret: str = SECRET, **changes) -> dict:
    fields = {"lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
              "resource_link_id": f"link-{course_id}", "custom_canvas_course_id": str(course_id),
              "context_title": "Çourse \"quoted\" 'x'", "roles": "Instructor", "ext_new_canvas_field": "ignored",
              "oauth_consumer_key": KEY, "oauth_nonce": nonce or f"{course_id}-{time.monotonic_ns()}",
              "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": str(int(time.time())),
              "oauth_version": "1.0", "oauth_callback": "about:blank", **changes}
    fields["oauth_signature"] = oauth_signature("POST", url, fields, secret)
    return fields


def launch(server, course_id, **kwargs):
    session = requests.Session()
    response = session.post(f"{server.url}{LAUNCH_PATH}", data=signed_form(f"{server.url}{LAUNCH_PATH}", course_id,
                                                                          **kwargs), timeout=5)
    return session, response


def values_in(page: str) -> tuple[str, str]:
    """The two values, found the blunt way: the only 32-hex string and the only UUID in the page."""
    return re.search(r"\b[0-9a-f]{32}\b", page).group(), re.search(r"\b[0-9a-f-]{36}\b", page).group()


def history(server, session, scid, token, page=1, tz="America/Detroit"):
    return session.get(f"{server.url}{HISTORY_PATH}", timeout=5, headers={"X-XSRF-TOKEN": token},
                       params={"page": page, "lti_scid": scid, "total": 0, "storage_timezone": "America/Montreal",
                               "client_timezone": tz})


def course_with(data, university, predicate):
    return next(c.id for c in university.courses if predicate(data.meetings(c.id)) and data.launch_has_values(c.id))


# ---- generated data ----
def test_meetings_are_deterministic_and_messy(university, data):
    again = ZoomData(generate_university("small", seed=7))
    other = ZoomData(generate_university("small", seed=8))
    ids = [c.id for c in university.courses]
    assert [data.meetings(i) for i in ids] == [again.meetings(i) for i in ids]
    assert [data.meetings(i) for i in ids] != [other.meetings(i) for i in ids]
    counts = [len(data.meetings(i)) for i in ids]
    assert 0 in counts and any(1 <= n <= 10 for n in counts) and any(n > 20 for n in counts)
    meetings = [m for i in ids for m in data.meetings(i)]
    topics = {m.topic for m in meetings}
    assert any('"' in t for t in topics) and any("'" in t for t in topics)
    assert any(not t.isascii() for t in topics) and max(len(t) for t in topics) == TOPIC_MAX
    for i in ids:
        course_meetings = data.meetings(i)
        assert len({m.meeting_id for m in course_meetings}) == len(course_meetings)
        assert [m.start_at for m in course_meetings] == sorted((m.start_at for m in course_meetings), reverse=True)
    numbers = [m.meeting_number for i in ids for m in data.meetings(i)]
    assert len(set(numbers)) < len(numbers)                  # recurring meetings share a number
    assert data.meetings(-1) == []


def test_broken_launch_share_and_layouts_follow_the_seed(university):
    data = ZoomData(university, no_values_share=0.2)
    broken = sum(not data.launch_has_values(i) for i in range(5_000))
    assert 0.17 < broken / 5_000 < 0.23
    assert {data.page_layout(c.id, len(LAYOUTS)) for c in university.courses} == set(range(len(LAYOUTS)))
    forced = ZoomData(university, launch_has_values=lambda course_id: course_id % 2 == 0)
    assert forced.launch_has_values(4) and not forced.launch_has_values(5)
    with pytest.raises(ValueError):
        ZoomData(university, no_values_share=1.5)


def test_start_time_text_is_shown_in_the_asked_zone():
    moment = datetime(2020, 9, 1, 14, 0, tzinfo=UTC)
    assert start_time_text(moment, "America/Detroit") == "Sep 1, 2020 10:00 AM"
    assert start_time_text(moment, "Asia/Shanghai") == "Sep 1, 2020 10:00 PM"
    assert start_time_text(datetime(2020, 1, 5, 0, 5, tzinfo=UTC), "Not/AZone") == "Jan 5, 2020 12:05 AM"


# ---- launch ----
def test_launch_sets_a_session_and_history_pages_through_every_meeting(zoom, data, university):
    server, _ = zoom
    course_id = course_with(data, university, lambda meetings: len(meetings) > 25)
    session, response = launch(server, course_id)
    assert response.status_code == 200 and SESSION_COOKIE in session.cookies
    scid, token = values_in(response.text)
    first = history(server, session, scid, token).json()
    assert first["status"] is True and first["errorCode"] == 0
    result = first["result"]
    assert result["total"] == len(data.meetings(course_id)) and result["pageSize"] == 10
    listed = list(result["list"])
    for page in range(2, math.ceil(result["total"] / result["pageSize"]) + 1):
        body = history(server, session, scid, token, page=page).json()["result"]
        assert body["pageNum"] == page
        listed.extend(body["list"])
    assert listed == [meeting_json(m, "America/Detroit") for m in data.meetings(course_id)]
    beyond = history(server, session, scid, token, page=99).json()["result"]
    assert beyond["list"] == [] and beyond["total"] == result["total"]
    in_utc = history(server, session, scid, token, tz="UTC").json()["result"]["list"][0]
    assert in_utc["startTime"] == start_time_text(data.meetings(course_id)[0].start_at, "UTC")


def test_history_needs_the_launch_cookie_token_and_scid(zoom, data, university):
    server, _ = zoom
    course_id = course_with(data, university, lambda meetings: len(meetings) > 0)
    session, response = launch(server, course_id)
    scid, token = values_in(response.text)
    stranger = requests.Session()
    assert history(server, stranger, scid, token).status_code == 401
    assert history(server, stranger, scid, token).json()["status"] is False
    assert history(server, session, scid, "wrong-token").status_code == 403
    assert history(server, session, "wrong-scid", token).status_code == 403
    other_session, other = launch(server, course_id)
    other_scid, other_token = values_in(other.text)
    assert history(server, session, other_scid, other_token).status_code == 403   # values of another launch
    assert history(server, other_session, other_scid, other_token).status_code == 200


@pytest.mark.parametrize(("change", "status"), [
    ({"secret": "not-the-secret"}, 401),
    ({"oauth_consumer_key": "someone-else"}, 401),
    ({"oauth_timestamp": "1000000000"}, 401),
    ({"lti_message_type": "ContentItemSelectionRequest"}, 400),
    ({"resource_link_id": ""}, 400),
])
def test_launch_refuses_invalid_requests(zoom, change, status):
    server, _ = zoom
    session, response = launch(server, 10000, **change)
    assert response.status_code == status and "Invalid LTI launch" in response.text
    assert SESSION_COOKIE not in session.cookies


def test_launch_refuses_a_replayed_nonce_and_tampered_fields(zoom):
    server, _ = zoom
    url = f"{server.url}{LAUNCH_PATH}"
    form = signed_form(url, 10000, nonce="only-once")
    assert requests.post(url, data=form, timeout=5).status_code == 200
    assert requests.post(url, data=form, timeout=5).status_code == 401
    tampered = {**signed_form(url, 10000), "custom_canvas_course_id": "10001"}
    assert requests.post(url, data=tampered, timeout=5).status_code == 401


def test_each_layout_carries_the_values_and_broken_pages_carry_none(zoom, data, university):
    server, _ = zoom
    for layout in range(len(LAYOUTS)):
        course_id = next(c.id for c in university.courses
                         if data.page_layout(c.id, len(LAYOUTS)) == layout and data.launch_has_values(c.id))
        _, response = launch(server, course_id)
        scid, token = values_in(response.text)
        assert "scid" in response.text and "X-XSRF-TOKEN" in response.text
    broken = next(c.id for c in university.courses if not data.launch_has_values(c.id))
    session, response = launch(server, broken)
    assert response.status_code == 200 and SESSION_COOKIE not in session.cookies
    assert not re.search(r"\b[0-9a-f]{32}\b", response.text)


# ---- wiring with the Canvas simulator ----
def test_canvas_launch_chain_reaches_the_meetings_and_the_factory_config():
    u = tiny_university()
    server, config = zoom_service_factory(u, {"server_options": FREE, "lti_consumer_key": "k",
                                              "lti_shared_secret": "s", "no_values_share": 0.0})
    try:
        assert config == {"ZOOM": {"BASE_URL": server.url}}
        options = CanvasOptions(tokens=frozenset({"tok"}), zoom_base_url=server.url, lti_consumer_key="k",
                                lti_shared_secret="s", seed=u.seed)
        app, _ = build_canvas_app(u, options, launch_page_has_form=lambda _: True)
        with SimServer(app, name="canvas", options=FREE) as canvas:
            auth = {"Authorization": "Bearer tok"}
            tab = requests.get(f"{canvas.url}/api/v1/courses/101/tabs", headers=auth, timeout=5).json()[1]
            url = requests.get(tab["url"], headers=auth, timeout=5).json()["url"]
            browser = requests.Session()
            page = browser.get(url, timeout=5).text
            action = re.search(r'action="([^"]+)"', page).group(1)
            fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
            response = browser.post(action, data=fields, timeout=5)
            assert response.status_code == 200
            scid, token = values_in(response.text)
            body = history(server, browser, scid, token).json()
        expected = ZoomData(u).meetings(101)
        assert expected and body["result"]["list"] == [meeting_json(m, "America/Detroit") for m in expected]
    finally:
        server.stop()


def test_expected_output_follows_canvas_tab_rules():
    u = tiny_university()                                   # 101: visible Zoom tab; 102: hidden one
    data = ZoomData(u, no_values_share=0.0)
    expected = expected_zoom_output(u, [7], [102, 101, 999], data, launch_page_has_form=lambda _: True)
    assert [row["course_id"] for row in expected.courses] == [101] and expected.placements == 1
    assert [row["id"] for row in expected.meetings] == list(range(1, len(data.meetings(101)) + 1))
    failing = expected_zoom_output(u, [7], [], data, launch_page_has_form=lambda cid: cid != 101)
    assert failing.failed_course_ids == {101} and failing.meetings == [] and len(failing.courses) == 1
