"""Lights-off / lights-on of a recording to stage, and where they came from.

Taken, in this order (the first that gives a value wins, separately for each half):

1. ``--lights-off`` / ``--lights-on``: a clock time (``23:10``, ``23:10:30``, ``11:10 PM``) or
   seconds from the recording start (``600``, ``600.5``). A clock time up to 2 h before the
   recording start is before it (lights-off before the recorder started); later times are after.
2. ``--lights CSV``: one row per recording, columns ``name`` (recording name or file name, with
   or without extension), ``lights_off``, ``lights_on`` (same syntax as the flags; empty = unknown).
3. Lights annotations in the recording itself (EDF+ annotations, annotations of FIF/BrainVision/
   EEGLAB files) or in a scoring file beside it: same folder, name starting with the recording's
   name (``-PSG``/``_PSG`` removed): EDF+ (``*Hypnogram.edf``, ``*_sleepscoring.edf``), NSRR/Profusion
   XML, NSRR ``.annot``. Texts are recognised by :func:`preprocess.core.lights.lights_kind`.
4. Otherwise the whole recording is the time in bed.

Lights that cannot be right are corrected by a fixed rule, with a warning in every output:

* lights-on not after lights-off, both from annotations (file or scoring beside it): the pair
  is out of order, so neither is used and the whole recording is the time in bed (given on the
  command line or in ``--lights`` it is an error instead: the user can fix it);
* lights-off before the recording start or lights-on after its end (:func:`lights_within`):
  the time in bed is cut at the recording's edges. TIB, SE, SOL and every latency then count
  from the recording start (or to its end), as the signal before/after was not recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from pathlib import Path

from preprocess.core.clock import clock_time, since_start
from preprocess.core.lights import first_last, lights_kind

BEFORE_START_S = 2 * 3600.0
"""A clock time at most this long before the recording start is read as before it."""
SCORING_SUFFIXES = (".edf", ".xml", ".annot")
_SECONDS = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*s?\s*$")


class LightsError(ValueError):
    """Lights arguments that cannot be understood (one line)."""


def parse_time(text: str | float | None, start: dt.datetime | None, what: str = "lights") -> float | None:
    """Seconds from the recording start of a ``--lights-*`` value (None for empty).

    Examples
    --------
    >>> start = dt.datetime(2020, 1, 1, 22, 0, 0)
    >>> parse_time("600", start), parse_time("22:30", start), parse_time("06:15:00", start)
    (600.0, 1800.0, 29700.0)
    >>> parse_time("21:50", start)  # before the recorder started
    -600.0
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    if isinstance(text, (int, float)):
        return float(text)
    text = str(text).strip()
    if not text:
        return None
    if _SECONDS.match(text):
        return float(text.rstrip("s ").strip())
    try:
        _, seconds = clock_time(text)
    except ValueError:
        raise LightsError(f"{what}: {text!r} is neither a clock time (HH:MM[:SS]) nor seconds") from None
    if start is None:
        raise LightsError(f"{what}: clock time {text!r} needs the recording start time, which is unknown; "
                          "give seconds from the start instead")
    return since_start(seconds, start, BEFORE_START_S)


def read_lights_csv(path: str | Path) -> dict[str, tuple[str, str]]:
    """``--lights`` CSV → {name: (lights_off text, lights_on text)}; names lower-cased, no extension."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise LightsError(f"--lights {path}: cannot read ({exc.strerror})") from None
    if rows and not {"name", "lights_off", "lights_on"} <= set(rows[0]):
        raise LightsError(f"--lights {path.name}: needs the columns name, lights_off, lights_on "
                          f"(found {', '.join(rows[0])})")
    return {_key(r["name"]): (r.get("lights_off") or "", r.get("lights_on") or "") for r in rows if r.get("name")}


def _key(name: str) -> str:
    name = Path(str(name).strip()).name.lower()
    for suffix in (".edf", ".bdf", ".fif", ".vhdr", ".set"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _from_events(events) -> tuple[float | None, float | None]:
    return first_last((onset, lights_kind(text)) for onset, _, text in events)


def file_lights(path: Path, source) -> tuple[float | None, float | None]:
    """Lights annotations inside the recording (EDF+ annotation signal, or MNE annotations)."""
    if hasattr(source, "annotations"):
        return _from_events(source.annotations())
    if path.suffix.lower() in (".edf", ".bdf"):
        return _edf_lights(path, getattr(source, "start_time", None))
    return None, None


def _edf_lights(path: Path, start: dt.datetime | None) -> tuple[float | None, float | None]:
    found = _edfio_lights(path, start)
    if found is not None:
        return found
    import mne  # only when edfio cannot read the file

    try:
        ann = mne.read_annotations(path)
    except Exception:  # no annotation signal, or unreadable: no lights from this file
        return None, None
    shift = 0.0
    orig = ann.orig_time.replace(tzinfo=None) if ann.orig_time is not None else None
    if orig is not None and start is not None:
        shift = (orig - start).total_seconds()  # a scoring file starting later than the signal
    return _from_events((float(o) + shift, float(d), str(t)) for o, d, t in
                        zip(ann.onset, ann.duration, ann.description))


def _edfio_lights(path: Path, start: dt.datetime | None) -> tuple[float | None, float | None] | None:
    """Lights from the EDF+ annotations as edfio reads them (None when edfio cannot read the file).

    edfio first: ``mne.read_annotations`` fails on some valid EDF+ files (a UnicodeDecodeError on
    edfio-written records), and a failure there used to leave the lights silently unknown.
    """
    import warnings

    import edfio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edf = (edfio.read_bdf if path.suffix.lower() == ".bdf" else edfio.read_edf)(path, lazy_load_data=True)
            anns = edf.annotations
            orig = dt.datetime.combine(edf.startdate, edf.starttime)
    except Exception:  # not readable by edfio (a repaired or foreign header): MNE is tried
        return None
    shift = (orig - start).total_seconds() if start is not None else 0.0
    return _from_events((float(a.onset) + shift, float(a.duration or 0.0), str(a.text)) for a in anns)


def scoring_files(path: Path) -> list[Path]:
    """Scoring files beside ``path`` whose name starts with the recording's name."""
    stem = path.stem
    roots = {stem.lower(), re.sub(r"[-_]?psg$", "", stem, flags=re.I).lower()}
    try:
        siblings = sorted(path.parent.iterdir())
    except OSError:
        return []
    return [p for p in siblings if p != path and p.is_file() and p.suffix.lower() in SCORING_SUFFIXES
            and not p.name.startswith(".") and any(p.name.lower().startswith(r) for r in roots if r)]


