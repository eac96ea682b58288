"""Run the whole sandbox: API gateway + Canvas simulators, other registered simulators, the UDW, an env file.

    with Sandbox(generate_university("small"), SandboxOptions(udw_db=pg_params, env_file=path)) as sandbox:
        sandbox.config          # the configuration written to sandbox.env_file (every key of env_blank.hjson)
        sandbox.stats()         # per-server statistics
        sandbox.outage(30, hosts=("canvas", "gateway"))   # both down for 30 s from now
        sandbox.next_day()      # Canvas a day later (sandbox.next_day); with `journal`, sandbox.take_answers()

Other simulators join through `register_service(name, factory)`. A factory is called as
`factory(university, options)` and returns `(started SimServer, config dict)`; the config dict is merged
into the env file. `options` holds `server_options` (ServerOptions with the sandbox's latency, faults and
cost model; no throttle), `config_dir`, `seed`, `lti_consumer_key`/`lti_shared_secret` (what Canvas signs
Zoom launches with), plus anything in `SandboxOptions.service_options[name]`. Services start before Canvas,
so a `ZOOM.BASE_URL` they return becomes the action of Canvas's LTI launch forms.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hjson

from sandbox.canvas_rest import CanvasOptions, CanvasRest, build_canvas_app
from sandbox.faults import FaultOptions
from sandbox.gateway import Gateway, GatewayOptions, build_gateway_app
from sandbox.httpserver import CostModel, ServerOptions, SimServer
from sandbox.journal import Answer, AnswerJournal
from sandbox.next_day import DayChanges, next_day
from sandbox.outages import OutageMode, OutageOptions, OutageWindow
from sandbox.throttle import ThrottleOptions
from sandbox.udw_lag import UdwLag
from sandbox.university import University

logger = logging.getLogger(__name__)

ServiceFactory = Callable[[University, Mapping[str, Any]], tuple[SimServer, dict[str, Any]]]
ROOT = Path(__file__).resolve().parents[1]
ENV_TEMPLATE = ROOT / "config" / "env_blank.hjson"
# Simulators written in other modules, imported lazily so a missing one does not break the rest.
BUILTIN_SERVICES: dict[str, str] = {
    "kaltura": "sandbox.kaltura_sim:kaltura_service_factory",
    "bigquery": "sandbox.bigquery_sim:bigquery_service_factory",
    "zoom": "sandbox.zoom_sim:zoom_service_factory",
}
_registry: dict[str, ServiceFactory] = {}     # register_service() additions and overrides


def register_service(name: str, factory: ServiceFactory) -> None:
    """Add (or replace) a simulator that every Sandbox started afterwards also runs."""
    _registry[name] = factory


def registered_services() -> dict[str, ServiceFactory]:
    services: dict[str, ServiceFactory] = {}
    for name, target in BUILTIN_SERVICES.items():
        module_name, _, attribute = target.partition(":")
        try:
            services[name] = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            logger.warning("simulator %s unavailable (%s): %s", name, target, exc)
    services.update(_registry)
    return services


@dataclass(frozen=True)
class SandboxOptions:
    seed: int = 42
    host: str = "127.0.0.1"
    port_base: int = 0                         # 0 = free ports; else canvas, gateway, then services in order
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    faults: FaultOptions = field(default_factory=FaultOptions)
    throttle: ThrottleOptions = field(default_factory=lambda: ThrottleOptions(enabled=True))
    cost: CostModel = field(default_factory=CostModel)
    canvas: CanvasOptions = field(default_factory=CanvasOptions)
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    services: tuple[str, ...] | None = None    # None = every registered service
    service_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    term_ids: tuple[int, ...] | None = None    # CANVAS_TERM_IDS; None = the terms in session
    udw_db: Mapping[str, str] | None = None    # PostgreSQL params (with dbname) to load the UDW into; None = no UDW
    udw_lag: UdwLag = field(default_factory=UdwLag)   # how far that warehouse trails Canvas
    drop_udw_on_close: bool = False
    inventory_db: Mapping[str, str] | None = None
    env_file: Path | None = None               # None = no file written
    env_template: Path = ENV_TEMPLATE
    outage: OutageOptions = field(default_factory=OutageOptions)   # scheduled outage (after_requests set)
    outage_hosts: tuple[str, ...] | None = None                   # servers it takes down; None = all
    journal: bool = False                      # record a digest of every Canvas/gateway answer (sandbox.journal)
    graphql_processes: int = 0                 # run GraphQL queries in this many forked processes (0 = in-process)


def default_term_ids(university: University) -> list[int]:
    """Terms in session at the generator's `as_of` moment; else every term that has a SIS id."""
    as_of = university.extras.get("generator", {}).get("as_of")
    current = [t.id for t in university.terms
               if as_of is not None and t.start_at is not None and t.end_at is not None
               and t.start_at <= as_of <= t.end_at and t.sis_term_id is not None]
    return sorted(current) or sorted(t.id for t in university.terms if t.sis_term_id is not None)


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _db_config(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(params.get(key, "")) for key in ("host", "port", "dbname", "user", "password")}


