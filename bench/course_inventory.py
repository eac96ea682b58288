"""Benchmark COURSE_INVENTORY against the sandbox: throttle use, phase overlap, load speed, memory.

    python -m bench.course_inventory --scale medium --latency-ms 50 --workers 32 [--timeline]
    python -m bench.course_inventory --throttle-hwm 300 --throttle-up-front 100   # a stricter Canvas
    python -m bench.course_inventory --second-day [--full-lookup]   # two runs, a day's changes in between

Starts `python -m sandbox serve` (Canvas + gateway with Canvas's default throttle) in one process, runs the
job in another (bench/inventory_worker.py, so peak memory is the job's own), prints a report and writes it to
bench/results/. Databases are throwaway and dropped at the end. `--second-day`: bench/second_day.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hjson

from db.availability import ensure_database
from db.schema_migrations import apply_migrations
from sandbox.databases import MYSQL, POSTGRES, drop_mysql_database, drop_pg_database
from sandbox.throttle import ThrottleOptions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def all_term_ids(scale: str, seed: int) -> list[int]:
    from sandbox.generator import generate_university

    return [term.id for term in generate_university(scale, seed).terms]


def start_sandbox(args: argparse.Namespace, env_file: Path, udw: str, inventory: str,
                  term_ids: list[int], journal_dir: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "sandbox", "serve", "--scale", args.scale, "--seed", str(args.seed),
               "--latency-ms", str(args.latency_ms), *sandbox_flags(args),
               "--services", "--env-file", str(env_file), "--udw-dbname", udw, "--inventory-dbname", inventory,
               "--term-ids", *map(str, term_ids), "--log-level", "WARNING"]
    if journal_dir is not None:
        command += ["--journal-dir", str(journal_dir)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if wait_for_line(process, "Serving") is None:   # printed once everything is up
        process.terminate()
        raise SystemExit("the sandbox did not start")
    return process


def wait_for_line(process: subprocess.Popen, start: str, timeout: float = 300) -> str | None:
    """The sandbox's next output line containing `start` (None if it ends or takes longer than `timeout`)."""
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if start in line:
            return line.strip()
        if time.monotonic() > deadline:
            break
    return None


