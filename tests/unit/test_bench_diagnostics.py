"""The benchmark's diagnostics: the forecast journal and its replay, and the host's stolen CPU share."""

from __future__ import annotations

import time

import pytest

from bench.forecast_journal import ForecastJournal, replay, summary
from bench.host import cpu_times, stolen_share
from clients.limiter import AdaptiveLimiter

HWM, RESERVATION, INWARD, INSIDE = 600.0, 50.0, 0.05, 0.035


def steady_journal(requests: int = 400, gap: float = 0.01) -> dict:
    """Requests every `gap` s, each inside 35 ms after 50 ms inward and answered as it leaves, with the remaining
    of a bucket holding a reservation per other request inside; charged the time inside, as the sandbox charges."""
    starts = [[n, "rest", n * gap] for n in range(requests)]
    answers = []
    for n in range(requests):
        leaves = n * gap + INWARD + INSIDE
        inside = sum(1 for m in range(requests) if m != n and m * gap + INWARD <= leaves < m * gap + INWARD + INSIDE)
        answers.append([n, leaves, HWM - RESERVATION * inside, False, INSIDE])
    return {"starts": starts, "answers": answers}


def test_the_replay_counts_what_was_inside_at_each_arrival_and_compares_the_forecast():
    checks = replay(steady_journal(), INWARD)
    assert checks                                   # the forecast armed on the way
    # Every 10 ms a request arrives and stays 35 ms: at an arrival the three before it are still inside (its own
    # arrival not counted).
    assert {c.true for c in checks} == {3}
    bias = sum(c.forecast - c.true for c in checks) / len(checks)
    assert abs(bias) < 0.5                          # regular round trips: the forecast is about right
    table = summary(checks)
    assert table.splitlines()[-1].split()[0] == "all" and f"{len(checks):7d}" in table


def test_the_journal_records_starts_and_answers_and_the_forecast_still_learns():
    limiter = AdaptiveLimiter(4)
    journal = ForecastJournal(limiter)
    for _ in range(20):
        with limiter.slot(kind="rest") as slot:
            time.sleep(0.002)
            slot.observe(remaining=HWM, throttled=False, cost=0.001)
    recorded = journal.as_dict()
    assert len(recorded["starts"]) == len(recorded["answers"]) == 20
    assert [row[0] for row in recorded["starts"]] == [row[0] for row in recorded["answers"]]
    assert recorded["answers"][0][2:] == [HWM, False, 0.001]
    assert limiter.forecast.armed                   # the wrapped calls still reached the forecast


def test_stolen_share_reads_proc_stat(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    monkeypatch.setattr("bench.host.PROC_STAT", stat)
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n")
    before = cpu_times()
    assert before == (40, 1000)
    stat.write_text("cpu  150 0 60 860 10 0 0 120 0 0\ncpu0 1 2 3\n")
    assert stolen_share(before, cpu_times()) == pytest.approx(80 / 200)
    stat.write_text("")
    assert cpu_times() is None and stolen_share(before, None) is None
