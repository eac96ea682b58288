"""Courses with a Zoom tab and their previous Zoom meetings (CANVAS_ZOOM_MEETINGS).

Zoom meeting UUIDs and host ids are case-sensitive (base64 / base62): binary collation, so two ids that
differ only in case stay distinct. Meeting numbers have up to 11 digits: BIGINT.
"""

from yoyo import step

__depends__ = {'0022.enrollment_ids_bigint'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS zoom_course (
            id INTEGER NOT NULL,
            account_id BIGINT NOT NULL,
            course_id BIGINT NOT NULL,
            course_name VARCHAR(512) NOT NULL,
            PRIMARY KEY (id),
            UNIQUE KEY course_id (course_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS zoom_course",
    ),
    step(
        """
        CREATE TABLE IF NOT EXISTS zoom_course_meeting (
            id INTEGER NOT NULL,
            course_id BIGINT NOT NULL,
            meeting_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            meeting_number BIGINT NULL,
            host_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
            topic VARCHAR(512) NULL,
            join_url VARCHAR(2048) NULL,
            start_time VARCHAR(64) NULL,
            status VARCHAR(32) NULL,
            timezone VARCHAR(64) NULL,
            PRIMARY KEY (id),
            UNIQUE KEY course_meeting (course_id, meeting_id),
            CONSTRAINT zoom_course_meeting_course_fk FOREIGN KEY (course_id) REFERENCES zoom_course (course_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS zoom_course_meeting",
    ),
]
