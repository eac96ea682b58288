"""Read what the last successful COURSE_INVENTORY run stored about each course: its term, state and published date."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import pymysql
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from vocab import DatabaseUnavailableError


class StoredCourseRow(NamedTuple):
    workflow_state: str
    published_at: datetime | None     # naive UTC, as stored
    term_id: int


def stored_course_states(engine: sa.Engine) -> dict[int, StoredCourseRow]:
    """canvas_id -> (workflow_state, published_at, term_id) of every row of the `course` table."""
    query = sa.text("SELECT canvas_id, workflow_state, published_at, term_id FROM course")
    try:
        with engine.connect() as conn:
            return {int(canvas_id): StoredCourseRow(state or "", published_at, int(term_id))
                    for canvas_id, state, published_at, term_id in conn.execute(query)}
    except (SQLAlchemyError, pymysql.MySQLError, OSError) as exc:
        raise DatabaseUnavailableError(f"cannot read the stored courses: {getattr(exc, 'orig', exc)}") from exc
