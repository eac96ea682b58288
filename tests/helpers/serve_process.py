"""`python -m sandbox serve` in a child process for a test: started, read line by line, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sandbox.runner import ROOT


@contextmanager
def serve_process(*arguments: str) -> Iterator[subprocess.Popen]:
    """The running `serve` command (text pipes for stdout and stderr); killed on the way out if still running."""
    command = [sys.executable, "-m", "sandbox", "serve", *arguments]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()


def lines_until(process: subprocess.Popen, start: str) -> list[str]:
    """Standard output lines up to and including the first that starts with `start`."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(start):
            return lines
    raise AssertionError(f"the sandbox ended before printing {start!r}: {lines}")


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM, then the rest of standard output and standard error once the process has ended."""
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=20)
