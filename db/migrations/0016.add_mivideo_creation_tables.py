"""MiVideo media entries and the courses they are placed in."""

from yoyo import step

__depends__ = {'0015.extend_course_sis_id'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS mivideo_media_created (
            id VARCHAR(20) NOT NULL UNIQUE,
            created_at DATETIME NOT NULL,
            name VARCHAR(200) NOT NULL,
            duration BIGINT NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS mivideo_media_created",
    ),
    step(
        """
        CREATE TABLE IF NOT EXISTS mivideo_media_courses (
            media_id VARCHAR(20) NOT NULL,
            course_id INTEGER NOT NULL,
            in_context BOOLEAN NOT NULL DEFAULT FALSE,
            PRIMARY KEY (media_id, course_id, in_context)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS mivideo_media_courses",
    ),
]
