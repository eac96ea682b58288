"""GraphQL execution in forked worker processes, so a big page does not hold the simulator's GIL.

The simulators share one process, and executing one request for 20 courses' enrollment pages takes 20-40 ms of
CPU. Every other handler thread then waits for the GIL, so all answers come back late, and the later they are
the more requests the client counts in flight: on a two-core machine half of them came back 10 ms late or
more, and the benchmark measured the simulator instead of the job. Real Canvas runs each request on its own
server process, so the sandbox can too: `GraphQLWorkers` forks `processes` copies of the endpoint and hands each
query to an idle one (waiting while all are busy, as requests queue for a server's CPUs). The parent keeps the
HTTP handling, throttle, faults and journal; a worker only turns (query, variables, operation) into a response.

The copies are forked from the parent's data and forked again when it changes (`restart`, at the next day),
so they answer exactly as the endpoint in the parent would. Only stateless execution can be copied this way:
roster churn keeps per-course state across requests (sandbox.graphql_roster), so it needs the in-process
endpoint (`GraphQLEndpoint.use_workers` and `serve --graphql-processes` refuse the combination).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import queue
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sandbox.httpapp import Response

if TYPE_CHECKING:
    from sandbox.canvas_graphql import GraphQLEndpoint

logger = logging.getLogger(__name__)


class GraphQLWorkerError(RuntimeError):
    """A worker failed or is gone; the request is answered as a simulator error (HTTP 500)."""


class GraphQLWorkers:
    """`processes` forked copies of `endpoint`, each answering one query at a time."""

    def __init__(self, endpoint: GraphQLEndpoint, processes: int, *, journal_parts: bool = False) -> None:
        if processes < 1:
            raise ValueError("need at least one GraphQL worker process")
        self.endpoint, self.processes, self.journal_parts = endpoint, processes, journal_parts
        self._idle: queue.Queue[tuple[multiprocessing.process.BaseProcess, Connection]] = queue.Queue()
        self._workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        self._alive = 0                        # workers not known to have died
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        # Objects that exist now are never collected in the copies: without this their first collections would
        # touch (and so copy) every page of the parent's data (the gc.freeze documentation's advice for forking).
        frozen_before = gc.get_freeze_count()
        gc.freeze()
        try:
            for _ in range(self.processes):
                parent_end, child_end = context.Pipe()
                # A copy closes the parent's ends it inherits, its own and its elder siblings': else a worker
                # would not see its pipe close when the parent closes it, and would never exit.
                parent_ends = [parent_end, *(connection for _, connection in self._workers)]
                process = context.Process(target=_serve, daemon=True, name="graphql-worker",
                                          args=(self.endpoint, child_end, parent_ends, self.journal_parts))
                process.start()
                child_end.close()
                self._workers.append((process, parent_end))
                self._idle.put((process, parent_end))
                self._alive += 1
        finally:
            if not frozen_before:              # the parent collects as before (unless it froze its heap itself)
                gc.unfreeze()

    def run(self, query: str, variables: Any, operation_name: str | None) -> Response:
        """What `endpoint.run` answers, computed by an idle worker (by the endpoint itself once none is left)."""
        while True:
            try:
                process, connection = self._idle.get(timeout=0.5)
                break
            except queue.Empty:
                if not self._alive:
                    return self.endpoint.run(query, variables, operation_name)
        try:
            connection.send((query, variables, operation_name))
            outcome = connection.recv()
        except (EOFError, OSError) as exc:     # it died: the rest serve on (this answer is a simulator error)
            with self._lock:
                if any(known is process for known, _ in self._workers):   # (not one a restart retired)
                    self._alive -= 1
            raise GraphQLWorkerError(f"GraphQL worker {process.pid} is gone ({type(exc).__name__})") from exc
        self._idle.put((process, connection))
        if isinstance(outcome, str):
            raise GraphQLWorkerError(f"GraphQL worker {process.pid} failed: {outcome}")
        status, body, headers, records, parts = outcome
        return Response(status, body, headers, records, parts=None if parts is None else (lambda: parts))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process, _ in self._workers if process.pid is not None]

    def restart(self) -> None:
        """Fork fresh copies of the endpoint as it is now (call while no request is being answered)."""
        with self._lock:
            self._stop()
            self._start()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        for process, connection in self._workers:
            connection.close()                 # the worker's recv ends: it exits
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._workers.clear()
        self._idle = queue.Queue()
        self._alive = 0


def _serve(endpoint: GraphQLEndpoint, connection: Connection, parent_ends: list[Connection],
           journal_parts: bool) -> None:
    for parent_end in parent_ends:
        parent_end.close()
    endpoint.workers = None                    # a copy answers itself
    while True:
        try:
            query, variables, operation_name = connection.recv()
        except (EOFError, OSError):
            return
        try:
            response = endpoint.run(query, variables, operation_name)
            # The per-course answers a journal digests: the copy cannot send the closure, only its result.
            parts = response.parts() if journal_parts and response.parts is not None else None
            outcome: Any = (response.status, response.body, response.headers, response.records, parts)
        except Exception as exc:               # a simulator bug: report it, keep serving
            logger.exception("GraphQL worker failed")
            outcome = f"{type(exc).__name__}: {exc}"
        connection.send(outcome)
