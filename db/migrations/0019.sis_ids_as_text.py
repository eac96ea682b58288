"""Account, section and term SIS ids may be absent or non-numeric (e.g. UM_ANN-ARBOR)."""

from yoyo import step

__depends__ = {'0018.course_names_not_unique'}

steps = [
    step(
        """
        ALTER TABLE account DROP INDEX sis_id, MODIFY sis_id VARCHAR(256) NULL
        """,
        "ALTER TABLE account MODIFY sis_id INTEGER NULL, ADD UNIQUE KEY sis_id (sis_id)",
    ),
    step(
        """
        ALTER TABLE course_section MODIFY sis_id VARCHAR(256) NULL
        """,
        "ALTER TABLE course_section MODIFY sis_id BIGINT NULL",
    ),
    step(
        """
        ALTER TABLE term MODIFY sis_id VARCHAR(256) NULL
        """,
        "ALTER TABLE term MODIFY sis_id INTEGER NOT NULL",
    ),
]
