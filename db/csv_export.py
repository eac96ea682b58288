"""CSV copies of loaded tables (CREATE_CSVS), written atomically so a reader never sees half a file.

A directory that is full, read-only or missing fails the job with one line (LoadError); the previous copy of
each file stays as it was. Files are readable by the owner's group (mkstemp alone would make them 0600).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from app_paths import default_data_dir
from vocab import LoadError

logger = logging.getLogger(__name__)

DATA_DIR = default_data_dir()          # the checkout's data/, or ./data when installed as a package
FILE_MODE = 0o640


def _write_one(df: pd.DataFrame, table: str, directory: Path) -> Path:
    target = directory / f"{table}.csv"
    handle, temporary = tempfile.mkstemp(prefix=f".{table}.", suffix=".csv", dir=directory)
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            df.to_csv(stream, index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def write_csvs(frames: Mapping[str, pd.DataFrame], directory: Path = DATA_DIR) -> list[Path]:
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for table, df in frames.items():
            written.append(_write_one(df, table, directory))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LoadError(f"cannot write CSV copies into {directory}: {reason} ({len(written)} of {len(frames)} "
                        "written; earlier copies of the others kept)") from None
    logger.info("wrote %d CSV file(s) to %s", len(written), directory)
    return written
