"""Daily course activity (views and participations) from Canvas analytics."""

from yoyo import step

__depends__ = {'0007.add_section_table'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS canvas_course_usage (
            id BIGINT NOT NULL AUTO_INCREMENT,
            course_id INTEGER NOT NULL,
            views INTEGER NOT NULL,
            participations INTEGER NOT NULL,
            date DATE NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS canvas_course_usage",
    ),
]
