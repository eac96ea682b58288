"""Users are no longer inventoried: drop the table (enrollment keeps user_id)."""

from yoyo import step

__depends__ = {'0017.add_account_table'}

steps = [
    step(
        """
        ALTER TABLE enrollment DROP FOREIGN KEY fk_user_id
        """
    ),
    step(
        """
        DROP TABLE IF EXISTS user
        """
    ),
]
