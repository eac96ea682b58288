"""Add course sections and link each enrollment to its section."""

from yoyo import step

__depends__ = {'0006.modify_user'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS course_section (
            canvas_id INTEGER NOT NULL UNIQUE,
            name VARCHAR(200) NOT NULL,
            PRIMARY KEY (canvas_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS course_section",
    ),
    step(
        """
        ALTER TABLE enrollment
            ADD COLUMN course_section_id INTEGER NOT NULL AFTER course_id,
            ADD CONSTRAINT fk_course_section_id FOREIGN KEY (course_section_id) REFERENCES course_section (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """,
        "ALTER TABLE enrollment DROP FOREIGN KEY fk_course_section_id, DROP COLUMN course_section_id",
    ),
]
