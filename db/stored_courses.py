"""Read what the last successful COURSE_INVENTORY run stored about each course: its state and published date."""

from __future__ import annotations

from datetime import datetime

import pymysql
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from vocab import DatabaseUnavailableError


def stored_course_states(engine: sa.Engine) -> dict[int, tuple[str, datetime | None]]:
    """canvas_id -> (workflow_state, published_at as naive UTC) of every row of the `course` table."""
    query = sa.text("SELECT canvas_id, workflow_state, published_at FROM course")
    try:
        with engine.connect() as conn:
            return {int(canvas_id): (state or "", published_at)
                    for canvas_id, state, published_at in conn.execute(query)}
    except (SQLAlchemyError, pymysql.MySQLError, OSError) as exc:
        raise DatabaseUnavailableError(f"cannot read the stored courses: {getattr(exc, 'orig', exc)}") from exc
