"""Generic CSV / TSV tables of scored events (onset, duration, label columns)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections.abc import Mapping

from ..clock import hms_seconds
from .clock import _as_start, _clock_to_elapsed
from .epochs import EPOCH_S, AnnotationError, Event, _float, _name, stage_code


def _csv_time(text: str, time_format: str, start, where: str) -> float:
    tok = text.strip()
    if time_format == "seconds":
        try:
            return float(tok)
        except ValueError:
            raise AnnotationError(f"{where}: bad onset {text!r} (expected seconds)") from None
    if time_format == "clock":
        clock = hms_seconds(tok)
        if clock is not None:
            return _clock_to_elapsed(clock, start, where)
        try:
            when = dt.datetime.fromisoformat(tok)
        except ValueError:
            raise AnnotationError(f"{where}: bad clock time {text!r}") from None
    else:
        try:
            when = dt.datetime.strptime(tok, time_format)
        except ValueError:
            raise AnnotationError(f"{where}: time {text!r} does not match {time_format!r}") from None
        if when.year == 1900 and "%Y" not in time_format and "%y" not in time_format:
            return _clock_to_elapsed(when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6,
                                     start, where)
    if not isinstance(start, dt.datetime):
        raise AnnotationError(f"{where}: date-time onsets need start_time as a datetime")
    return (when - start).total_seconds()


def read_csv_events(
    path: str | os.PathLike,
    onset_col: str | int,
    duration_col: str | int | None,
    label_col: str | int,
    time_format: str = "seconds",
    start_time: dt.datetime | dt.time | str | None = None,
    *,
    delimiter: str = ",",
    mapping: Mapping | None = None,
    default_duration_s: float = EPOCH_S,
) -> list[Event]:
    """Stage events from a CSV/TSV table of scored events.

    Parameters
    ----------
    onset_col, duration_col, label_col : str or int
        Column names (the first row is then the header, matched case- and space-insensitively) or
        0-based indices (a first row whose onset does not parse is taken as a header).
        ``duration_col=None``: every row lasts ``default_duration_s`` (one epoch per row).
    time_format : str
        ``"seconds"``: onsets in seconds from the recording start; ``"clock"``: ``HH:MM:SS[.f]``
        (or ``HH.MM.SS``) clock times, or ISO date-times, relative to ``start_time``; otherwise a
        :func:`datetime.datetime.strptime` format. Clock times earlier than the start time are
        taken as after midnight.
    start_time : datetime, time or 'hh:mm:ss', optional
        Recording start, needed for clock onsets.
    delimiter : str
        Field separator (``","``; ``"\\t"`` for TSV).
    mapping : dict, optional
        Raw label -> code; labels not in it fall back to :func:`stage_code`.

    Returns
    -------
    list of Event
        ``(onset_s, duration_s, code)`` for the rows whose label is a stage (code -1 for unknown /
        movement); other rows (arousals, lights ...) are dropped. Feed to :func:`events_to_epochs`.
    """
    start = _as_start(start_time)
    table = {} if mapping is None else {str(k).strip(): int(v) for k, v in mapping.items()}
    name = _name(path)
    rows = _read_rows(path, delimiter)
    idx, rows = _column_indices(rows, (onset_col, duration_col, label_col), time_format, start, name)
    events = []
    for lineno, r in rows:
        ev = _row_event(r, idx, table, time_format, start, default_duration_s, path,
                        f"{name}: line {lineno}")
        if ev is not None:
            events.append(ev)
    return events


def _read_rows(path, delimiter: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows with their 1-based line numbers; AnnotationError when there are none."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        rows = [(k, r) for k, r in enumerate(csv.reader(f, delimiter=delimiter), 1)
                if any(c.strip() for c in r)]
    if not rows:
        raise AnnotationError(f"{_name(path)}: empty CSV file")
    return rows


def _column_indices(rows, cols, time_format: str, start, name: str):
    """0-based ``(onset, duration, label)`` indices and the data rows (header dropped).

    Named columns are looked up in the first row (the header); with indices only, a first row
    whose onset does not parse is taken as a header.
    """
    if any(isinstance(c, str) for c in cols):
        header = [_norm_col(h) for h in rows[0][1]]
        idx = []
        for c in cols:
            if c is None or isinstance(c, int):
                idx.append(c)
            elif _norm_col(c) in header:
                idx.append(header.index(_norm_col(c)))
            else:
                raise AnnotationError(f"{name}: no column {c!r} in header {rows[0][1]}")
        return idx, rows[1:]
    idx = list(cols)
    if rows:
        try:
            _csv_time(rows[0][1][idx[0]], time_format, start, name)
        except (AnnotationError, IndexError):
            rows = rows[1:]
    return idx, rows


def _row_event(r, idx, table, time_format, start, default_duration_s, path, where) -> Event | None:
    """The stage event of one row, or None when its label is not a stage."""
    i_on, i_dur, i_lab = idx
    try:
        label = r[i_lab].strip()
        on_txt = r[i_on]
        dur_txt = r[i_dur] if i_dur is not None else None
    except IndexError:
        raise AnnotationError(f"{where}: too few columns ({len(r)})") from None
    code = table.get(label)
    if code is None:
        code = stage_code(label)
    if code is None:
        return None
    onset = _csv_time(on_txt, time_format, start, where)
    duration = default_duration_s if dur_txt is None else _float(dur_txt.strip(), path, "duration")
    return Event(onset, duration, code)


def _norm_col(text: str) -> str:
    return re.sub(r"[\s_]+", "", str(text).strip().lower())
