"""Allow course SIS ids up to 256 characters."""

from yoyo import step

__depends__ = {'0014.change_course_sis_id_data_type'}

steps = [
    step(
        """
        ALTER TABLE course MODIFY sis_id VARCHAR(256) NULL
        """,
        "ALTER TABLE course MODIFY sis_id VARCHAR(100) NULL",
    ),
]
