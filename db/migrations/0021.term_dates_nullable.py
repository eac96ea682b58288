"""Canvas terms may have no start or end date."""

from yoyo import step

__depends__ = {'0020.widen_names'}

steps = [
    step(
        """
        ALTER TABLE term MODIFY start_at DATETIME NULL, MODIFY end_at DATETIME NULL
        """,
        "ALTER TABLE term MODIFY start_at DATETIME NOT NULL, MODIFY end_at DATETIME NOT NULL",
    ),
]
