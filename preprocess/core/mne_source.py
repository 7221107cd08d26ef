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

import os
from pathlib import Path

from .memory_source import RawSource

EDF_SUFFIXES = (".edf", ".bdf")
MNE_SUFFIXES = (".fif", ".fif.gz", ".vhdr", ".set", ".cnt", ".mff", ".gdf", ".bdf", ".edf")
"""Suffixes :func:`open_recording` accepts (``mne.io.read_raw`` decides from the suffix)."""


class MneSourceError(ValueError):
    """A recording MNE cannot open; the message is one line naming the file."""


class MneSource(RawSource):
    """One recording opened with ``mne.io.read_raw``, read one channel at a time.

    The channel access is :class:`~preprocess.core.memory_source.RawSource`'s (a file MNE opened is a
    Raw object like one a notebook holds); this class adds the opening and the closing.

    Parameters
    ----------
    path : path-like
    """

    def __init__(self, path: str | os.PathLike):
        import mne

        self.path = Path(path)
        try:
            raw = mne.io.read_raw(self.path, preload=False, verbose="error")
        except Exception as exc:  # mne raises many types for unreadable files
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MneSourceError(f"{self.path.name}: cannot be read by MNE ({text})") from None
        super().__init__(raw, name=self.path.name)

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
