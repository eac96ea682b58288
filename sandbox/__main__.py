"""Command line of the sandbox: `python -m sandbox {serve,describe,demo} --help`."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandbox.canvas_options import PERMISSIONS, CanvasOptions
from sandbox.faults import FaultKind, FaultOptions
from sandbox.gateway import GatewayOptions
from sandbox.httpserver import CostModel
from sandbox.journal import write_day
from sandbox.outages import OutageMode, OutageOptions
from sandbox.runner import ROOT, Sandbox, SandboxOptions
from sandbox.throttle import ThrottleOptions
from sandbox.udw_lag import UdwLag

logger = logging.getLogger("sandbox")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="Local simulators of Canvas, its API gateway, Kaltura, BigQuery "
                                                 "and Zoom, serving a seeded synthetic university.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the simulators and write a configuration file",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_sandbox_arguments(serve)
    serve.add_argument("--env-file", type=Path, default=ROOT / "config" / "secrets" / "sandbox.hjson",
                       help="where to write the configuration (every key of config/env_blank.hjson)")
    serve.add_argument("--udw-dbname", help="PostgreSQL database to (re)load the UDW into; omitted = no UDW")
    serve.add_argument("--inventory-dbname", help="MySQL/MariaDB database named as INVENTORY_DB in the env file")
    serve.add_argument("--journal-dir", type=Path,
                       help="record a digest of every Canvas and gateway answer and write DIR/day-N.json (answers "
                            "and server statistics) when the day changes and at exit; SIGUSR1 moves Canvas to the "
                            "next day (sandbox/next_day.py) with or without it")
    describe = commands.add_parser("describe", help="print the counts of a generated university",
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    describe.add_argument("--scale", default="small", help="generator preset (small, medium, ...)")
    describe.add_argument("--seed", type=int, default=42, help="generator seed")
    demo = commands.add_parser("demo", help="run run_jobs.py end to end against the simulators and throwaway "
                                            "databases, then print the statistics",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_sandbox_arguments(demo)
    demo.add_argument("--keep-databases", action="store_true", help="do not drop the throwaway databases")
    demo.add_argument("--no-udw", action="store_true", help="run without a UDW (section SIS ids from Canvas)")
    return parser


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", default="small", help="generator preset (small, medium, ...)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the university, latency jitter and faults")
    parser.add_argument("--host", default="127.0.0.1", help="interface the simulators listen on")
    parser.add_argument("--port-base", type=int, default=0,
                        help="first port (Canvas; gateway +1, other services +2...); 0 = any free ports")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="network latency per request (not charged)")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="extra random latency, uniform 0..jitter")
    parser.add_argument("--overhead-ms", type=float, default=40.0, help="server time per request (charged)")
    parser.add_argument("--per-record-ms", type=float, default=0.1, help="server time per record served (charged)")
    _add_fault_arguments(parser)
    _add_throttle_arguments(parser)
    _add_outage_arguments(parser)
    _add_canvas_arguments(parser)
    parser.add_argument("--term-ids", type=int, nargs="*", help="CANVAS_TERM_IDS (default: terms in session)")
    parser.add_argument("--services", nargs="*", help="other simulators to run (default: all registered)")
    _add_database_arguments(parser)
    parser.add_argument("--log-level", default="INFO", help="logging level")


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="total fault probability per request, spread evenly over the fault kinds")
    for kind in FaultKind:
        parser.add_argument(f"--fault-{kind.value.replace('_', '-')}", type=float, default=None, dest=kind.value,
                            help=f"probability of a '{kind.value}' fault (overrides the --fault-rate share)")
    parser.add_argument("--slow-seconds", type=float, default=30.0, help="delay of a 'slow' fault")
    parser.add_argument("--max-consecutive-faults", type=int, default=None,
                        help="force success after this many faults in a row on one logical request "
                             "(default: independent draws, as a real service fails)")


def _add_throttle_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ThrottleOptions()
    parser.add_argument("--throttle-status", type=int, choices=(403, 429), default=defaults.status,
                        help="status of a throttled Canvas/gateway request (Canvas's docs now say 429; "
                             "request_throttle.rb answers 403)")
    parser.add_argument("--throttle-hwm", type=float, default=defaults.hwm, help="throttle high-water mark")
    parser.add_argument("--throttle-outflow", type=float, default=defaults.leak,
                        help="throttle leak rate (units per second)")
    parser.add_argument("--throttle-up-front", type=float, default=defaults.up_front,
                        help="cost reserved by each request while it is in flight")
    parser.add_argument("--throttle-maximum", type=float, default=defaults.maximum,
                        help="most the bucket holds (remaining goes down to hwm - maximum)")
    parser.add_argument("--no-throttle", action="store_true", help="disable Canvas's leaky-bucket throttle")


def _add_outage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outage-after-requests", type=int, default=None,
                        help="take the outage hosts down once they have received this many requests")
    parser.add_argument("--outage-seconds", type=float, default=30.0, help="length of that outage")
    parser.add_argument("--outage-hosts", nargs="+", default=None,
                        help="servers the outage takes down together (default: all, e.g. canvas gateway)")
    parser.add_argument("--outage-mode", choices=[mode.value for mode in OutageMode], default=OutageMode.MIXED.value,
                        help="what requests get during it: a seeded mix of 502, 503 and dropped connections, "
                             "or one of them")


def _add_canvas_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="lifetime of gateway tokens, seconds")
    parser.add_argument("--gateway-rewrite-links", action="store_true",
                        help="the gateway rewrites Canvas's Link headers onto itself (default: Canvas-host links "
                             "passed on unchanged)")
    parser.add_argument("--audit-pagination", choices=("bookmark", "numbered"), default="bookmark",
                        help="page style of the course audit log")
    parser.add_argument("--roster-churn", type=float, default=0.0,
                        help="chance that a follow-up enrollmentsConnection page finds a returned row moved to "
                             "the end (unordered offset paging)")
    parser.add_argument("--graphql-processes", type=int, default=None,
                        help="run GraphQL queries in this many forked processes, so big pages do not hold up "
                             "the other answers (default: 2, or 0 = in-process with --roster-churn)")
    parser.add_argument("--token-permissions", nargs="*", default=None, choices=sorted(PERMISSIONS),
                        help="the only permissions Canvas grants the token (default: all)")
    parser.add_argument("--reusable-verifiers", action="store_true",
                        help="LTI launch verifiers work more than once (Canvas deletes them once used)")


def _add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--udw-lag-missing", type=_share, default=UdwLag().missing_share,
                        help="share of sections the UDW lacks (created since its last export)")
    parser.add_argument("--udw-lag-stale", type=_share, default=UdwLag().stale_share,
                        help="share of sections whose UDW row holds an older SIS id than Canvas")
    parser.add_argument("--pg-host", default="127.0.0.1", help="PostgreSQL host for the UDW")
    parser.add_argument("--pg-port", default="5432", help="PostgreSQL port")
    parser.add_argument("--pg-user", default="postgres", help="PostgreSQL user")
    parser.add_argument("--pg-password", default="", help="PostgreSQL password")
    parser.add_argument("--mysql-host", default="127.0.0.1", help="inventory MySQL/MariaDB host")
    parser.add_argument("--mysql-port", default="3306", help="inventory MySQL/MariaDB port")
    parser.add_argument("--mysql-user", default="root", help="inventory MySQL/MariaDB user")
    parser.add_argument("--mysql-password", default="", help="inventory MySQL/MariaDB password")


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _graphql_processes(args: argparse.Namespace) -> int:
    if args.graphql_processes is None:
        return 0 if args.roster_churn else 2
    if args.graphql_processes < 0 or (args.graphql_processes and args.roster_churn):
        raise ValueError("--graphql-processes must be >= 0, and 0 with --roster-churn (its state is per process)")
    return args.graphql_processes


def sandbox_options(args: argparse.Namespace, *, env_file: Path | None, udw_dbname: str | None,
                    inventory_dbname: str | None) -> SandboxOptions:
    pg = {"host": args.pg_host, "port": args.pg_port, "user": args.pg_user, "password": args.pg_password}
    mysql = {"host": args.mysql_host, "port": args.mysql_port, "user": args.mysql_user,
             "password": args.mysql_password}
    return SandboxOptions(
        seed=args.seed, host=args.host, port_base=args.port_base, latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms, faults=_fault_options(args), throttle=_throttle_options(args),
        cost=CostModel(overhead_ms=args.overhead_ms, per_record_ms=args.per_record_ms),
        canvas=CanvasOptions(seed=args.seed, audit_pagination=args.audit_pagination, roster_churn=args.roster_churn,
                             single_use_verifier=not args.reusable_verifiers,
                             token_permissions=None if args.token_permissions is None
                             else frozenset(args.token_permissions)),
        gateway=GatewayOptions(token_ttl=args.token_ttl, rewrite_links=args.gateway_rewrite_links),
        graphql_processes=_graphql_processes(args),
        services=tuple(args.services) if args.services is not None else None,
        term_ids=tuple(args.term_ids) if args.term_ids else None,
        udw_db={**pg, "dbname": udw_dbname} if udw_dbname else None,
        udw_lag=UdwLag(missing_share=args.udw_lag_missing, stale_share=args.udw_lag_stale, seed=args.seed),
        inventory_db={**mysql, "dbname": inventory_dbname} if inventory_dbname else None,
        env_file=env_file,
        outage=OutageOptions(after_requests=args.outage_after_requests, seconds=args.outage_seconds,
                             mode=OutageMode(args.outage_mode)),
        outage_hosts=tuple(args.outage_hosts) if args.outage_hosts else None,
    )


def _fault_options(args: argparse.Namespace) -> FaultOptions:
    overrides = {kind.value: getattr(args, kind.value) for kind in FaultKind if getattr(args, kind.value) is not None}
    return replace(FaultOptions.uniform(args.fault_rate, **overrides), slow_seconds=args.slow_seconds,
                   max_consecutive=args.max_consecutive_faults)


def _throttle_options(args: argparse.Namespace) -> ThrottleOptions:
    return ThrottleOptions(enabled=not args.no_throttle, status=args.throttle_status, hwm=args.throttle_hwm,
                           leak=args.throttle_outflow, up_front=args.throttle_up_front,
                           maximum=args.throttle_maximum)


def _university(scale: str, seed: int) -> Any:
    from sandbox.generator import generate_university

    return generate_university(scale, seed)


def serve(args: argparse.Namespace) -> int:
    options = replace(sandbox_options(args, env_file=args.env_file, udw_dbname=args.udw_dbname,
                                      inventory_dbname=args.inventory_dbname), journal=args.journal_dir is not None)
    wake, stop, days_asked = threading.Event(), threading.Event(), [0]

    def on_stop(*_: object) -> None:
        stop.set()
        wake.set()

    def on_next_day(*_: object) -> None:
        days_asked[0] += 1
        wake.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_stop)
    signal.signal(signal.SIGUSR1, on_next_day)
    with Sandbox(_university(args.scale, args.seed), options) as sandbox:
        for name, url in sandbox.urls().items():
            print(f"{name:>10}  {url}")
        print(f"  env file  {sandbox.env_file}")
        _settle_heap()
        print("Serving; Ctrl-C or SIGTERM to stop, SIGUSR1 for the next day.", flush=True)
        day, done = 1, 0
        while not stop.is_set():
            wake.wait()
            wake.clear()
            while done < days_asked[0] and not stop.is_set():
                done += 1
                day = _next_day(sandbox, args.journal_dir, day)
        _end_day(sandbox, args.journal_dir, day)
        print(json.dumps(sandbox.stats(), indent=2))
    return 0


def _end_day(sandbox: Sandbox, journal_dir: Path | None, day: int) -> None:
    """Write the day's answers and statistics (with a journal), then start the counters afresh."""
    if journal_dir is not None:
        journal_dir.mkdir(parents=True, exist_ok=True)
        write_day(journal_dir / f"day-{day}.json", day, sandbox.take_answers(), sandbox.stats())


