"""Enrollment ids grow fastest of all Canvas ids: make room beyond 2^31."""

from yoyo import step

__depends__ = {'0021.term_dates_nullable'}

steps = [
    step(
        """
        ALTER TABLE enrollment MODIFY canvas_id BIGINT NOT NULL
        """,
        "ALTER TABLE enrollment MODIFY canvas_id INTEGER NOT NULL",
    ),
]