def run_worker(env_file: Path, workers: int, mode: str = "reuse") -> dict | None:
    """One measured job run (bench/inventory_worker.py); None after printing its error output."""
    worker = subprocess.run([sys.executable, "-m", "bench.inventory_worker", str(env_file), str(workers), mode],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    if worker.returncode != 0:
        print(worker.stderr, file=sys.stderr)
        return None
    return json.loads(worker.stdout.strip().splitlines()[-1])


def sandbox_flags(args: argparse.Namespace) -> list[str]:
    """The sandbox options this benchmark passes through (python -m sandbox serve --help)."""
    flags = ["--throttle-status", str(args.throttle_status), "--throttle-hwm", str(args.throttle_hwm),
             "--throttle-outflow", str(args.throttle_outflow), "--throttle-up-front", str(args.throttle_up_front),
             "--throttle-maximum", str(args.throttle_maximum), "--roster-churn", str(args.roster_churn)]
    if args.outage_after_requests is not None:
        flags += ["--outage-after-requests", str(args.outage_after_requests), "--outage-seconds",
                  str(args.outage_seconds)]
        if args.outage_hosts:
            flags += ["--outage-hosts", *args.outage_hosts]
    return flags


def add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    throttle = ThrottleOptions()
    parser.add_argument("--throttle-status", type=int, choices=(403, 429), default=throttle.status)
    parser.add_argument("--throttle-hwm", type=float, default=throttle.hwm, help="Canvas bucket high-water mark")
    parser.add_argument("--throttle-outflow", type=float, default=throttle.leak, help="leak rate, units/s")
    parser.add_argument("--throttle-up-front", type=float, default=throttle.up_front,
                        help="cost reserved per request in flight")
    parser.add_argument("--throttle-maximum", type=float, default=throttle.maximum, help="bucket maximum")
    parser.add_argument("--roster-churn", type=float, default=0.0, help="see python -m sandbox serve --help")
    parser.add_argument("--outage-after-requests", type=int, default=None,
                        help="take the outage hosts down after this many requests")
    parser.add_argument("--outage-seconds", type=float, default=30.0, help="length of that outage")
    parser.add_argument("--outage-hosts", nargs="+", default=None, help="e.g. canvas gateway (default: all)")


def settings_text(args: argparse.Namespace) -> str:
    return (f"throttle={args.throttle_status} hwm={args.throttle_hwm:g} outflow={args.throttle_outflow:g} "
            f"up-front={args.throttle_up_front:g} maximum={args.throttle_maximum:g} roster-churn={args.roster_churn:g}")


def with_server(result: dict, server: dict | None, args: argparse.Namespace) -> dict:
    """The worker's result plus the simulator's view; utilisation against the outflow this run used."""
    if server is not None:
        result["server"] = server
    result["throttle_utilisation"] = result["charged_cost"] / (result["api_wall_s"] * args.throttle_outflow)
    return result


@dataclass
class BenchSandbox:
    env_file: Path
    inventory_db: dict[str, str]
    process: subprocess.Popen | None = None
    server: dict | None = None                 # the Canvas server's statistics, once stopped


@contextmanager
def bench_sandbox(args: argparse.Namespace, journal_dir: Path | None = None) -> Iterator[BenchSandbox]:
    """Throwaway databases and `python -m sandbox serve` for the whole benchmark; all gone afterwards."""
    suffix = uuid.uuid4().hex[:8]
    udw, inventory = f"bench_udw_{suffix}", f"bench_inventory_{suffix}"
    box = BenchSandbox(Path(), {**MYSQL, "dbname": inventory})
    ensure_database(box.inventory_db)
    apply_migrations(box.inventory_db)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            box.env_file = Path(directory) / "env.hjson"
            box.process = start_sandbox(args, box.env_file, udw, inventory, all_term_ids(args.scale, args.seed),
                                        journal_dir)
            hjson.loads(box.env_file.read_text())  # written and parseable
            yield box
    finally:
        box.server = stop_sandbox(box.process) if box.process is not None else None
        drop_mysql_database(box.inventory_db)
        drop_pg_database({**POSTGRES, "dbname": udw})


def save(name: str, payload: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(payload, indent=2,
                                                                                      default=str))


def stop_sandbox(process: subprocess.Popen) -> dict | None:
    """Stop the sandbox; its Canvas server's statistics (printed as JSON on the way out), if readable."""
    process.terminate()
    output, _ = process.communicate(timeout=60)
    try:
        return json.loads(output[output.index("{"):])["servers"]["canvas"]
    except (ValueError, KeyError):
        return None


def report(result: dict, args: argparse.Namespace) -> str:
    lines = [f"COURSE_INVENTORY benchmark: scale={args.scale} latency={args.latency_ms}ms "
             f"workers(ceiling)={result['workers']} {settings_text(args)}",
             f"  API phase wall time       {result['api_wall_s']:8.1f} s",
             "  phases (start..end s, items):"]
    for name, span in sorted(result["phases"].items(), key=lambda item: item[1]["start_s"]):
        lines.append(f"    {name:<16} {span['start_s']:7.1f} .. {span['end_s']:7.1f}   {span['items']}")
    lines += [
        f"  transform + UDW           {result['transform_and_udw_s']:8.1f} s",
        f"  load (6 tables, 1 txn)    {result['load_s']:8.1f} s   {result['rows_loaded_per_s']:,.0f} rows/s",
        f"  total                     {result['api_wall_s'] + result['transform_and_udw_s'] + result['load_s']:8.1f} s",
        f"  requests                  {result['total_requests']:8d}   {result['requests_per_s']:.1f}/s  "
        f"{json.dumps(result['requests'])}",
        f"  charged cost              {result['charged_cost']:8.1f} s (throttle-bound minimum "
        f"{result['charged_cost'] / args.throttle_outflow:.1f} s)",
        f"  throttle utilisation      {result['throttle_utilisation']:8.2f}",
        f"  throttled refusals        {result['throttled']:8d}   ({100 * result['throttled_share']:.2f} % of requests)",
        f"  retries                   {result['retries']:8d}",
        f"  host CPU stolen           {100 * (result.get('host_cpu_stolen') or 0.0):8.1f} % (hypervisor; figures "
        "above a few per cent say more about the host than the job)",
        *server_lines(result.get("server")),
        f"  peak Canvas in flight     {result['peak_canvas_in_flight']:8d}",
        f"  job CPU (API phase)       {result['api_cpu_s']:8.1f} s   "
        f"({result['api_cpu_s'] / result['api_wall_s']:.2f} of a core, "
        f"{1000 * result['api_cpu_s'] / max(result['total_requests'], 1):.1f} ms per request)",
        f"  job GC pauses (API phase) {result['gc_pauses']['count']:8d}   "
        f"total {result['gc_pauses']['total_s']:.2f} s, longest {1000 * result['gc_pauses']['longest_s']:.0f} ms; "
        f"{result['gc_pauses']['full_passes']} full passes, {result['gc_pauses']['full_s']:.2f} s",
        f"  rows                      {json.dumps(result['rows'])}",
        f"  enrollment load           loader {result['enrollment_load']['loader_rows_per_s']:,.0f} rows/s vs "
        f"LOAD DATA {result['enrollment_load']['load_data_rows_per_s']:,.0f} rows/s "
        f"(ratio {result['enrollment_load']['ratio']:.2f}, target >= 0.5)",
        f"  peak memory (job process) {result['peak_rss_mb']:8.0f} MB   (peak by the end of: "
        + ", ".join(f"{step} {mb:.0f}" for step, mb in result["peak_rss_mb_by_step"].items()) + ")",
    ]
    if args.timeline:
        lines.append("  Canvas limiter each second: t, start rate/s, cap, in flight, smoothed remaining -> setpoint, "
                     "requests/s, cost/s, refusals, learned up-front cost, margin (sigmas)")
        lines += [f"    {row['t_s']:5.1f} {row['rate'] or 0:6.1f} {row['limit']:3d} {row['in_flight']:3d} "
                  f"{row['remaining'] or 0:6.0f} -> {row['target']:4.0f} {row['requests_per_s']:6.1f} "
                  f"{row['cost_per_s']:5.2f} {row['refused']:3d} {row['up_front']:5.1f} {row['headroom_sigmas']:4.2f}"
                  for row in result["timeline"]]
    return "\n".join(lines)


def server_lines(server: dict | None) -> list[str]:
    """The Canvas simulator's own view: how far behind its cost model its responses left."""
    if not server:
        return []
    served = max(server["requests"] - server["throttled"], 1)
    return [f"  server: responses late vs model  mean {1000 * server['late_s'] / served:.1f} ms, "
            f"max {1000 * server['late_max_s']:.0f} ms, {server['late_10ms'] / served:.1%} >= 10 ms "
            "(simulator busy; the throttle is moved at modelled instants)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=16, help="NUM_ASYNC_WORKERS (the concurrency ceiling)")
    add_sandbox_arguments(parser)
    parser.add_argument("--timeline", action="store_true", help="print the Canvas limiter's state each second")
    parser.add_argument("--second-day", action="store_true",
                        help="run the job twice with a day's changes in between (bench/second_day.py)")
    parser.add_argument("--full-lookup", action="store_true",
                        help="with --second-day: the second run looks every published date up")
    args = parser.parse_args(argv)
    if args.second_day:
        from bench.second_day import run_two_days

        return run_two_days(args)
    with bench_sandbox(args) as box:
        result = run_worker(box.env_file, args.workers)
    if result is None:
        return 1
    result = with_server(result, box.server, args)
    print(report(result, args))
    save(f"course_inventory-{args.scale}", {**vars(args), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