def _next_day(sandbox: Sandbox, journal_dir: Path | None, day: int) -> int:
    _end_day(sandbox, journal_dir, day)
    university = sandbox.next_day()
    for server in sandbox.servers.values():
        server.stats.reset()
    changes = university.extras["day"]["changes"]
    print(f"Day {day + 1}: serving; " + ", ".join(f"{kind} {len(ids)}" for kind, ids in changes.items()),
          flush=True)
    return day + 1


def _settle_heap() -> None:
    # The generated university is millions of long-lived objects: exempt them from the collector, whose full
    # passes would otherwise freeze every handler thread for 100-300 ms and bunch up throttle reservations.
    gc.collect()
    gc.freeze()


def describe(args: argparse.Namespace) -> int:
    from sandbox.generator import describe as counts

    for name, value in counts(_university(args.scale, args.seed)).items():
        print(f"{name:>18}  {value}")
    return 0


def demo(args: argparse.Namespace) -> int:
    suffix = uuid.uuid4().hex[:10]
    udw_name = None if args.no_udw else f"sandbox_udw_{suffix}"
    inventory_name = f"sandbox_inventory_{suffix}"
    with tempfile.TemporaryDirectory(prefix="sandbox-demo-") as directory:
        env_file = Path(directory) / "env.hjson"
        options = replace(sandbox_options(args, env_file=env_file, udw_dbname=udw_name,
                                          inventory_dbname=inventory_name),
                          drop_udw_on_close=not args.keep_databases)
        with Sandbox(_university(args.scale, args.seed), options) as sandbox:
            print(f"simulators: {json.dumps(sandbox.urls())}", flush=True)
            _settle_heap()
            environment = {**os.environ, "ENV_DIR": directory, "ENV_FILE": env_file.name}
            started = time.monotonic()
            code = subprocess.call([sys.executable, str(ROOT / "run_jobs.py")], cwd=ROOT, env=environment)
            elapsed = time.monotonic() - started
            print(json.dumps(sandbox.stats()["totals"], indent=2))
            if options.inventory_db is not None:
                print(_summary(options.inventory_db, elapsed), flush=True)
        if not args.keep_databases and options.inventory_db is not None:
            _drop_mysql_database(options.inventory_db)
    print(f"run_jobs.py exited with {code}")
    return code


