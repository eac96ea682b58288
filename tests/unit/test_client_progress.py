"""clients/progress.py: periodic log lines off a terminal, a bar on one, and a summary either way."""

from __future__ import annotations

import io
import logging

import pytest

from clients.progress import Progress, duration_text, progress_text
from clients.stats import ClientStats
from log_setup import configure_logging
from tests.helpers.log_handlers import remove_our_handlers

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


# ---- totals that grow until the listing is complete ----
def test_progress_text_shows_a_growing_total_as_a_lower_bound_and_a_final_one_with_eta():
    assert progress_text("enrollments", 120, 400, False, 10.0, 2) == "enrollments: 120/400+ so far, 12.0/s, 2 throttled"
    # 120 done in 10 s -> 12/s; 280 left -> 23.3 s
    assert progress_text("enrollments", 120, 400, True, 10.0, 0) == \
        "enrollments: 120/400 (30%), 12.0/s, ETA 23s, 0 throttled"
    assert progress_text("activity", 30, 3030, True, 10.0, 0).endswith("ETA 16m40s, 0 throttled")
    assert progress_text("pages", 7, None, False, 2.0, 0) == "pages: 7, 3.5/s, 0 throttled"
    assert "ETA" not in progress_text("audit", 5, 5, True, 1.0, 0)        # done: nothing left to estimate
    assert duration_text(7322) == "2h02m"


def test_lines_off_a_terminal_follow_the_total_until_it_is_final(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    now = [0.0]
    with Progress("enrollments", None, LOG, interval=10.0, tty=False, clock=lambda: now[0]) as progress:
        progress.expect(50)                          # first page of the listing
        for step in range(1, 81):
            now[0] = step * 0.5
            if step == 30:
                progress.expect(50)                  # second page
            if step == 60:
                progress.total_known()               # the listing is complete
            progress.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "enrollments: 20/50+ so far, 2.0/s, 0 throttled"                  # at 10 s
    assert lines[1] == "enrollments: 40/100+ so far, 2.0/s, 0 throttled"                 # at 20 s
    assert lines[2] == "enrollments: 60/100 (60%), 2.0/s, ETA 20s, 0 throttled"         # at 30 s: final
    assert lines[-1].startswith("enrollments finished: 80/100 in 40.0s")


class FakeTerminal(io.StringIO):
    """What a terminal looks like to tqdm and to Progress's tty detection."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def console():
    """Our log handler writing to a fake terminal; removed afterwards."""
    terminal = FakeTerminal()
    configure_logging("INFO", fmt="text", stream=terminal)
    logging.getLogger("tests.progress").setLevel(logging.INFO)
    yield terminal
    remove_our_handlers()


def visible_lines(output: str) -> list[str]:
    """What a terminal shows for each line: the text after the last carriage return."""
    return [segment.rpartition("\r")[2].rstrip() for segment in output.split("\n")]


def test_on_a_terminal_a_bar_with_total_percent_and_eta_and_log_lines_never_inside_it(console):
    with Progress("enrollments", None, LOG, stream=console, interval=0.0) as progress:   # tty detected
        progress.expect(40)
        for i in range(40):
            progress.advance()
            if i == 10:
                progress.total_known()
                progress._bar.refresh()
            if i % 10 == 5:
                LOG.warning("a log line while the bar is drawn %d", i)
    output = console.getvalue()
    assert "enrollments: " in output and "40/40+" not in output.split("a log line")[-1]
    assert "%|" in output and "<" in output                   # percent and remaining time once final
    shown = visible_lines(output)
    for i in (5, 15, 25, 35):
        assert any(line.endswith(f"WARNING tests.progress: a log line while the bar is drawn {i}")
                   and "enrollments" not in line for line in shown), i
    # and no periodic INFO lines on a terminal: only the summary line at the end
    assert sum("enrollments:" in line and "INFO" in line for line in shown) == 0
    assert any("enrollments finished: 40/40" in line for line in shown)


def test_before_the_total_is_final_the_bar_shows_it_as_a_lower_bound(console):
    with Progress("activity", None, LOG, stream=console) as progress:
        progress.expect(7)
        progress.advance(3)
        progress._bar.refresh()
        growing = console.getvalue()
        progress.total_known()
    assert "activity: 3/7+" in growing and "%" not in growing
    assert "3/7" in console.getvalue().split(growing, 1)[1] and "%" in console.getvalue().split(growing, 1)[1]


def test_off_a_terminal_no_bar_is_drawn(caplog):
    caplog.set_level(logging.INFO, logger="tests.progress")
    stream = io.StringIO()                                     # isatty() is False: a CronJob's log, docker logs
    with Progress("courses", None, LOG, stream=stream, interval=0.0) as progress:
        progress.expect(3)
        progress.total_known()
        for _ in range(3):
            progress.advance()
    assert stream.getvalue() == ""
    assert [r.getMessage().split(",")[0] for r in caplog.records][:3] == [
        "courses: 1/3 (33%)", "courses: 2/3 (67%)", "courses: 3/3 (100%)"]
