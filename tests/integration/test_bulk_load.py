"""The LOAD DATA path of the loader: exact round trip of awkward text, and loud failures."""

import pandas as pd
import pytest
import sqlalchemy as sa

from db.loader import BULK_MIN_ROWS, append_rows, replace_tables
from vocab import LoadError

AWKWARD = ["tab\there", "new\nline", "back\\slash", "\\N", "NULL", "quote \" and '", "emoji 🎓 Ünïcödé", "cr\rlf",
           "", None]


def sections(n, names=AWKWARD):
    return pd.DataFrame({"canvas_id": range(1, n + 1),
                         "sis_id": [names[i % len(names)] for i in range(n)],
                         "name": [f"Section {i} {names[i % len(names)] or ''}" for i in range(n)]})


def test_bulk_load_round_trips_awkward_values_exactly(migrated_engine):
    frame = sections(BULK_MIN_ROWS + 5)
    assert append_rows(migrated_engine, "course_section", frame) == len(frame)
    with migrated_engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT canvas_id, sis_id, name FROM course_section ORDER BY canvas_id")).all()
    expected = [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False, name=None)]
    assert stored == expected


def test_bulk_load_refuses_truncation_and_rolls_back(migrated_engine):
    replace_tables(migrated_engine, {"course_section": sections(3)})
    frame = sections(BULK_MIN_ROWS + 5)
    frame.loc[BULK_MIN_ROWS, "name"] = "x" * 300
    with pytest.raises(LoadError, match="name"):
        replace_tables(migrated_engine, {"course_section": frame})
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM course_section")).scalar() == 3


def test_bulk_load_refuses_silently_skipped_duplicates(migrated_engine):
    frame = sections(BULK_MIN_ROWS + 5)
    frame.loc[7, "canvas_id"] = 9  # the id of the next row
    with pytest.raises(LoadError, match="Duplicate|rows accepted"):
        append_rows(migrated_engine, "course_section", frame)
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM course_section")).scalar() == 0


def test_bulk_load_of_datetimes_and_dates(migrated_engine):
    n = BULK_MIN_ROWS + 1
    replace_tables(migrated_engine, {
        "term": pd.DataFrame([{"canvas_id": 1, "name": "T", "sis_id": None, "start_at": None, "end_at": None}]),
        "account": pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "A"}]),
        "course": pd.DataFrame([{"canvas_id": 1, "sis_id": None, "name": "C", "account_id": 1, "term_id": 1,
                                 "created_at": pd.Timestamp("2020-01-15 14:03:22"), "published_at": pd.NaT,
                                 "workflow_state": "available"}]),
        "canvas_course_usage": pd.DataFrame({"course_id": [1] * n, "views": range(n), "participations": 1,
                                             "date": [pd.Timestamp("2020-01-01").date()] * n}),
    })
    with migrated_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*), SUM(views), MIN(date) FROM canvas_course_usage")).one() == (
            n, sum(range(n)), pd.Timestamp("2020-01-01").date())
        assert conn.execute(sa.text("SELECT created_at, published_at FROM course")).one() == (
            pd.Timestamp("2020-01-15 14:03:22").to_pydatetime(), None)
