"""Canvas user ids outgrow INTEGER: widen them, and allow longer user names."""

from yoyo import step

__depends__ = {'0005.change_pks_to_canvas_id'}

steps = [
    step(
        """
        ALTER TABLE enrollment DROP FOREIGN KEY fk_user_id
        """
    ),
    step(
        """
        ALTER TABLE user MODIFY canvas_id BIGINT NOT NULL, MODIFY name VARCHAR(200) NOT NULL
        """
    ),
    step(
        """
        ALTER TABLE enrollment MODIFY user_id BIGINT NOT NULL
        """
    ),
    step(
        """
        ALTER TABLE enrollment ADD CONSTRAINT fk_user_id FOREIGN KEY (user_id) REFERENCES user (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """
    ),
]
