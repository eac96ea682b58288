"""BigQuery SQL of the MIVIDEO job (standard SQL, named parameters)."""

from __future__ import annotations

import re

# GCP project ids: 6-30 lower-case letters, digits and hyphens (optionally "domain.com:" in front).
PROJECT_ID = re.compile(r"^(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")

# Kaltura KAF "media started" Caliper events per UTC hour and Canvas course, after @startTime and before
# the start of today (UTC, BigQuery's clock), from the university's KAF apps only. `kaf:course_id` is one
# JSON key (the colon is part of it); events without a numeric course id are dropped.
MEDIA_STARTED_HOURLY = """
WITH started AS (
  SELECT
    event_time,
    SAFE_CAST(JSON_EXTRACT_SCALAR(event, '$.object.extensions.kaf:course_id') AS INT64) AS course_id
  FROM `{project}.event_store.events`
  WHERE type = 'MediaEvent'
    AND action = 'Started'
    AND ed_app IN UNNEST(@kafApps)
    AND event_time > @startTime
    AND event_time < TIMESTAMP(CURRENT_DATE())
)
SELECT
  FORMAT_TIMESTAMP('%F %H', event_time, 'UTC') AS event_hour_utc,
  course_id,
  MAX(event_time) AS event_time_utc_latest,
  COUNT(*) AS event_count
FROM started
WHERE course_id IS NOT NULL
GROUP BY event_hour_utc, course_id
ORDER BY event_time_utc_latest, course_id
"""


def media_started_hourly(project: str) -> str:
    """The hourly query against `project`'s event store; the id is checked because it is spliced into SQL."""
    if not PROJECT_ID.match(project):
        raise ValueError(f"not a BigQuery project id: {project!r}")
    return MEDIA_STARTED_HOURLY.format(project=project)
