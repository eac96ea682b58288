"""Start the Canvas + gateway simulators (and load the UDW, when one is given) for a test, and the matching
configuration (without a `UDW` section when no warehouse is given)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox.canvas_rest import CanvasOptions, build_canvas_app
from sandbox.gateway import GatewayOptions, build_gateway_app
from sandbox.httpserver import ServerOptions, SimServer
from sandbox.udw import load_udw
from sandbox.udw_lag import NO_LAG, UdwLag
from sandbox.university import University

CANVAS_TOKEN = "canvas-sandbox-token"


def fill_bucket(server: SimServer, key: str) -> None:
    """Another job on the same token has just filled its throttle bucket: the first requests are refused until it
    leaks below the refusal line, however well the limiter knows the bucket (a bucket it learns well enough is
    not otherwise sure to refuse anything in a short run)."""
    ticket = server.throttle.begin(key)
    if ticket is not None:
        server.throttle.finish(ticket, server.throttle.options.settings(key).maximum)


@dataclass
class CanvasSandbox:
    canvas: SimServer
    gateway: SimServer
    env: dict[str, Any]


@contextmanager
def canvas_sandbox(university: University, *, udw_db: dict[str, str] | None, inventory_db: dict[str, str],
                   term_ids: list[int], options: ServerOptions | None = None, workers: int = 8,
                   attempts: int = 5, zoom_base_url: str = "https://applications.zoom.us",
                   udw_lag: UdwLag = NO_LAG, sis_ids_from: str | None = None,
                   token_permissions: frozenset[str] | None = None,
                   roster_churn: float = 0.0) -> Iterator[CanvasSandbox]:
    """`udw_lag`: how far the loaded warehouse trails Canvas (none by default here, so tests that are not
    about the lag compare with Canvas's values); `sis_ids_from`: SECTION_SIS_IDS_FROM, when set."""
    if udw_db is not None:
        load_udw(university, udw_db, create_database=False, lag=udw_lag)
    canvas_app, rest = build_canvas_app(university, CanvasOptions(tokens=frozenset({CANVAS_TOKEN}),
                                                                  zoom_base_url=zoom_base_url,
                                                                  seed=university.seed,
                                                                  token_permissions=token_permissions,
                                                                  roster_churn=roster_churn))
    gateway_options = GatewayOptions()
    gateway_app, _ = build_gateway_app(rest, gateway_options)
    canvas = SimServer(canvas_app, name="canvas", options=options).start()
    gateway = SimServer(gateway_app, name="gateway", options=options).start()
    env = {
        "LOG_LEVEL": "INFO", "JOB_NAMES": ["COURSE_INVENTORY"], "CREATE_CSVS": False,
        "MAX_REQ_ATTEMPTS": attempts, "NUM_ASYNC_WORKERS": workers,
        "CANVAS": {
            "CANVAS_ACCOUNT_ID": university.root_account_id, "CANVAS_TERM_IDS": list(term_ids),
            "ADD_COURSE_IDS": [], "API_BASE_URL": gateway.url, "API_SCOPE_PREFIX": gateway_options.scope_prefix,
            "API_SUBSCRIPTION_NAME": gateway_options.scope, "API_CLIENT_ID": gateway_options.client_id,
            "API_CLIENT_SECRET": gateway_options.client_secret, "CANVAS_URL": canvas.url,
            "CANVAS_TOKEN": CANVAS_TOKEN,
        },
        "ZOOM": {"BASE_URL": zoom_base_url},
        "INVENTORY_DB": dict(inventory_db),
    }
    if udw_db is not None:
        env["UDW"] = dict(udw_db)
    if sis_ids_from is not None:
        env["SECTION_SIS_IDS_FROM"] = sis_ids_from
    try:
        yield CanvasSandbox(canvas, gateway, env)
    finally:
        canvas.stop()
        gateway.stop()
