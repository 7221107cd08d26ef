"""Signal sources other than EDF, and scoring readers tied to them.

Each source implements the :class:`preprocess.core.dataset.SignalSource` protocol (``labels``,
``start_time``, ``read(label) -> (volts, sfreq)``), so the shared pipeline treats it like an EDF.

* :class:`Hdf5Source` — HDF5 recordings with one dataset per channel under a group (Dreem Open
  Datasets: ``signals/eeg/C3_M2``, ``signals/eog/EOG1``, ``signals/emg/EMG`` ...), sampling rate
  and unit from the dataset / group attributes or the root ``description`` JSON.
* :class:`WfdbSource` — WFDB records: a ``.hea`` header (parsed here) and the signal file it names:
  a MATLAB ``.mat`` (``val`` matrix, read with :mod:`scipy.io`; PhysioNet/CinC challenges) or a
  binary ``.dat`` in format 16/61/32/80. Multi-frequency records (``16x2``: several samples of a
  signal per frame) are read by the ``wfdb`` package, each signal at its own rate.
* :func:`read_sample_stages` — per-sample stage indicator vectors in a MATLAB v7.3 (HDF5) file
  (PhysioNet/CinC 2018 ``-arousal.mat``: ``data/sleep_stages/{wake,nonrem1,...}``) -> 30-s epochs.
* Dreem Open Datasets helpers shared by the ``dodh`` and ``dodo`` modules: :func:`find_dod`,
  :func:`read_dod_hypnogram`, :func:`dod_stages`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .annotations import UNKNOWN, AnnotationError
from .dataset import Record
from .edf import unit_scale

log = logging.getLogger("preprocess")

__all__ = [
    "SourceError", "Hdf5Source", "WfdbHeader", "WfdbSignal", "read_wfdb_header", "WfdbSource",
    "SAMPLE_STAGE_ORDER", "read_sample_stages", "DOD_SFREQ", "find_dod", "open_dod", "read_dod_hypnogram",
    "dod_stages",
]


class SourceError(ValueError):
    """A signal file that cannot be read; the message is one line naming the file."""


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO" and value.size == 1:
        return _text(value.item())
    return str(value)


# --------------------------------------------------------------------------------------------
# HDF5 (Dreem Open Datasets)
# --------------------------------------------------------------------------------------------

class Hdf5Source:
    """Channels stored as 1-D datasets under a group of an HDF5 file.

    Labels are the dataset names (``C3_M2``, ``EOG1``, ``EMG``); a name that occurs in two
    sub-groups is labelled ``group/name``. Sampling rate: the dataset's ``fs`` attribute, else its
    group's, else the ``fs`` of its entry in the root ``description`` JSON (a list of
    ``{"path": "signals/eeg/C3_M2", "fs": 250, "unit": "uV", ...}``), else ``default_sfreq``.
    Unit: the same places (``unit``); an empty or missing unit is taken as µV. Start time: root
    attribute ``start_time`` (POSIX seconds, read as naive UTC; or an ISO string).

    Parameters
    ----------
    path : path-like
    group : str
        Group holding the channels (searched recursively).
    default_sfreq : float, optional
        Rate used when the file records none; without it such a channel raises :class:`SourceError`.
    """

    def __init__(self, path: str | os.PathLike, group: str = "signals", default_sfreq: float | None = None):
        import h5py

        self.path = Path(path)
        name = self.path.name
        self._paths: dict[str, str] = {}
        self._sfreq: dict[str, float | None] = {}
        self._unit: dict[str, str] = {}
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise SourceError(f"{name}: not a readable HDF5 file ({exc})") from None
        with f:
            if group not in f:
                raise SourceError(f"{name}: no '{group}' group in the HDF5 file")
            described = self._description(f)
            found: list[str] = []
            f[group].visititems(lambda p, obj: found.append(f"{group}/{p}")
                                if isinstance(obj, h5py.Dataset) and obj.ndim >= 1 else None)
            names = [p.rsplit("/", 1)[-1] for p in found]
            for p in found:
                short = p.rsplit("/", 1)[-1]
                label = short if names.count(short) == 1 else p[len(group) + 1:]
                ds = f[p]
                entry = described.get(p, {})
                sfreq = ds.attrs.get("fs", ds.parent.attrs.get("fs", entry.get("fs", default_sfreq)))
                unit = ds.attrs.get("unit", ds.parent.attrs.get("unit", entry.get("unit", "")))
                self._paths[label] = p
                self._sfreq[label] = None if sfreq is None else float(np.asarray(sfreq).ravel()[0])
                self._unit[label] = _text(unit)
            self.start_time = self._start(f.attrs.get("start_time"))
        self.labels: list[str] = list(self._paths)

    @staticmethod
    def _description(f) -> dict[str, dict]:
        raw = f.attrs.get("description")
        if raw is None:
            return {}
        try:
            items = json.loads(_text(raw))
        except ValueError:
            return {}
        return {str(e.get("path", "")).strip("/"): e for e in items if isinstance(e, dict)}

    @staticmethod
    def _start(value) -> dt.datetime | None:
        if value is None:
            return None
        try:
            seconds = float(np.asarray(value).ravel()[0])
            return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).replace(tzinfo=None)
        except (TypeError, ValueError, OverflowError, OSError):
            try:
                return dt.datetime.fromisoformat(_text(value).strip())
            except ValueError:
                return None

    def read(self, label: str) -> tuple[np.ndarray, float]:
        import h5py

        if label not in self._paths:
            raise KeyError(f"{self.path.name}: no channel {label!r}")
        sfreq = self._sfreq[label]
        if not sfreq or sfreq <= 0:
            raise SourceError(f"{self.path.name}: {self._paths[label]} has no sampling rate (fs attribute)")
        with h5py.File(self.path, "r") as f:
            x = np.asarray(f[self._paths[label]][()], dtype=np.float64).ravel()
        return x * unit_scale(self._unit[label]), sfreq


# --------------------------------------------------------------------------------------------
# WFDB
# --------------------------------------------------------------------------------------------

@dataclass
class WfdbSignal:
    """One signal line of a WFDB header.

    ``physical = (digital - baseline) / gain``, in ``units`` (WFDB default: mV when absent).
    """

    file: str
    fmt: str
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_zero: int
    description: str
    samples_per_frame: int = 1


@dataclass
class WfdbHeader:
    """A parsed WFDB ``.hea`` file (single-segment records)."""

    path: Path
    record: str
    n_signals: int
    sfreq: float
    n_samples: int
    start_time: dt.datetime | dt.time | None
    signals: list[WfdbSignal]
    comments: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [s.description for s in self.signals]


_NUMBER = re.compile(r"^[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")


def _wfdb_time(tokens: list[str]) -> dt.datetime | dt.time | None:
    """Base time ``HH:MM:SS[.s]`` and optional base date ``DD/MM/YYYY`` of the record line."""
    if not tokens:
        return None
    try:
        parts = [float(p) for p in tokens[0].split(":")]
        while len(parts) < 3:
            parts.insert(0, 0.0)
        h, m, s = parts
        t = dt.time(int(h), int(m), int(s), int(round((s % 1) * 1e6)))
    except ValueError:
        return None
    if len(tokens) > 1:
        try:
            day, month, year = (int(p) for p in tokens[1].split("/"))
            return dt.datetime.combine(dt.date(year, month, day), t)
        except ValueError:
            pass
    return t


def _parse_signal_line(tokens: list[str], where: str) -> WfdbSignal:
    if len(tokens) < 2:
        raise SourceError(f"{where}: signal line needs at least a file name and a format")
    fmt_tok = tokens[1]
    m = re.match(r"^(\d+)(?:x(\d+))?(?::\d+)?(?:\+(\d+))?$", fmt_tok)
    if not m:
        raise SourceError(f"{where}: bad format field {fmt_tok!r}")
    fmt, spf, offset = m.group(1), int(m.group(2) or 1), int(m.group(3) or 0)
    if spf < 1:
        raise SourceError(f"{where}: bad samples per frame in {fmt_tok!r}")
    gain, baseline, units = 200.0, None, "mV"
    if len(tokens) > 2:
        g = re.match(r"^([-+0-9.eE]+)(?:\((-?\d+)\))?(?:/(\S+))?$", tokens[2])
        if not g:
            raise SourceError(f"{where}: bad gain field {tokens[2]!r}")
        gain = float(g.group(1)) or 200.0  # a gain of 0 means "uncalibrated": WFDB uses 200
        baseline = int(g.group(2)) if g.group(2) is not None else None
        units = g.group(3) or "mV"
    adc_zero = int(tokens[4]) if len(tokens) > 4 and _NUMBER.match(tokens[4]) else 0
    return WfdbSignal(file=tokens[0], fmt=fmt, byte_offset=offset, gain=gain,
                      baseline=adc_zero if baseline is None else baseline, units=units,
                      adc_zero=adc_zero, description=" ".join(tokens[8:]) if len(tokens) > 8 else "",
                      samples_per_frame=spf)


def read_wfdb_header(path: str | os.PathLike) -> WfdbHeader:
    """Parse a WFDB header (``.hea``).

    Record line: ``name nsig [fs [nsamp [basetime [basedate]]]]``; one signal line per signal:
    ``file format[+byte_offset] [gain[(baseline)][/units] [adcres [adczero [initval [checksum
    [blocksize [description]]]]]]]``; ``#`` lines are comments (kept in ``comments``).
    Defaults follow the WFDB specification (fs 250 Hz, gain 200, units mV, baseline = ADC zero).

    Raises
    ------
    SourceError
        Missing or malformed header, multi-segment records.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise SourceError(f"{path.name}: cannot read WFDB header ({exc.strerror})") from None
    lines, comments = [], []
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#"):
            comments.append(s[1:].strip())
        elif s:
            lines.append(s.split("#", 1)[0].split())
    if not lines:
        raise SourceError(f"{path.name}: empty WFDB header")
    rec = lines[0]
    if "/" in rec[0]:
        raise SourceError(f"{path.name}: multi-segment WFDB records are not supported")
    try:
        n_sig = int(rec[1])
        sfreq = float(_NUMBER.match(rec[2]).group(0)) if len(rec) > 2 else 250.0
        n_samples = int(rec[3]) if len(rec) > 3 else 0
    except (IndexError, ValueError, AttributeError):
        raise SourceError(f"{path.name}: malformed record line {' '.join(rec)!r}") from None
    if len(lines) - 1 < n_sig:
        raise SourceError(f"{path.name}: header declares {n_sig} signals but has {len(lines) - 1} signal lines")
    signals = [_parse_signal_line(t, f"{path.name}: line {i + 2}") for i, t in enumerate(lines[1:n_sig + 1])]
    return WfdbHeader(path=path, record=rec[0], n_signals=n_sig, sfreq=sfreq, n_samples=n_samples,
                      start_time=_wfdb_time(rec[4:6]), signals=signals, comments=comments)


