"""db.loader.frame_to_rows: what a frame's values become for the driver and for comparing with stored rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from db.loader import frame_to_rows


def test_every_missing_marker_becomes_none_and_every_value_a_plain_python_one():
    when = pd.to_datetime(["2026-01-01 10:00", None, "2026-02-01 00:00"])
    df = pd.DataFrame({
        "int": np.array([1, 2, 3], dtype="int64"),
        "nullable_int": pd.array([1, None, 3], dtype="Int64"),
        "float": [1.5, np.nan, 2.0],
        "bool": [True, False, True],
        "text": ["a", None, "c"],
        "string": pd.array(["x", None, "z"], dtype="string"),
        "object": pd.Series([np.int64(5), None, [1, 2]], dtype=object),
        "naive": when,
        "aware": when.tz_localize("UTC"),
    })
    rows = list(frame_to_rows(df))
    assert rows == [
        (1, 1, 1.5, True, "a", "x", 5, datetime(2026, 1, 1, 10), datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (2, None, None, False, None, None, None, None, None),
        (3, 3, 2.0, True, "c", "z", [1, 2], datetime(2026, 2, 1), datetime(2026, 2, 1, tzinfo=UTC)),
    ]
    # Equal is not enough: the driver and the comparison with stored rows need Python's own types.
    assert [type(v) for v in rows[0]] == [int, int, float, bool, str, str, int, datetime, datetime]
    assert type(rows[2][0]) is int and type(rows[2][6]) is list


def test_a_frame_without_columns_has_no_rows():
    assert list(frame_to_rows(pd.DataFrame())) == []
