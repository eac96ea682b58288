"""Pure parsing of CANVAS_ZOOM_MEETINGS: tabs, the LTI form, Zoom's script values, history JSON, output rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clients import zoom_pages
from online_meetings import transform
from online_meetings.collect import ZoomCollection
from online_meetings.transform import build_frames, check_launches
from sandbox.canvas_rest import CanvasOptions, launch_form_html, oauth_signature
from sandbox.university import Course, Tab
from sandbox.zoom_sim import LAYOUTS, LtiSession
from vocab import JobError, SourceFormatError, TransformError

SCID, TOKEN = "5f2c0a9d41be4d6f8e3a7c1b2d9e0f44", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


# ---- Canvas ----
def test_zoom_placements_are_visible_tabs_labelled_exactly_zoom():
    tabs = [
        {"id": "home", "label": "Home", "type": "internal"},
        {"id": "context_external_tool_1", "label": "Zoom", "type": "external", "url": "https://c/a"},
        {"id": "context_external_tool_2", "label": "Zoom", "type": "external", "url": "https://c/b", "hidden": True},
        {"id": "context_external_tool_3", "label": "Zoom", "type": "external", "url": "https://c/c", "hidden": False},
        {"id": "context_external_tool_4", "label": "zoom", "type": "external", "url": "https://c/d"},
        {"id": "context_external_tool_5", "label": "Zoom Meetings", "type": "external", "url": "https://c/e"},
        {"id": "context_external_tool_6", "label": "Zoom", "type": "external"},
    ]
    assert [t["url"] for t in transform.zoom_placements(tabs)] == ["https://c/a", "https://c/c"]
    assert transform.zoom_placements([]) == []
    with pytest.raises(SourceFormatError):
        transform.zoom_placements({"errors": []})


def test_launch_url_from_sessionless_launch():
    assert zoom_pages.launch_url({"id": 1, "name": "Zoom", "url": "https://c/courses/1/x?verifier=v"}).endswith("=v")
    for body in ({"id": 1}, {"url": "/relative"}, [], None):
        with pytest.raises(SourceFormatError):
            zoom_pages.launch_url(body)


# ---- the LTI launch form ----
def canvas_page(name: str = 'Café "101" & <friends>') -> str:
    course = Course(101, name, "CAFE 101", 1, 7, None, datetime(2020, 1, 1, tzinfo=UTC), "available")
    tab = Tab(101, "context_external_tool_9", "Zoom", "external", 2, tool_id=9)
    options = CanvasOptions(lti_consumer_key="k", lti_shared_secret="s")
    return launch_form_html(course, tab, "https://zoom.example", "https://canvas.example", options).body.decode()


def test_launch_form_collects_every_signed_field_of_canvas_page():
    form = zoom_pages.launch_form(canvas_page(), "https://canvas.example/courses/101/external_tools/sessionless_launch")
    assert form is not None and form.action == "https://zoom.example/lti/rich" and form.method == "POST"
    fields = dict(form.fields)
    assert fields["context_title"] == 'Café "101" & <friends>'           # HTML entities decoded
    assert fields["lti_message_type"] == "basic-lti-launch-request" and fields["custom_canvas_course_id"] == "101"
    signature = fields.pop("oauth_signature")
    assert signature == oauth_signature("POST", form.action, fields, "s")   # submitting them verifies at Zoom


def test_launch_form_behaves_like_a_browser():
    page = """<html><body><form action="/lti/rich?x=1" method="post">
      <input type="hidden" name="a" value="1"><input type="hidden" value="no name">
      <input type="submit" name="go" value="Go"><input type="checkbox" name="off" value="1">
      <input type="checkbox" name="on" value="y" checked><input name="plain">
      <input type="hidden" name="gone" value="x" disabled><textarea name="note">two
