"""Per-epoch text scorings: one token per epoch (ISRUC, .STA, YASA) and DREAMS 5-s hypnograms."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping

import numpy as np

from .epochs import EPOCH_S, N1, N2, N3, REM, UNKNOWN, AnnotationError, W, _name, stage_code


def read_epoch_text(
    path: str | os.PathLike,
    mapping: Mapping | None,
    skip_rows: int = 0,
    column: int = 0,
    delimiter: str | None = None,
    comment: str | None = "#",
) -> np.ndarray:
    """Stages from a text file holding one token per epoch (one line per epoch).

    Examples: ISRUC / YASA ``0..4`` files, ``.STA`` files (``epoch stage`` columns), Sleep
    Cassette ``W``/``N1`` lists.

    Parameters
    ----------
    mapping : dict or None
        Raw token -> stage code (keys are compared as stripped strings, so ``{5: 4}`` and
        ``{"5": 4}`` are the same). ``None`` uses :func:`stage_code`.
    skip_rows : int
        Lines to skip at the top (headers).
    column : int
        Which field of each line holds the token.
    delimiter : str, optional
        Field separator; ``None`` splits on whitespace.
    comment : str, optional
        Lines starting with it are skipped (``#`` by default).

    Returns
    -------
    numpy.ndarray of int8, one code per non-empty line.

    Raises
    ------
    AnnotationError
        Naming the file, the line and the token when a token is not in ``mapping``.
    """
    table = None if mapping is None else {str(k).strip(): int(v) for k, v in mapping.items()}
    name = _name(path)
    codes = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if lineno <= skip_rows:
                continue
            stripped = line.strip()
            if not stripped or (comment and stripped.startswith(comment)):
                continue
            fields = stripped.split(delimiter)
            if column >= len(fields):
                raise AnnotationError(f"{name}: line {lineno} has no column {column}: {stripped!r}")
            token = fields[column].strip()
            code = stage_code(token) if table is None else table.get(token)
            if code is None:
                known = "stage words" if table is None else ", ".join(sorted(table))
                raise AnnotationError(
                    f"{name}: line {lineno}: unknown stage token {token!r} (expected {known})")
            codes.append(code)
    return np.asarray(codes, dtype=np.int8)


# DREAMS 5-s codes (R&K).
_DREAMS = {5: W, 4: REM, 3: N1, 2: N2, 1: N3, 0: N3, -1: UNKNOWN, -2: UNKNOWN, -3: UNKNOWN}


def read_dreams_hypnogram(path: str | os.PathLike, epoch_s: float = EPOCH_S) -> np.ndarray:
    """Stages from a DREAMS hypnogram text file, resampled to 30-s epochs.

    Format: first line ``[hypnogram]`` (any case), then one R&K code per **5 s**: 5 = W,
    4 = REM, 3 = S1, 2 = S2, 1 = S3, 0 = S4 (S3/S4 -> N3), -1 = movement, -2 / -3 = unknown
    (-> -1). DREAMS was scored on 20-s epochs, so a 30-s epoch straddles two scoring epochs.

    Rule: each 30-s epoch takes the most frequent of its six 5-s codes (after mapping); a tie
    for the most frequent (e.g. 3 + 3) gives -1. With 20-s scoring this picks the scoring epoch
    that fills 4 of the 6 slots. A trailing group of fewer than six codes is dropped, like a
    trailing partial signal epoch.

    Returns
    -------
    numpy.ndarray of int8, ``len(codes) // 6`` epochs.
    """
    name = _name(path)
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = [ln.strip() for ln in f]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0].lower() != "[hypnogram]":
        raise AnnotationError(f"{name}: not a DREAMS hypnogram (first line must be [hypnogram])")
    codes = []
    for k, ln in enumerate(lines[1:], 2):
        try:
            codes.append(_DREAMS[int(float(ln))])
        except (ValueError, KeyError):
            raise AnnotationError(f"{name}: line {k}: unknown DREAMS code {ln!r}") from None
    per = int(round(epoch_s / 5.0))
    n = len(codes) // per
    out = np.full(n, UNKNOWN, dtype=np.int8)
    for i in range(n):
        counts = Counter(codes[i * per:(i + 1) * per]).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            out[i] = counts[0][0]
    return out

