"""Logging for the runner: text or JSON lines, the job being run on every record, secrets scrubbed from every
record as a last line of defence, and lines that never land inside a progress bar.

- `configure_logging(level, secrets, fmt)`: one console handler on the root logger (stderr).
- `job_context(name)`: while a job runs, every record (from any thread) carries `job`.
- `JsonFormatter`: one JSON object per line for OpenShift's log aggregation (`--log-format json`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from tqdm import tqdm

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
REDACTED = "[REDACTED]"
EXTRA_FIELDS = ("summary",)   # structured values a record may carry (`extra={"summary": {...}}`), JSON only


class Redactor:
    """Replaces configured secret values in any text (log records, job_run_log reasons)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class RedactSecrets(logging.Filter):
    """Replace configured secret values wherever they appear in a record's final message, traceback and stack."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._redact.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._redact(message), None
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


class _RunningJob:
    """The job being run. Jobs run one after another in one process, so this is a process-wide fact, read by
    records of every thread: a contextvar would not reach the threads of a pool or of a client library's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.name: str | None = None

    @contextmanager
    def running(self, name: str) -> Iterator[None]:
        with self._lock:
            previous, self.name = self.name, name
        try:
            yield
        finally:
            with self._lock:
                self.name = previous


_RUNNING = _RunningJob()


def job_context(name: str) -> AbstractContextManager[None]:
    """Records made while inside carry `job=name`, from whichever thread makes them."""
    return _RUNNING.running(name)


class JobNameFilter(logging.Filter):
    """Sets `record.job` (None outside a job) unless the record already names one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job", None) is None:
            record.job = _RUNNING.name
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601 UTC), level, logger, message, job, thread, exception, extras.

    The standard library's json is enough for flat records; `redact` is applied to every string value again
    (the extras do not go through `RedactSecrets`, which only sees the message and the traceback).
    """

    def __init__(self, redact: Callable[[str], str] = lambda text: text) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job": getattr(record, "job", None),
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        for key in EXTRA_FIELDS:
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        return json.dumps(_redacted(payload, self._redact), ensure_ascii=False, default=str)


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    return value


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line through `tqdm.write`: it clears the progress bars drawn on the same stream, writes the
    line and redraws them, so a log line never lands inside a bar (without bars it is a plain write).

    One permanent handler rather than tqdm's `logging_redirect_tqdm`, which swaps the root logger's handlers while
    it is entered: a job opens several phases' bars at once, and swaps that nest are easy to undo in the wrong order.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def build_formatter(fmt: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    return JsonFormatter(Redactor(secrets)) if fmt == "json" else logging.Formatter(FORMAT)


def configure_logging(level: str = "INFO", secrets: Iterable[str] = (), fmt: str = "text",
                      stream: TextIO | None = None) -> None:
    """(Re)configure the root logger; safe to call twice (once before and once after reading config)."""
    secrets = list(secrets)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "course_inventory", False):  # leave handlers others installed (e.g. pytest's)
            root.removeHandler(handler)
    handler = ConsoleHandler(stream)
    handler.course_inventory = True  # type: ignore[attr-defined]
    handler.setFormatter(build_formatter(fmt, secrets))
    handler.addFilter(JobNameFilter())
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    # yoyo logs each step at INFO; urllib3 logs every request line with its query string at DEBUG
    # (launch verifiers, Zoom's lti_scid): keep both to warnings.
    for noisy in ("yoyo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
