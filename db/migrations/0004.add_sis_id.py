"""Add the SIS id of users."""

from yoyo import step

__depends__ = {'0003.created_date_datatype_change'}

steps = [
    step(
        """
        ALTER TABLE user ADD COLUMN sis_id INTEGER NULL AFTER canvas_id
        """,
        "ALTER TABLE user DROP COLUMN sis_id",
    ),
]
