"""Writing DataFrames into the inventory database: atomic replace, append, insert-new-only.

Tables belong to the yoyo migrations: nothing here creates, drops or truncates one (TRUNCATE and DDL
commit implicitly in MySQL, which would expose half-loaded tables to readers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pymysql
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from db.bulk_load import LocalInfileDisabled, load_data_local
from vocab import LoadError

logger = logging.getLogger(__name__)

BATCH_ROWS = 5_000
BULK_MIN_ROWS = 10_000        # below this, INSERTs cost no more than writing a load file
_local_infile_allowed = True  # flips once if the server refuses LOAD DATA LOCAL INFILE


def frame_to_rows(df: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows of plain Python values: NA/NaN/NaT -> None, Timestamps -> datetime, numpy scalars -> int/float."""
    columns = []
    for name in df.columns:
        series = df[name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            values = [None if pd.isna(v) else v.to_pydatetime() for v in series]
        else:
            values = [None if _is_missing(v) else (v.item() if hasattr(v, "item") else v) for v in series]
        columns.append(values)
    return zip(*columns, strict=True) if columns else iter(())


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other non-scalars are never "missing"
        return False


def _insert_sql(table: str, columns: Sequence[str], *, ignore_duplicates: bool = False) -> str:
    names = ", ".join(f"`{c}`" for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO `{table}` ({names}) VALUES ({placeholders})"
    if ignore_duplicates:
        # Not INSERT IGNORE: that would also turn strict-mode errors (over-long values) into warnings.
        first = columns[0]
        sql += f" ON DUPLICATE KEY UPDATE `{first}` = `{first}`"
    return sql


def _insert_frame(conn: sa.Connection, table: str, df: pd.DataFrame, *, ignore_duplicates: bool = False) -> int:
    """Big frames through LOAD DATA LOCAL INFILE; others as multi-row INSERTs (PyMySQL batches executemany)."""
    global _local_infile_allowed
    if df.empty:
        return 0
    cursor = conn.connection.driver_connection.cursor()
    if len(df) >= BULK_MIN_ROWS and not ignore_duplicates and _local_infile_allowed:
        try:
            return load_data_local(cursor, table, df)
        except LocalInfileDisabled:
            _local_infile_allowed = False
            logger.warning("the server refuses LOAD DATA LOCAL INFILE; loading with INSERTs (slower)")
        finally:
            cursor.close()
        cursor = conn.connection.driver_connection.cursor()
    sql = _insert_sql(table, list(df.columns), ignore_duplicates=ignore_duplicates)
    affected = 0
    try:
        batch: list[tuple[Any, ...]] = []
        for row in frame_to_rows(df):
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                affected += cursor.executemany(sql, batch) or 0
                batch = []
        if batch:
            affected += cursor.executemany(sql, batch) or 0
    finally:
        cursor.close()
    return affected


def _check_tables(conn: sa.Connection, tables: Sequence[str]) -> None:
    missing = set(tables) - set(sa.inspect(conn).get_table_names())
    if missing:
        raise LoadError(f"tables not created by the migrations: {sorted(missing)}")


@contextmanager
def _transaction(engine: sa.Engine, action: str, tables: Sequence[str]) -> Iterator[sa.Connection]:
    """One transaction over `tables`; any database error rolls it back and becomes a LoadError."""
    try:
        with engine.begin() as conn:
            _check_tables(conn, tables)
            yield conn
    except (SQLAlchemyError, pymysql.MySQLError) as exc:
        # The driver's message names the column or constraint; parameters are hidden by the engine.
        orig = getattr(exc, "orig", exc)
        raise LoadError(f"{action} of {', '.join(tables)} rolled back: {orig}") from exc


def replace_tables(engine: sa.Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the contents of several tables in ONE transaction.

    `frames` is ordered parents first; deletes run children first so foreign keys hold. Readers keep
    seeing the complete previous data (InnoDB consistent reads) until the single COMMIT.
    """
    tables = list(frames)
    with _transaction(engine, "replacement", tables) as conn:
        for table in reversed(tables):
            conn.exec_driver_sql(f"DELETE FROM `{table}`")
        for table, df in frames.items():
            _insert_frame(conn, table, df)
    counts = {table: len(df) for table, df in frames.items()}
    logger.info("replaced %s", ", ".join(f"{t}: {n} rows" for t, n in counts.items()))
    return counts


def append_rows(engine: sa.Engine, table: str, df: pd.DataFrame) -> int:
    with _transaction(engine, "append", [table]) as conn:
        return _insert_frame(conn, table, df)


def insert_new_rows(engine: sa.Engine, table: str, df: pd.DataFrame) -> int:
    """Insert rows whose primary key is not present yet; returns how many were new."""
    return insert_new_rows_many(engine, {table: df})[table]


def insert_new_rows_many(engine: sa.Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """insert_new_rows for several tables in one transaction (e.g. entries and their course links)."""
    inserted = {}
    with _transaction(engine, "insert", list(frames)) as conn:
        for table, df in frames.items():
            # Count inside the transaction: the driver reports matched (not inserted) rows for duplicates.
            before = conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{table}`").scalar()
            _insert_frame(conn, table, df, ignore_duplicates=True)
            inserted[table] = conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{table}`").scalar() - before
    return inserted


def max_value(engine: sa.Engine, table: str, column: str) -> Any:
    """MAX(column) of a table, or None when it is empty."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT MAX(`{column}`) FROM `{table}`").scalar()


def table_counts(engine: sa.Engine, tables: Sequence[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{t}`").scalar() or 0 for t in tables}
