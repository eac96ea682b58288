"""Key user, course and enrollment by their Canvas ids instead of surrogate ids."""

from yoyo import step

__depends__ = {'0004.add_sis_id'}

steps = [
    step(
        """
        ALTER TABLE enrollment
            DROP FOREIGN KEY enrollment_ibfk_1,
            DROP FOREIGN KEY enrollment_ibfk_2
        """
    ),
    step(
        """
        ALTER TABLE enrollment DROP INDEX course_id, DROP INDEX user_id
        """
    ),
    step(
        """
        ALTER TABLE user DROP COLUMN id, ADD PRIMARY KEY (canvas_id)
        """
    ),
    step(
        """
        ALTER TABLE course DROP COLUMN id, ADD PRIMARY KEY (canvas_id)
        """
    ),
    step(
        """
        ALTER TABLE enrollment DROP COLUMN id, ADD PRIMARY KEY (canvas_id)
        """
    ),
    step(
        """
        ALTER TABLE enrollment
            ADD CONSTRAINT fk_course_id FOREIGN KEY (course_id) REFERENCES course (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE,
            ADD CONSTRAINT fk_user_id FOREIGN KEY (user_id) REFERENCES user (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """
    ),
]
