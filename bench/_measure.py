"""Measurement helpers shared by the bench scripts (they run as ``python bench/NAME.py``, so this
folder is on ``sys.path``)."""

from __future__ import annotations

import csv
import resource
from pathlib import Path

import numpy as np

#: inference.py's stage names → the project's codes (W=0 N1=1 N2=2 N3=3 REM=4)
STAGE_CODES = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4, "R": 4}


def peak_rss_mb() -> float:
    """Peak resident set size of this process (MiB): ``VmHWM`` from /proc, else ``getrusage``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hypnogram_codes(path: Path) -> np.ndarray:
    """Stage codes, one per epoch, of an ``inference.py`` ``NAME.hypnogram.csv`` (−1 for a stage name
    not in :data:`STAGE_CODES`). The file starts with ``#`` comment lines, then the column header."""
    with open(path, newline="") as fh:
        rows = csv.DictReader(line for line in fh if line.strip() and not line.startswith("#"))
        return np.array([STAGE_CODES.get(r["stage"], -1) for r in rows], dtype=int)
