"""Writing DataFrames into the inventory database: atomic replace, append, merge, insert-new-only.

Tables belong to the yoyo migrations: nothing here creates, drops or truncates one (TRUNCATE and DDL
commit implicitly in MySQL, which would expose half-loaded tables to readers). A replacement that would
shrink a table suspiciously is refused (`LoadPolicy`, carried by the engine the runner hands to jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
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
SYNC_MAX_SHARE = 0.5          # changing more of a table's rows than this: delete all and reload instead
INFILE_REFUSED = "course_inventory.local_infile_refused"   # key in a DBAPI connection's info: tried once each
POLICY_OPTION = "load_policy"                               # engine execution option holding the LoadPolicy


@dataclass(frozen=True)
class LoadPolicy:
    """How much a replacement may shrink a table (MIN_SNAPSHOT_SHARE, ALLOW_SHRINK; same defaults as the schema).

    A Canvas or Zoom answer that lost most of its data (a term id typo, a permission change, an outage answered
    with empty pages) must not replace a good table.
    """

    min_share: float = 0.5
    allow_shrink: bool = False


def with_load_policy(engine: sa.Engine, policy: LoadPolicy) -> sa.Engine:
    """The same engine (same pool) whose replacements follow `policy`."""
    return engine.execution_options(**{POLICY_OPTION: policy})


def shrink_refusal(table: str, current: int, new: int, policy: LoadPolicy) -> str | None:
    """Why replacing `current` rows by `new` ones is refused, or None when it is acceptable (pure)."""
    if policy.allow_shrink or current == 0:
        return None
    if new == 0:
        return f"refusing to empty {table}: the new snapshot has 0 rows, the table has {current}"
    if new < policy.min_share * current:
        return (f"refusing to shrink {table} from {current} to {new} rows (below {policy.min_share:.0%} of the "
                "current rows)")
    return None


def frame_to_rows(df: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """Rows of plain Python values: NA/NaN/NaT -> None, Timestamps -> datetime, numpy scalars -> int/float."""
    columns = []
    for name in df.columns:
        series = df[name]
        # Missing values found per column, not per value: pd.isna on each of ~600,000 values took ~40 % of a
        # second-day load (which compares the stored rows with the snapshot's).
        missing = series.isna().to_numpy(dtype=bool)
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            values = list(series.dt.to_pydatetime())
        elif series.dtype == object:
            values = [v.item() if hasattr(v, "item") else v for v in series]
        else:
            values = series.tolist()     # numpy and pandas scalars become Python ones
        if missing.any():
            values = [None if gone else value for value, gone in zip(values, missing.tolist(), strict=True)]
        columns.append(values)
    return zip(*columns, strict=True) if columns else iter(())


def _insert_sql(table: str, columns: Sequence[str], *, ignore_duplicates: bool = False) -> str:
    names = ", ".join(f"`{c}`" for c in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO `{table}` ({names}) VALUES ({placeholders})"
    if ignore_duplicates:
        # Not INSERT IGNORE: that would also turn strict-mode errors (over-long values) into warnings.
        first = columns[0]
        sql += f" ON DUPLICATE KEY UPDATE `{first}` = `{first}`"
    return sql


def _merge_sql(table: str, columns: Sequence[str], greatest: Sequence[str]) -> str:
    """INSERT that, for a row whose unique key exists, keeps the greater of the stored and new values."""
    updates = ", ".join(f"`{c}` = GREATEST(`{c}`, VALUES(`{c}`))" for c in greatest)
    return f"{_insert_sql(table, columns)} ON DUPLICATE KEY UPDATE {updates}"


def _insert_frame(conn: sa.Connection, table: str, df: pd.DataFrame, *, ignore_duplicates: bool = False,
                  sql: str | None = None) -> int:
    """Big frames through LOAD DATA LOCAL INFILE; others (and any `sql`) as multi-row INSERTs."""
    if df.empty:
        return 0
    plain = sql is None and not ignore_duplicates
    if plain and len(df) >= BULK_MIN_ROWS and not conn.info.get(INFILE_REFUSED):
        with _driver_cursor(conn) as cursor:
            try:
                return load_data_local(cursor, table, df)
            except LocalInfileDisabled:
                conn.info[INFILE_REFUSED] = True
                logger.warning("the server refuses LOAD DATA LOCAL INFILE; loading with INSERTs (slower)")
    sql = sql or _insert_sql(table, list(df.columns), ignore_duplicates=ignore_duplicates)
    with _driver_cursor(conn) as cursor:
        return _execute_batches(cursor, sql, frame_to_rows(df))


def _driver_cursor(conn: sa.Connection) -> closing[Any]:
    """A cursor of the connection's PyMySQL connection (inside its transaction), closed after use."""
    return closing(conn.connection.driver_connection.cursor())


