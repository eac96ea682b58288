"""Job runs and the freshness of each data source they read."""

from yoyo import step

__depends__ = {'0008.canvas_usage_table'}

steps = [
    step(
        """
        CREATE TABLE IF NOT EXISTS job_run (
            id INTEGER NOT NULL AUTO_INCREMENT UNIQUE,
            job_name VARCHAR(50) NOT NULL,
            started_at DATETIME NOT NULL,
            finished_at DATETIME NOT NULL,
            PRIMARY KEY (id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS job_run",
    ),
    step(
        """
        CREATE TABLE IF NOT EXISTS data_source_status (
            id INTEGER NOT NULL AUTO_INCREMENT UNIQUE,
            data_source_name VARCHAR(50) NOT NULL,
            data_updated_at DATETIME NOT NULL,
            job_run_id INTEGER NOT NULL,
            PRIMARY KEY (id),
            FOREIGN KEY (job_run_id) REFERENCES job_run (id) ON DELETE CASCADE ON UPDATE CASCADE
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        "DROP TABLE IF EXISTS data_source_status",
    ),
]