lines</textarea><input type="hidden" name="a" value="2">
    </form></body></html>"""
    form = zoom_pages.launch_form(page, "https://zoom.example/start/page")
    assert form.action == "https://zoom.example/lti/rich?x=1" and form.method == "POST"
    assert form.fields == [("a", "1"), ("on", "y"), ("plain", ""), ("note", "two\nlines"), ("a", "2")]


def test_launch_form_prefers_the_lti_form_and_reports_pages_without_one():
    page = ('<form action="/search"><input name="q"></form>'
            '<form action="https://zoom.example/lti/rich" method="POST">'
            '<input type="hidden" name="lti_message_type" value="basic-lti-launch-request"></form>')
    assert zoom_pages.launch_form(page, "https://c/").action == "https://zoom.example/lti/rich"
    no_form = "<html><body><p>This tool could not be launched.</p></body></html>"
    assert zoom_pages.launch_form(no_form, "https://c/") is None
    assert zoom_pages.launch_form('<form><input name="a"></form>', "https://c/") is None   # no action to post to


# ---- Zoom's script values ----
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda f: f.__name__)
def test_launch_values_from_every_simulator_layout(layout):
    page = layout(LtiSession(101, SCID, TOKEN), 'Title with "quotes" and </script> inside')
    assert zoom_pages.launch_values(page) == zoom_pages.LaunchValues(SCID, TOKEN)


@pytest.mark.parametrize("script", [
    # the notes' safe shape
    f'window.appConf = {{}};\nappConf.scid = "{SCID}";\nappConf.headers = {{\n  "X-XSRF-TOKEN": "{TOKEN}"\n}};',
    # everything on one line, other quoted values after the wanted ones (breaks a greedy per-line regex)
    f'var s={{"scid":"{SCID}","x":"y"}};var h={{"X-XSRF-TOKEN":"{TOKEN}","Accept":"application/json"}};',
    # single quotes, brackets, spacing; comparisons and commented-out values do not count
    f"// scid = 'stale'\n/* \"X-XSRF-TOKEN\": \"old\" */ if (c.scid === 'x' || c.scid == 'y') {{}}\n"
    f"c[ 'scid' ] = '{SCID}'; c.headers[\"X-XSRF-TOKEN\"]   =   '{TOKEN}'",
    # other key spellings Zoom pages have used
    f'lti_scid: "{SCID}", "x-xsrf-token": "{TOKEN}"',
    # escapes inside the literals
    'scid = "' + SCID[:16] + '\\u0061' + SCID[17:] + '"; "X-XSRF-TOKEN": \'' + TOKEN + '\'',
])
def test_launch_values_from_script_text_whatever_the_quoting(script):
    values = zoom_pages.launch_values(f"<html><head><script>{script}</script></head><body></body></html>")
    assert values is not None and values.xsrf_token == TOKEN
    assert values.scid == (SCID if "\\u0061" not in script else SCID[:16] + "a" + SCID[17:])


def test_launch_values_across_scripts_and_only_inside_scripts():
    split = (f'<script src="/vendor.js"></script><script>var scid = "{SCID}";</script>'
             f'<script type="application/json">{{"X-XSRF-TOKEN": "{TOKEN}"}}</script>')
    assert zoom_pages.launch_values(split) == zoom_pages.LaunchValues(SCID, TOKEN)
    in_text = f'<p>scid = "{SCID}"</p><p>"X-XSRF-TOKEN": "{TOKEN}"</p>'
    assert zoom_pages.launch_values(in_text) is None
    repr_of_values = repr(zoom_pages.launch_values(split))
    assert SCID not in repr_of_values and TOKEN not in repr_of_values


@pytest.mark.parametrize("page", [
    '<script>window.appConf = {"error": "LTI session could not be established", "scid": ""};</script>',
    f'<script>appConf.scid = "{SCID}";</script>',                           # token missing
    f'<script>"X-XSRF-TOKEN": "{TOKEN}"</script>',                          # scid missing
    '<script>var scid = undefinedValue; var t = "X-XSRF-TOKEN";</script>',  # names without string values
    "<html><body>Something went wrong</body></html>",
    '<script>var a = "unterminated; scid = \'',
])
def test_launch_values_missing(page):
    assert zoom_pages.launch_values(page) is None


# ---- history JSON ----
def test_history_page_reads_total_size_and_list():
    page = zoom_pages.history_page({"status": True, "errorCode": 0, "result": {"total": 25, "pageSize": 10,
                                                                          "pageNum": 1, "list": [{"meetingId": "a"}]}})
    assert (page.total, page.page_size, page.pages, page.meetings) == (25, 10, 3, [{"meetingId": "a"}])
    empty = zoom_pages.history_page({"result": {"total": 0, "pageSize": 10, "list": None}})
    assert empty.pages == 0 and empty.meetings == []


@pytest.mark.parametrize(("body", "message"), [
    ({"status": True, "errorCode": 0}, "no result"),
    ({"status": False, "errorCode": 201, "errorMessage": "Session expired", "result": None}, "Session expired"),
    ({"result": {"total": 3, "pageSize": 0, "list": []}}, "pageSize"),
    ({"result": {"total": -1, "pageSize": 10, "list": []}}, "total"),
    ({"result": {"total": "3", "pageSize": 10, "list": []}}, "total"),
    ({"result": {"total": 3, "pageSize": 10, "list": ["x"]}}, "list"),
    ([], "not a JSON object"),
])
def test_history_page_refuses_other_shapes(body, message):
    with pytest.raises(SourceFormatError, match=message):
        zoom_pages.history_page(body)


def test_meeting_rows_keep_text_exactly_and_count_a_meeting_once():
    items = [
        {"meetingId": "kFz1/x+3==", "meetingNumber": 93512345678, "hostId": "AbC", "topic": 'Ünï "q" \'s\' 📚',
         "joinUrl": "https://z/j/1?pwd=x", "startTime": "Sep 1, 2020 10:00 AM", "status": "ENDED",
         "timezone": "America/Detroit", "duration": 80},
        {"meetingId": "kFz1/x+3==", "topic": "duplicate from a second placement"},
        {"meetingId": "KFZ1/X+3==", "meetingNumber": "935 1234 5678", "topic": "  "},
    ]
    rows = transform.meeting_rows(7, items)
    assert [r["meeting_id"] for r in rows] == ["kFz1/x+3==", "KFZ1/X+3=="]
    assert rows[0]["topic"] == 'Ünï "q" \'s\' 📚' and rows[0]["meeting_number"] == 93512345678
    assert rows[1]["meeting_number"] == 93512345678 and rows[1]["topic"] is None and rows[1]["host_id"] is None
    assert set(rows[0]) == set(transform.ZOOM_MEETING_COLUMNS) - {"id"}
    with pytest.raises(TransformError, match="course 7"):
        transform.meeting_rows(7, [{"topic": "no id"}])


@pytest.mark.parametrize(("value", "number"), [(123, 123), ("93512345678", 93512345678), ("935-1234-5678", 93512345678),
                                               ("n/a", None), (None, None), (True, None), ("", None)])
def test_meeting_number(value, number):
    assert transform.meeting_number(value) == number


# ---- output tables and the job's pure steps ----
def course(course_id: int, account_id: int = 3, name: str = "C") -> dict:
    return {"id": course_id, "account_id": account_id, "name": name, "workflow_state": "available"}


def test_zoom_courses_df_numbers_rows_by_course_id():
    df = transform.zoom_courses_df([course(30, name="日本語 102 — 初級会話"), course(10), course(30, name="dup")])
    assert list(df.columns) == transform.ZOOM_COURSE_COLUMNS
    assert df.to_dict("records") == [
        {"id": 1, "account_id": 3, "course_id": 10, "course_name": "C"},
        {"id": 2, "account_id": 3, "course_id": 30, "course_name": "日本語 102 — 初級会話"}]
    assert list(transform.zoom_courses_df([]).columns) == transform.ZOOM_COURSE_COLUMNS
    with pytest.raises(TransformError):
        transform.zoom_courses_df([{"id": 1}])


def test_zoom_meetings_df_orders_by_course_then_zoom_order():
    rows = {20: transform.meeting_rows(20, [{"meetingId": "b"}, {"meetingId": "a"}]),
            10: transform.meeting_rows(10, [{"meetingId": "z", "meetingNumber": "x"}])}
    df = transform.zoom_meetings_df(rows)
    assert list(df.columns) == transform.ZOOM_MEETING_COLUMNS
    assert list(zip(df["id"], df["course_id"], df["meeting_id"], strict=True)) == [(1, 10, "z"), (2, 20, "b"),
                                                                                   (3, 20, "a")]
    assert str(df["meeting_number"].dtype) == "Int64" and df["meeting_number"].isna().all()
    assert transform.zoom_meetings_df({}).empty


def test_build_frames_merges_placements_in_order_and_counts_each_meeting_once():
    collection = ZoomCollection(zoom_courses={5: course(5), 4: course(4)}, placements=3,
                                meetings={5: {1: [{"meetingId": "m2"}, {"meetingId": "m1"}], 0: [{"meetingId": "m1"}]},
                                          4: {}})
    frames = build_frames(collection, {})
    assert list(frames) == ["zoom_course", "zoom_course_meeting"]
    assert list(frames["zoom_course"]["course_id"]) == [4, 5]
    assert list(frames["zoom_course_meeting"]["meeting_id"]) == ["m1", "m2"]     # placement 0 first


def test_build_frames_keeps_the_stored_meetings_of_a_course_whose_launch_failed():
    stored = {"course_id": 4, "meeting_id": "old", "meeting_number": 12, "host_id": "h", "topic": "t",
              "join_url": "https://zoom/j/12", "start_time": "s", "status": "st", "timezone": "tz"}
    collection = ZoomCollection(zoom_courses={5: course(5), 4: course(4), 3: course(3)}, placements=3,
                                meetings={5: {0: [{"meetingId": "new"}]}, 4: {0: [{"meetingId": "partial"}]}},
                                failed_launches=[(4, "HTTP 503"), (3, "HTTP 503")])
    frames = build_frames(collection, {4: [stored], 9: [stored]})
    meetings = frames["zoom_course_meeting"]
    assert list(frames["zoom_course"]["course_id"]) == [3, 4, 5]            # every course that has the tab
    assert list(zip(meetings["course_id"], meetings["meeting_id"], strict=True)) == [(4, "old"), (5, "new")]
    assert list(meetings["id"]) == [1, 2] and meetings.iloc[0]["join_url"] == "https://zoom/j/12"


def test_check_launches_keeps_previous_data_when_most_launches_fail():
    ok = ZoomCollection(placements=4, skipped_launches=[(1, "no form")], failed_launches=[(2, "HTTP 503")])
    check_launches(ok)                                                          # half: still loads
    check_launches(ZoomCollection())                                            # nothing to launch
    with pytest.raises(JobError, match="3 of 4 Zoom launches failed"):
        check_launches(ZoomCollection(placements=4, skipped_launches=[(1, "a"), (2, "b")],
                                      failed_launches=[(3, "c")]))


def test_an_unmatched_tool_is_no_launch_not_a_failure():
    # Canvas answers 200 with an errors object when no tool matches (external_tools_controller.rb).
    with pytest.raises(zoom_pages.NoLaunch, match="no external tool"):
        zoom_pages.launch_url({"errors": {"external_tool": "Unable to find a matching external tool"}})
    with pytest.raises(SourceFormatError) as odd:
        zoom_pages.launch_url({"errors": "x", "url": "ftp://nowhere"})
    assert not isinstance(odd.value, zoom_pages.NoLaunch)
