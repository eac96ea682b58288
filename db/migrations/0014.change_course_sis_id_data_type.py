"""Course SIS ids are not always numeric: store them as text."""

from yoyo import step

__depends__ = {'0013.add_term_table'}

steps = [
    step(
        """
        ALTER TABLE course MODIFY sis_id VARCHAR(100) NULL
        """,
        "ALTER TABLE course MODIFY sis_id INTEGER NULL",
    ),
]
