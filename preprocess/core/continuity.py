"""Whether an EDF+C/BDF+C file's data records really follow each other without gaps.

An EDF+ file states in its header whether it is continuous (``EDF+C``) or not (``EDF+D``), and
every data record starts with a time-keeping annotation: its onset in seconds from the file
start. A writer that declares ``EDF+C`` but leaves an hour between two records makes a reader
that trusts the header put every later epoch an hour off the clock. :func:`first_gap` reads
the onsets (only the annotation bytes of each record, through a memory map) and finds the first
record that does not start where the one before ended.

Decision: such a file is **refused** like an EDF+D (``EdfReader`` raises ``EdfError`` with the
record, the time and the size of the gap), not split: a split would make two recordings out of
one input, and every output of a night (statistics, time in bed, lights) assumes one piece.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

CONTIGUITY_TOLERANCE_S = 0.01
"""A record onset further than this from the end of the record before (s) is a gap: above the
rounding of onsets written with 2 decimals, below one sample at 100 Hz."""
_ONSET = re.compile(rb"^([+-]\d+(?:\.\d*)?)\x14")
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


def record_onsets(path: Path, header_bytes: int, labels: list[str], samples_per_record: list[int],
                  n_records: int, bdf: bool = False) -> np.ndarray | None:
    """Onset (s) of each data record from its first time-keeping annotation, or None.

    None when the file has no annotation signal (plain EDF: continuous by definition) or an
    onset cannot be parsed (a malformed annotation is not taken as proof of a gap).
    """
    try:
        k = next(i for i, lab in enumerate(labels) if lab.strip() in _ANNOTATION_LABELS)
    except StopIteration:
        return None
    width = 3 if bdf else 2
    record_bytes = sum(samples_per_record) * width
    start = sum(samples_per_record[:k]) * width
    size = samples_per_record[k] * width
    if n_records <= 0 or record_bytes <= 0 or size <= 0:
        return None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=header_bytes, shape=(n_records, record_bytes))
    onsets = np.empty(n_records)
    for r in range(n_records):
        m = _ONSET.match(bytes(data[r, start:start + size]))
        if m is None:
            return None
        onsets[r] = float(m.group(1))
    return onsets


def first_gap(onsets: np.ndarray, record_duration: float,
              tolerance: float = CONTIGUITY_TOLERANCE_S) -> tuple[int, float] | None:
    """``(record index, gap in s)`` of the first record not starting where the previous one ended.

    A negative gap is an overlap (a record starting before the previous one ended).

    >>> first_gap(np.array([0.0, 30.0, 3660.0, 3690.0]), 30.0)
    (2, 3600.0)
    >>> first_gap(np.array([0.0, 1.0, 2.0]), 1.0) is None
    True
    """
    if onsets is None or len(onsets) < 2:
        return None
    step = np.diff(onsets) - record_duration
    bad = np.flatnonzero(np.abs(step) > tolerance)
    if bad.size == 0:
        return None
    return int(bad[0] + 1), float(step[bad[0]])


def describe_gap(variant: str, gap: tuple[int, float], onsets: np.ndarray) -> str:
    """The one-line refusal of a file declared continuous whose records are not."""
    r, seconds = gap
    how = f"{seconds:g} s after the end of record {r - 1}" if seconds > 0 else \
        f"{-seconds:g} s before the end of record {r - 1} (overlap)"
    return (f"{variant} (continuous) in the header, but its data records are not contiguous: record {r} starts at "
            f"{onsets[r]:g} s, {how}; a recording with gaps is not supported (EDF+D)")


__all__ = ["CONTIGUITY_TOLERANCE_S", "describe_gap", "first_gap", "record_onsets"]
