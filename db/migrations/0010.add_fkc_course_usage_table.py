"""Link course usage rows to their course."""

from yoyo import step

__depends__ = {'0009.add_meta_tables'}

steps = [
    step(
        """
        ALTER TABLE canvas_course_usage
            ADD CONSTRAINT fk_canvas_course_usage_id FOREIGN KEY (course_id) REFERENCES course (canvas_id) ON DELETE CASCADE ON UPDATE CASCADE
        """,
        "ALTER TABLE canvas_course_usage DROP FOREIGN KEY fk_canvas_course_usage_id",
    ),
]