class Sandbox:
    """Starts the simulators and writes a ready configuration; a context manager."""

    def __init__(self, university: University, options: SandboxOptions | None = None) -> None:
        self.university = university
        self.options = options or SandboxOptions()
        self.servers: dict[str, SimServer] = {}
        self.canvas: CanvasRest | None = None
        self.gateway: Gateway | None = None
        self.journal = AnswerJournal() if self.options.journal else None
        self.config: dict[str, Any] = {}

    @property
    def env_file(self) -> Path | None:
        return self.options.env_file

    def start(self) -> Sandbox:
        if self.options.env_file is not None:       # services may write files next to it (key files)
            self.options.env_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            service_config = self._start_services()
            self._start_canvas(service_config)
            self._schedule_outage()
            if self.options.udw_db is not None:
                from sandbox.udw import load_udw  # psycopg2 only when a UDW is asked for

                load_udw(self.university, self.options.udw_db, lag=self.options.udw_lag)
            self.config = self._build_config(service_config)
            if self.options.env_file is not None:
                self._write_env_file(self.options.env_file)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for name in reversed(list(self.servers)):
            self.servers.pop(name).stop()
        if self.canvas is not None and self.canvas.graphql is not None:
            self.canvas.graphql.close()
        if self.options.udw_db is not None and self.options.drop_udw_on_close:
            from sandbox.udw import drop_udw

            drop_udw(self.options.udw_db)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def outage(self, seconds: float | None = None, hosts: Sequence[str] | None = None,
               mode: OutageMode | str | None = None) -> None:
        """Take `hosts` (None = every server) down together for `seconds` from now."""
        windows = {id(server.outages): server.outages for server in self._hosts(hosts)}
        for window in windows.values():
            window.begin(seconds, mode)

    def next_day(self, changes: DayChanges | None = None) -> University:
        """Canvas and its gateway a day later: the university moved by `sandbox.next_day.next_day`, the throttle
        buckets empty (request_throttle/increment_bucket.lua: Redis expires a bucket an hour after its last
        write), every gateway token expired (they live an hour), and the UDW, if any, reloaded with the day's
        `canvasdatadate`. Other simulators keep serving what they served (the day changes none of their data)."""
        if self.canvas is None or self.gateway is None:
            raise RuntimeError("start the sandbox before moving it to the next day")
        self.university = next_day(self.university, changes)
        self.canvas.set_university(self.university)
        for name in ("canvas", "gateway"):
            self.servers[name].throttle.reset()
        self.gateway.tokens.expire_all()
        if self.options.udw_db is not None:
            from sandbox.udw import load_udw  # psycopg2 only when a UDW is asked for

            load_udw(self.university, self.options.udw_db, create_database=False, lag=self.options.udw_lag)
        return self.university

    def take_answers(self) -> list[Answer]:
        """The answers recorded since the last call (SandboxOptions.journal), oldest first."""
        if self.journal is None:
            raise RuntimeError("the sandbox records answers only with SandboxOptions(journal=True)")
        return self.journal.take()

    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def stats(self) -> dict[str, Any]:
        """Each server's snapshot plus totals across servers."""
        per_server = {name: server.stats.snapshot() for name, server in self.servers.items()}
        totals = {key: sum(s[key] for s in per_server.values())
                  for key in ("requests", "throttled", "handler_errors", "records")}
        totals["charged_cost_s"] = round(sum(s["charged_cost_s"] for s in per_server.values()), 6)
        totals["faults"] = sum(sum(s["faults"].values()) for s in per_server.values())
        totals["outage_failures"] = sum(s["outage_failures"] for s in per_server.values())
        return {"servers": per_server, "totals": totals}

    # ---- internals ----
    def _hosts(self, hosts: Sequence[str] | None) -> list[SimServer]:
        unknown = sorted(set(hosts or ()) - set(self.servers))
        if unknown:
            raise ValueError(f"unknown sandbox hosts {unknown}; running: {sorted(self.servers)}")
        return [self.servers[name] for name in (self.servers if hosts is None else hosts)]

    def _schedule_outage(self) -> None:
        # One window for every host it names, so they go down together after the N-th request any of them gets.
        if self.options.outage.after_requests is None:
            return
        window = OutageWindow(self.options.outage, self.options.seed)
        for server in self._hosts(self.options.outage_hosts):
            server.share_outages(window)

    def _server_options(self, index: int, throttled: bool) -> ServerOptions:
        o = self.options
        return ServerOptions(host=o.host, port=o.port_base + index if o.port_base else 0, latency_ms=o.latency_ms,
                             jitter_ms=o.jitter_ms, seed=o.seed + index, faults=o.faults, cost=o.cost,
                             throttle=o.throttle if throttled else replace(o.throttle, enabled=False))

    def _start_services(self) -> dict[str, Any]:
        available = registered_services()
        wanted = list(available) if self.options.services is None else list(self.options.services)
        unknown = [name for name in wanted if name not in available]
        if unknown:
            raise ValueError(f"unknown sandbox services {unknown}; registered: {sorted(available)}")
        merged: dict[str, Any] = {}
        config_dir = self.options.env_file.parent if self.options.env_file else None
        for index, name in enumerate(wanted, start=2):
            service_options = {
                "server_options": self._server_options(index, throttled=False), "seed": self.options.seed,
                "config_dir": config_dir, "lti_consumer_key": self.options.canvas.lti_consumer_key,
                "lti_shared_secret": self.options.canvas.lti_shared_secret,
                **self.options.service_options.get(name, {}),
            }
            server, config = available[name](self.university, service_options)
            self.servers[name] = server
            merged = deep_merge(merged, config)
            logger.info("sandbox service %s at %s", name, server.url)
        return merged

    def _start_canvas(self, service_config: Mapping[str, Any]) -> None:
        app, rest = build_canvas_app(self.university, self.options.canvas)
        self.canvas = rest
        if self.options.graphql_processes and rest.graphql is not None:
            rest.graphql.use_workers(self.options.graphql_processes, journal_parts=self.options.journal)
        zoom_url = service_config.get("ZOOM", {}).get("BASE_URL")
        if zoom_url:
            rest.zoom_base_url = zoom_url
        self.servers["canvas"] = SimServer(app, name="canvas", options=self._server_options(0, True)).start()
        gateway_app, self.gateway = build_gateway_app(rest, self.options.gateway)
        self.servers["gateway"] = SimServer(gateway_app, name="gateway",
                                            options=self._server_options(1, True)).start()
        for name in ("canvas", "gateway"):
            self.servers[name].journal = self.journal

    def _build_config(self, service_config: Mapping[str, Any]) -> dict[str, Any]:
        o = self.options
        template = dict(hjson.loads(o.env_template.read_text(encoding="utf-8")))
        term_ids = list(o.term_ids) if o.term_ids is not None else default_term_ids(self.university)
        canvas = {
            "CANVAS_ACCOUNT_ID": self.university.root_account_id, "CANVAS_TERM_IDS": term_ids,
            "API_BASE_URL": self.servers["gateway"].url, "API_SCOPE_PREFIX": o.gateway.scope_prefix,
            "API_SUBSCRIPTION_NAME": o.gateway.scope, "API_CLIENT_ID": o.gateway.client_id,
            "API_CLIENT_SECRET": o.gateway.client_secret, "CANVAS_URL": self.servers["canvas"].url,
            "CANVAS_TOKEN": sorted(o.canvas.tokens)[0],
        }
        config = deep_merge(template, {"CANVAS": canvas})
        if self.canvas is not None:
            config = deep_merge(config, {"ZOOM": {"BASE_URL": self.canvas.zoom_base_url}})
        config = deep_merge(config, service_config)
        if o.udw_db is not None:
            config["UDW"] = _db_config(o.udw_db)
        else:                                  # no warehouse: COURSE_INVENTORY takes SIS ids from Canvas
            config.pop("UDW", None)
        if o.inventory_db is not None:
            config["INVENTORY_DB"] = _db_config(o.inventory_db)
        return config

    def _write_env_file(self, path: Path) -> None:
        # The file holds (sandbox) secrets: create it readable by its owner only.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            if path.suffix != ".json":
                handle.write("// Generated by sandbox.runner: every service points at a local simulator.\n")
            json.dump(self.config, handle, indent=2, default=str)
            handle.write("\n")
        logger.info("sandbox configuration written to %s", path)
