"""An interrupted TaskGroup.wait() (a stop signal in the main thread) stops the workers at their next check()."""

import signal
import threading
import time

import pytest

from clients.tasks import TaskGroup
from vocab import JobInterrupted


class Interrupted(JobInterrupted):
    pass


def test_interrupting_wait_stops_the_workers_at_their_next_check():
    steps = []
    lock = threading.Lock()

    def pages(worker):
        for page in range(1000):            # a long paging loop, as the inventory's collectors run
            group.check()
            with lock:
                steps.append((worker, page))
            time.sleep(0.01)

    def interrupt(signum, frame):
        raise Interrupted("stop")

    previous = signal.signal(signal.SIGALRM, interrupt)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted), TaskGroup(4) as group:
            for worker in range(4):
                group.submit(pages, worker)
            group.wait()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.monotonic() - started
    assert elapsed < 2                      # not the 10 s the loops would take
    done = len(steps)
    time.sleep(0.1)
    assert len(steps) == done and done < 4 * 100


def test_a_task_queued_ahead_starts_before_that_many_earlier_ones():
    started, release = [], threading.Event()
    with TaskGroup(1) as group:
        group.submit(release.wait)                   # holds the only worker while the rest queue up
        for name in "abcde":
            group.submit(started.append, name)
        group.submit(started.append, "chain", ahead=2)                 # as if submitted before d and e
        group.submit(started.append, "long chain", ahead=100)          # further than the queue: first
        group.submit(started.append, "f")
        release.set()
        group.wait()
    assert started == ["long chain", "a", "b", "c", "chain", "d", "e", "f"]


def test_a_spare_task_starts_only_when_no_other_task_is_waiting():
    started, release = [], threading.Event()

    def then_submit(name: str) -> None:          # a task submitting more while spare ones wait
        started.append(name)
        group.submit(started.append, f"{name}'s follow-up")

    with TaskGroup(1) as group:
        group.submit(release.wait)
        group.submit(started.append, "spare 1", spare=True)
        group.submit(then_submit, "a")
        group.submit(started.append, "spare 2", spare=True)
        group.submit(started.append, "b", ahead=5)
        release.set()
        group.wait()
    assert started == ["b", "a", "a's follow-up", "spare 1", "spare 2"]


def test_a_failure_drops_the_queued_tasks_and_wait_raises_it():
    ran = []

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"), TaskGroup(1) as group:
        group.submit(fail)
        for n in range(5):
            group.submit(ran.append, n)
        group.wait()
    assert ran == []
