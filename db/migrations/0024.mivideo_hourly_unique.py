"""One row per hour and course in mivideo_media_started_hourly, kept so by a UNIQUE KEY.

Overlapping runs (the original tool had no lock) could append the same hour and course twice. Of each group of
duplicates the row with the greatest event_count is kept (then the latest event_time_utc_latest, then the
greatest id): every copy counted the same complete hour, so a greater count is one that saw events reaching UDP
late, the most complete; adding copies up would count the same events twice. Deleted copies are not restored by
a rollback.
"""

from yoyo import step

__depends__ = {'0023.add_zoom_tables'}

steps = [
    step(
        """
        DELETE worse FROM mivideo_media_started_hourly worse
        JOIN mivideo_media_started_hourly better
          ON better.event_hour_utc = worse.event_hour_utc AND better.course_id = worse.course_id
         AND (better.event_count > worse.event_count
              OR (better.event_count = worse.event_count
                  AND (better.event_time_utc_latest > worse.event_time_utc_latest
                       OR (better.event_time_utc_latest = worse.event_time_utc_latest AND better.id > worse.id))))
        """,
    ),
    step(
        "ALTER TABLE mivideo_media_started_hourly ADD UNIQUE KEY hour_course (event_hour_utc, course_id)",
        "ALTER TABLE mivideo_media_started_hourly DROP INDEX hour_course",
    ),
]
