"""SIS ids of courses and sections."""

from yoyo import step

__depends__ = {'0010.add_fkc_course_usage_table'}

steps = [
    step(
        """
        ALTER TABLE course ADD COLUMN sis_id INTEGER NULL AFTER canvas_id
        """,
        "ALTER TABLE course DROP COLUMN sis_id",
    ),
    step(
        """
        ALTER TABLE course_section ADD COLUMN sis_id BIGINT NULL AFTER canvas_id
        """,
        "ALTER TABLE course_section DROP COLUMN sis_id",
    ),
]
