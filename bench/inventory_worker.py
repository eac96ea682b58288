"""One measured COURSE_INVENTORY run in its own process (so its peak memory is the job's alone).

Usage: python -m bench.inventory_worker ENV_FILE WORKERS [reuse|full]  -> prints one JSON object of measurements.
`reuse` (the default) keeps the stored published dates of courses available then and now, as the job does with
REUSE_PUBLISHED_DATES; `full` looks every one up (run_jobs.py --full-lookup).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import pandas as pd
import sqlalchemy as sa

import environ
from bench.forecast_journal import ForecastJournal
from bench.host import cpu_times, stolen_share
from clients.canvas import CanvasClient
from clients.udw import UdwClient
from course_inventory.collect import collect_canvas, collect_warehouse
from course_inventory.load import load_inventory
from course_inventory.settings import settings_from_env
from course_inventory.transform import build_frames, warehouse_time
from db.engine import create_inventory_engine
from db.loader import append_rows
from log_setup import configure_logging
from run_jobs import settle_heap

LEAK_PER_SECOND = 10.0  # Canvas's default outflow


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def compare_enrollment_load(engine: sa.Engine, enrollment: pd.DataFrame) -> dict[str, float]:
    """The loader's INSERT path vs MariaDB's own LOAD DATA LOCAL INFILE, same rows, same scratch table."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS enrollment_bench")
        conn.exec_driver_sql("CREATE TABLE enrollment_bench LIKE enrollment")  # no foreign keys: pure load speed
    started = time.monotonic()
    append_rows(engine, "enrollment_bench", enrollment)
    loader_s = time.monotonic() - started
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM enrollment_bench")
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as handle:
        enrollment.to_csv(handle, index=False, header=False, na_rep="\\N")
        path = handle.name
    started = time.monotonic()
    with engine.begin() as conn:
        columns = ", ".join(f"`{c}`" for c in enrollment.columns)
        conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE enrollment_bench "
                             f"FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ({columns})")
    load_data_s = time.monotonic() - started
    Path(path).unlink()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE enrollment_bench")
    rows = len(enrollment)
    return {"rows": rows, "loader_s": loader_s, "load_data_s": load_data_s,
            "loader_rows_per_s": rows / loader_s, "load_data_rows_per_s": rows / load_data_s,
            "ratio": load_data_s / loader_s}


class GcPauses:
    """Counts the garbage collector's pauses of this process (they stall every request thread at once)."""

    def __init__(self) -> None:
        self.count, self.seconds, self.longest, self._started = 0, 0.0, 0.0, 0.0
        self.full_passes, self.full_seconds = 0, 0.0   # generation 2: these scale with the heap

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.count, self.seconds, self.longest = self.count + 1, self.seconds + pause, max(self.longest, pause)
        if info.get("generation") == 2:
            self.full_passes, self.full_seconds = self.full_passes + 1, self.full_seconds + pause

    def summary(self) -> dict[str, float]:
        return {"count": self.count, "total_s": self.seconds, "longest_s": self.longest,
                "full_passes": self.full_passes, "full_s": self.full_seconds}


class LimiterTimeline:
    """Samples the Canvas limiter and the client's counters every `interval` seconds while the job runs."""

    def __init__(self, canvas: CanvasClient, interval: float = 1.0) -> None:
        self.canvas, self.interval = canvas, interval
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)

    def __enter__(self) -> LimiterTimeline:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        limiter, started = self.canvas.canvas_limiter, time.monotonic()
        last = (started, self.canvas.stats.snapshot())
        while not self._stop.wait(self.interval):
            now, snap = time.monotonic(), self.canvas.stats.snapshot()
            elapsed = now - last[0]
            self.rows.append({
                "t_s": now - started, "rate": limiter.rate, "limit": limiter.limit, "in_flight": limiter.in_flight,
                "waiting": limiter.waiting, "forecast_margin": limiter.forecast_margin,
                "remaining": limiter.remaining, "target": limiter.target, "up_front": limiter.up_front,
                "headroom_sigmas": limiter.headroom_sigmas,
                "requests_per_s": (snap.total_requests - last[1].total_requests) / elapsed,
                "cost_per_s": (snap.cost - last[1].cost) / elapsed, "refused": snap.throttled - last[1].throttled,
            })
            last = (now, snap)


def main(env_file: str, workers: int, mode: str = "reuse") -> dict:
    configure_logging("WARNING")
    overrides = {"NUM_ASYNC_WORKERS": str(workers), "REUSE_PUBLISHED_DATES": str(mode == "reuse").lower()}
    env = environ.load_env(Path(env_file), environ.SCHEMA_PATH, overrides)
    settings = settings_from_env(env)
    engine = create_inventory_engine(settings.inventory_db)
    udw = UdwClient(settings.udw) if settings.udw else None
    result: dict = {"workers": workers, "published_dates": mode}
    settle_heap()  # as run_jobs.py does before each job
    # The job's own steps (course_inventory.inventory wires the same ones), each measured on its own.
    with CanvasClient(settings.canvas) as canvas, LimiterTimeline(canvas) as timeline, GcPauses() as pauses:
        journal = ForecastJournal(canvas.canvas_limiter)
        started, cpu_started, host_started = time.monotonic(), time.process_time(), cpu_times()
        raw = collect_canvas(settings, canvas, engine)
        api_s, api_cpu_s = time.monotonic() - started, time.process_time() - cpu_started
        host_stolen = stolen_share(host_started, cpu_times())
        stats = canvas.stats.snapshot()
        peak_in_flight = canvas.canvas_limiter.peak_in_flight
    peaks = {"collect": peak_rss_mb()}
    started = time.monotonic()
    warehouse = collect_warehouse(raw, udw, settings.sis_ids_from)
    frames = build_frames(raw, warehouse.section_sis_ids)
    if udw is not None:
        warehouse_time(warehouse.canvasdatadate)
    transform_s = time.monotonic() - started
    peaks["transform"] = peak_rss_mb()
    started = time.monotonic()
    counts = load_inventory(engine, frames, None)
    load_s = time.monotonic() - started
    peaks["load"] = peak_rss_mb()
    result.update({
        "api_wall_s": api_s, "transform_and_udw_s": transform_s, "load_s": load_s,
        "phases": {name: {"start_s": a, "end_s": b, "items": n} for name, (a, b, n) in raw.phases.relative().items()},
        "requests": dict(stats.requests), "total_requests": stats.total_requests,
        "requests_per_s": stats.total_requests / api_s, "charged_cost": stats.cost, "api_cpu_s": api_cpu_s,
        "throttle_utilisation": stats.cost / (api_s * LEAK_PER_SECOND),
        "throttled": stats.throttled, "retries": stats.retries,
        "throttled_share": stats.throttled / max(stats.total_requests, 1),
        "reused_published_dates": raw.reused_published,
        "early_activity": raw.early_activity,
        "peak_canvas_in_flight": peak_in_flight,
        "gc_pauses": pauses.summary(),
        "rows": counts, "rows_loaded_per_s": sum(counts.values()) / load_s,
        "enrollment_load": compare_enrollment_load(engine, frames["enrollment"]),
        "timeline": timeline.rows,
        "host_cpu_stolen": host_stolen,
        "forecast_journal": journal.as_dict(),
    })
    del raw, frames
    result["peak_rss_mb"] = peak_rss_mb()
    result["peak_rss_mb_by_step"] = peaks
    engine.dispose()
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4])))
