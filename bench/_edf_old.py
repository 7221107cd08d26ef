"""[bench copy of the hand-written reader replaced by the edfio adapter; kept only to measure read speed]

Reading EDF/EDF+/BDF signals, each channel at its own native sampling rate.

``mne.io.read_raw_edf`` resamples every channel to the highest rate in the file, which would
make an EMG recorded at 200 Hz and an EEG at 256 Hz look alike and waste memory. This reader
parses the fixed-layout header and memory-maps the data records, so a channel is read alone,
at its native rate, without loading the rest of the night.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_UNIT_TO_VOLT = {"V": 1.0, "MV": 1e-3, "UV": 1e-6, "NV": 1e-9}


class EdfError(ValueError):
    """An EDF file that cannot be read; the message is one line naming the file and the problem."""


@dataclass
class EdfHeader:
    """The parts of an EDF/BDF header the pipeline needs.

    Attributes
    ----------
    path : Path
    labels : list of str
        Signal labels, stripped.
    sfreqs : list of float
        Native sampling rate of each signal (Hz).
    units : list of str
        Physical dimension of each signal as written (e.g. ``"uV"``).
    n_records : int
        Number of data records present in the file.
    record_duration : float
        Seconds per data record.
    start_time : datetime.datetime or None
    variant : str
        ``"EDF"``, ``"EDF+C"``, ``"EDF+D"`` or ``"BDF"``.
    """

    path: Path
    labels: list[str]
    sfreqs: list[float]
    units: list[str]
    n_records: int
    record_duration: float
    start_time: dt.datetime | None
    variant: str
    header_bytes: int
    samples_per_record: list[int] = field(repr=False)
    gains: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    sample_bytes: int = 2

    @property
    def duration(self) -> float:
        """Recording duration in seconds."""
        return self.n_records * self.record_duration

    @property
    def signal_labels(self) -> list[str]:
        """Labels of the data signals (EDF+ annotation channels excluded)."""
        return [lab for lab in self.labels if lab != "EDF Annotations" and lab != "BDF Annotations"]


def _field(raw: bytes, start: int, width: int) -> str:
    return raw[start:start + width].decode("latin-1").strip()


def _parse_start(date: str, time: str) -> dt.datetime | None:
    try:
        day, month, year = (int(v) for v in date.replace(":", ".").split("."))
        hour, minute, second = (int(v) for v in time.replace(":", ".").split("."))
        year += 1900 if year >= 85 else 2000  # EDF spec: 85-99 → 19xx, 00-84 → 20xx
        return dt.datetime(year, month, day, hour, minute, second)
    except (ValueError, TypeError):
        return None


def read_header(path: str | os.PathLike) -> EdfHeader:
    """Parse an EDF, EDF+ or BDF header.

    Raises
    ------
    EdfError
        Zero-byte, not EDF, malformed header, or truncated data (fewer bytes than the header
        declares; a partial trailing record is tolerated and dropped).
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EdfError(f"{name}: cannot open ({exc.strerror})") from None
    if size == 0:
        raise EdfError(f"{name}: file is empty (0 bytes)")
    with open(path, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise EdfError(f"{name}: not an EDF file (only {len(fixed)} bytes, header needs 256)")
        is_bdf = fixed[:1] == b"\xff" and fixed[1:8] == b"BIOSEMI"
        if not is_bdf and fixed[:8] != b"0       ":
            raise EdfError(f"{name}: not an EDF/BDF file (bad version field {fixed[:8]!r})")
        try:
            header_bytes = int(_field(fixed, 184, 8))
            n_records = int(_field(fixed, 236, 8))
            record_duration = float(_field(fixed, 244, 8))
            n_signals = int(_field(fixed, 252, 4))
        except ValueError:
            raise EdfError(f"{name}: malformed EDF header (non-numeric size fields)") from None
        if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
            raise EdfError(f"{name}: malformed EDF header ({n_signals} signals, {header_bytes} header bytes)")
        rest = fh.read(256 * n_signals)
    if len(rest) < 256 * n_signals:
        raise EdfError(f"{name}: truncated header")
    reserved = _field(fixed, 192, 44)
    variant = "BDF" if is_bdf else ("EDF+D" if reserved.startswith("EDF+D") else
                                    "EDF+C" if reserved.startswith("EDF+C") else "EDF")

    def column(offset: int, width: int) -> list[str]:
        base = offset * n_signals
        return [_field(rest, base + i * width, width) for i in range(n_signals)]

    labels = column(0, 16)
    units = column(16 + 80, 8)
    try:
        pmin = np.array([float(v) for v in column(16 + 80 + 8, 8)])
        pmax = np.array([float(v) for v in column(16 + 80 + 16, 8)])
        dmin = np.array([float(v) for v in column(16 + 80 + 24, 8)])
        dmax = np.array([float(v) for v in column(16 + 80 + 32, 8)])
        spr = [int(v) for v in column(16 + 80 + 40 + 80, 8)]
    except ValueError:
        raise EdfError(f"{name}: malformed EDF header (non-numeric signal fields)") from None
    if record_duration <= 0:
        record_duration = 1.0  # some exporters write 0 for annotation-only files
    sample_bytes = 3 if is_bdf else 2
    record_bytes = sum(spr) * sample_bytes
    available = (size - header_bytes) // record_bytes if record_bytes else 0
    if n_records < 0:  # -1 = unknown (recording not closed properly): use what is there
        n_records = available
    elif available < n_records:
        raise EdfError(
            f"{name}: truncated: header declares {n_records} data records but the file holds {available}"
        )
    span = np.where(dmax - dmin == 0, 1.0, dmax - dmin)
    gains = (pmax - pmin) / span
    offsets = pmax - gains * dmax
    return EdfHeader(
        path=path, labels=labels, sfreqs=[n / record_duration for n in spr], units=units,
        n_records=n_records, record_duration=record_duration,
        start_time=_parse_start(_field(fixed, 168, 8), _field(fixed, 176, 8)), variant=variant,
        header_bytes=header_bytes, samples_per_record=spr, gains=gains, offsets=offsets,
        sample_bytes=sample_bytes,
    )


def unit_scale(unit: str) -> float:
    """Factor converting a physical dimension to volts (µV assumed when the field is empty/unknown)."""
    key = unit.strip().replace("\u03bc", "u").replace("\u00b5", "u").upper()  # Greek mu / micro sign
    return _UNIT_TO_VOLT.get(key, 1e-6)


class EdfReader:
    """Read single channels of an EDF/BDF file at their native rate, in volts.

    Parameters
    ----------
    path : path-like
    allow_discontinuous : bool
        EDF+D files have gaps between records; treating them as continuous would shift every
        later epoch, so they are refused unless explicitly allowed.

    Examples
    --------
    >>> reader = EdfReader("night.edf")                         # doctest: +SKIP
    >>> x, sfreq = reader.read("EEG C3-M2")                     # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, allow_discontinuous: bool = False):
        self.header = read_header(path)
        if self.header.variant == "EDF+D" and not allow_discontinuous:
            raise EdfError(f"{self.header.path.name}: EDF+D (discontinuous) recordings are not supported")
        if self.header.n_records == 0:
            raise EdfError(f"{self.header.path.name}: no data records")
        self._memmap: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return self.header.signal_labels

    @property
    def start_time(self) -> dt.datetime | None:
        return self.header.start_time

    def sfreq(self, label: str) -> float:
        return self.header.sfreqs[self._index(label)]

    def _index(self, label: str) -> int:
        try:
            return self.header.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.header.path.name}: no channel {label!r}") from None

    def _records(self) -> np.ndarray:
        if self._memmap is None:
            h = self.header
            per_record = sum(h.samples_per_record)
            if h.sample_bytes == 2:
                self._memmap = np.memmap(h.path, dtype="<i2", mode="r", offset=h.header_bytes,
                                         shape=(h.n_records, per_record))
            else:
                self._memmap = np.memmap(h.path, dtype=np.uint8, mode="r", offset=h.header_bytes,
                                         shape=(h.n_records, per_record * 3))
        return self._memmap

    def read(self, label: str) -> tuple[np.ndarray, float]:
        """Return ``(signal in volts as float64, native sampling rate in Hz)`` for one channel."""
        h = self.header
        i = self._index(label)
        start = sum(h.samples_per_record[:i])
        n = h.samples_per_record[i]
        records = self._records()
        if h.sample_bytes == 2:
            digital = np.asarray(records[:, start:start + n], dtype=np.float64).ravel()
        else:
            raw = np.asarray(records[:, 3 * start:3 * (start + n)]).reshape(-1, 3).astype(np.int32)
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            digital = np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.float64)
        physical = digital * h.gains[i] + h.offsets[i]
        return physical * unit_scale(h.units[i]), h.sfreqs[i]

    def close(self) -> None:
        self._memmap = None

    def __enter__(self) -> "EdfReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
