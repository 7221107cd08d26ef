"""The declarative description of a dataset that the shared pipeline runs.

A dataset module in :mod:`preprocess.datasets` builds one :class:`DatasetSpec`: a channel map,
a function that finds the recordings in the raw folder, and a function that reads the stages of
one recording. Everything else (montage, signal chain, writing, parallelism) is shared.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Protocol, Sequence

import numpy as np

from .channels import ChannelMap
from .edf import EdfReader


class SignalSource(Protocol):
    """What the pipeline needs from a raw recording (EDF by default; DOD HDF5, WFDB …)."""

    labels: list[str]
    start_time: dt.datetime | None

    def read(self, label: str) -> tuple[np.ndarray, float]:
        """Return ``(signal in volts, native sampling rate in Hz)``."""


class Scoring(NamedTuple):
    """What a stage reader returns when the scoring file also gives lights-off/on.

    Attributes
    ----------
    stages : ndarray of int8
        As for a plain stage reader.
    lights : (float, float) or None
        Lights-off and lights-on, seconds from the *signal's* start, NaN for an unknown half
        (:func:`preprocess.core.lights.lights_pair`); None when the file has none.
    """

    stages: np.ndarray
    lights: tuple | None = None


def as_scoring(value) -> Scoring | None:
    """A stage reader's result as a :class:`Scoring` (None stays None)."""
    if value is None or isinstance(value, Scoring):
        return value
    return Scoring(value, None)


@dataclass
class Record:
    """One raw recording found in a dataset folder.

    Attributes
    ----------
    id : str
        Recording id, unique in the dataset; becomes the output file name.
    subject : str
        Subject id (splits are by subject; a subject may have several recordings).
    signal : Path
        Signal file (EDF/BDF, or the dataset's own format).
    annotation : Path or None
        Scoring file, or None for unscored data.
    labels : dict
        Recording/subject-level labels (diagnosis, demographics) stored in the file and manifest.
    extra : dict
        Anything the dataset's own readers need (lights travel in :class:`Scoring`, not here).
    """

    id: str
    subject: str
    signal: Path
    annotation: Path | None = None
    labels: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.signal, self.annotation) if p is not None]


StageReader = Callable[[Record, "dt.datetime | None"], "np.ndarray | None"]


@dataclass
class DatasetSpec:
    """A dataset for the shared pipeline.

    Attributes
    ----------
    name : str
        Short name used on the command line and as the output folder (``sleepedf``).
    description : str
        One line for ``--list``.
    layout : str
        Expected raw folder layout (one line, for ``--list`` and error messages).
    url : str
        Where the data is obtained (licence / registration).
    channel_map : mapping
        Canonical name → ordered options (DESIGN §3).
    find : callable(src: Path) -> list of Record
        Discovers the recordings in the raw folder.
    read_stages : callable(record, signal_start_time) -> ndarray, Scoring or None
        Returns int8 stages of the 30-s epochs counted from the *signal's* start (offset the
        scoring file's own start if it differs), any length — or a :class:`Scoring` holding them
        with the lights-off/on the scoring file gives; None when unscored. The pipeline aligns
        the stages to the signal with :func:`preprocess.core.annotations.align_to_signal`.
    max_mismatch_epochs : int or None
        Scored epochs the annotation may run past / fall short of the signal before the
        recording is refused (None: crop/pad freely — only for datasets that document why).
    open_signals : callable(record) -> SignalSource
        Opens the raw signals; EDF by default.
    """

    name: str
    description: str
    layout: str
    url: str
    channel_map: ChannelMap
    find: Callable[[Path], list[Record]]
    read_stages: StageReader | None = None
    open_signals: Callable[[Record], SignalSource] = lambda record: EdfReader(record.signal)
    max_mismatch_epochs: int | None = 1
    notes: str = ""


def find_pairs(src: Path, signal_glob: str, annotation_for: Callable[[Path], Path | None],
               subject_of: Callable[[str], str] = lambda rid: rid,
               id_of: Callable[[Path], str] = lambda p: p.stem) -> list[Record]:
    """Pair each signal file matching ``signal_glob`` (recursive) with its scoring file.

    Parameters
    ----------
    annotation_for : callable(signal_path) -> Path or None
        The expected scoring file; a Record is still returned when it does not exist so the
        pipeline can report the recording as failed with that reason.
    """
    records = []
    for path in sorted(Path(src).rglob(signal_glob)):
        if path.name.startswith(".") or not path.is_file():  # a folder named x.edf is not a recording
            continue
        rid = id_of(path)
        records.append(Record(id=rid, subject=subject_of(rid), signal=path, annotation=annotation_for(path)))
    return records


def first_existing(candidates: Sequence[Path]) -> Path | None:
    """The first path that exists, else the first candidate (reported missing later)."""
    for c in candidates:
        if c.exists():
            return c
    return candidates[0] if candidates else None
