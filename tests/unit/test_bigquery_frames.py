"""BigQuery rows to a DataFrame without pyarrow: the dtypes RowIterator.to_dataframe gives by default, same values."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from google.cloud.bigquery import SchemaField

from clients.bigquery_frames import Column, column_dtype, columns_of, rows_to_frame

HOURLY = [Column("event_hour_utc", "STRING"), Column("course_id", "INTEGER"),
          Column("event_time_utc_latest", "TIMESTAMP"), Column("event_count", "INTEGER")]
T1 = datetime(2020, 3, 1, 8, 54, 19, 462497, tzinfo=UTC)
T2 = datetime(2020, 3, 1, 12, 0, 0, 1, tzinfo=UTC)


def test_hourly_rows_get_the_dtypes_the_transform_expects() -> None:
    frame = rows_to_frame(HOURLY, [("2020-03-01 08", 311276, T1, 9), ("2020-03-01 12", 2**40, T2, 1)])
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        "event_hour_utc": "str", "course_id": "Int64", "event_time_utc_latest": "datetime64[us, UTC]",
        "event_count": "Int64"}
    assert frame["event_hour_utc"].tolist() == ["2020-03-01 08", "2020-03-01 12"]
    assert frame["course_id"].tolist() == [311276, 2**40]                  # beyond int32, exact
    assert [t.to_pydatetime() for t in frame["event_time_utc_latest"]] == [T1, T2]   # microseconds kept
    assert frame["event_count"].tolist() == [9, 1]


def test_nulls_stay_missing_in_every_column_type() -> None:
    columns = [Column("s", "STRING"), Column("i", "INT64"), Column("f", "FLOAT"), Column("b", "BOOLEAN"),
               Column("ts", "TIMESTAMP"), Column("dt", "DATETIME")]
    frame = rows_to_frame(columns, [("x", 1, 1.5, True, T1, datetime(2020, 1, 2, 3, 4, 5)),
                                    (None, None, None, None, None, None)])
    assert [str(frame[c.name].dtype) for c in columns] == ["str", "Int64", "float64", "boolean",
                                                            "datetime64[us, UTC]", "datetime64[us]"]
    assert frame.iloc[1].isna().all()
    assert frame.iloc[0].tolist()[:4] == ["x", 1, 1.5, True]
    assert frame["dt"].iloc[0] == pd.Timestamp("2020-01-02 03:04:05")


def test_an_empty_result_keeps_its_columns_and_dtypes() -> None:
    frame = rows_to_frame(HOURLY, [])
    assert list(frame.columns) == [c.name for c in HOURLY] and frame.empty
    assert str(frame["course_id"].dtype) == "Int64"
    assert str(frame["event_time_utc_latest"].dtype) == "datetime64[us, UTC]"


def test_other_types_and_repeated_fields_stay_python_objects() -> None:
    columns = [Column("d", "DATE"), Column("n", "NUMERIC"), Column("tags", "STRING", "REPEATED")]
    frame = rows_to_frame(columns, [(date(2020, 1, 2), Decimal("1.10"), ["a", "b"])])
    assert [str(frame[c.name].dtype) for c in columns] == ["object"] * 3
    assert frame.iloc[0].tolist() == [date(2020, 1, 2), Decimal("1.10"), ["a", "b"]]


@pytest.mark.parametrize(("field_type", "mode", "dtype"), [
    ("integer", "NULLABLE", "Int64"), ("BOOL", "REQUIRED", "boolean"), ("FLOAT64", "NULLABLE", "float64"),
    ("GEOGRAPHY", "NULLABLE", "object"), ("INTEGER", "REPEATED", "object")])
def test_column_dtype(field_type: str, mode: str, dtype: str) -> None:
    assert column_dtype(Column("c", field_type, mode)) == dtype


def test_columns_come_from_the_library_schema_fields() -> None:
    schema = [SchemaField("a", "INTEGER"), SchemaField("b", "STRING", mode="REPEATED")]
    assert columns_of(schema) == [Column("a", "INTEGER", "NULLABLE"), Column("b", "STRING", "REPEATED")]


def test_rows_of_the_wrong_width_are_refused() -> None:
    with pytest.raises(ValueError):
        rows_to_frame(HOURLY, [("2020-03-01 08", 1, T1)])


def test_neither_the_job_nor_the_sandbox_needs_pyarrow() -> None:
    """pandas 3 and duckdb work without it; needing it (or db-dtypes) would bring back ~170 MB. Libraries import
    them when they happen to be installed (an old virtual environment), so the probe makes them unimportable."""
    modules = "clients.bigquery, mivideo.mivideo_extract, sandbox.bigquery_sim, sandbox.runner"
    probe = ("import sys\n"
             "class Block:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('pyarrow', 'db_dtypes'):\n"
             "            raise ImportError('blocked: ' + name)\n"
             "sys.meta_path.insert(0, Block())\n"
             f"import {modules}\n"
             "print('imported')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
