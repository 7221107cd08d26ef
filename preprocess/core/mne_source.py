"""Recordings in the formats MNE reads (``.fif``, ``.vhdr``, ``.set``, ``.edf``, ``.bdf`` …) as a
signal source for the staging pipeline.

The interface is the one of :class:`preprocess.core.edf.EdfReader` (``labels``,
``start_time``, ``read(label) -> (volts, Hz)``, ``close``). EDF and BDF keep going through the
project's EDF reader, which reads every channel at its native rate; :func:`open_recording`
sends only the other formats here. Those formats store one sampling rate for the whole file,
so every channel is read at its native rate here too. Signals are read lazily, one channel at a
time (``preload=False``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np

EDF_SUFFIXES = (".edf", ".bdf")
MNE_SUFFIXES = (".fif", ".fif.gz", ".vhdr", ".set", ".cnt", ".mff", ".gdf", ".bdf", ".edf")
"""Suffixes :func:`open_recording` accepts (``mne.io.read_raw`` decides from the suffix)."""


class MneSourceError(ValueError):
    """A recording MNE cannot open; the message is one line naming the file."""


class MneSource:
    """One recording opened with ``mne.io.read_raw``, read one channel at a time.

    Parameters
    ----------
    path : path-like
    """

    def __init__(self, path: str | os.PathLike):
        import mne

        self.path = Path(path)
        try:
            self.raw = mne.io.read_raw(self.path, preload=False, verbose="error")
        except Exception as exc:  # mne raises many types for unreadable files
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MneSourceError(f"{self.path.name}: cannot be read by MNE ({text})") from None
        self.labels = list(self.raw.ch_names)
        meas = self.raw.info.get("meas_date")
        # meas_date is UTC-aware; the pipeline's start times are naive wall clock like EDF's
        self.start_time = meas.replace(tzinfo=None) if isinstance(meas, dt.datetime) else None
        self._sfreq = float(self.raw.info["sfreq"])

    def sfreq(self, label: str) -> float:
        self._index(label)
        return self._sfreq

    def unit(self, label: str) -> str:
        """``"V"`` for channels MNE stores in volts (EEG, EOG, EMG, ECG …), else the MNE unit."""
        import mne

        ch = self.raw.info["chs"][self._index(label)]
        return "V" if ch["unit"] == mne.io.constants.FIFF.FIFF_UNIT_V else str(ch["unit"])

    def _index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.path.name}: no channel {label!r}") from None

    def read(self, label: str) -> tuple[np.ndarray, float]:
        """``(signal in the channel's SI unit — volts for electrophysiology — as float64, Hz)``."""
        i = self._index(label)
        x = self.raw.get_data(picks=[i], reject_by_annotation=None)[0].astype(np.float64)
        return x, self._sfreq

    def annotations(self) -> list[tuple[float, float, str]]:
        """``(onset s from the first sample, duration s, text)`` of the file's annotations."""
        first = self.raw.first_samp / self._sfreq
        a = self.raw.annotations
        return [(float(o) - first, float(d), str(t)) for o, d, t in zip(a.onset, a.duration, a.description)]

    def close(self) -> None:
        self.raw.close()


def open_recording(path: str | os.PathLike):
    """The signal source of ``path``: the EDF reader for EDF/BDF, :class:`MneSource` otherwise."""
    from .edf import EdfReader

    path = Path(path)
    if path.suffix.lower() in EDF_SUFFIXES:
        return EdfReader(path)
    return MneSource(path)


__all__ = ["MNE_SUFFIXES", "MneSource", "MneSourceError", "open_recording"]
