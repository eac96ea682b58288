"""Terms, and the term of each course."""

from yoyo import step

__depends__ = {'0012.add_mivideo_usage_table'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS term (
            canvas_id INTEGER NOT NULL UNIQUE,
            name VARCHAR(100) NOT NULL UNIQUE,
            sis_id INTEGER NOT NULL,
            start_at DATETIME NOT NULL,
            end_at DATETIME NOT NULL,
            PRIMARY KEY (canvas_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS term",
    ),
    step(
        """
        ALTER TABLE course
            ADD COLUMN term_id INTEGER NOT NULL AFTER account_id,
            ADD CONSTRAINT fk_term_id FOREIGN KEY (term_id) REFERENCES term (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """,
        "ALTER TABLE course DROP FOREIGN KEY fk_term_id, DROP COLUMN term_id",
    ),
]
