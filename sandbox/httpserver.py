"""A small threaded HTTP/1.1 server for the simulators, with latency, faults, throttling and a cost model.

Build an `App` (a router of handlers, from `sandbox.httpapp`), wrap it in a `SimServer` and start it:

    app = App()

    @app.route("GET", "/api/v1/courses/{course_id:int}")
    def course(request: Request, course_id: int) -> Response:
        return json_response({"id": course_id}, records=1)

    server = SimServer(app, name="canvas", options=ServerOptions(latency_ms=5)).start()
    ...  # requests.get(f"{server.url}/api/v1/courses/1")
    server.stop()

Per request the server (1) sleeps the network latency (+ seeded jitter; not charged), (2) answers as a load
balancer would while the host is in an outage (sandbox.outages), (3) asks the throttle to admit the request's
key (the app's `throttle_key` hook, by default its Bearer token), (4) draws a fault, (5) runs the handler,
(6) sleeps the rest of the server time `overhead_ms + per_record_ms * records` (the handler's own time counts
towards it), which is also the request's cost charged to the throttle and reported as `X-Request-Cost`
(seconds, printed as Ruby prints a Float). A refused request (sandbox.throttle has canvas-lms's rules) is
answered at once, with `X-Rate-Limit-Remaining` and no `X-Request-Cost`. Sleeps run to deadlines counted from
the moment the request line arrived, and the throttle is moved at those modelled instants, not when a thread
happens to wake.
`SimServer.stats` counts everything; `stats.snapshot()` returns a plain dict.
"""

from __future__ import annotations

import io
import logging
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.faults import FaultKind, FaultOptions, FaultPlan
from sandbox.httpapp import (
    App,
    Headers,
    Request,
    Response,
    Route,
    html_response,
    json_response,
    logical_key,
    not_found,
)
from sandbox.journal import AnswerJournal
from sandbox.outages import OutageMode, OutageOptions, OutageWindow, outage_response, outage_status
from sandbox.receive_time import StampedSocketReader
from sandbox.server_stats import Counters
from sandbox.throttle import LeakyBucketThrottle, ThrottleOptions, Ticket, ruby_float

logger = logging.getLogger(__name__)

_DOUBLE_SLASH = re.compile(r"/{2,}")


@dataclass(frozen=True)
class CostModel:
    overhead_ms: float = 40.0
    per_record_ms: float = 0.1

    def seconds(self, records: int) -> float:
        return (self.overhead_ms + self.per_record_ms * records) / 1000.0


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0                              # 0 = any free port
    latency_ms: float = 0.0                    # network latency: slept, never charged
    jitter_ms: float = 0.0                     # + uniform(0, jitter) per request
    seed: int = 42
    faults: FaultOptions = field(default_factory=FaultOptions)
    throttle: ThrottleOptions = field(default_factory=ThrottleOptions)
    cost: CostModel = field(default_factory=CostModel)
    idle_timeout: float = 60.0                 # seconds a keep-alive connection may stay idle
    outage: OutageOptions = field(default_factory=OutageOptions)   # a scheduled outage (none by default)


