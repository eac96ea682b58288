"""MiVideo media started, per hour and course."""

from yoyo import step

__depends__ = {'0011.add_course_sis_ids'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS mivideo_media_started_hourly (
            id BIGINT NOT NULL AUTO_INCREMENT UNIQUE,
            event_hour_utc VARCHAR(20) NOT NULL,
            course_id INTEGER NOT NULL,
            event_time_utc_latest DATETIME NOT NULL,
            event_count BIGINT NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS mivideo_media_started_hourly",
    ),
]
