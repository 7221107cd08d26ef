"""Clock times in scoring files: ``hh:mm:ss`` tokens -> seconds from the recording start.

A thin layer over the project's one clock parser (:mod:`preprocess.core.clock`) that raises the
annotation readers' :class:`AnnotationError`.
"""

from __future__ import annotations

import datetime as dt

from ..clock import clock_time, seconds_of_day, since_start
from .epochs import AnnotationError

_seconds_of_day = seconds_of_day


def _as_start(start_time) -> dt.datetime | dt.time | None:
    if start_time is None or isinstance(start_time, (dt.datetime, dt.time)):
        return start_time
    try:
        _, sec = clock_time(str(start_time).strip(), seconds=True)
    except ValueError:
        raise ValueError(f"start_time {start_time!r} is not a datetime/time or 'hh:mm:ss'") from None
    return dt.time(int(sec // 3600), int(sec % 3600 // 60), int(sec % 60), int(round((sec % 1) * 1e6)))


def _clock_to_elapsed(seconds: float, start, where: str) -> float:
    """Seconds from ``start`` to the clock time ``seconds`` (since midnight); past midnight wraps."""
    if start is None:
        h, m, s = int(seconds // 3600), int(seconds % 3600 // 60), seconds % 60
        raise AnnotationError(f"{where}: clock time {h:02d}:{m:02d}:{s:g} needs start_time")
    return since_start(seconds, start)
