"""Reading EDF/EDF+/BDF signals through edfio, each channel at its own native sampling rate.

``mne.io.read_raw_edf`` resamples every channel to the highest rate in the file, which would
make an EMG recorded at 200 Hz and an EEG at 256 Hz look alike and waste memory. edfio
memory-maps the data records (lazy loading), so a channel is read alone, at its native rate,
without loading the rest of the night. This module is the thin layer the pipeline needs on top:

* **one-line errors** naming the file (:class:`EdfError`) for what cannot be read at all: empty
  or foreign files, malformed headers, EDF+D/BDF+D (discontinuous), an EDF+C whose record onsets
  have a gap (:mod:`.continuity`), a record duration ≤ 0, no complete data record;
* **header repairs** edfio does not do: NUL-padded fields and comma decimals (``"0,5"``) are
  read as spaces and dots;
* **per-channel validation**: a channel whose header makes its values meaningless (digital or
  physical minimum equal to its maximum, a range that is not a number, samples per record ≤ 0,
  an implausible sampling rate) is dropped and named in :attr:`EdfHeader.dropped`; the rest of
  the file stays usable;
* **warnings, not failures**, for what can be read honestly: data shorter than the header
  declares (a recorder that crashed) is read up to the last complete record; duplicate labels
  stay reachable (``"C3#2"``) and the choice is reported; an invalid start date leaves the
  start unknown;
* **units**: voltages are returned in volts, anything else (°C, %, bpm) in its own unit;
* :func:`parse_start` is the one start-date parser of the project (EDF+ ``Startdate`` with a
  four-digit year wins over the two-digit header year).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import mmap
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("preprocess")

_UNIT_TO_VOLT = {"V": 1.0, "MV": 1e-3, "UV": 1e-6, "NV": 1e-9}
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
MAX_SFREQ = 20_000.0
"""Highest plausible sampling rate (Hz) of a PSG channel; above it the header is taken as broken."""

# Fixed part of the header: (offset, width) of each field (EDF spec, 256 bytes).
_DATE, _TIME, _HEADER_BYTES, _RESERVED = (168, 8), (176, 8), (184, 8), (192, 44)
_N_RECORDS, _DURATION, _N_SIGNALS, _RECORDING = (236, 8), (244, 8), (252, 4), (88, 80)
# Signal part: field name, width; each field is stored for every signal before the next field.
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("dimension", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8), ("prefiltering", 80),
                  ("samples", 8), ("reserved", 32))
_NUMERIC_SIGNAL_FIELDS = ("physical_min", "physical_max", "digital_min", "digital_max", "samples")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}


class EdfError(ValueError):
    """An EDF file that cannot be read; the message is one line naming the file and the problem."""


# --------------------------------------------------------------------------------------------
# start date: the one parser of the project
# --------------------------------------------------------------------------------------------


def parse_start(date: str, time: str, recording: str = "") -> dt.datetime | None:
    """Start of a recording from its header fields; None when they do not form a valid date.

    Parameters
    ----------
    date, time : str
        Header fields ``dd.mm.yy`` and ``hh.mm.ss`` (bytes 168-183). Two-digit years 85-99 are
        1985-1999, 00-84 are 2000-2084 (EDF spec).
    recording : str
        Local recording identification (bytes 88-167). An EDF+ ``Startdate dd-MMM-yyyy`` there
        gives the four-digit year (and date), which wins over the two-digit field.

    Examples
    --------
    >>> parse_start("24.04.89", "16.13.00")
    datetime.datetime(1989, 4, 24, 16, 13)
    >>> parse_start("01.01.85", "22.00.00", "Startdate 01-JAN-2085 X X X")
    datetime.datetime(2085, 1, 1, 22, 0)
    """
    try:
        day, month, yy = (int(v) for v in re.split(r"[.:\-/ ]", date.strip()))
        hh, mm, ss = (int(v) for v in re.split(r"[.:\-/ ]", time.strip()))
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


def read_start(path: str | os.PathLike) -> dt.datetime | None:
    """Start date and time from an EDF/EDF+/BDF header (:func:`parse_start`); None if unknown."""
    with open(path, "rb") as fh:
        head = fh.read(184).replace(b"\x00", b" ").decode("latin-1")
    if len(head) < 184:
        return None
    return parse_start(_text(head, _DATE), _text(head, _TIME), _text(head, _RECORDING))


# --------------------------------------------------------------------------------------------
# header
# --------------------------------------------------------------------------------------------


@dataclass
class EdfHeader:
    """The parts of an EDF/BDF header the pipeline needs, after validation.

    Attributes
    ----------
    path : Path
    labels : list of str
        Labels of every data signal (annotation signals excluded), stripped; repeated labels
        get ``#2``, ``#3``… on their later copies so that every copy is reachable.
    sfreqs : list of float
        Native sampling rate of each signal in ``labels`` (Hz).
    units : list of str
        Physical dimension of each signal as written (e.g. ``"uV"``).
    n_records : int
        Complete data records that will be read (fewer than declared for a truncated file).
    record_duration : float
        Seconds per data record.
    start_time : datetime.datetime or None
        None when the header date/time is invalid.
    variant : str
        ``"EDF"``, ``"EDF+C"``, ``"EDF+D"``, ``"BDF"``, ``"BDF+C"`` or ``"BDF+D"``.
    dropped : dict
        Label → one-line reason for signals whose header makes them unusable.
    warnings : list of str
        Problems tolerated while reading (truncation, duplicate labels, invalid date…).
    """

    path: Path
    labels: list[str]
    sfreqs: list[float]
    units: list[str]
    n_records: int
    record_duration: float
    start_time: dt.datetime | None
    variant: str
    dropped: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    declared_records: int = 0
    samples_per_record: list = field(default_factory=list, repr=False)

    @property
    def duration(self) -> float:
        """Recording duration in seconds (of the records actually present)."""
        return self.n_records * self.record_duration

    @property
    def signal_labels(self) -> list[str]:
        """Labels of the usable data signals (annotation and dropped signals excluded)."""
        return [lab for lab in self.labels if lab not in self.dropped]

    @property
    def is_bdf(self) -> bool:
        return self.variant.startswith("BDF")


def _text(raw: str, where: tuple[int, int]) -> str:
    return raw[where[0]:where[0] + where[1]].strip()


def _number(text: str) -> str:
    """A numeric header field as Python reads it: comma decimals (``"0,5"``) become dots."""
    return text.strip().replace(",", ".")


def _signal_columns(raw: str, n_signals: int) -> dict[str, list[str]]:
    """Field name → the value of that field for every signal (stripped text)."""
    cols, start = {}, 256
    for name, width in _SIGNAL_FIELDS:
        cols[name] = [raw[start + i * width:start + (i + 1) * width].strip() for i in range(n_signals)]
        start += width * n_signals
    return cols


def _rebuild_signal_block(cols: dict[str, list[str]], n_signals: int) -> str:
    """The signal part of a header from its columns (each value padded to its field width)."""
    parts = []
    for name, width in _SIGNAL_FIELDS:
        parts.extend(v[:width].ljust(width) for v in cols[name])
    return "".join(parts)


@dataclass
class _Raw:
    """What :func:`_parse_raw` finds in the header bytes, before edfio reads them."""

    header: bytes  # repaired header (NULs and comma decimals fixed), same length
    repaired: bool
    is_bdf: bool
    variant: str
    n_declared: int
    n_available: int
    partial_record: bool
    duration: float
    cols: dict
    spr: list


def _parse_raw(path: Path) -> _Raw:
    """Check the fixed header fields, repair what edfio cannot parse, size the data part."""
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EdfError(f"{name}: cannot open ({exc.strerror})") from None
    if path.is_dir():
        raise EdfError(f"{name}: is a folder, not an EDF file")
    if size == 0:
        raise EdfError(f"{name}: file is empty (0 bytes)")
    with open(path, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise EdfError(f"{name}: not an EDF file (only {len(fixed)} bytes, header needs 256)")
        is_bdf = fixed[:1] == b"\xff" and fixed[1:8] == b"BIOSEMI"
        if not is_bdf and fixed[:8].replace(b"\x00", b" ") != b"0       ":
            raise EdfError(f"{name}: not an EDF/BDF file (bad version field {fixed[:8]!r})")
        text = fixed.replace(b"\x00", b" ").decode("latin-1")
        try:
            header_bytes = int(_number(_text(text, _HEADER_BYTES)))
            n_declared = int(_number(_text(text, _N_RECORDS)))
            duration = float(_number(_text(text, _DURATION)))
            n_signals = int(_number(_text(text, _N_SIGNALS)))
        except ValueError:
            raise EdfError(f"{name}: malformed EDF header (non-numeric size fields)") from None
        if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
            raise EdfError(f"{name}: malformed EDF header ({n_signals} signals, {header_bytes} header bytes)")
        rest = fh.read(256 * n_signals)
    if len(rest) < 256 * n_signals:
        raise EdfError(f"{name}: truncated header ({256 + len(rest)} of {header_bytes} bytes)")
    raw = fixed + rest
    text = raw.replace(b"\x00", b" ").decode("latin-1")
    cols = _signal_columns(text, n_signals)
    try:
        spr = [int(float(_number(v))) for v in cols["samples"]]
    except ValueError:
        raise EdfError(f"{name}: malformed EDF header (non-numeric samples per record)") from None
    reserved = _text(text, _RESERVED)
    fmt = "BDF" if is_bdf else "EDF"
    variant = fmt + ("+D" if reserved[4:5] == "D" and reserved[:3] in ("EDF", "BDF") else
                     "+C" if reserved[4:5] == "C" and reserved[:3] in ("EDF", "BDF") else "")
    data_signals = [i for i, lab in enumerate(cols["label"]) if lab not in _ANNOTATION_LABELS]
    if duration <= 0 and data_signals:
        raise EdfError(f"{name}: record duration is {duration:g} s (must be > 0)")
    # A channel with samples per record <= 0 occupies no bytes; edfio's layout needs a 0 there.
    spr = [max(n, 0) for n in spr]
    record_bytes = sum(spr) * (3 if is_bdf else 2)
    if record_bytes == 0:
        raise EdfError(f"{name}: no signal has samples (samples per record is 0 for every signal)")
    n_available, tail = divmod(size - header_bytes, record_bytes)
    # Rebuild the numeric fields in a form edfio reads: dots for commas, no NULs, spr >= 0.
    for key in _NUMERIC_SIGNAL_FIELDS:
        cols[key] = [_number(v) for v in cols[key]]
    cols["samples"] = [str(n) for n in spr]
    fixed_text = text[:256]
    for where in (_HEADER_BYTES, _N_RECORDS, _DURATION, _N_SIGNALS):
        value = _number(_text(fixed_text, where)).ljust(where[1])[:where[1]]
        fixed_text = fixed_text[:where[0]] + value + fixed_text[where[0] + where[1]:]
    header = (fixed_text + _rebuild_signal_block(cols, n_signals)).encode("latin-1")
    return _Raw(header, header != raw, is_bdf, variant, n_declared, n_available, tail > 0,
                duration if duration > 0 else 1.0, cols, spr)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _signal_problem(cols: dict, i: int, spr: int, duration: float) -> str | None:
    """Why signal ``i`` cannot be converted to physical values, or None when it can."""
    pmin, pmax = _float_or_nan(cols["physical_min"][i]), _float_or_nan(cols["physical_max"][i])
    dmin, dmax = _float_or_nan(cols["digital_min"][i]), _float_or_nan(cols["digital_max"][i])
    if spr <= 0:
        return "samples per record is 0 (no data)"
    for what, key, value in (("physical minimum", "physical_min", pmin), ("physical maximum", "physical_max", pmax),
                             ("digital minimum", "digital_min", dmin), ("digital maximum", "digital_max", dmax)):
        if not np.isfinite(value):
            text = cols[key][i]
            kind = "NaN" if text.lower() == "nan" else "infinite" if text.lower().lstrip("+-") in ("inf", "infinity") \
                else "not a number"
            return f"{what} is {kind} ({text!r}): values cannot be scaled"
    if dmin == dmax:
        return f"digital minimum equals digital maximum ({dmin:g}): values cannot be scaled"
    if pmin == pmax:
        return f"physical minimum equals physical maximum ({pmin:g}): values cannot be scaled"
    sfreq = spr / duration
    if sfreq > MAX_SFREQ:
        return f"implausible sampling rate {sfreq:g} Hz ({spr} samples in a {duration:g}-s record)"
    return None


def _unique_labels(labels: list[str]) -> tuple[list[str], list[str]]:
    """Give later copies of a repeated label ``#2``, ``#3``…; return (labels, warnings)."""
    out, seen, notes = [], {}, []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    for lab, n in seen.items():
        if n > 1:
            others = ", ".join(f"'{lab}#{k}'" for k in range(2, n + 1))
            notes.append(f"label '{lab}' appears {n} times: the first copy is used as '{lab}', "
                         f"the others are reachable as {others}")
    return out, notes


