"""Sleep-stage annotation readers: scoring files -> int8 stages on 30-s epochs.

Every reader returns (or feeds :func:`events_to_epochs` with) stage codes of the harmonized
format (DESIGN.md §5)::

    W = 0, N1 = 1, N2 = 2, N3 = 3, REM = 4
    R&K stage 3 and stage 4 -> N3
    movement, artefact, unscored, unknown -> -1

Two layers:

* *events* are ``(onset_s, duration_s, code)`` triples in seconds relative to the start of the
  scoring file; :func:`events_to_epochs` turns them into one code per epoch, aligned to the signal
  through ``offset_s`` (scoring start - signal start);
* :func:`align_to_signal` applies the shared length rule between a stage array and the number of
  epochs of the signal, and raises :class:`AnnotationError` with one clear line otherwise.

Readers: EDF+ annotations (Sleep-EDF, HMC, MASS, NCHSDB style), NSRR XML (Compumedics Profusion
and NSRR-XML), NSRR/Luna ``.annot``, one-token-per-epoch text files, DREAMS 5-s hypnograms and
generic CSV event tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "AnnotationError",
    "Event",
    "STAGE_WORDS",
    "UNKNOWN",
    "W", "N1", "N2", "N3", "REM",
    "stage_code",
    "events_to_epochs",
    "align_to_signal",
    "read_edf_annotations",
    "read_edf_start",
    "start_offset",
    "read_edfplus_stages",
    "read_edfplus_lights",
    "read_nsrr_xml",
    "read_nsrr_annot",
    "read_epoch_text",
    "read_dreams_hypnogram",
    "read_csv_events",
]

W, N1, N2, N3, REM = 0, 1, 2, 3, 4
UNKNOWN = -1
EPOCH_S = 30.0


class AnnotationError(ValueError):
    """A scoring file cannot be turned into stages (bad content, unknown token, length mismatch)."""


class Event(NamedTuple):
    """One annotation: onset and duration in seconds (relative to the scoring file start).

    ``label`` is the raw description (:func:`read_edf_annotations`) or a stage code (``int``,
    ``-1`` for unknown) once mapped.
    """

    onset: float
    duration: float
    label: object


# --------------------------------------------------------------------------------------------
# stage vocabulary
# --------------------------------------------------------------------------------------------

# Keys are *normalised* texts (see _stage_key): lower case, only [a-z0-9?], the filler words
# "sleep", "stage", "stages" removed. "Sleep stage W", "stage w", "W" all become "w";
# "Stage 2 sleep|2" (NSRR EventConcept) becomes "2"; "Sleep stage N1" becomes "n1".
# Bare digits 1-4 are R&K stage numbers ("Sleep stage 4", "Stage 4"); 0 and 5 are deliberately
# absent because numeric schemes disagree (Profusion 5 = REM, DREAMS 5 = W): per-epoch numeric
# files go through an explicit mapping instead.
STAGE_WORDS: dict[str, int] = {
    # wake
    "w": W, "wake": W, "wakefulness": W, "awake": W, "wk": W,
    # N1 / R&K stage 1
    "1": N1, "n1": N1, "nrem1": N1, "s1": N1, "st1": N1,
    # N2 / R&K stage 2
    "2": N2, "n2": N2, "nrem2": N2, "s2": N2, "st2": N2,
    # N3 / R&K stages 3 and 4
    "3": N3, "n3": N3, "nrem3": N3, "s3": N3, "st3": N3, "sws": N3, "slowwave": N3,
    "4": N3, "n4": N3, "nrem4": N3, "s4": N3, "st4": N3,
    # REM
    "r": REM, "rem": REM, "paradoxical": REM,
    # stage-like but not a stage
    "?": UNKNOWN, "unknown": UNKNOWN, "unscored": UNKNOWN, "notscored": UNKNOWN, "u": UNKNOWN,
    "ns": UNKNOWN, "nonscored": UNKNOWN, "unsure": UNKNOWN, "undefined": UNKNOWN,
    "movement": UNKNOWN, "movementtime": UNKNOWN, "mt": UNKNOWN, "m": UNKNOWN, "mvt": UNKNOWN,
    "artefact": UNKNOWN, "artifact": UNKNOWN,
}

_FILLER = {"sleep", "stage", "stages"}


def _stage_key(text: str) -> str:
    """Normalise a stage text: part before ``|``, lower case, alphanumerics and ``?`` only."""
    head = str(text).split("|", 1)[0].lower()
    tokens = re.findall(r"[a-z0-9?]+", head)
    return "".join(t for t in tokens if t not in _FILLER)


def stage_code(text: object) -> int | None:
    """Map a stage string to a harmonized code.

    Parameters
    ----------
    text : str
        Any stage description: ``"Sleep stage W"``, ``"Sleep stage 4"``, ``"Sleep stage N1"``,
        ``"Sleep stage R"``, ``"Movement time"``, ``"NREM1"``, ``"Stage 2 sleep|2"``, ``"?"`` ...
        Matching ignores case, spaces and punctuation; an NSRR ``"concept|code"`` pair is read by
        its first part.

    Returns
    -------
    int or None
        0..4 for W, N1, N2, N3 (R&K 3 and 4), REM; ``-1`` for stage-like annotations that are not
        a stage (``?``, unscored, movement, artefact); ``None`` when the text is not a stage
        annotation at all (``"Lights off@@EEG F4-A1"``, arousals, apnoeas).
    """
    if text is None:
        return None
    key = _stage_key(str(text))
    if not key:
        return None
    return STAGE_WORDS.get(key)


# --------------------------------------------------------------------------------------------
# events -> epochs, and the shared length rule
# --------------------------------------------------------------------------------------------

def _ceil(x: float) -> int:
    # rounding first keeps boundaries that sit exactly on a midpoint stable against float noise
    return int(math.ceil(round(x, 9)))


def events_to_epochs(
    events: Iterable,
    n_epochs: int | None = None,
    offset_s: float = 0.0,
    epoch_s: float = EPOCH_S,
) -> np.ndarray:
    """Turn stage events into one code per epoch of the signal.

    Parameters
    ----------
    events : iterable of (onset_s, duration_s, code)
        Onsets in seconds relative to the scoring file start; ``code`` an int (``-1`` allowed) or
        ``None`` (ignored). A duration of 0 (or NaN) means "until the onset of the next stage
        event" (one epoch for the last one).
    n_epochs : int, optional
        Length of the result. ``None``: up to the last epoch covered by a stage event.
    offset_s : float
        Scoring start minus signal start, in seconds: an event at scoring time ``t`` lies at
        signal time ``t + offset_s``. Negative offsets drop what precedes the signal.
    epoch_s : float
        Epoch length in seconds (30).

    Returns
    -------
    numpy.ndarray of int8
        Epoch ``i`` spans ``[i * epoch_s, (i + 1) * epoch_s)`` of the signal and receives the
        code of the event that covers its **midpoint** ``(i + 0.5) * epoch_s`` (event interval
        ``[onset, onset + duration)``), so an event lasting several epochs fills all of them and
        scorings shifted by less than half an epoch still land on the nearest epoch. Where events
        overlap, the one starting later wins. Epochs no event covers are ``-1``.
    """
    evs = []
    for ev in events:
        onset, duration, code = ev[0], ev[1], ev[2]
        if code is None:
            continue
        evs.append((float(onset), float(duration), int(code)))
    evs.sort(key=lambda e: e[0])  # stable: equal onsets keep file order
    spans = []
    for k, (onset, duration, code) in enumerate(evs):
        if not duration > 0:  # 0, negative or NaN: until the next stage event
            if k + 1 < len(evs) and evs[k + 1][0] > onset:
                duration = evs[k + 1][0] - onset
            else:
                duration = epoch_s
        a = (onset + offset_s) / epoch_s - 0.5
        b = (onset + duration + offset_s) / epoch_s - 0.5
        spans.append((_ceil(a), _ceil(b), code))
    if n_epochs is None:
        n_epochs = max([s[1] for s in spans], default=0)
    n_epochs = max(int(n_epochs), 0)
    out = np.full(n_epochs, UNKNOWN, dtype=np.int8)
    for i0, i1, code in spans:
        i0, i1 = max(i0, 0), min(i1, n_epochs)
        if i1 > i0:
            out[i0:i1] = code
    return out


def _name(source: object) -> str:
    try:
        return Path(os.fspath(source)).name or str(source)
    except TypeError:
        return str(source)


def align_to_signal(
    stages: np.ndarray,
    n_epochs: int,
    source: object,
    max_mismatch_epochs: int | None = 1,
) -> np.ndarray:
    """Fit a stage array to a signal of ``n_epochs`` epochs (the shared length rule).

    * ``-1`` epochs past the end of the signal are dropped silently (e.g. Sleep-EDF's trailing
      ``Sleep stage ?``);
    * scored epochs past the end of the signal are cropped when there are at most
      ``max_mismatch_epochs`` of them;
    * a scoring shorter than the signal is padded with ``-1`` when the gap is at most
      ``max_mismatch_epochs``;
    * anything larger raises :class:`AnnotationError` naming ``source`` and both lengths.

    Parameters
    ----------
    stages : array-like of int
        Codes per epoch, aligned so that index 0 is the signal's epoch 0.
    n_epochs : int
        Number of whole epochs in the signal.
    source : str or path-like
        The scoring file, named in the error message.
    max_mismatch_epochs : int or None
        Tolerance in epochs; ``None`` crops and pads freely (for datasets that document it).

    Returns
    -------
    numpy.ndarray of int8, shape (n_epochs,)
    """
    st = np.asarray(stages).astype(np.int8, copy=False).ravel()
    n_epochs = int(n_epochs)
    n = len(st)
    if n > n_epochs:
        scored = np.flatnonzero(st[n_epochs:] != UNKNOWN)
        covers = n_epochs + (int(scored[-1]) + 1 if scored.size else 0)
    else:
        covers = n
    diff = abs(covers - n_epochs)
    if max_mismatch_epochs is not None and diff > max_mismatch_epochs:
        raise AnnotationError(
            f"{_name(source)}: scoring covers {covers} epochs but the signal has {n_epochs} "
            f"(difference {diff} > {max_mismatch_epochs} allowed)"
        )
    if n >= n_epochs:
        return st[:n_epochs].copy()
    out = np.full(n_epochs, UNKNOWN, dtype=np.int8)
    out[:n] = st
    return out


# --------------------------------------------------------------------------------------------
# EDF / EDF+
# --------------------------------------------------------------------------------------------

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}


def read_edf_start(path: str | os.PathLike) -> dt.datetime | None:
    """Start date and time of an EDF/EDF+/BDF file, read from its fixed-size header.

    Header facts (ASCII): bytes 88-167 local recording identification (EDF+: ``Startdate
    dd-MMM-yyyy ...``), bytes 168-175 start date ``dd.mm.yy``, bytes 176-183 start time
    ``hh.mm.ss``. Two-digit years 85-99 are 1985-1999 and 00-84 are 2000-2084; the EDF+
    ``Startdate`` field, when it holds a full date, takes precedence for the year.

    Returns
    -------
    datetime.datetime or None
        Naive local time; ``None`` when the fields cannot be parsed.
    """
    with open(path, "rb") as f:
        head = f.read(184)
    if len(head) < 184:
        return None
    text = head.decode("latin-1")
    recording, date_s, time_s = text[88:168], text[168:176], text[176:184]
    try:
        day, month, yy = (int(x) for x in date_s.split("."))
        hh, mm, ss = (int(x) for x in time_s.split("."))
    except ValueError:
        return None
    year = 1900 + yy if yy >= 85 else 2000 + yy
    m = re.match(r"\s*Startdate\s+(\d{1,2})-([A-Za-z]{3})-(\d{4})", recording)
    if m and m.group(2).upper() in _MONTHS:
        day, month, year = int(m.group(1)), _MONTHS[m.group(2).upper()], int(m.group(3))
    try:
        return dt.datetime(year, month, day, hh, mm, ss)
    except ValueError:
        return None


def start_offset(scoring_start: dt.datetime | None, signal_start: dt.datetime | None) -> float:
    """Seconds from the signal start to the scoring start (the ``offset_s`` of the readers).

    0 when either is unknown. Anonymised files often carry made-up dates (HMC: 01.01.01), so a
    difference of 12 h or more is taken as a date artefact and only the clock times are compared
    (wrapped into [-12 h, 12 h)).
    """
    if scoring_start is None or signal_start is None:
        return 0.0
    if isinstance(scoring_start, dt.datetime) and isinstance(signal_start, dt.datetime):
        if (scoring_start.tzinfo is None) != (signal_start.tzinfo is None):
            scoring_start = scoring_start.replace(tzinfo=None)
            signal_start = signal_start.replace(tzinfo=None)
        diff = (scoring_start - signal_start).total_seconds()
        if abs(diff) < 43200:
            return diff
    diff = _seconds_of_day(scoring_start) - _seconds_of_day(signal_start)
    return (diff + 43200) % 86400 - 43200


def read_edf_annotations(path: str | os.PathLike) -> tuple[list[Event], dt.datetime | None]:
    """All annotations of an EDF+ (or BDF+) file, raw.

    EDF+ stores annotations as time-stamped annotation lists (TALs) in an ``EDF Annotations``
    signal: onset in seconds relative to the file's start time, optional duration in seconds,
    then one or more texts. They are read with :func:`mne.read_annotations`.

    Returns
    -------
    events : list of Event
        ``(onset_s, duration_s, description)``; onsets relative to the file start, a missing
        duration is 0.
    start : datetime.datetime or None
        Start of the file from the header (:func:`read_edf_start`).
    """
    import mne

    try:
        ann = mne.read_annotations(os.fspath(path))
    except UnicodeDecodeError:
        ann = mne.read_annotations(os.fspath(path), encoding="latin1")
    except Exception as exc:  # noqa: BLE001 - report any reader failure as our error
        raise AnnotationError(f"{_name(path)}: cannot read EDF+ annotations ({exc})") from exc
    events = [
        Event(float(o), float(d) if np.isfinite(d) else 0.0, str(s))
        for o, d, s in zip(ann.onset, ann.duration, ann.description)
    ]
    return events, read_edf_start(path)


def read_edfplus_stages(
    path: str | os.PathLike,
    n_epochs: int | None = None,
    offset_s: float = 0.0,
    epoch_s: float = EPOCH_S,
    *,
    signal_start: dt.datetime | None = None,
) -> np.ndarray:
    """Stages from an EDF+ hypnogram or scoring file.

    Covers R&K files in the Sleep-EDF style (``Sleep stage W/1/2/3/4/R/?``, ``Movement time``;
    one annotation per run of equal stages, durations multiples of 30 s) and AASM files in the
    HMC / MASS / NCHSDB style (``Sleep stage W/N1/N2/N3/R``, usually one per epoch). Other
    annotations (``Lights off@@EEG F4-A1``, arousals, apnoeas) are ignored.

    Parameters
    ----------
    path : path-like
        The EDF+ file holding the scoring.
    n_epochs : int, optional
        Length of the result (cropped / padded with -1 without checks; use
        :func:`align_to_signal` for the checked rule). ``None``: up to the last stage event.
    offset_s : float
        Scoring file start minus signal start, in seconds.
    signal_start : datetime, optional
        Start of the signal file; when given, the difference between the scoring file's header
        start and it is added to ``offset_s`` (see :func:`start_offset`).

    Returns
    -------
    numpy.ndarray of int8
    """
    events, scoring_start = read_edf_annotations(path)
    if signal_start is not None:
        offset_s += start_offset(scoring_start, signal_start)
    stages = [Event(e.onset, e.duration, stage_code(e.label)) for e in events]
    stages = [e for e in stages if e.label is not None]
    if not stages:
        raise AnnotationError(f"{_name(path)}: no sleep stage annotations found")
    return events_to_epochs(stages, n_epochs=n_epochs, offset_s=offset_s, epoch_s=epoch_s)


def lights_kind(text: str) -> str | None:
    """``"off"`` / ``"on"`` for a lights annotation (``Lights Off``, ``LightsOut``,
    ``Lights on@@EEG F4-A1``), else None."""
    key = re.sub(r"[^a-z]", "", text.split("@@", 1)[0].lower())
    if key in ("lightsoff", "lightsout", "lightoff", "lightout"):
        return "off"
    if key in ("lightson", "lighton"):
        return "on"
    return None


def lights_pair(off_s: float | None, on_s: float | None) -> tuple[float, float] | None:
    """``(lights_off_s, lights_on_s)`` from the signal start, NaN for the missing one; None when
    neither is known."""
    if off_s is None and on_s is None:
        return None
    return (float("nan") if off_s is None else float(off_s), float("nan") if on_s is None else float(on_s))


def read_edfplus_lights(path: str | os.PathLike) -> tuple[float | None, float | None] | None:
    """Lights-off and lights-on times from EDF+ annotations (e.g. HMC ``Lights off@@EEG F4-A1``).

    Returns
    -------
    (lights_off_s, lights_on_s) or None
        Seconds from the file start (first lights-off, last lights-on; either may be ``None``
        when only the other exists). ``None`` when the file has no lights annotation at all.
    """
    events, _ = read_edf_annotations(path)
    off = [e.onset for e in events if lights_kind(e.label) == "off"]
    on = [e.onset for e in events if lights_kind(e.label) == "on"]
    if not off and not on:
        return None
    return (min(off) if off else None, max(on) if on else None)


# --------------------------------------------------------------------------------------------
# NSRR XML
# --------------------------------------------------------------------------------------------

# Compumedics Profusion per-epoch codes.
_PROFUSION = {0: W, 1: N1, 2: N2, 3: N3, 4: N3, 5: REM}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _parse_xml(path: str | os.PathLike) -> ET.Element:
    data = Path(path).read_bytes()
    # ElementTree (expat) never fetches external entities or DTDs; internal entity declarations
    # are the one remaining risk (entity expansion), and scoring files never need them.
    if b"<!ENTITY" in data:
        raise AnnotationError(f"{_name(path)}: XML entity declarations are not accepted")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise AnnotationError(f"{_name(path)}: not well-formed XML ({exc})") from exc


def _float(text: str | None, path, what: str) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(f"{_name(path)}: bad {what} value {text!r}") from None


def read_nsrr_xml(
    path: str | os.PathLike,
    n_epochs: int | None = None,
    epoch_s: float = EPOCH_S,
) -> np.ndarray:
    """Stages from an NSRR XML scoring file, either flavour.

    * **Compumedics Profusion** (SHHS, MESA, CFS, CHAT ``-profusion.xml``): root
      ``<CMPStudyConfig>``, ``<EpochLength>`` in seconds (30), then ``<SleepStages>`` with one
      ``<SleepStage>`` per epoch from the EDF start: 0 W, 1 N1, 2 N2, 3 N3, 4 R&K stage 4 (-> N3),
      5 REM; anything else (e.g. 6 movement, 9 unscored) -> -1.
    * **NSRR-XML** (``-nsrr.xml``): root ``<PSGAnnotation>``, ``<ScoredEvents>`` of
      ``<ScoredEvent>`` with ``<EventType>Stages|Stages</EventType>``, ``<EventConcept>`` such as
      ``Wake|0``, ``Stage 2 sleep|2``, ``REM sleep|5``, ``Unscored|9``, and ``<Start>`` /
      ``<Duration>`` in seconds from the EDF start; one event may span several epochs. Events of
      other types (arousals, respiratory, ``Recording Start Time``) are ignored.

    XML is parsed with :mod:`xml.etree.ElementTree`: expat resolves no external entities and
    loads no DTD, and files declaring entities are refused, so a hostile file cannot read local
    files or expand entities.

    Returns
    -------
    numpy.ndarray of int8
        One code per 30-s epoch from the EDF start (``n_epochs`` crops/pads without checks).
    """
    root = _parse_xml(path)
    sleep_stages = [e for e in root.iter() if _local(e.tag) == "SleepStage"]
    if sleep_stages or _local(root.tag) == "CMPStudyConfig":
        epoch_len = None
        for e in root.iter():
            if _local(e.tag) == "EpochLength":
                epoch_len = _float(e.text, path, "EpochLength")
                break
        epoch_len = epoch_len or epoch_s
        codes = []
        for e in sleep_stages:
            text = (e.text or "").strip()
            try:
                codes.append(_PROFUSION.get(int(text), UNKNOWN))
            except ValueError:
                codes.append(UNKNOWN)
        if not codes:
            raise AnnotationError(f"{_name(path)}: Profusion XML without <SleepStage> entries")
        if epoch_len == epoch_s:
            out = np.asarray(codes, dtype=np.int8)
            return out if n_epochs is None else _fit(out, n_epochs)
        events = [(i * epoch_len, epoch_len, c) for i, c in enumerate(codes)]
        return events_to_epochs(events, n_epochs=n_epochs, epoch_s=epoch_s)

    events = []
    for ev in root.iter():
        if _local(ev.tag) != "ScoredEvent":
            continue
        etype = _child_text(ev, "EventType")
        concept = _child_text(ev, "EventConcept")
        if concept is None:
            concept = _child_text(ev, "Name")
        if etype and "stage" not in etype.lower():
            continue
        code = stage_code(concept)
        if code is None:
            continue
        start = _float(_child_text(ev, "Start"), path, "Start")
        duration = _float(_child_text(ev, "Duration") or "0", path, "Duration")
        events.append((start, duration, code))
    if not events:
        raise AnnotationError(f"{_name(path)}: no sleep stage events found in the XML")
    return events_to_epochs(events, n_epochs=n_epochs, epoch_s=epoch_s)


def _fit(stages: np.ndarray, n_epochs: int) -> np.ndarray:
    out = np.full(int(n_epochs), UNKNOWN, dtype=np.int8)
    k = min(len(stages), int(n_epochs))
    out[:k] = stages[:k]
    return out


# --------------------------------------------------------------------------------------------
# NSRR / Luna .annot
# --------------------------------------------------------------------------------------------

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


def _annot_time(token: str, start, epoch_s: float, where: str, is_stop: bool) -> float:
    tok = token.strip()
    if tok.startswith("e:"):
        k = int(tok[2:])  # epochs are 1-based
        return (k if is_stop else k - 1) * epoch_s
    if tok.startswith("0+"):
        m = _CLOCK.match(tok[2:])
        if not m:
            raise AnnotationError(f"{where}: bad elapsed time {token!r}")
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    m = _CLOCK.match(tok)
    if m:
        return _clock_to_elapsed(int(m.group(1)), int(m.group(2)), float(m.group(3)), start, where)
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


# --------------------------------------------------------------------------------------------
# per-epoch text, DREAMS
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# CSV event tables
# --------------------------------------------------------------------------------------------

def _csv_time(text: str, time_format: str, start, where: str) -> float:
    tok = text.strip()
    if time_format == "seconds":
        try:
            return float(tok)
        except ValueError:
            raise AnnotationError(f"{where}: bad onset {text!r} (expected seconds)") from None
    if time_format == "clock":
        m = _CLOCK.match(tok)
        if m:
            return _clock_to_elapsed(int(m.group(1)), int(m.group(2)), float(m.group(3)),
                                     start, where)
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
            return _clock_to_elapsed(when.hour, when.minute,
                                     when.second + when.microsecond / 1e6, start, where)
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
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        rows = [(k, r) for k, r in enumerate(csv.reader(f, delimiter=delimiter), 1)
                if any(c.strip() for c in r)]
    if not rows:
        raise AnnotationError(f"{name}: empty CSV file")
    cols = (onset_col, duration_col, label_col)
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
        rows = rows[1:]
    else:
        idx = list(cols)
        if rows:
            try:
                _csv_time(rows[0][1][idx[0]], time_format, start, name)
            except (AnnotationError, IndexError):
                rows = rows[1:]
    i_on, i_dur, i_lab = idx
    events = []
    for lineno, r in rows:
        where = f"{name}: line {lineno}"
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
            continue
        onset = _csv_time(on_txt, time_format, start, where)
        duration = default_duration_s if dur_txt is None else _float(dur_txt.strip(), path,
                                                                      "duration")
        events.append(Event(onset, duration, code))
    return events


def _norm_col(text: str) -> str:
    return re.sub(r"[\s_]+", "", str(text).strip().lower())
