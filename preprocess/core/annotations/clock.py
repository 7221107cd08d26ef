"""Clock times in scoring files: ``hh:mm:ss`` tokens -> seconds from the recording start."""

from __future__ import annotations

import datetime as dt
import re

from .epochs import AnnotationError

_CLOCK = re.compile(r"^(\d{1,2})[:.](\d{1,2})[:.](\d{1,2}(?:\.\d*)?)$")


def _seconds_of_day(t: dt.datetime | dt.time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _as_start(start_time) -> dt.datetime | dt.time | None:
    if start_time is None or isinstance(start_time, (dt.datetime, dt.time)):
        return start_time
    m = _CLOCK.match(str(start_time).strip())
    if not m:
        raise ValueError(f"start_time {start_time!r} is not a datetime/time or 'hh:mm:ss'")
    sec = float(m.group(3))
    return dt.time(int(m.group(1)), int(m.group(2)), int(sec), int(round((sec % 1) * 1e6)))


def _clock_to_elapsed(hh: int, mm: int, ss: float, start, where: str) -> float:
    if start is None:
        raise AnnotationError(f"{where}: clock time {hh:02d}:{mm:02d}:{ss:g} needs start_time")
    t = hh * 3600 + mm * 60 + ss - _seconds_of_day(start)
    return t + 86400.0 if t < 0 else t  # past midnight