def _open(path: Path):
    """``(edfio object, _Raw)``; edfio reads the repaired header when a repair was needed."""
    import edfio

    raw = _parse_raw(path)
    if raw.n_available == 0:
        what = "no data records" if raw.n_declared == 0 and not raw.partial_record else \
            "truncated: not one complete data record"
        raise EdfError(f"{path.name}: {what}")
    # edfio memory-maps EDF data (lazy); it decodes BDF's 24-bit samples eagerly.
    kw = {"header_encoding": "latin-1"} | ({} if raw.is_bdf else {"lazy_load_data": True})
    reader = edfio.read_bdf if raw.is_bdf else edfio.read_edf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # edfio's own truncation notices; ours are more specific
        try:
            if raw.repaired:
                data = path.read_bytes()
                return reader(raw.header + data[len(raw.header):], **kw), raw
            return reader(path, **kw), raw
        except (ValueError, TypeError, ZeroDivisionError, UnboundLocalError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise EdfError(f"{path.name}: malformed EDF header ({text})") from None


def _header_from(path: Path, raw: _Raw) -> EdfHeader:
    notes: list[str] = []
    n_records = raw.n_available
    if raw.n_declared >= 0 and raw.n_available < raw.n_declared:
        notes.append(f"truncated: header declares {raw.n_declared} data records but the file holds "
                     f"{raw.n_available}; read up to the last complete record "
                     f"({raw.n_available * raw.duration:g} s)")
    elif raw.n_declared > 0 and raw.n_available > raw.n_declared:
        n_records = raw.n_declared
        notes.append(f"the file holds {raw.n_available} data records, more than the {raw.n_declared} "
                     "the header declares; the extra data is ignored")
    elif raw.partial_record:
        notes.append("incomplete data record at the end of the file ignored")
    if raw.n_declared < 0:
        notes.append(f"number of data records unknown (-1) in the header: {raw.n_available} read")
    text = raw.header.decode("latin-1")
    start = parse_start(_text(text, _DATE), _text(text, _TIME), _text(text, _RECORDING))
    if start is None:
        notes.append(f"invalid start date/time {_text(text, _DATE)!r} {_text(text, _TIME)!r}: "
                     "start time unknown")
    indices = [i for i, lab in enumerate(raw.cols["label"]) if lab not in _ANNOTATION_LABELS]
    labels, dup_notes = _unique_labels([raw.cols["label"][i] for i in indices])
    notes += dup_notes
    dropped = {}
    for lab, i in zip(labels, indices):
        problem = _signal_problem(raw.cols, i, raw.spr[i], raw.duration)
        if problem is not None:
            dropped[lab] = problem
    header = EdfHeader(
        path=path, labels=labels, sfreqs=[raw.spr[i] / raw.duration for i in indices],
        units=[raw.cols["dimension"][i] for i in indices], n_records=n_records,
        record_duration=raw.duration, start_time=start, variant=raw.variant, dropped=dropped,
        warnings=notes, declared_records=raw.n_declared, samples_per_record=[raw.spr[i] for i in indices])
    return header


def read_header(path: str | os.PathLike) -> EdfHeader:
    """Parse and validate an EDF, EDF+ or BDF header (edfio), without reading the signals.

    Raises
    ------
    EdfError
        Zero-byte, not EDF, malformed header, record duration ≤ 0, no complete data record.
    """
    path = Path(path)
    _, raw = _open(path)  # edfio parses the header too: what it cannot read is refused here
    return _header_from(path, raw)


def is_annotation_only(path: str | os.PathLike) -> bool:
    """Whether an EDF+/BDF+ file holds only annotation signals (a scoring file, not a recording).

    False for anything that is not a readable EDF header (the reader reports those itself).
    """
    try:
        with open(path, "rb") as fh:
            fixed = fh.read(256)
            n_signals = int(fixed[252:256].replace(b"\x00", b" ").decode("latin-1").strip())
            labels = fh.read(16 * n_signals).decode("latin-1")
    except (OSError, ValueError):
        return False
    found = [labels[i * 16:(i + 1) * 16].strip() for i in range(n_signals)]
    return bool(found) and all(lab in _ANNOTATION_LABELS for lab in found)


def unit_scale(unit: str) -> float:
    """Factor converting a physical dimension to volts.

    Voltages (V, mV, µV, nV) are scaled to volts; an empty field is taken as µV (the usual PSG
    unit, and what exporters that leave it blank mean); any other unit (``degC``, ``%``,
    ``bpm``) returns 1.0, i.e. the values stay in their own unit.
    """
    key = unit.strip().replace("\u03bc", "u").replace("\u00b5", "u").upper()  # Greek mu / micro sign
    if not key:
        return 1e-6
    return _UNIT_TO_VOLT.get(key, 1.0)


def is_voltage(unit: str) -> bool:
    """Whether a physical dimension is a voltage (or empty, taken as µV)."""
    key = unit.strip().replace("\u03bc", "u").replace("\u00b5", "u").upper()
    return not key or key in _UNIT_TO_VOLT


def _release_pages(loader) -> None:
    """Unmap the resident pages of edfio's memory map after a read.

    The pages stay in the OS page cache; without this every byte of the file read once counts
    in this process's resident memory until the reader is closed (118 MB for an 8-h 8-channel
    night, 530 MB at 36 h).
    """
    mm = getattr(getattr(loader, "buffer", None), "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


def _refuse_gaps(path: Path, raw: _Raw, header: EdfHeader) -> None:
    """Raise :class:`EdfError` when an EDF+C's record onsets have a gap (:mod:`.continuity`)."""
    from .continuity import describe_gap, first_gap, record_onsets

    onsets = record_onsets(path, len(raw.header), raw.cols["label"], raw.spr, header.n_records, raw.is_bdf)
    gap = first_gap(onsets, raw.duration) if onsets is not None else None
    if gap is not None:
        raise EdfError(f"{path.name}: {describe_gap(raw.variant, gap, onsets)}")


class CalibratedChannel:
    """One channel as digital samples, read as float64 physical values one slice at a time.

    ``len(ch)``, ``ch.size`` and ``ch[a:b]`` (a contiguous slice: a new float64 array) behave as on
    the calibrated whole channel, which never exists: a 36-h 256-Hz channel is 66 MB of int16
    here against 265 MB of float64 (:meth:`EdfReader.read_calibrated`).
    """

    ndim = 1
    dtype = np.dtype(np.float64)

    def __init__(self, digital: np.ndarray, calibrate):
        self._digital = digital
        self._calibrate = calibrate

    def __len__(self) -> int:
        return int(self._digital.size)

    @property
    def size(self) -> int:
        return int(self._digital.size)

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a CalibratedChannel is read by contiguous slices only (ch[a:b])")
        return self._calibrate(self._digital[key])

    def strided(self, step: int) -> np.ndarray:
        """``whole[::step]`` of the calibrated channel (only those samples are calibrated)."""
        return self._calibrate(self._digital[::step])

    def finite_range(self) -> tuple[float, float] | None:
        """``(min, max)`` of the calibrated samples from the digital extremes, or None when a calibrated
        extreme is not finite (then nothing can be said without the samples).

        The calibration ``d·g + o`` is the same monotone float64 function for every sample, so it maps the
        digital minimum and maximum to the calibrated ones exactly (swapped when ``g < 0``); every sample
        in between is then finite too.
        """
        return self._finite_ends

    @functools.cached_property
    def _finite_ends(self) -> tuple[float, float] | None:
        # computed once per channel: the quality gate asks up to three times (~20 ms each at 36 h)
        if self._digital.size == 0:
            return None
        ends = self._calibrate(np.array([self._digital.min(), self._digital.max()], dtype=self._digital.dtype))
        if not np.isfinite(ends).all():
            return None
        return float(ends.min()), float(ends.max())


class EdfReader:
    """Read single channels of an EDF/BDF file at their native rate (volts for voltages).

    Parameters
    ----------
    path : path-like
    allow_discontinuous : bool
        EDF+D/BDF+D files have gaps between records; treating them as continuous would shift
        every later epoch, so they are refused unless explicitly allowed.

    Attributes
    ----------
    header : EdfHeader
        Validated header; ``header.dropped`` and ``header.warnings`` say what was tolerated.

    Examples
    --------
    >>> reader = EdfReader("night.edf")                         # doctest: +SKIP
    >>> x, sfreq = reader.read("EEG C3-M2")                     # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, allow_discontinuous: bool = False):
        path = Path(path)
        self._edf, raw = _open(path)
        if raw.variant.endswith("+D") and not allow_discontinuous:
            raise EdfError(f"{path.name}: {raw.variant} (discontinuous) recordings are not supported")
        self.header = _header_from(path, raw)
        if raw.variant.endswith("+C") and not allow_discontinuous:
            _refuse_gaps(path, raw, self.header)
        # Reported once, when the signals are opened (read_header alone stays quiet).
        for note in self.header.warnings:
            log.warning("%s: %s", path.name, note)
        for lab, why in self.header.dropped.items():
            log.warning("%s: signal '%s' dropped: %s", path.name, lab, why)
        if not self.header.signal_labels:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.header.dropped.items())
            raise EdfError(f"{path.name}: no readable signal ({reasons or 'annotation-only file'})")
        self._signals = list(self._edf.signals)  # data signals, in header order

    @property
    def labels(self) -> list[str]:
        """Usable signal labels (dropped signals are not offered)."""
        return self.header.signal_labels

    @property
    def start_time(self) -> dt.datetime | None:
        return self.header.start_time

    def _index(self, label: str) -> int:
        if label in self.header.dropped:
            raise KeyError(f"{self.header.path.name}: channel {label!r} dropped: {self.header.dropped[label]}")
        try:
            return self.header.labels.index(label)
        except ValueError:
            raise KeyError(f"{self.header.path.name}: no channel {label!r}") from None

    def sfreq(self, label: str) -> float:
        return self.header.sfreqs[self._index(label)]

    def unit(self, label: str) -> str:
        """Physical dimension of a channel as written in the header."""
        return self.header.units[self._index(label)]

    def physical_range(self, label: str) -> tuple[float, float]:
        """``(physical minimum, physical maximum)`` of a channel from the header, in the unit
        :meth:`read` returns (volts for voltages).

        A recorder that clips writes its digital limits, which calibrate to exactly these
        values; the quality gate judges saturation against them (``staging.quality``).
        """
        i = self._index(label)
        sig = self._signals[i]
        scale = unit_scale(self.header.units[i])
        return float(sig.physical_min) * scale, float(sig.physical_max) * scale

    def read(self, label: str, dtype=np.float64) -> tuple[np.ndarray, float]:
        """Return ``(signal, native sampling rate in Hz)`` for one channel.

        Voltages are in volts, other units in their own unit (see :func:`unit_scale`). The
        digital values come from edfio's memory map and are calibrated in place in ``dtype``
        (float32 halves the memory and time of a night; float64 is the default).
        """
        i = self._index(label)
        return self.read_span(label, 0, self.n_samples(label), dtype), self.header.sfreqs[i]

    def n_samples(self, label: str) -> int:
        """Samples of one channel (from the header; nothing is read)."""
        i = self._index(label)
        return self.header.n_records * self.header.samples_per_record[i]

    def read_span(self, label: str, start: int, stop: int, dtype=np.float64) -> np.ndarray:
        """Samples ``start:stop`` of one channel, calibrated like :meth:`read`.

        Only the data records holding the span are touched and nothing is cached, so a channel
        read span by span never exists whole in memory (:func:`preprocess.core.signal.run_chain`).
        """
        i = self._index(label)
        h = self.header
        sig = self._signals[i]
        spr = h.samples_per_record[i]
        stop = min(stop, h.n_records * spr)
        if stop <= start:
            return np.zeros(0, dtype=dtype)
        loader = getattr(sig, "_lazy_loader", None)  # edfio's memory map (EDF); BDF is decoded eagerly
        if loader is not None:
            first, last = start // spr, min((stop - 1) // spr + 1, loader.buffer.shape[0])
            # the records interleave every channel, so a channel's read touches the whole file:
            # read ~16 MB of records at a time and unmap them, never the whole file at once
            step = max(1, (16 << 20) // max(1, loader.buffer.shape[1] * loader.buffer.itemsize))
            parts = []
            for r in range(first, last, step):
                parts.append(loader.load(r, min(last, r + step)))
                _release_pages(loader)
            digital = np.concatenate(parts)[start - first * spr: stop - first * spr]
        else:
            digital = sig.digital[start:stop]
        return self._calibrate(digital, i, dtype)

    def read_calibrated(self, label: str) -> tuple["CalibratedChannel", float]:
        """``(channel, native sampling rate)``: the channel's digital samples in memory (2 bytes a
        sample in an EDF instead of :meth:`read`'s 8), calibrated to float64 a slice at a time.

        Every slice ``channel[a:b]`` equals ``read(label)[0][a:b]`` bit for bit (the same
        calibration, element by element); the quality gate reads channels this way.
        """
        i = self._index(label)
        sig = self._signals[i]
        n = self.n_samples(label)
        loader = getattr(sig, "_lazy_loader", None)
        if loader is None:  # BDF: decoded eagerly by edfio, already in memory
            digital = np.asarray(sig.digital)[:n]
        else:
            spr = self.header.samples_per_record[i]
            last = min(n // spr + (n % spr > 0), loader.buffer.shape[0])
            step = max(1, (16 << 20) // max(1, loader.buffer.shape[1] * loader.buffer.itemsize))
            digital = None
            for r in range(0, last, step):  # filled in place: no list of parts and no concatenated copy
                part = np.asarray(loader.load(r, min(last, r + step))).reshape(-1)
                _release_pages(loader)
                if digital is None:
                    digital = np.empty(min(n, last * spr), dtype=part.dtype)
                digital[r * spr: r * spr + part.size] = part[: max(0, digital.size - r * spr)]
            if digital is None:
                digital = np.zeros(0, dtype=np.int16)
        return CalibratedChannel(digital, lambda d, i=i: self._calibrate(d, i, np.float64)), self.header.sfreqs[i]

    def _calibrate(self, digital: np.ndarray, i: int, dtype) -> np.ndarray:
        sig = self._signals[i]
        gain = (sig.physical_max - sig.physical_min) / (sig.digital_max - sig.digital_min)
        offset = sig.physical_max - gain * sig.digital_max
        scale = unit_scale(self.header.units[i])
        x = digital.astype(dtype)
        x *= gain * scale
        x += offset * scale
        return x

    def close(self) -> None:
        self._signals = []
        self._edf = None

    def __enter__(self) -> "EdfReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
