"""Pure transforms of the COURSE_INVENTORY job, fed with Canvas-shaped JSON."""

import gc
from datetime import UTC, date, datetime
from pathlib import Path

import graphql
import pandas as pd
import pytest

from course_inventory import transform
from course_inventory.gql_queries import enrollments_query, enrollments_variables
from vocab import TransformError

SCHEMA = Path(__file__).resolve().parents[2] / "sandbox" / "canvas-schema.graphql"


def test_canvas_time_is_naive_utc():
    assert transform.canvas_time("2020-01-15T14:03:22Z") == datetime(2020, 1, 15, 14, 3, 22)
    assert transform.canvas_time("2012-06-01T00:00:00-06:00") == datetime(2012, 6, 1, 6, 0, 0)
    assert transform.canvas_time(None) is None
    with pytest.raises(TransformError):
        transform.canvas_time("yesterday")


@pytest.mark.parametrize(("raw", "stored"), [(None, None), ("", None), ("  ", None), ("2310", "2310"),
                                             ("UM_ANN-ARBOR", "UM_ANN-ARBOR"), (2310, "2310")])
def test_sis_ids_are_text_or_null_never_the_string_none(raw, stored):
    assert transform.sis_text(raw) == stored


def test_courses_without_students_are_dropped_and_counted():
    courses = [{"id": 1, "total_students": 3}, {"id": 2, "total_students": 0}, {"id": 3}]
    kept, dropped = transform.keep_courses_with_students(courses)
    assert [c["id"] for c in kept] == [1] and dropped == 2


def test_courses_keep_repeated_long_and_non_ascii_names():
    name = "Français 101 — Café 🎓 " * 8
    courses = [{"id": i, "name": name, "account_id": 5, "enrollment_term_id": 7, "sis_course_id": None,
                "created_at": "2020-01-15T14:03:22Z", "workflow_state": "available"} for i in (2, 1)]
    df = transform.courses_to_df(courses, {1: datetime(2020, 2, 1)})
    assert list(df.columns) == transform.COURSE_COLUMNS
    assert df["name"].tolist() == [name, name] and df["canvas_id"].tolist() == [1, 2]
    assert df["sis_id"].isna().all()
    assert df.loc[0, "published_at"] == pd.Timestamp("2020-02-01") and pd.isna(df.loc[1, "published_at"])


def test_first_published_event_scans_newest_first():
    page = {"events": [{"event_type": "updated", "created_at": "2020-09-02T00:00:00Z"},
                       {"event_type": "published", "created_at": "2020-09-01T10:00:00Z"},
                       {"event_type": "published", "created_at": "2020-08-01T10:00:00Z"}]}
    assert transform.first_published_event(page) == (True, datetime(2020, 9, 1, 10))
    assert transform.first_published_event({"events": [{"event_type": "created"}]}) == (False, None)


def test_activity_rows_ignore_id_and_dedupe_by_date():
    rows = transform.activity_rows(9, [{"date": "2020-09-01", "views": 5, "participations": 1, "id": None},
                                       {"date": "2020-09-01", "views": 5, "participations": 1, "id": None}])
    df = transform.usage_to_df(rows)
    assert df.to_dict("records") == [{"course_id": 9, "views": 5, "participations": 1, "date": date(2020, 9, 1)}]


def test_enrollments_and_sections_from_graphql_nodes():
    node = {"_id": "9001", "state": "active", "type": "StudentEnrollment",
            "section": {"_id": "3001", "name": "Sec", "sisId": " 2510EECS001 "},
            "user": {"_id": "5001"}, "course": {"_id": "101"}}
    other = {**node, "_id": "9002", "section": {"_id": "3002", "name": None, "sisId": None}, "course": None}
    # Another page naming section 3001 again: the first sighting is kept.
    again = {**node, "_id": "9003", "section": {"_id": "3001", "name": "Renamed", "sisId": "X"}}
    sections: dict[int, transform.SectionInfo] = {}
    records = transform.enrollment_records(101, [node, node, other, again], sections)
    assert sections == {3001: ("Sec", "2510EECS001"), 3002: ("", None)}
    gc.collect()
    assert not any(gc.is_tracked(record) for record in records), "records must not stay in the collector's lists"
    enrollments = transform.enrollments_to_df(records)
    assert enrollments.to_dict("records")[:2] == [
        {"canvas_id": 9001, "course_id": 101, "course_section_id": 3001, "user_id": 5001, "workflow_state": "active",
         "role_type": "StudentEnrollment"},
        {"canvas_id": 9002, "course_id": 101, "course_section_id": 3002, "user_id": 5001, "workflow_state": "active",
         "role_type": "StudentEnrollment"}]
    assert list(enrollments.dtypes.astype(str))[:4] == ["Int64"] * 4
    with pytest.raises(TransformError, match="no section"):
        transform.enrollment_records(101, [{**node, "section": None}], {})
    with pytest.raises(TransformError, match="enrollment user"):
        transform.enrollment_records(101, [{**node, "user": {"_id": "x"}}], {})


def test_section_rows_carry_canvas_sis_ids_unless_others_are_chosen():
    sections = {3002: ("B", None), 3001: ("A", "SEC-1"), 3003: ("C", "SEC-3")}
    from_canvas = transform.sections_to_df(sections)
    assert list(from_canvas.columns) == transform.SECTION_COLUMNS
    assert from_canvas.to_dict("records") == [{"canvas_id": 3001, "sis_id": "SEC-1", "name": "A"},
                                              {"canvas_id": 3002, "sis_id": None, "name": "B"},
                                              {"canvas_id": 3003, "sis_id": "SEC-3", "name": "C"}]
    chosen = transform.sections_to_df(sections, {3001: "UDW-1", 3002: 4711, 3003: "  "})   # 3003: blank = NULL
    assert chosen["sis_id"].tolist() == ["UDW-1", "4711", None]
    assert transform.sections_to_df(sections, {})["sis_id"].isna().all()                  # none in the chosen source


@pytest.mark.parametrize("value", ["2020-01-15 04:12:33.123456+00:00", "2020-01-15 04:12:33.123456+0000",
                                   "2020-01-15 04:12:33.123456+00"])
def test_warehouse_time_accepts_the_formats_udw_produces(value):
    assert transform.warehouse_time(value) == datetime(2020, 1, 15, 4, 12, 33, 123456, tzinfo=UTC)


@pytest.mark.parametrize("count", [1, 10, 20])
def test_enrollment_query_validates_against_canvas_schema(count):
    schema = graphql.build_schema(SCHEMA.read_text())
    document = graphql.parse(enrollments_query(count))
    assert graphql.validate(schema, document) == []
    section = schema.type_map["Section"].fields
    assert "sisId" in section and graphql.get_named_type(section["sisId"].type).name == "String"
    assert enrollments_query(count).count("section { _id name sisId }") == count
    variables = enrollments_variables([(i, None) for i in range(count)])
    assert variables["first"] == 100 and variables[f"id{count - 1}"] == str(count - 1)
