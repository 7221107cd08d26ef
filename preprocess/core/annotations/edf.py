"""EDF / EDF+ scoring: header start time, raw annotations, stages and lights from EDF+ files."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np

from ..edf import read_start
from ..lights import first_last, lights_kind, lights_pair  # noqa: F401 - re-exported
from .clock import _seconds_of_day
from .epochs import EPOCH_S, AnnotationError, Event, _name, events_to_epochs, stage_code


def read_edf_start(path: str | os.PathLike) -> dt.datetime | None:
    """Start date and time of an EDF/EDF+/BDF file (the project's one parser,
    :func:`preprocess.core.edf.read_start`: EDF+ ``Startdate`` with a four-digit year wins over the
    two-digit header year; 85-99 are 1985-1999, 00-84 are 2000-2084).

    Returns
    -------
    datetime.datetime or None
        Naive local time; ``None`` when the fields cannot be parsed.
    """
    return read_start(path)


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


def read_edfplus_lights(path: str | os.PathLike) -> tuple[float | None, float | None] | None:
    """Lights-off and lights-on times from EDF+ annotations (e.g. HMC ``Lights off@@EEG F4-A1``).

    Returns
    -------
    (lights_off_s, lights_on_s) or None
        Seconds from the file start (first lights-off, last lights-on; either may be ``None``
        when only the other exists). ``None`` when the file has no lights annotation at all.
    """
    events, _ = read_edf_annotations(path)
    off, on = first_last((e.onset, lights_kind(e.label)) for e in events)
    if off is None and on is None:
        return None
    return off, on

