"""Clock-time parsing, the one parser of the project (scoring files, lights times, CLI flags).

Accepted: ``HH:MM:SS[.f]``, ``HH.MM.SS``, ``HH:MM``, 12-hour ``h:mm:ss AM/PM``, and any of these
preceded by a date ``M/D/YYYY``, ``YYYY-MM-DD`` or ``YYYY-MM-DDT`` (ISO). A clock time becomes
seconds from a recording start with :func:`since_start`: recordings last less than 24 h, so a
time earlier than the start is after midnight.
"""

from __future__ import annotations

import datetime as dt
import re

_TIME = (r"(?P<h>\d{1,2})[:.](?P<m>\d{1,2})(?:[:.](?P<s>\d{1,2}(?:\.\d*)?))?(?:\s*(?P<ampm>[AaPp][Mm])\b)?")
_DATE = r"(?:(?P<date>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4})[ T]+)?"
_FULL = re.compile(rf"^\s*{_DATE}{_TIME}\s*$")
_INSIDE = re.compile(rf"(?<![\d.:]){_DATE}(?P<h>\d{{1,2}})[:.](?P<m>\d{{2}})[:.](?P<s>\d{{2}}(?:\.\d+)?)"
                     r"(?:\s*(?P<ampm>[AaPp][Mm])\b)?")


def _convert(m: re.Match, text: str) -> tuple[dt.date | None, float]:
    h, mi, s = int(m["h"]), int(m["m"]), float(m["s"] or 0.0)
    if m["ampm"]:
        if not 1 <= h <= 12:
            raise ValueError(f"bad 12-hour clock time: {text!r}")
        h = h % 12 + (12 if m["ampm"].lower() == "pm" else 0)
    if h > 23 or mi > 59 or s >= 61:
        raise ValueError(f"bad clock time: {text!r}")
    date = None
    if m["date"]:
        d = m["date"]
        try:
            if "-" in d:
                date = dt.date(*(int(x) for x in d.split("-")))
            else:
                mo, da, ye = (int(x) for x in d.split("/"))
                date = dt.date(ye + (2000 if ye < 100 else 0), mo, da)
        except ValueError:
            raise ValueError(f"bad date in {text!r}") from None
    return date, h * 3600 + mi * 60 + s


def clock_time(text: str, seconds: bool = False) -> tuple[dt.date | None, float]:
    """Parse a clock time: ``(date or None, seconds since midnight)``.

    ``seconds=True`` requires the seconds field (``hh:mm:ss``), so a number like ``12.5`` in a
    column that may hold seconds is not read as 12:05.

    Raises
    ------
    ValueError
        When the text is not a clock time.

    Examples
    --------
    >>> clock_time("22:31:05"), clock_time("5/22/2018 8:16:00 PM")[1], clock_time("23.10.00")[1]
    ((None, 81065.0), 72960.0, 83400.0)
    """
    m = _FULL.match(str(text))
    if not m or (seconds and m["s"] is None):
        raise ValueError(f"not a clock time: {text!r}")
    return _convert(m, str(text))


def hms_seconds(text: str) -> float | None:
    """``hh:mm:ss[.f]`` (or ``hh.mm.ss``) alone → seconds since midnight; None otherwise.

    >>> hms_seconds("23:10:30.5"), hms_seconds("12.5"), hms_seconds("Wake")
    (83430.5, None, None)
    """
    try:
        date, value = clock_time(text, seconds=True)
    except ValueError:
        return None
    return value if date is None else None


def duration_seconds(text: str) -> float | None:
    """An elapsed ``h:mm:ss[.f]`` (hours may exceed 23) → seconds; None otherwise.

    >>> duration_seconds("25:00:01"), duration_seconds("0:30:00")
    (90001.0, 1800.0)
    """
    m = re.fullmatch(r"\s*(\d+)[:.](\d{1,2})[:.](\d{1,2}(?:\.\d*)?)\s*", str(text))
    return None if m is None else int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def find_clock(text: str) -> float | None:
    """Seconds since midnight of the first ``hh:mm:ss[.f]`` inside ``text`` (None if there is none).

    >>> find_clock("[22:59:30.5] Lights out"), find_clock("no time")
    (82770.5, None)
    """
    m = _INSIDE.search(str(text))
    if m is None:
        return None
    try:
        return _convert(m, str(text))[1]
    except ValueError:
        return None


def seconds_of_day(t: dt.datetime | dt.time) -> float:
    """Seconds since midnight of a ``datetime`` or ``time``."""
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def since_start(seconds: float, start: dt.datetime | dt.time, before: float = 0.0) -> float:
    """Seconds from ``start`` to the clock time ``seconds`` (since midnight).

    Parameters
    ----------
    seconds : float
        Clock time in seconds since midnight.
    start : datetime or time
        Recording start.
    before : float
        How long before the start a time may lie and still be read as before it (s); anything
        earlier is taken as the next day (default 0: every time is at or after the start).

    >>> since_start(30.0, dt.time(23, 59, 0)), since_start(23 * 3600, dt.time(23, 10), before=3600)
    (90.0, -600.0)
    """
    return (seconds - seconds_of_day(start) + before) % 86400.0 - before


__all__ = ["clock_time", "duration_seconds", "find_clock", "hms_seconds", "seconds_of_day", "since_start"]