_DAT_DTYPES = {"16": "<i2", "61": ">i2", "32": "<i4", "80": "u1"}


class WfdbSource:
    """Read the signals of a WFDB record, each at the record's sampling rate, in volts.

    Signal files: a MATLAB ``.mat`` holding the ``val`` matrix (signals x samples, as written by
    the PhysioNet challenges; header format ``16+24`` = 16-bit samples after the 24-byte MATLAB v4
    header) is read with :func:`scipy.io.loadmat` once and cached; any other file is memory-mapped
    as WFDB format 16, 61, 32 or 80 with the header's byte offset.

    Parameters
    ----------
    header : path-like
        The ``.hea`` file; signal files are looked up next to it.
    """

    def __init__(self, header: str | os.PathLike):
        self.header = read_wfdb_header(header)
        self.labels: list[str] = [s.description or f"signal{i}" for i, s in enumerate(self.header.signals)]
        st = self.header.start_time
        self.start_time = st if isinstance(st, dt.datetime) else None
        self._cache: dict[str, np.ndarray] = {}

    def _matrix(self, file: str) -> np.ndarray:
        """(n_signals_in_file, n_samples) digital values of one signal file."""
        if file in self._cache:
            return self._cache[file]
        path = self.header.path.parent / file
        in_file = [s for s in self.header.signals if s.file == file]
        n_sig = len(in_file)
        if not path.exists():
            raise SourceError(f"{file}: missing (named by {self.header.path.name})")
        if path.stat().st_size == 0:
            raise SourceError(f"{file}: file is empty (0 bytes)")
        if path.suffix.lower() == ".mat":
            import scipy.io

            try:
                val = scipy.io.loadmat(path, variable_names=["val"]).get("val")
            except Exception as exc:  # noqa: BLE001 - scipy raises many types for bad files
                raise SourceError(f"{file}: cannot read MATLAB file ({exc})") from None
            if val is None or val.ndim != 2 or val.shape[0] != n_sig:
                shape = None if val is None else val.shape
                raise SourceError(f"{file}: expected a 'val' matrix with {n_sig} rows, got {shape}")
            data = val
        else:
            fmt = in_file[0].fmt
            if fmt not in _DAT_DTYPES:
                raise SourceError(f"{file}: WFDB format {fmt} is not supported (16, 61, 32, 80 are)")
            dtype = np.dtype(_DAT_DTYPES[fmt])
            offset = in_file[0].byte_offset
            frames = (path.stat().st_size - offset) // (dtype.itemsize * n_sig)
            data = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(frames, n_sig)).T
            if fmt == "80":
                data = data.astype(np.int16) - 128
        n = self.header.n_samples
        if n and data.shape[1] < n:
            raise SourceError(f"{file}: truncated: header declares {n} samples but the file holds {data.shape[1]}")
        self._cache[file] = data[:, :n] if n else data
        return self._cache[file]

    @property
    def multi_frequency(self) -> bool:
        """Whether some signal has several samples per frame (a higher rate than the frame rate)."""
        return any(s.samples_per_frame > 1 for s in self.header.signals)

    def _read_wfdb(self, i: int) -> tuple[np.ndarray, float]:
        """Signal ``i`` of a multi-frequency record through the ``wfdb`` package, at its own rate.

        Reading such a record as one sample per frame would interleave a signal's extra samples
        with the next signal's, silently wrong; ``wfdb.rdrecord(smooth_frames=False)`` expands
        every signal to ``frame rate × samples per frame``.
        """
        import wfdb

        if "wfdb" not in self._cache:
            base = self.header.path.with_suffix("")
            try:
                self._cache["wfdb"] = wfdb.rdrecord(str(base), smooth_frames=False, physical=True)
            except Exception as exc:  # noqa: BLE001 - wfdb raises many types for bad records
                text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise SourceError(f"{self.header.path.name}: cannot read multi-frequency WFDB record ({text})") from None
        rec = self._cache["wfdb"]
        sig = self.header.signals[i]
        x = np.asarray(rec.e_p_signal[i], dtype=np.float64)
        return x * unit_scale(sig.units), self.header.sfreq * rec.samps_per_frame[i]

    def read(self, label: str) -> tuple[np.ndarray, float]:
        try:
            i = self.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.header.path.name}: no channel {label!r}") from None
        if self.multi_frequency:
            return self._read_wfdb(i)
        sig = self.header.signals[i]
        row = [s for s in self.header.signals if s.file == sig.file].index(sig)
        digital = np.asarray(self._matrix(sig.file)[row], dtype=np.float64)
        return (digital - sig.baseline) / sig.gain * unit_scale(sig.units), self.header.sfreq


