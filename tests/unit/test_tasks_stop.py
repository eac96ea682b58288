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
