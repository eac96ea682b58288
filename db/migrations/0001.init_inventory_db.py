"""Create the first tables: user, course and enrollment, each keyed by a surrogate id."""

from yoyo import step

__depends__: set[str] = set()

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS user (
            id INTEGER NOT NULL AUTO_INCREMENT,
            canvas_id INTEGER NOT NULL UNIQUE,
            name VARCHAR(100) NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS user",
    ),
    step(
        """
        CREATE TABLE IF NOT EXISTS course (
            id INTEGER NOT NULL AUTO_INCREMENT,
            canvas_id INTEGER NOT NULL UNIQUE,
            name VARCHAR(100) NOT NULL UNIQUE,
            account_id INTEGER NOT NULL,
            created_at VARCHAR(25) NULL,
            workflow_state VARCHAR(25) NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS course",
    ),
    step(
        """
        CREATE TABLE IF NOT EXISTS enrollment (
            id INTEGER NOT NULL AUTO_INCREMENT,
            canvas_id INTEGER NOT NULL,
            course_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            workflow_state VARCHAR(25) NOT NULL,
            role_type VARCHAR(25) NOT NULL,
            PRIMARY KEY (id),
            FOREIGN KEY (course_id) REFERENCES course (id) ON DELETE CASCADE ON UPDATE CASCADE,
            FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE ON UPDATE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS enrollment",
    ),
]
