"""How much of the machine's CPU the host took during a measurement (Linux's /proc/stat `steal`).

On a virtual machine the hypervisor can run other guests on "our" cores; the guest sees that time as stolen. The
limiter's round trips and the simulator's deadlines both stretch then, and a benchmark's figures say more about the
host than about the job (README, "Benchmarks"), so each run reports the share.
"""

from __future__ import annotations

from pathlib import Path

PROC_STAT = Path("/proc/stat")


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) jiffies over all CPUs since boot; None where /proc/stat is not readable (not Linux)."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user already)
    values = [int(v) for v in fields[1:9]]
    return (values[7], sum(values)) if fields[0] == "cpu" and len(values) == 8 else None


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time the host took between two `cpu_times` readings (None if either is missing)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])