def beside_lights(path: Path, start: dt.datetime | None) -> tuple[tuple[float | None, float | None], str]:
    """Lights from the first scoring file beside ``path`` that has any, and its name."""
    from preprocess.core.nsrr import annot_lights, xml_lights

    for p in scoring_files(path):
        suffix = p.suffix.lower()
        try:
            found = (_edf_lights(p, start) if suffix == ".edf" else xml_lights(p) if suffix == ".xml"
                     else annot_lights(p, start))
        except Exception:  # an unreadable neighbour is not our recording's problem
            continue
        if found != (None, None):
            return found, p.name
    return (None, None), ""


def resolve_lights(path: Path, name: str, source, off_arg=None, on_arg=None,
                   table: dict | None = None, notes: list | None = None) -> tuple[tuple[float | None, float | None], str]:
    """Lights-off/on (s from the recording start, None = unknown) and a line saying where from.

    Parameters
    ----------
    path : Path or None
        The recording file (None for a recording in memory: no scoring file is looked for beside it).
    name : str
        Its output name (looked up in ``table`` as well as the file stem).
    source : signal source
        The opened recording (start time, annotations).
    off_arg, on_arg : str, optional
        ``--lights-off`` / ``--lights-on``.
    table : dict, optional
        :func:`read_lights_csv` output.
    notes : list, optional
        Receives the warning when annotated lights are out of order (then both are ignored).
    """
    start = getattr(source, "start_time", None)
    halves: list[float | None] = [None, None]
    origin = ["", ""]

    def fill(values, where):
        for i, v in enumerate(values):
            if halves[i] is None and v is not None:
                halves[i], origin[i] = float(v), where

    fill((parse_time(off_arg, start, "--lights-off"), parse_time(on_arg, start, "--lights-on")), "command line")
    row = (table or {}).get(_key(name)) or ((table or {}).get(_key(path.name)) if path is not None else None)
    if row is not None and None in halves:
        fill((parse_time(row[0], start, f"--lights row {name}"), parse_time(row[1], start, f"--lights row {name}")),
             "--lights CSV")
    if None in halves:
        fill(file_lights(path, source), "annotations in the file")
    if None in halves and path is not None:
        found, where = beside_lights(path, start)
        fill(found, where)
    off, on = halves
    if off is not None and on is not None and on <= off:
        user = ("command line", "--lights CSV")
        if origin[0] in user or origin[1] in user:
            raise LightsError(f"{path.name if path is not None else name}: lights-on ({on:g} s) is not after lights-off ({off:g} s)")
        if notes is not None:
            notes.append(f"lights annotations out of order: lights-on at {on:g} s is not after lights-off at "
                         f"{off:g} s ({origin[1]}); both ignored, time in bed = the whole recording")
        halves, origin = [None, None], ["", ""]
        off = on = None
    return (off, on), _describe(halves, origin)


def lights_within(lights: tuple, duration_s: float, notes: list) -> tuple[float | None, float | None]:
    """Lights cut to the recording ``[0, duration_s]``; one warning per half that lies outside.

    >>> notes = []
    >>> lights_within((-600.0, 30000.0), 28800.0, notes)
    (0.0, 28800.0)
    >>> notes[0]
    'lights-off is 600 s before the recording start: time in bed starts at the recording start (TIB, SE, SOL and latencies count from there)'
    """
    off, on = lights
    if off is not None and off < 0:
        notes.append(f"lights-off is {-off:g} s before the recording start: time in bed starts at the recording "
                     "start (TIB, SE, SOL and latencies count from there)")
        off = 0.0
    if on is not None and on > duration_s:
        notes.append(f"lights-on is {on - duration_s:g} s after the recording end: time in bed ends at the "
                     "recording end")
        on = float(duration_s)
    if off is not None and off >= duration_s:
        notes.append(f"lights-off ({off:g} s) is after the recording end ({duration_s:g} s): ignored, time in bed "
                     "starts at the recording start")
        off = None
    if on is not None and on <= 0:
        notes.append(f"lights-on ({on:g} s) is at or before the recording start: ignored, time in bed ends at "
                     "the recording end")
        on = None
    return off, on


def _describe(halves, origin) -> str:
    if halves == [None, None]:
        return "lights: unknown, time in bed = the whole recording"
    parts = []
    for label, v, where in zip(("off", "on"), halves, origin):
        parts.append(f"{label} {'unknown' if v is None else f'{v:g} s'}" + (f" ({where})" if where else ""))
    return "lights: " + ", ".join(parts)


__all__ = ["LightsError", "beside_lights", "file_lights", "lights_within", "parse_time", "read_lights_csv",
           "resolve_lights",
           "scoring_files"]
