"""Accounts (sub-accounts of the root), and the account of each course."""

from yoyo import step

__depends__ = {'0016.add_mivideo_creation_tables'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS account (
            canvas_id INTEGER NOT NULL UNIQUE,
            sis_id INTEGER NULL UNIQUE,
            name VARCHAR(100) NOT NULL UNIQUE,
            PRIMARY KEY (canvas_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS account",
    ),
    step(
        """
        ALTER TABLE course ADD CONSTRAINT fk_account_id FOREIGN KEY (account_id) REFERENCES account (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """,
        "ALTER TABLE course DROP FOREIGN KEY fk_account_id",
    ),
]
