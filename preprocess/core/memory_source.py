"""Recordings already in memory as a signal source: an ``mne.io.BaseRaw`` or a NumPy array.

The interface is the one of :class:`preprocess.core.edf.EdfReader` (``labels``, ``start_time``,
``sfreq(label)``, ``unit(label)``, ``read(label) -> (volts, Hz)``, ``annotations()``, ``close``),
so :class:`staging.Stager` stages a recording held by a notebook exactly as it stages a file.
Nothing here copies the whole recording: each channel is read on demand.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

import numpy as np


class MemorySourceError(ValueError):
    """An in-memory recording that cannot be staged; the message is one line."""


class RawSource:
    """An ``mne.io.BaseRaw`` (loaded or not), read one channel at a time in volts.

    Parameters
    ----------
    raw : mne.io.BaseRaw
    name : str
        How messages name the recording.
    """

    def __init__(self, raw, name: str = "recording"):
        self.raw = raw
        self.name = name
        self.labels = list(raw.ch_names)
        meas = raw.info.get("meas_date")
        # meas_date is UTC-aware; the pipeline's start times are naive wall clock like EDF's
        self.start_time = meas.replace(tzinfo=None) if isinstance(meas, dt.datetime) else None
        self._sfreq = float(raw.info["sfreq"])

    def _index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.name}: no channel {label!r}") from None

    def sfreq(self, label: str) -> float:
        self._index(label)
        return self._sfreq

    def unit(self, label: str) -> str:
        """``"V"`` for channels MNE stores in volts (EEG, EOG, EMG, ECG …), else the MNE unit code."""
        import mne

        ch = self.raw.info["chs"][self._index(label)]
        return "V" if ch["unit"] == mne.io.constants.FIFF.FIFF_UNIT_V else str(ch["unit"])

    def read(self, label: str) -> tuple[np.ndarray, float]:
        """``(signal in the channel's SI unit — volts for electrophysiology — as float64, Hz)``."""
        i = self._index(label)
        return self.raw.get_data(picks=[i], reject_by_annotation=None)[0].astype(np.float64), self._sfreq

    def annotations(self) -> list[tuple[float, float, str]]:
        """``(onset s from the first sample, duration s, text)`` of the recording's annotations."""
        first = self.raw.first_samp / self._sfreq
        a = self.raw.annotations
        return [(float(o) - first, float(d), str(t)) for o, d, t in zip(a.onset, a.duration, a.description)]

    def close(self) -> None:
        """Nothing to release: the caller owns the Raw object."""


class ArraySource:
    """A ``(channels, samples)`` array in volts with its sampling rate and channel names.

    Parameters
    ----------
    data : array_like, shape (n_channels, n_samples)
        Signals in volts (the unit of ``mne.io.Raw.get_data``).
    sfreq : float
        Sampling rate in Hz, shared by every channel.
    ch_names : sequence of str
        One label per row of ``data``.
    start_time : datetime, optional
        Wall-clock time of the first sample (lights given as clock times need it).
    name : str
        How messages name the recording.

    Raises
    ------
    MemorySourceError
        Not 2-D, a rate that is not a positive number, or names that do not match the rows.

    Examples
    --------
    >>> src = ArraySource(np.zeros((2, 300)), 100.0, ["C3-M2", "E1-M2"])
    >>> src.read("E1-M2")[0].shape, src.sfreq("C3-M2")
    ((300,), 100.0)
    """

    def __init__(self, data, sfreq: float, ch_names: Sequence[str], start_time: dt.datetime | None = None,
                 name: str = "array"):
        data = np.asarray(data)
        if data.ndim != 2:
            raise MemorySourceError(f"{name}: signals must be a (channels, samples) array, got shape {data.shape}")
        try:
            sfreq = float(sfreq)
        except (TypeError, ValueError):
            raise MemorySourceError(f"{name}: sfreq must be a number in Hz, got {sfreq!r}") from None
        if not np.isfinite(sfreq) or sfreq <= 0:
            raise MemorySourceError(f"{name}: sfreq must be a positive number of Hz, got {sfreq!r}")
        names = [str(n) for n in (ch_names or [])]
        if len(names) != data.shape[0]:
            raise MemorySourceError(f"{name}: {data.shape[0]} signal rows but {len(names)} channel names "
                                    "(ch_names must name every row of a (channels, samples) array)")
        if len(set(names)) != len(names):
            raise MemorySourceError(f"{name}: channel names must be unique, got {names}")
        self.data, self._sfreq, self.labels = data, sfreq, names
        self.start_time, self.name = start_time, name

    def sfreq(self, label: str) -> float:
        self._index(label)
        return self._sfreq

    def unit(self, label: str) -> str:
        self._index(label)
        return "V"

    def _index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.name}: no channel {label!r}") from None

    def read(self, label: str) -> tuple[np.ndarray, float]:
        return np.asarray(self.data[self._index(label)], dtype=np.float64), self._sfreq

    def annotations(self) -> list[tuple[float, float, str]]:
        return []

    def close(self) -> None:
        """Nothing to release: the caller owns the array."""


__all__ = ["ArraySource", "MemorySourceError", "RawSource"]