def _summary(params: Mapping[str, str], elapsed: float) -> str:
    """Rows per inventory table and the data_source_status rows the run recorded."""
    import pymysql

    connection = pymysql.connect(host=params["host"], port=int(params["port"]), user=params["user"],
                                 password=params["password"], database=params["dbname"])
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                       "AND table_name NOT LIKE %s AND table_name <> 'yoyo_lock' ORDER BY table_name", ("\\_yoyo%",))
        tables = [row[0] for row in cursor.fetchall()]
        counts = []
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`")   # names from information_schema
            counts.append((table, cursor.fetchone()[0]))
        cursor.execute("SELECT j.job_name, s.data_source_name, s.data_updated_at FROM data_source_status s "
                       "JOIN job_run j ON j.id = s.job_run_id ORDER BY s.id")
        statuses = cursor.fetchall()
    lines = ["", f"demo: run_jobs.py took {elapsed:.1f}s", "rows per table:"]
    lines += [f"  {table:<30} {count:>8}" for table, count in counts]
    lines.append("data_source_status:")
    lines += [f"  {job:<22} {source:<28} {updated:%Y-%m-%d %H:%M:%S} UTC" for job, source, updated in statuses]
    return "\n".join(lines)


def _drop_mysql_database(params: dict[str, str] | Any) -> None:
    import pymysql

    connection = pymysql.connect(host=params["host"], port=int(params["port"]), user=params["user"],
                                 password=params["password"], autocommit=True)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{params['dbname']}`")   # name generated above


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "udw_lag_missing", 0.0) + getattr(args, "udw_lag_stale", 0.0) > 1.0:
        parser.error("--udw-lag-missing + --udw-lag-stale must not exceed 1")
    if args.command in ("serve", "demo"):
        try:                                   # refuse an option value the simulators reject, in one line
            sandbox_options(args, env_file=None, udw_dbname=None, inventory_dbname=None)
        except ValueError as error:
            parser.error(str(error))
    logging.basicConfig(level=getattr(args, "log_level", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = {"serve": serve, "describe": describe, "demo": demo}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
