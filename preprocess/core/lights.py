"""Lights-off / lights-on: the one parser of the project.

Every reader (EDF+ annotations, NSRR XML and ``.annot``, event tables, ``--lights`` CSV) asks
:func:`lights_kind` whether a text is a lights event, and returns lights as
``(lights_off_s, lights_on_s)`` seconds from the signal start (:func:`lights_pair`, NaN for an
unknown half). Recognised: ``Lights off``, ``Lights Out``, ``LightsOff``, ``lights_off``,
``Light off``, ``LIGHTS OUT``, ``Lights on``, ``lights_on``, with an optional ``@@channel``
suffix (HMC) or surrounding words (``Lights off (start of study)``). Not lights:
``Flashlight on``, ``Spotlight``, ``Lights`` alone.
"""

from __future__ import annotations

import math
import re

_LIGHTS = re.compile(r"(?<![a-z])lights?[\s_\-]*(off|out|on)(?![a-z])", re.I)


def lights_kind(text: str | None) -> str | None:
    """``"off"`` / ``"on"`` for a lights annotation, else None.

    Examples
    --------
    >>> [lights_kind(t) for t in ("Lights off@@EEG F4-A1", "LightsOut", "lights_on", "LIGHT ON",
    ...                           "Flashlight on", "Arousal", None)]
    ['off', 'off', 'on', 'on', None, None, None]
    """
    if not text:
        return None
    m = _LIGHTS.search(str(text).split("@@", 1)[0])
    if m is None:
        return None
    return "on" if m.group(1).lower() == "on" else "off"


def first_last(events) -> tuple[float | None, float | None]:
    """(first lights-off, last lights-on) of ``(seconds, "off"|"on")`` pairs; None where absent.

    >>> first_last([(100.0, "off"), (50.0, "off"), (3000.0, "on"), (9.0, None)])
    (50.0, 3000.0)
    """
    events = list(events)  # may be a generator: read twice below
    off = [t for t, k in events if k == "off"]
    on = [t for t, k in events if k == "on"]
    return (min(off) if off else None, max(on) if on else None)


def lights_pair(off_s: float | None, on_s: float | None) -> tuple[float, float] | None:
    """``(lights_off_s, lights_on_s)`` from the signal start, NaN for the missing one; None when
    neither is known."""
    if _missing(off_s) and _missing(on_s):
        return None
    return (math.nan if _missing(off_s) else float(off_s), math.nan if _missing(on_s) else float(on_s))


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def lights_from_events(events) -> tuple[float, float] | None:
    """Lights pair from annotation-like events (``.onset`` seconds, ``.label`` text)."""
    return lights_pair(*first_last((e.onset, lights_kind(e.label)) for e in events))


__all__ = ["first_last", "lights_from_events", "lights_kind", "lights_pair"]
