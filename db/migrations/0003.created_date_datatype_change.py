"""Store course created/published times as DATETIME instead of text."""

from yoyo import step

__depends__ = {'0002.add_col_published_date'}

steps = [
    step(
        """
        ALTER TABLE course MODIFY created_at DATETIME NULL, MODIFY published_at DATETIME NULL
        """,
        "ALTER TABLE course MODIFY created_at VARCHAR(25) NULL, MODIFY published_at VARCHAR(25) NULL",
    ),
]
