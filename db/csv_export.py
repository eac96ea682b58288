"""CSV copies of loaded tables (CREATE_CSVS), written atomically so a reader never sees half a file."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def write_csvs(frames: Mapping[str, pd.DataFrame], directory: Path = DATA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table, df in frames.items():
        target = directory / f"{table}.csv"
        handle, temporary = tempfile.mkstemp(prefix=f".{table}.", suffix=".csv", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
                df.to_csv(stream, index=False)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    logger.info("wrote %d CSV file(s) to %s", len(written), directory)
    return written