def _row_count(conn: sa.Connection, table: str) -> int:
    return conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{table}`").scalar() or 0


def _execute_batches(cursor: Any, sql: str, rows: Iterable[tuple[Any, ...]]) -> int:
    affected = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            affected += cursor.executemany(sql, batch) or 0
            batch = []
    if batch:
        affected += cursor.executemany(sql, batch) or 0
    return affected


def _check_tables(conn: sa.Connection, tables: Sequence[str]) -> None:
    missing = set(tables) - set(sa.inspect(conn).get_table_names())
    if missing:
        raise LoadError(f"tables not created by the migrations: {sorted(missing)}")


@contextmanager
def _transaction(engine: sa.Engine, action: str, tables: Sequence[str]) -> Iterator[sa.Connection]:
    """One transaction over `tables`; any database error rolls it back and becomes a LoadError.

    An interruption (a stop signal, the job's deadline: BaseExceptions) may arrive while the driver is half-way
    through a statement, when the connection can no longer roll back: it is closed instead, and the server rolls
    the transaction back as it does for a dropped connection.
    """
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            try:
                _check_tables(conn, tables)
                yield conn
            except Exception:
                if transaction.is_active:
                    transaction.rollback()
                raise
            except BaseException:
                conn.invalidate()
                raise
            transaction.commit()
    except (SQLAlchemyError, pymysql.MySQLError, OSError) as exc:
        # The driver's message names the column or constraint; parameters are hidden by the engine.
        orig = getattr(exc, "orig", exc)
        raise LoadError(f"{action} of {', '.join(tables)} rolled back: {orig}") from exc


def _policy(conn: sa.Connection) -> LoadPolicy:
    policy = conn.get_execution_options().get(POLICY_OPTION)
    return policy if isinstance(policy, LoadPolicy) else LoadPolicy()


def _check_shrink(conn: sa.Connection, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Inside the replacement's transaction, before anything is deleted; the tables' current row counts."""
    policy = _policy(conn)
    counts = {}
    for table, df in frames.items():
        counts[table] = current = _row_count(conn, table)
        refusal = shrink_refusal(table, current, len(df), policy)
        if refusal:
            raise LoadError(f"{refusal}; previous data kept (run with --allow-shrink if this is intended)")
    return counts


@dataclass(frozen=True)
class TableChanges:
    """What turns a table's stored rows into a new snapshot: the keys to delete and the rows to write."""

    key: str
    stale_keys: list[Any]
    rows: list[tuple[Any, ...]]       # new or changed rows, in the frame's column order


def table_changes(stored: Iterable[tuple[Any, ...]], new: Iterable[tuple[Any, ...]], key_index: int
                  ) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """(stored keys absent from `new`, rows of `new` not stored exactly as they are) (pure). Values compare as
    Python values, so a row is kept only when every column is equal to what a full reload would store."""
    by_key = {row[key_index]: row for row in stored}
    changed = []
    for row in new:
        if by_key.pop(row[key_index], None) != row:
            changed.append(row)
    return list(by_key), changed


def _sync_key(inspector: sa.Inspector, table: str, columns: Sequence[str]) -> str | None:
    """The table's one-column primary key when the frame carries it and no other unique index exists (an upsert
    could then collide with a row not updated yet); None otherwise."""
    key = inspector.get_pk_constraint(table).get("constrained_columns") or []
    if len(key) != 1 or key[0] not in columns:
        return None
    unique = [index["column_names"] for index in inspector.get_indexes(table) if index.get("unique")]
    return key[0] if all(names == key for names in unique) else None


def _changes(conn: sa.Connection, inspector: sa.Inspector, table: str, df: pd.DataFrame) -> TableChanges | None:
    """The changes that turn the stored rows into `df`, or None where deleting and reloading all is better: no
    usable key, or more than SYNC_MAX_SHARE of the rows to write or delete."""
    columns = list(df.columns)
    key = _sync_key(inspector, table, columns)
    if key is None:
        return None
    names = ", ".join(f"`{c}`" for c in columns)
    stored = conn.exec_driver_sql(f"SELECT {names} FROM `{table}`").all()
    stale, rows = table_changes((tuple(row) for row in stored), frame_to_rows(df), columns.index(key))
    if len(stale) + len(rows) > SYNC_MAX_SHARE * max(len(df), len(stored)):
        return None
    return TableChanges(key, stale, rows)


def _plan(conn: sa.Connection, frames: Mapping[str, pd.DataFrame], current: Mapping[str, int]
          ) -> dict[str, TableChanges | None]:
    """Per table, its changes, or None to delete and reload it. A table referring to one that is reloaded is
    reloaded too: deleting every parent row cascades to (or is refused for) the children kept."""
    inspector = sa.inspect(conn)         # one reflection cache for every table's keys and references
    plan: dict[str, TableChanges | None] = {}
    for table, df in frames.items():                              # parents first
        parents = {fk["referred_table"] for fk in inspector.get_foreign_keys(table)} & set(frames)
        reloaded_parent = any(plan.get(parent) is None for parent in parents - {table})
        plan[table] = None if not current[table] or reloaded_parent else _changes(conn, inspector, table, df)
    return plan


def _check_synced(conn: sa.Connection, frames: Mapping[str, pd.DataFrame],
                  changes: Mapping[str, TableChanges | None]) -> None:
    """Every synced table holds exactly its snapshot's rows (keys are unique, stale ones deleted, so a count
    short of it means a row was lost, e.g. through a cascade from a parent the snapshot does not have)."""
    for table, change in changes.items():
        if change is None:
            continue
        count = _row_count(conn, table)
        if count != len(frames[table]):
            raise LoadError(f"{table} would hold {count} rows instead of the snapshot's {len(frames[table])} "
                            "(duplicate keys, or rows referring to parents the snapshot does not have)")


def _upsert_sql(table: str, columns: Sequence[str], key: str) -> str:
    updates = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in columns if c != key)
    return f"{_insert_sql(table, columns)} ON DUPLICATE KEY UPDATE {updates or f'`{key}` = `{key}`'}"


def _apply_deletes(conn: sa.Connection, table: str, changes: TableChanges | None) -> None:
    if changes is None:
        conn.exec_driver_sql(f"DELETE FROM `{table}`")
        return
    with _driver_cursor(conn) as cursor:
        for start in range(0, len(changes.stale_keys), BATCH_ROWS):
            batch = changes.stale_keys[start:start + BATCH_ROWS]
            cursor.execute(f"DELETE FROM `{table}` WHERE `{changes.key}` IN ({', '.join(['%s'] * len(batch))})",
                           batch)


def _apply_writes(conn: sa.Connection, table: str, df: pd.DataFrame, changes: TableChanges | None) -> None:
    if changes is None:
        _insert_frame(conn, table, df)
        return
    with _driver_cursor(conn) as cursor:
        _execute_batches(cursor, _upsert_sql(table, list(df.columns), changes.key), changes.rows)


def replace_tables(engine: sa.Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the contents of several tables in ONE transaction.

    `frames` is ordered parents first; deletes run children first so foreign keys hold. Readers keep
    seeing the complete previous data (InnoDB consistent reads) until the single COMMIT. A table that would
    shrink against the engine's LoadPolicy is not touched (LoadError naming it and both counts). A table that
    already holds most of its snapshot, keyed by a one-column primary key the frame carries, gets only its
    changes (stale keys deleted, new or changed rows upserted) and is then checked to hold exactly the
    snapshot's row count; any other table is emptied and reloaded.
    """
    tables = list(frames)
    with _transaction(engine, "replacement", tables) as conn:
        current = _check_shrink(conn, frames)
        # A table already holding most of the snapshot (the next day's run) gets only its changes: deleting and
        # reloading every row cost more than reading and comparing them (README "Benchmarks").
        changes = _plan(conn, frames, current)
        for table in reversed(tables):
            _apply_deletes(conn, table, changes[table])
        for table, df in frames.items():
            _apply_writes(conn, table, df, changes[table])
        _check_synced(conn, frames, changes)
    counts = {table: len(df) for table, df in frames.items()}
    logger.info("replaced %s", ", ".join(f"{t}: {n} rows" for t, n in counts.items()))
    return counts


def append_rows(engine: sa.Engine, table: str, df: pd.DataFrame) -> int:
    with _transaction(engine, "append", [table]) as conn:
        return _insert_frame(conn, table, df)


@dataclass(frozen=True)
class MergeCounts:
    inserted: int       # rows whose unique key was new
    refreshed: int      # rows already present whose `greatest` columns grew


def merge_rows(engine: sa.Engine, table: str, df: pd.DataFrame, *, greatest: Sequence[str]) -> MergeCounts:
    """Append rows; a row whose unique key is already stored keeps the greater of each `greatest` column.

    Tolerates rows a previous or overlapping run already appended, without duplicating or lowering them.
    """
    with _transaction(engine, "append", [table]) as conn:
        before = _row_count(conn, table)
        # MySQL's affected rows: 1 per inserted row, 2 per updated one, 0 per unchanged one.
        affected = _insert_frame(conn, table, df, sql=_merge_sql(table, list(df.columns), greatest))
        inserted = _row_count(conn, table) - before
    return MergeCounts(inserted, (affected - inserted) // 2)


def insert_new_rows(engine: sa.Engine, table: str, df: pd.DataFrame) -> int:
    """Insert rows whose primary key is not present yet; returns how many were new."""
    return insert_new_rows_many(engine, {table: df})[table]


def insert_new_rows_many(engine: sa.Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """insert_new_rows for several tables in one transaction (e.g. entries and their course links)."""
    inserted = {}
    with _transaction(engine, "insert", list(frames)) as conn:
        for table, df in frames.items():
            # Count inside the transaction: the driver reports matched (not inserted) rows for duplicates.
            before = _row_count(conn, table)
            _insert_frame(conn, table, df, ignore_duplicates=True)
            inserted[table] = _row_count(conn, table) - before
    return inserted


def max_value(engine: sa.Engine, table: str, column: str) -> Any:
    """MAX(column) of a table, or None when it is empty."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT MAX(`{column}`) FROM `{table}`").scalar()


def table_counts(engine: sa.Engine, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table."""
    with engine.connect() as conn:
        return {t: _row_count(conn, t) for t in tables}
