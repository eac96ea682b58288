"""clients/progress.py: periodic log lines off a terminal, a bar on one, and a summary either way."""

from __future__ import annotations

import io
import logging

from clients.progress import Progress
from clients.stats import ClientStats

LOG = logging.getLogger("tests.progress")


def test_without_tty_logs_at_most_once_per_interval(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    now = [0.0]
    stats = ClientStats()
    stats.record_attempt("rest", throttled=True)          # before the phase: not counted
    with Progress("audit log", 100, LOG, stats=stats, interval=10.0, tty=False, clock=lambda: now[0]) as progress:
        for step in range(100):
            now[0] = step * 0.5                           # 100 items over 50 s
            if step == 60:
                stats.record_attempt("rest", throttled=True)
            progress.advance()
    lines = [r.getMessage() for r in caplog.records]
    periodic, summary = lines[:-1], lines[-1]
    assert len(periodic) == 4                             # at 10, 20, 30, 40 s — not one per item
    assert periodic[0].startswith("audit log: 21/100") and "0 throttled" in periodic[0]
    assert "1 throttled" in periodic[-1]
    assert summary.startswith("audit log finished: 100/100") and "1 throttled" in summary


def test_tty_draws_a_bar_and_still_logs_summary(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    stream = io.StringIO()
    with Progress("courses", 5, LOG, tty=True, stream=stream, interval=0.0) as progress:
        for _ in range(5):
            progress.advance()
    assert "courses" in stream.getvalue()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("courses finished: 5/5")


def test_unknown_total_and_failed_phase(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    try:
        with Progress("pages", None, LOG, tty=False) as progress:
            progress.advance(3)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert caplog.records[-1].getMessage().startswith("pages stopped: 3 in")
