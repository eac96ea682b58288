"""job_run_log: one row per job attempt whatever its outcome (job_run keeps one row per successful run).

status: running (while it runs), succeeded, failed, interrupted (SIGTERM/SIGINT), skipped (another run held the
job's lock), abandoned (a `running` row whose process is gone, found by the job's next run). rows_loaded is a
JSON object {table: rows}; requests, retries and throttled count the job's HTTP requests; job_run_id links a
successful attempt to its job_run row.
"""

from yoyo import step

__depends__ = {'0024.mivideo_hourly_unique'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS job_run_log (
            id INTEGER NOT NULL AUTO_INCREMENT,
            job_name VARCHAR(50) NOT NULL,
            status VARCHAR(16) NOT NULL,
            started_at DATETIME NOT NULL,
            finished_at DATETIME NULL,
            reason VARCHAR(1000) NULL,
            rows_loaded TEXT NULL,
            requests INTEGER NULL,
            retries INTEGER NULL,
            throttled INTEGER NULL,
            job_run_id INTEGER NULL,
            host VARCHAR(255) NULL,
            pid INTEGER NULL,
            PRIMARY KEY (id),
            KEY job_status (job_name, status),
            KEY started (started_at),
            CONSTRAINT job_run_log_job_run_fk FOREIGN KEY (job_run_id) REFERENCES job_run (id) ON DELETE SET NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS job_run_log",
    ),
]
