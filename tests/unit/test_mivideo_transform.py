"""MIVIDEO pure transforms: category parsing, media rows, hourly rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from mivideo.transform import (
    HOURLY_SCHEMA,
    MEDIA_COURSES_SCHEMA,
    MEDIA_CREATED_SCHEMA,
    course_link,
    hourly_to_df,
    in_category_tree,
    media_to_frames,
    split_prefixes,
)
from vocab import TransformError

ROOT = "Canvas_UMich"


@pytest.mark.parametrize(("name", "inside"), [
    ("Canvas_UMich", True), ("Canvas_UMich>site>channels>12", True), ("Canvas_UMich_Test>site>channels>12", False),
    ("MediaSpace>site>channels>12", False), ("canvas_umich>site", False), ("XCanvas_UMich>site", False),
])
def test_category_tree_is_kalturas(name: str, inside: bool) -> None:
    assert in_category_tree(name, [ROOT]) is inside


def test_trailing_separator_means_sub_categories_only() -> None:
    assert in_category_tree("Canvas_UMich>site", ["Canvas_UMich>"])
    assert not in_category_tree("Canvas_UMich", ["Canvas_UMich>"])


@pytest.mark.parametrize(("name", "link"), [
    ("Canvas_UMich>site>channels>12345", (12345, False)),
    ("Canvas_UMich>site>channels>12345>InContext", (12345, True)),
    ("Canvas_UMich>site>channels>Sandbox space", None),
    ("Canvas_UMich>site>channels>12345x", None),
    ("Canvas_UMich>site>channels>course-12345", None),
    ("Canvas_UMich>site>channels>InContext", None),
    ("Canvas_UMich>site>channels>１２３", None),            # full-width digits are not a Canvas id
    ("Canvas_UMich>site>channels>0", None),
    ("Canvas_UMich>site>channels>99999999999", None),       # does not fit the INT column
    ("Canvas_UMich", None),
])
def test_course_link(name: str, link: tuple[int, bool] | None) -> None:
    assert course_link(name) == link


def entry(media_id: str, created_at: int, categories: str, name: str | None = "Lecture",
          duration: int | None = 60) -> dict:
    return {"id": media_id, "createdAt": created_at, "name": name, "duration": duration, "categories": categories}


def test_media_rows_and_course_links() -> None:
    entries = [
        entry("1_a", 1583020800, "Canvas_UMich>site>channels>10,Canvas_UMich>site>channels>10>InContext,"
                                 "Canvas_UMich>site>channels>11,Canvas_UMich_Test>site>channels>99"),
        entry("1_b", 1583020801, "Canvas_UMich>site>galleries, Canvas_UMich>site>channels>12 ", name="Ünïcode " * 40),
        entry("1_c", 1583020802, "", name=None, duration=None),
    ]
    frames = media_to_frames(entries, [ROOT])
    assert frames.created.to_dict("records") == [
        {"id": "1_a", "created_at": pd.Timestamp("2020-03-01 00:00:00"), "name": "Lecture", "duration": 60},
        {"id": "1_b", "created_at": pd.Timestamp("2020-03-01 00:00:01"), "name": "Ünïcode " * 40, "duration": 60},
        {"id": "1_c", "created_at": pd.Timestamp("2020-03-01 00:00:02"), "name": "", "duration": 0},
    ]
    assert set(frames.courses.itertuples(index=False, name=None)) == {
        ("1_a", 10, False), ("1_a", 10, True), ("1_a", 11, False), ("1_b", 12, False)}
    assert frames.skipped_categories == 1
    assert dict(frames.created.dtypes.astype(str)) == MEDIA_CREATED_SCHEMA
    assert dict(frames.courses.dtypes.astype(str)) == MEDIA_COURSES_SCHEMA


def test_empty_page_keeps_the_column_contract() -> None:
    frames = media_to_frames([], [ROOT])
    assert list(frames.created.columns) == list(MEDIA_CREATED_SCHEMA) and frames.created.empty
    assert list(frames.courses.columns) == list(MEDIA_COURSES_SCHEMA) and frames.courses.empty


def test_duplicates_within_a_page_collapse() -> None:
    frames = media_to_frames([entry("1_a", 1, "Canvas_UMich>x>5,Canvas_UMich>x>5"), entry("1_a", 1, "")], [ROOT])
    assert len(frames.created) == 1 and len(frames.courses) == 1


def test_entry_without_id_or_time_is_refused() -> None:
    with pytest.raises(TransformError):
        media_to_frames([entry("", 1, "")], [ROOT])
    with pytest.raises(TransformError):
        media_to_frames([{"id": "1_a", "createdAt": None}], [ROOT])


def test_split_prefixes() -> None:
    assert split_prefixes(" Canvas_UMich , MediaSpace>site ,") == ["Canvas_UMich", "MediaSpace>site"]


def hourly(*rows: tuple[str, int, str, int]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(HOURLY_SCHEMA))
    frame["event_time_utc_latest"] = pd.to_datetime(frame["event_time_utc_latest"], utc=True)
    frame["course_id"] = frame["course_id"].astype("Int64")
    return frame


def test_hourly_rows_floor_to_seconds_and_drop_stored_hours() -> None:
    rows = hourly(("2020-03-01 14", 7, "2020-03-01 14:59:59.999999", 3),
                  ("2020-03-01 15", 7, "2020-03-01 15:00:00.000001", 1),
                  ("2020-03-01 15", 8, "2020-03-01 15:20:00.5", 2))
    first, dropped = hourly_to_df(rows)
    assert dropped == 0 and list(first["event_time_utc_latest"].astype(str)) == [
        "2020-03-01 14:59:59", "2020-03-01 15:00:00", "2020-03-01 15:20:00"]
    assert dict(first.dtypes.astype(str)) == HOURLY_SCHEMA
    later, dropped = hourly_to_df(rows, stored_latest=datetime(2020, 3, 1, 14, 59, 59, tzinfo=UTC))
    assert dropped == 1 and list(later["event_hour_utc"]) == ["2020-03-01 15", "2020-03-01 15"]


def test_hourly_rows_must_be_unique_and_complete() -> None:
    with pytest.raises(TransformError):
        hourly_to_df(hourly(("2020-03-01 14", 7, "2020-03-01 14:00:00", 1),
                            ("2020-03-01 14", 7, "2020-03-01 14:01:00", 1)))
    with pytest.raises(TransformError):
        hourly_to_df(pd.DataFrame({"event_hour_utc": ["2020-03-01 14"]}))


def test_empty_hourly_result() -> None:
    rows, dropped = hourly_to_df(hourly())
    assert rows.empty and dropped == 0 and list(rows.columns) == list(HOURLY_SCHEMA)
