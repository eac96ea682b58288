"""BigQuery query rows to a pandas DataFrame without pandas' Arrow path.

`RowIterator.to_dataframe` needs pyarrow and db-dtypes (about 170 MB installed) only to convert what the REST
API already returned as JSON and the library already decoded into Python values (`Row`s). Building the frame
from those rows gives the dtypes `to_dataframe` gives by default (google-cloud-bigquery `table.py`
`RowIterator.to_dataframe` and `_pandas_helpers.default_types_mapper`): INT64 -> Int64, BOOL -> boolean,
FLOAT64 -> float64, STRING -> pandas' str, TIMESTAMP -> datetime64[us, UTC], DATETIME -> datetime64[us].
Other types (DATE, TIME, NUMERIC, BYTES, JSON, GEOGRAPHY, RECORD) and REPEATED fields stay Python objects;
`to_dataframe` would use db-dtypes' extension types for DATE and TIME, which no query of this project selects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

# Legacy and standard SQL names of the same types (the REST API reports the legacy ones: INTEGER, FLOAT...).
_DTYPES: dict[str, str] = {
    "INTEGER": "Int64", "INT64": "Int64",
    "BOOLEAN": "boolean", "BOOL": "boolean",
    "FLOAT": "float64", "FLOAT64": "float64",
    "STRING": "str",
    "TIMESTAMP": "datetime64[us, UTC]",
    "DATETIME": "datetime64[us]",
}


@dataclass(frozen=True)
class Column:
    name: str
    field_type: str          # as the API reports it: "INTEGER", "TIMESTAMP", ...
    mode: str = "NULLABLE"   # NULLABLE, REQUIRED or REPEATED


def column_dtype(column: Column) -> str:
    """The pandas dtype of one result column (pure); "object" for types kept as Python values."""
    if column.mode.upper() == "REPEATED":
        return "object"
    return _DTYPES.get(column.field_type.upper(), "object")


def rows_to_frame(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> pd.DataFrame:
    """A DataFrame of `rows` (sequences of decoded values, in `columns` order), typed per column (pure)."""
    values = list(zip(*rows, strict=True)) or [()] * len(columns)
    return pd.DataFrame({column.name: pd.Series(list(cells), dtype=column_dtype(column))
                         for column, cells in zip(columns, values, strict=True)})


def columns_of(schema: Iterable[Any]) -> list[Column]:
    """Columns from the library's `SchemaField`s (anything with name, field_type and mode)."""
    return [Column(field.name, field.field_type, field.mode or "NULLABLE") for field in schema]
