"""`run_jobs.py --check-config`: the configuration is valid, the database answers, every source of the selected
jobs answers once. Prints one line per check (`ok` and a detail, or `FAILED` and the reason, never a secret) and
writes nothing anywhere; migrations are listed, not applied."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import environ
from log_setup import Redactor
from runner import probes
from vocab import ConfigError, EtlError, ValidJobName

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 2
# The sources each job reads, in the order they are probed; a source shared by jobs is probed once.
SOURCES_BY_JOB: Mapping[ValidJobName, Sequence[str]] = {
    ValidJobName.COURSE_INVENTORY: ("gateway token", "Canvas token", "UDW"),
    ValidJobName.MIVIDEO: ("Kaltura session", "BigQuery credentials"),
    ValidJobName.CANVAS_ZOOM_MEETINGS: ("Canvas token", "Zoom base URL"),
}


def sources_for(jobs: Sequence[str]) -> list[str]:
    """Every source the jobs (by name; a job that is not built in reads none we know) read, each once, in job
    order (pure)."""
    ordered: list[str] = []
    for job in jobs:
        known = ValidJobName.__members__.get(job)
        ordered += [source for source in SOURCES_BY_JOB.get(known, ()) if source not in ordered]
    return ordered


def _probes(env: Mapping[str, Any], config_dir: Path) -> dict[str, Callable[[], str]]:
    return {
        "gateway token": lambda: probes.gateway_token(env),
        "Canvas token": lambda: probes.canvas_token(env),
        "UDW": lambda: probes.udw(env),
        "Kaltura session": lambda: probes.kaltura_session(env, config_dir),
        "BigQuery credentials": lambda: probes.bigquery_dry_run(env, config_dir),
        "Zoom base URL": lambda: probes.zoom_base_url(env),
    }


def reason(exc: Exception) -> str:
    """One line: our own errors carry a safe message; anything else is named by its type and first line."""
    if isinstance(exc, EtlError):
        return " ".join(str(exc).split())
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _configuration(jobs: Sequence[str], unknown: Sequence[str]) -> str:
    if unknown:
        raise ConfigError(f"JOB_NAMES has unknown job name(s) {', '.join(unknown)}; a run skips them and exits 1")
    return f"valid; jobs {', '.join(jobs) or '(none)'}"


def check(env: Mapping[str, Any], jobs: Sequence[str], config_dir: Path, *, unknown: Sequence[str] = (),
          out: TextIO | None = None) -> int:
    out = out or sys.stdout
    redact = Redactor(environ.secret_values(env))
    checks: list[tuple[str, Callable[[], str]]] = [
        ("configuration", lambda: _configuration(jobs, unknown)),
        ("inventory database", lambda: probes.inventory_database(env))]
    available = _probes(env, config_dir)
    checks += [(source, available[source]) for source in sources_for(jobs)]
    failed = 0
    for label, probe in checks:
        try:
            line = f"{label:<22} ok: {probe()}"
        except Exception as exc:  # noqa: BLE001 - every failure is a finding to print, not a crash
            failed += 1
            line = f"{label:<22} FAILED: {reason(exc)}"
        print(redact(line), file=out, flush=True)  # noqa: T201 - command output
    print(f"{len(checks) - failed} of {len(checks)} checks passed", file=out)  # noqa: T201 - command output
    return EXIT_FAILED if failed else EXIT_OK
