"""Course names repeat across a university and reach 255 characters."""

from yoyo import step

__depends__ = {'0017.remove_user_table'}

steps = [
    step(
        """
        ALTER TABLE course DROP INDEX name, MODIFY name VARCHAR(256) NOT NULL
        """,
        "ALTER TABLE course MODIFY name VARCHAR(100) NOT NULL, ADD UNIQUE KEY name (name)",
    ),
]