class SimServer:
    """Serves an App on a ThreadingHTTPServer in a background thread."""

    def __init__(self, app: App, *, name: str = "sim", options: ServerOptions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.name = name
        self.options = options or ServerOptions()
        self.stats = Counters(leak=self.options.throttle.leak)
        self.throttle = LeakyBucketThrottle(self.options.throttle, clock)
        self.faults = FaultPlan(self.options.faults, self.options.seed)
        self.outages = OutageWindow(self.options.outage, self.options.seed, clock)
        self.journal: AnswerJournal | None = None      # records every handler's answer when set
        self._rng = random.Random(self.options.seed)
        self._rng_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----
    def start(self) -> SimServer:
        if self._httpd is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.options.host, self.options.port), _Handler, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        for callback in self.app.on_start:
            callback(self.url)
        logger.info("%s simulator listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()                   # wakes handlers sleeping in a slow fault
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None
        logger.info("%s simulator stopped", self.name)

    def __enter__(self) -> SimServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def begin_outage(self, seconds: float | None = None, mode: OutageMode | str | None = None) -> None:
        """Take this host (and any sharing its outage window) down for `seconds` from now."""
        self.outages.begin(seconds, mode)

    def share_outages(self, window: OutageWindow) -> None:
        """Go down and up together with the other servers using `window` (set before traffic starts)."""
        self.outages = window

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._httpd.server_address[:2]
        if host in ("0.0.0.0", "::"):          # listening everywhere: advertise loopback in generated URLs
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    # ---- request pipeline (called from handler threads) ----
    def serve(self, request: Request, received: float) -> Response | None:
        """Produce the response for a request received at `received` (monotonic), or None for a `reset` fault.

        The throttle is moved at the modelled instants: arrival = received + latency, completion = arrival +
        server time. This process's own delays (threads woken late while another one executes a query) make
        the response late, which `stats` counts, but never bunch arrivals or stretch reservations in the
        bucket, as they would not on Canvas.
        """
        arrival = received + self._network_delay()
        self._sleep_until(arrival)
        matched = self.app.match(request.method, request.path)
        route, params = matched if matched else (None, {})
        self.stats.request(route.name if route else "unmatched")
        outage = self.outages.observe(arrival)
        if outage is not None:                 # the load balancer answers: not throttled, not charged
            self.stats.outage(outage.value, outage_status(outage))
            return outage_response(outage)
        key = self.app.throttle_key(request) if self.options.throttle.enabled else None
        ticket = self.throttle.reserve(key, at=arrival) if key is not None else None
        if ticket is not None and not ticket.allowed:
            return self._refusal(ticket, arrival)
        cost, response, fault = 0.0, None, None
        try:
            fault, response = self._process(route, params, request)
            cost = self.options.cost.seconds(response.records if response else 0)
        finally:                               # never leave a reservation behind, whatever happened
            if ticket is not None:
                self.throttle.complete(ticket, cost, at=arrival + cost)
        completed = arrival + cost
        self._sleep_until(completed)
        late = max(time.monotonic() - completed, 0.0)
        if ticket is not None and response is not None:
            response.headers["X-Request-Cost"] = ruby_float(cost)
            response.headers["X-Rate-Limit-Remaining"] = ruby_float(self.throttle.remaining_after(ticket, completed))
        self.stats.served(cost, response.records if response else 0, response.status if response else None,
                          late)
        if self.journal is not None and route is not None and response is not None and fault is None:
            self.journal.record(self.name, route.name, request, response)
        if fault is FaultKind.SLOW:            # a stall on the way back: the client times out first
            self._sleep(self.options.faults.slow_seconds)
        return response

    def _process(self, route: Route | None, params: dict[str, Any],
                 request: Request) -> tuple[FaultKind | None, Response | None]:
        """Fault draw and handler; returns the fault applied (if any) and the response (None = reset)."""
        fault = None
        if route is not None and route.faultable:
            fault = self.faults.decide(logical_key(request))
        response = self._respond(route, params, request, fault)
        if fault is FaultKind.BAD_JSON:
            if response is not None and response.is_json:
                response = _corrupt(response)
            else:
                fault = None                   # only JSON bodies can be corrupted this way
        if fault is not None:
            self.stats.fault(fault)
        return fault, response

    def _respond(self, route: Route | None, params: dict[str, Any], request: Request,
                 fault: FaultKind | None) -> Response | None:
        if fault is FaultKind.RESET:
            return None
        if fault is FaultKind.HTTP500:
            return json_response({"errors": [{"message": "An error occurred."}]}, status=500)
        if fault is FaultKind.HTTP502_503:
            status = (502, 503)[self.faults.variant(logical_key(request), fault, 2)]
            phrase = HTTPStatus(status).phrase
            return html_response(f"<html><body><h1>{status} {phrase}</h1></body></html>", status=status)
        if route is None:
            return not_found()
        try:
            return route.handler(request, **params)
        except Exception:                      # a simulator bug: answer 500, count it, keep serving
            logger.exception("%s handler %s failed", self.name, route.name)
            self.stats.handler_error()
            return json_response({"errors": [{"message": "simulator handler error"}]}, status=500)

    def _refusal(self, ticket: Ticket, arrival: float) -> Response:
        """rate_limit_exceeded: its block costs a sliver of CPU; the headers report the bucket after it."""
        options = self.options.throttle
        done = arrival + options.refusal_cost
        self.throttle.complete(ticket, options.refusal_cost, at=done)
        self.stats.throttled()
        remaining = ruby_float(self.throttle.remaining_after(ticket, done))
        return Response(options.status, options.refusal_body(),
                        {"Content-Type": "text/plain; charset=utf-8", "X-Rate-Limit-Remaining": remaining})

    def _network_delay(self) -> float:
        jitter = 0.0
        if self.options.jitter_ms > 0:
            with self._rng_lock:
                jitter = self._rng.uniform(0, self.options.jitter_ms)
        return (self.options.latency_ms + jitter) / 1000.0

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _sleep_until(self, instant: float) -> None:
        # Deadlines, not durations: a late wake-up does not push back what follows.
        self._sleep(instant - time.monotonic())


def _corrupt(response: Response) -> Response:
    # A strict prefix of a JSON object/array is never valid JSON; Content-Length matches the short body.
    cut = max(1, len(response.body) // 2)
    return Response(200, response.body[:cut], dict(response.headers), response.records)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False                     # stop() must not wait for idle keep-alive connections
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: SimServer) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"              # keep-alive; every response has a Content-Length
    disable_nagle_algorithm = True             # headers and body go out in two writes: avoid 40 ms ACK stalls
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.sim.options.idle_timeout)
        self.rfile.close()                     # read through a reader that keeps the kernel's receive times
        self._reader = StampedSocketReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.reset()
        super().handle_one_request()

    def parse_request(self) -> bool:
        # The request line is in: it reached the server when its bytes did (or, if unknown, now).
        stamped = self._reader.received()
        self._received = time.monotonic() if stamped is None else stamped
        return super().parse_request()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _dispatch(self) -> None:
        sim = self.server.sim
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "bad request body")
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=_DOUBLE_SLASH.sub("/", split.path) or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            headers=Headers(list(self.headers.items())),
            body=body,
            base_url=sim.url,
            client=str(self.client_address[0]),
        )
        sim.stats.enter()
        try:
            response = sim.serve(request, self._received)
            if response is None:
                self._reset()
            else:
                self._write(response)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("%s: client went away", sim.name)   # e.g. it timed out during a slow fault
            self.close_connection = True
        finally:
            sim.stats.leave()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():   # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from http.server
        logger.debug("%s %s", self.address_string(), format % args)