# --------------------------------------------------------------------------------------------
# per-sample stage vectors (PhysioNet/CinC 2018)
# --------------------------------------------------------------------------------------------

SAMPLE_STAGE_ORDER: tuple[tuple[str, int], ...] = (
    ("wake", 0), ("nonrem1", 1), ("nonrem2", 2), ("nonrem3", 3), ("rem", 4), ("undefined", UNKNOWN),
)
"""Stage vectors of ``data/sleep_stages`` and their harmonized code."""


def read_sample_stages(path: str | os.PathLike, sfreq: float, epoch_s: float = 30.0,
                       group: str = "data/sleep_stages") -> np.ndarray:
    """Stages per 30-s epoch from per-sample 0/1 stage vectors in a MATLAB v7.3 (HDF5) file.

    Each vector (``wake``, ``nonrem1``, ``nonrem2``, ``nonrem3``, ``rem``, ``undefined``) has one
    value per signal sample. Epoch ``i`` covers samples ``[i * epoch_s * sfreq, (i + 1) * ...)`` from
    the signal start and takes the stage marked on most of its samples; ``undefined``, no mark at
    all, or a tie between two stages give -1. A trailing partial epoch is dropped.

    Raises
    ------
    AnnotationError
        Not an HDF5 / MATLAB v7.3 file, missing vectors, vectors of different lengths.
    """
    import h5py

    name = Path(path).name
    spe = int(round(epoch_s * sfreq))
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise AnnotationError(f"{name}: not a MATLAB v7.3 (HDF5) file") from None
    with f:
        if group not in f:
            raise AnnotationError(f"{name}: no '{group}' in the file")
        g = f[group]
        counts, n_samples = [], None
        for key, _code in SAMPLE_STAGE_ORDER:
            if key not in g:
                raise AnnotationError(f"{name}: no '{group}/{key}' vector")
            v = np.asarray(g[key][()]).ravel()
            if n_samples is None:
                n_samples = v.size
            elif v.size != n_samples:
                raise AnnotationError(f"{name}: '{key}' has {v.size} samples, expected {n_samples}")
            n_ep = v.size // spe
            counts.append((v[:n_ep * spe] > 0.5).reshape(n_ep, spe).sum(axis=1))
    counts = np.stack(counts, axis=1)  # (n_epochs, 6)
    codes = np.array([c for _k, c in SAMPLE_STAGE_ORDER], dtype=np.int8)
    best = counts.argmax(axis=1)
    top = counts[np.arange(len(counts)), best]
    second = np.sort(counts, axis=1)[:, -2] if counts.shape[1] > 1 else np.zeros_like(top)
    out = codes[best]
    out[(top == 0) | (top == second)] = UNKNOWN
    return out.astype(np.int8)


