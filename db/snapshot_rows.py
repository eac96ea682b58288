"""Reading back rows a job loaded before, for the parts of a snapshot it could not renew this time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from vocab import LoadError


def stored_rows(engine: sa.Engine, table: str, columns: Sequence[str], key: str,
                keys: Collection[int]) -> list[dict[str, Any]]:
    """`columns` of the rows of `table` whose `key` is in `keys`, in the table's id order (names come from code)."""
    if not keys:
        return []
    names = ", ".join(f"`{c}`" for c in columns)
    statement = sa.text(f"SELECT {names} FROM `{table}` WHERE `{key}` IN :keys ORDER BY `id`").bindparams(
        sa.bindparam("keys", expanding=True))
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement, {"keys": sorted(keys)})]
    except SQLAlchemyError as exc:
        raise LoadError(f"reading the previous rows of {table} failed: {getattr(exc, 'orig', exc)}") from exc
