"""NSRR / Luna ``.annot`` scoring files (tab-separated class / instance / channel / start / stop)."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np

from ..clock import duration_seconds, hms_seconds
from .clock import _as_start, _clock_to_elapsed
from .epochs import EPOCH_S, UNKNOWN, AnnotationError, _float, _name, events_to_epochs, stage_code


def _annot_time(token: str, start, epoch_s: float, where: str, is_stop: bool) -> float:
    tok = token.strip()
    if tok.startswith("e:"):
        k = int(tok[2:])  # epochs are 1-based
        return (k if is_stop else k - 1) * epoch_s
    if tok.startswith("0+"):
        elapsed = duration_seconds(tok[2:])
        if elapsed is None:
            raise AnnotationError(f"{where}: bad elapsed time {token!r}")
        return elapsed
    clock = hms_seconds(tok)
    if clock is not None:
        return _clock_to_elapsed(clock, start, where)
    try:
        return float(tok)
    except ValueError:
        raise AnnotationError(f"{where}: bad time {token!r}") from None


def read_nsrr_annot(
    path: str | os.PathLike,
    n_epochs: int | None = None,
    start_time: dt.datetime | dt.time | str | None = None,
    epoch_s: float = EPOCH_S,
) -> np.ndarray:
    """Stages from an NSRR / Luna ``.annot`` file (tab-separated).

    Lines starting with ``#`` declare classes and are skipped; an optional header row reads
    ``class  instance  channel  start  stop  meta``; ``.`` is a missing value. Stage classes are
    ``W``, ``N1``, ``N2``, ``N3``, ``R`` (also ``NREM1`` ... via :func:`stage_code`), ``?``
    (unknown -> -1) and ``L`` (lights on, i.e. outside the lights-off period -> -1); other classes
    are ignored. Four-column rows (class, instance, start, stop) are accepted too.

    Times (``start`` / ``stop``): elapsed seconds from the EDF start (``30.0``), elapsed
    ``0+hh:mm:ss``, clock time ``hh:mm:ss`` (or ``hh.mm.ss``; needs ``start_time``, times before it
    are taken as after midnight), or 1-based epochs ``e:N``. Stop may also be a duration ``+x``
    seconds or ``...`` (until the next row's start).

    Parameters
    ----------
    start_time : datetime, time or 'hh:mm:ss', optional
        Clock time of the EDF start, for clock-time rows.

    Returns
    -------
    numpy.ndarray of int8
    """
    start = _as_start(start_time)
    name = _name(path)
    rows: list[tuple[int, list[str]]] = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 4:
                fields = line.split()
            if [x.strip().lower() for x in fields[:2]] == ["class", "instance"]:
                continue
            rows.append((lineno, [x.strip() for x in fields]))
    parsed = []
    for lineno, fields in rows:
        where = f"{name}: line {lineno}"
        if len(fields) >= 6:
            cls, start_tok, stop_tok = fields[0], fields[3], fields[4]
        elif len(fields) >= 4:
            cls, start_tok, stop_tok = fields[0], fields[2], fields[3]
        else:
            raise AnnotationError(f"{where}: expected 6 tab-separated fields, got {len(fields)}")
        parsed.append((where, cls, start_tok, stop_tok))
    starts = [_annot_time(p[2], start, epoch_s, p[0], False) for p in parsed]
    events = []
    for k, (where, cls, _start_tok, stop_tok) in enumerate(parsed):
        code = UNKNOWN if cls.upper() == "L" else stage_code(cls)
        if code is None:
            continue
        onset = starts[k]
        if stop_tok == "...":
            later = [s for s in starts[k + 1:] if s > onset]
            stop = later[0] if later else onset
        elif stop_tok.startswith("+"):
            stop = onset + _float(stop_tok[1:], path, "duration")
        elif stop_tok in (".", ""):
            stop = onset
        else:
            stop = _annot_time(stop_tok, start, epoch_s, where, True)
        if stop < onset:
            raise AnnotationError(f"{where}: stop {stop_tok!r} is before start")
        events.append((onset, stop - onset, code))
    if not events:
        raise AnnotationError(f"{name}: no sleep stage rows found")
    return events_to_epochs(events, n_epochs=n_epochs, epoch_s=epoch_s)

