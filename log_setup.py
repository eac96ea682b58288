"""Logging for the runner: one format, and secrets scrubbed from every record as a last line of defence."""

from __future__ import annotations

import logging
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"


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
    """Replace configured secret values wherever they appear in a record's final message."""

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
        return True


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """(Re)configure the root logger; safe to call twice (once before and once after reading config)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "course_inventory", False):  # leave handlers others installed (e.g. pytest's)
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.course_inventory = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    # yoyo logs each step at INFO; urllib3 logs every request line with its query string at DEBUG
    # (launch verifiers, Zoom's lti_scid): keep both to warnings.
    for noisy in ("yoyo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
