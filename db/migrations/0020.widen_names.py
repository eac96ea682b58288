"""Names longer than the seed-era columns; account and term names need not be unique."""

from yoyo import step

__depends__ = {'0019.sis_ids_as_text'}

steps = [
    step(
        """
        ALTER TABLE account DROP INDEX name, MODIFY name VARCHAR(256) NOT NULL
        """,
        "ALTER TABLE account MODIFY name VARCHAR(100) NOT NULL, ADD UNIQUE KEY name (name)",
    ),
    step(
        """
        ALTER TABLE term DROP INDEX name, MODIFY name VARCHAR(256) NOT NULL
        """,
        "ALTER TABLE term MODIFY name VARCHAR(100) NOT NULL, ADD UNIQUE KEY name (name)",
    ),
    step(
        """
        ALTER TABLE course_section MODIFY name VARCHAR(256) NOT NULL
        """,
        "ALTER TABLE course_section MODIFY name VARCHAR(200) NOT NULL",
    ),
    step(
        """
        ALTER TABLE mivideo_media_created MODIFY name VARCHAR(1024) NOT NULL
        """,
        "ALTER TABLE mivideo_media_created MODIFY name VARCHAR(200) NOT NULL",
    ),
]