# --------------------------------------------------------------------------------------------
# Dreem Open Datasets (DOD-H, DOD-O)
# --------------------------------------------------------------------------------------------

DOD_SFREQ = 250.0
"""Sampling rate of every DOD signal (Guillot et al. 2020; dreem-learning-open exports at 250 Hz)."""


def find_dod(src: Path, labels: dict | None = None) -> list[Record]:
    """One record per ``<uuid>.h5`` (any depth); signals and consensus hypnogram share the file."""
    return [Record(id=p.stem, subject=p.stem, signal=p, annotation=None, labels=dict(labels or {}))
            for p in sorted(Path(src).rglob("*.h5")) if not p.name.startswith(".")]


def open_dod(record: Record) -> Hdf5Source:
    return Hdf5Source(record.signal, "signals", default_sfreq=DOD_SFREQ)


def read_dod_hypnogram(path: str | os.PathLike) -> np.ndarray:
    """The ``hypnogram`` dataset of a DOD file: one code per 30-s epoch from the signal start.

    Codes (dreem-learning-open README): -1 not scored (e.g. bad signal quality), 0 W, 1 N1, 2 N2,
    3 N3, 4 REM — already the harmonized codes. Anything else raises :class:`AnnotationError`.
    """
    import h5py

    name = Path(path).name
    try:
        with h5py.File(path, "r") as f:
            if "hypnogram" not in f:
                raise AnnotationError(f"{name}: no 'hypnogram' dataset")
            hyp = np.asarray(f["hypnogram"][()]).ravel()
    except OSError as exc:
        raise AnnotationError(f"{name}: not a readable HDF5 file ({exc})") from None
    bad = ~np.isin(hyp, [-1, 0, 1, 2, 3, 4])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{name}: hypnogram epoch {i} has unknown code {hyp[i].item()!r} (expected -1..4)")
    return hyp.astype(np.int8)


def dod_stages(record: Record, signal_start) -> np.ndarray:
    """DatasetSpec.read_stages for DOD: the hypnogram stored beside the signals."""
    return read_dod_hypnogram(record.signal)
