"""The Docker build context as Docker computes it: .dockerignore read and applied by the `docker` package's own
implementation of Docker's rules (docker.utils.build.exclude_paths), not by matching written here."""

from __future__ import annotations

from pathlib import Path

from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parents[2]


def dockerignore_patterns(path: Path = ROOT / ".dockerignore") -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_files(root: Path, patterns: list[str]) -> set[str]:
    """Paths (relative, /-separated) of the regular files `docker build` would send from `root`."""
    return {path for path in exclude_paths(str(root), patterns) if (root / path).is_file()}
