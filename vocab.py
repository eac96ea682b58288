"""Shared vocabulary: job and data-source names, data-source status, and the exception tree."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, auto
from typing import Any, Protocol


class ValidJobName(Enum):
    """Member name = job name as written in JOB_NAMES; value = dotted path of the entry function."""

    COURSE_INVENTORY = "course_inventory.inventory.run_course_inventory"
    MIVIDEO = "mivideo.mivideo_extract.main"
    CANVAS_ZOOM_MEETINGS = "online_meetings.canvas_zoom_meetings.main"


# The configuration each built-in job needs when selected: a name in the schema's `definitions.requirements`.
JOB_REQUIREMENTS = {
    ValidJobName.COURSE_INVENTORY: "CANVAS",
    ValidJobName.CANVAS_ZOOM_MEETINGS: "CANVAS",
    ValidJobName.MIVIDEO: "MIVIDEO",
}


class ValidDataSourceName(Enum):
    CANVAS_API = auto()
    CANVAS_ZOOM_MEETINGS = auto()
    KALTURA_API = auto()
    UNIZIN_DATA_PLATFORM_EVENTS = auto()
    UNIZIN_DATA_WAREHOUSE = auto()

    def __str__(self) -> str:
        return self.name


class DataSourceStatus:
    """When a data source's data was last updated, as reported by the job that read it."""

    def __init__(self, data_source_name: ValidDataSourceName, data_updated_at: datetime | None = None) -> None:
        if not isinstance(data_source_name, ValidDataSourceName):
            raise ValueError(f"data_source_name must be a ValidDataSourceName, not {data_source_name!r}")
        if data_updated_at is None:
            data_updated_at = datetime.now(UTC)
        # pandas.Timestamp subclasses datetime; refuse it so the DB layer always gets plain datetimes.
        if type(data_updated_at) is not datetime:
            raise TypeError(f"data_updated_at must be a datetime.datetime, not {type(data_updated_at).__name__}")
        offset = data_updated_at.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise ValueError("data_updated_at must carry UTC tzinfo")
        self.data_source_name = data_source_name
        self.data_updated_at = data_updated_at

    def copy(self) -> dict[str, Any]:
        return {"data_source_name": self.data_source_name, "data_updated_at": self.data_updated_at}

    def __repr__(self) -> str:
        return f"DataSourceStatus({self.data_source_name}, {self.data_updated_at.isoformat()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataSourceStatus) and self.copy() == other.copy()


class EtlError(Exception):
    """Base of every expected failure; the message is safe to log (never carries secrets)."""

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "".join(f"\n  - {line}" for line in self.details)


class ConfigError(EtlError):
    """The configuration file or environment overrides are missing or invalid."""


class SourceError(EtlError):
    """An external source (HTTP API, warehouse) failed."""

    def __init__(self, message: str, *, source: str = "", status: int | None = None, url: str = "",
                 credentials_rejected: bool = False) -> None:
        super().__init__(message)
        self.source, self.status, self.url = source, status, url
        # A 401 with a WWW-Authenticate challenge: the credentials themselves were refused (not a permission).
        self.credentials_rejected = credentials_rejected


class RetriableSourceError(SourceError):
    """A transient failure (5xx, throttling, connection reset, invalid body) worth retrying."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, throttled: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.throttled = throttled


class FatalSourceError(SourceError):
    """A failure that retrying cannot fix (401, 404, 403 not about throttling)."""


class SourceFormatError(SourceError):
    """The source answered, but not in the shape the job relies on."""


class TransformError(EtlError):
    """Source data cannot be turned into rows (missing ids, duplicates that must not happen)."""


class LoadError(EtlError):
    """Writing to the inventory database failed; the transaction was rolled back."""


class DatabaseUnavailableError(EtlError):
    """The inventory database cannot be reached or migrated."""


class JobError(EtlError):
    """A job's expected failure, with a one-line reason the runner logs."""


@contextmanager
def previous_data_kept(job: ValidJobName) -> Iterator[None]:
    """Turn any expected failure inside a job into its one-line JobError (the job loads nothing partial)."""
    try:
        yield
    except EtlError as exc:
        raise JobError(f"{job.name} failed, previous data kept: {exc}") from exc


class JobInterrupted(BaseException):  # noqa: N818 - names the event, like KeyboardInterrupt
    """The running job is being stopped from outside (a stop signal, its deadline).

    A BaseException, so a job's `except Exception` cannot swallow it; its message is one line for the log.
    """


class StopRequested(JobInterrupted):
    """SIGTERM or SIGINT arrived: stop everything, load nothing partial."""

    def __init__(self, signum: int, signal_name: str) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signum, self.signal_name = signum, signal_name


class DeadlineExceeded(JobInterrupted):
    """The job ran longer than JOB_TIMEOUT_MINUTES."""


class RequestSnapshot(Protocol):
    total_requests: int
    retries: int
    throttled: int


class RequestStats(Protocol):
    """What `JobReport.track` reads: clients.http.ClientStats and anything alike."""

    def snapshot(self) -> RequestSnapshot: ...


@dataclass(frozen=True)
class RequestTotals:
    requests: int = 0
    retries: int = 0
    throttled: int = 0


class JobReport:
    """What a job tells the runner besides its statuses, for `job_run_log`: rows loaded and HTTP requests.

    Filled by the job (`add_rows` after each load; `track(client.stats)` once a client exists, read when the
    attempt ends whatever its outcome; `add_requests` for clients without ClientStats). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._counted = RequestTotals()
        self._tracked: list[RequestStats] = []

    def add_rows(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for table, rows in counts.items():
                self._rows[table] = self._rows.get(table, 0) + int(rows)

    def add_requests(self, requests: int, retries: int = 0, throttled: int = 0) -> None:
        with self._lock:
            c = self._counted
            self._counted = RequestTotals(c.requests + requests, c.retries + retries, c.throttled + throttled)

    def track(self, stats: RequestStats) -> None:
        with self._lock:
            self._tracked.append(stats)

    @property
    def rows_loaded(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rows)

    def snapshots(self) -> list[RequestSnapshot]:
        """Each tracked client's counters now (clients.stats.StatsSnapshot: also its limiters' measurements)."""
        with self._lock:
            tracked = list(self._tracked)
        return [stats.snapshot() for stats in tracked]

    def request_totals(self) -> RequestTotals:
        with self._lock:
            snapshots = [stats.snapshot() for stats in self._tracked]
            c = self._counted
        return RequestTotals(c.requests + sum(s.total_requests for s in snapshots),
                             c.retries + sum(s.retries for s in snapshots),
                             c.throttled + sum(s.throttled for s in snapshots))
