"""Record when a course was published."""

from yoyo import step

__depends__ = {'0001.init_inventory_db'}

steps = [
    step(
        """
        ALTER TABLE course ADD COLUMN published_at VARCHAR(25) NULL AFTER created_at
        """,
        "ALTER TABLE course DROP COLUMN published_at",
    ),
]
