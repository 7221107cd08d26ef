"""A corpus of malformed and unusual recordings, written with edfio and byte edits (issue 9).

:func:`write_corpus` writes one file per case into a folder and returns the cases, each with the
exact outcome ``inference.py`` must report. Signals are simulated (sinusoids and noise in µV);
they only need to look like EEG/EOG/EMG to the signal chain, not to be realistic.

Run ``python -m tests.corpus OUT_DIR`` to write the corpus for a manual look.
"""

from __future__ import annotations

import datetime as dt
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

START = dt.datetime(2020, 1, 1, 22, 0, 0)


@dataclass(frozen=True)
class Case:
    """One corpus file and what staging it must give.

    Attributes
    ----------
    name : str
        File name in the corpus folder.
    status : {"failed", "skipped", "ok", "ignored"}
        ``ignored``: not a recording at all (a folder), reported as a note.
    reason : str
        For failed/skipped: the exact reason printed after ``FILE: ``. For ok: a text that
        must appear in the file's warnings ("" when nothing needs saying).
    montage : str
        For ok: a line that must appear in the printed montage ("" for none).
    quality_gate : bool
        The expectation belongs to the signal-quality gate of the clinical issue (staging/quality.py);
        marked xfail until it is merged.
    """

    name: str
    status: str
    reason: str
    montage: str = ""
    quality_gate: bool = False


# ------------------------------------------------------------------------------------ writing


def _sig(seconds: float, sfreq: float, amp: float, freq: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sfreq))) / sfreq
    return amp * (np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.5, t.size))


def write(path: Path, channels: dict, seconds: float = 300.0, record: float = 1.0, bdf: bool = False,
          start: dt.datetime = START, annotations=(), units: dict | None = None) -> Path:
    """Write an EDF (or BDF) with edfio: ``{label: (sfreq, amplitude µV, frequency Hz)}`` or
    ``{label: (sfreq, ndarray)}``."""
    import edfio

    signal_class, file_class = (edfio.BdfSignal, edfio.Bdf) if bdf else (edfio.EdfSignal, edfio.Edf)
    signals = []
    for k, (label, spec) in enumerate(channels.items()):
        sfreq = spec[0]
        data = spec[1] if isinstance(spec[1], np.ndarray) else _sig(seconds, sfreq, spec[1], spec[2], k)
        lo, hi = float(np.min(data)), float(np.max(data))
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        signals.append(signal_class(data, sfreq, label=label, physical_dimension=(units or {}).get(label, "uV"),
                                    physical_range=(lo, hi)))
    kw = {"annotations": [edfio.EdfAnnotation(*a) for a in annotations] or None} if not bdf else {}
    edf = file_class(signals, starttime=start.time(), data_record_duration=record,
                     recording=edfio.Recording(startdate=start.date()), **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


PSG = {"EEG C3-M2": (128.0, 30, 2.0), "EEG C4-M1": (128.0, 30, 10.0), "EOG E1-M2": (64.0, 50, 0.5),
       "EOG E2-M2": (64.0, 50, 0.4), "EMG Chin": (128.0, 5, 40.0)}
"""A small PSG montage (EEG at 128 Hz, EOG at 64 Hz) used by most cases."""


def n_signals(path: Path) -> int:
    return int(path.read_bytes()[252:256])


def patch(path: Path, offset: int, text: str | bytes) -> None:
    data = bytearray(path.read_bytes())
    raw = text.encode("latin-1") if isinstance(text, str) else text
    data[offset:offset + len(raw)] = raw
    path.write_bytes(bytes(data))


def patch_fixed(path: Path, field: str, value: str) -> None:
    """Overwrite a field of the fixed 256-byte header (value padded with spaces)."""
    offset, width = {"version": (0, 8), "date": (168, 8), "time": (176, 8), "header_bytes": (184, 8),
                     "reserved": (192, 44), "n_records": (236, 8), "duration": (244, 8),
                     "n_signals": (252, 4)}[field]
    patch(path, offset, value.ljust(width)[:width])


_SIGNAL_OFFSETS = {"label": (0, 16), "dimension": (96, 8), "physical_min": (104, 8), "physical_max": (112, 8),
                   "digital_min": (120, 8), "digital_max": (128, 8), "samples": (216, 8)}


def patch_signal(path: Path, field: str, index: int, value: str | bytes) -> None:
    """Overwrite one signal's header field (``index`` 0-based), padded with spaces."""
    ns = n_signals(path)
    base, width = _SIGNAL_OFFSETS[field]
    raw = value.encode("latin-1") if isinstance(value, str) else value
    patch(path, 256 + base * ns + index * width, raw.ljust(width, b" ")[:width])


# ------------------------------------------------------------------------------------ cases


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _good(p):
    write(p, PSG, seconds=3600.0)


def _psg(p, **kw):
    write(p, PSG, **kw)


def _edit(fn: Callable[[Path], None], **kw):
    def make(p: Path):
        write(p, PSG, **kw)
        fn(p)
    return make


def _text_file(p):
    p.write_text("this is a text file, not a recording\n" * 20)


def _gzipped(p):
    tmp = p.with_name(".tmp_gz_source.edf")
    write(tmp, PSG, seconds=60.0)
    p.write_bytes(gzip.compress(tmp.read_bytes(), mtime=0))  # mtime=0: the same bytes every time
    tmp.unlink()


def _no_eeg_eog(p):
    write(p, {"ECG": (128.0, 500, 1.2), "SpO2": (1.0, np.full(300, 95.0) + np.arange(300) % 3)})


def _unknown_labels(p):
    write(p, {"Ch1": (128.0, 30, 2.0), "Ch2": (128.0, 30, 10.0)})


def _only_emg(p):
    write(p, {"EMG Chin": (128.0, 5, 40.0)})


def _eog_only(p):
    write(p, {"EOG E1-M2": (64.0, 50, 0.5), "EOG E2-M2": (64.0, 50, 0.4), "EMG Chin": (128.0, 5, 40.0)})


def _flat(p):
    write(p, {"EEG C3-M2": (128.0, np.zeros(128 * 300)), "EOG E1-M2": (64.0, np.zeros(64 * 300))})


def _saturated(p):
    # every sample at the digital limits: a square wave between the physical extremes
    x = np.where(np.arange(128 * 300) % 256 < 128, -3000.0, 3000.0)
    write(p, {"EEG C3-M2": (128.0, x), "EOG E1-M2": (128.0, x.copy())})


def _short(p):
    write(p, PSG, seconds=20.0)


def _rate_too_low(p):
    write(p, {"EEG C3-M2": (0.5, np.sin(np.arange(150)))}, seconds=300.0, record=2.0)


def _annotation_only(p):
    import edfio

    edf = edfio.Edf([], annotations=[edfio.EdfAnnotation(0, 30, "Sleep stage W")], starttime=START.time(),
                    recording=edfio.Recording(startdate=START.date()))
    edf.write(p)


def _shhs_like(p):
    write(p, {"SaO2": (1.0, np.full(300, 95.0)), "EEG(sec)": (125.0, 30, 2.0), "ECG": (125.0, 500, 1.2),
              "EMG": (125.0, 5, 40.0), "EOG(L)": (50.0, 50, 0.5), "EOG(R)": (50.0, 50, 0.4),
              "EEG": (125.0, 30, 10.0)})


def _mesa_like(p):
    write(p, {"EKG": (256.0, 500, 1.2), "EOG-L": (256.0, 50, 0.5), "EOG-R": (256.0, 50, 0.4),
              "EMG": (256.0, 5, 40.0), "EEG1": (256.0, 30, 3.0), "EEG2": (256.0, 30, 9.0),
              "EEG3": (256.0, 30, 2.0)})


def _sleepedf_like(p):
    write(p, {"EEG Fpz-Cz": (100.0, 30, 2.0), "EEG Pz-Oz": (100.0, 30, 10.0), "EOG horizontal": (100.0, 50, 0.5)})


def _low_rate(p):
    write(p, {"EEG C3-M2": (60.0, 30, 2.0), "EOG E1-M2": (60.0, 50, 0.5)})


def _temperature(p):
    write(p, {**PSG, "Temp": (1.0, np.linspace(36.0, 37.0, 300))}, units={"Temp": "degC"})


def _duplicates(p):
    write(p, PSG)
    patch_signal(p, "label", 1, "EEG C3-M2")  # the C4 signal now carries C3's label too


def _folder(p):
    p.mkdir()


def _bdf(p):
    write(p, PSG, bdf=True)


def _bdf_discontinuous(p):
    write(p, PSG, bdf=True)
    patch_fixed(p, "reserved", "BDF+D")


def _nul_padded(p):
    write(p, PSG)
    data = bytearray(p.read_bytes())
    ns = n_signals(p)
    header = data[:256 * (ns + 1)]
    data[:len(header)] = header.replace(b" ", b"\x00")  # every padding space is a NUL
    p.write_bytes(bytes(data))


def _comma_decimals(p):
    write(p, PSG)
    for i in range(n_signals(p)):
        patch_signal(p, "physical_min", i, "-250,5")
        patch_signal(p, "physical_max", i, "250,5")


def _data_cut(p):
    write(p, PSG)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 37 * 1234])  # 44.6 of 300 1-s records (1024 bytes each) lost


def _extra_data(p):
    write(p, PSG)
    p.write_bytes(p.read_bytes() + b"\x00" * (128 * 3 + 64 * 2) * 2 * 3)  # 3 records of garbage


def _one_channel_spr_zero(p):
    write(p, {**PSG, "Pleth": (128.0, 10, 1.0)})
    patch_signal(p, "samples", 5, "0")  # the header now says the last signal occupies nothing
    data = p.read_bytes()
    hb = 256 * 7  # header bytes: 256 + 256 per signal (6 signals)
    rec_old, rec_new = (128 * 3 + 64 * 2 + 128) * 2, (128 * 3 + 64 * 2) * 2
    records = [data[hb + k * rec_old: hb + k * rec_old + rec_new] for k in range(300)]
    p.write_bytes(data[:hb] + b"".join(records))


def _one_channel_digital_equal(p):
    write(p, {**PSG, "Pleth": (128.0, 10, 1.0)})
    patch_signal(p, "digital_min", 5, "0")
    patch_signal(p, "digital_max", 5, "0")


def _all(fn_field: str, value: str | tuple):
    def make(p: Path):
        write(p, {"EEG C3-M2": (128.0, 30, 2.0), "EOG E1-M2": (64.0, 50, 0.5)})
        for i in range(2):
            if isinstance(value, tuple):
                for f, v in zip(fn_field.split(","), value):
                    patch_signal(p, f, i, v)
            else:
                patch_signal(p, fn_field, i, value)
    return make


def _no_data(p):
    write(p, PSG, seconds=60.0)
    patch_fixed(p, "n_records", "0")
    _truncate(p, 256 * 6)


def _cut_in_first_record(p):
    write(p, PSG, seconds=60.0)
    _truncate(p, 256 * 6 + 100)


def _all_spr_zero(p):
    write(p, {"EEG C3-M2": (128.0, 30, 2.0)}, seconds=60.0)
    patch_signal(p, "samples", 0, "0")


def _implausible_rate(p):
    write(p, {"EEG C3-M2": (128.0, 30, 2.0), "EOG E1-M2": (64.0, 50, 0.5)})
    patch_fixed(p, "duration", "0.001")  # 128 samples per 1 ms record = 128 kHz


CASES: list[tuple[Case, Callable[[Path], None]]] = [
    (Case("good_night.edf", "ok", ""), _good),
    # ---- refused: not a readable EDF at all
    (Case("empty.edf", "failed", "file is empty (0 bytes)"), lambda p: p.write_bytes(b"")),
    (Case("text_file.edf", "failed", "not an EDF/BDF file (bad version field b'this is ')"), _text_file),
    (Case("gzipped.edf", "failed", "not an EDF/BDF file (bad version field "
          "b'\\x1f\\x8b\\x08\\x00\\x00\\x00\\x00\\x00')"), _gzipped),
    (Case("tiny_file.edf", "failed", "not an EDF file (only 100 bytes, header needs 256)"),
     lambda p: p.write_bytes(b"0       " + b" " * 92)),
    (Case("wrong_version.edf", "failed", "not an EDF/BDF file (bad version field b'1       ')"),
     _edit(lambda p: patch_fixed(p, "version", "1"))),
    (Case("header_cut.edf", "failed", "truncated header (1000 of 1536 bytes)"), _edit(lambda p: _truncate(p, 1000))),
    (Case("bad_header_size.edf", "failed", "malformed EDF header (5 signals, 1024 header bytes)"),
     _edit(lambda p: patch_fixed(p, "header_bytes", "1024"))),
    (Case("bad_signal_count.edf", "failed", "malformed EDF header (-1 signals, 1536 header bytes)"),
     _edit(lambda p: patch_fixed(p, "n_signals", "-1"))),
    (Case("nonnumeric_records.edf", "failed", "malformed EDF header (non-numeric size fields)"),
     _edit(lambda p: patch_fixed(p, "n_records", "abc"))),
    (Case("nonnumeric_samples.edf", "failed", "malformed EDF header (non-numeric samples per record)"),
     _edit(lambda p: patch_signal(p, "samples", 2, "x"))),
    (Case("zero_duration.edf", "failed", "record duration is 0 s (must be > 0)"),
     _edit(lambda p: patch_fixed(p, "duration", "0"))),
    (Case("negative_duration.edf", "failed", "record duration is -1 s (must be > 0)"),
     _edit(lambda p: patch_fixed(p, "duration", "-1"))),
    (Case("no_data.edf", "failed", "no data records"), _no_data),
    (Case("cut_in_first_record.edf", "failed", "truncated: not one complete data record"), _cut_in_first_record),
    (Case("discontinuous.edf", "failed", "EDF+D (discontinuous) recordings are not supported"),
     _edit(lambda p: patch_fixed(p, "reserved", "EDF+D"))),
    (Case("discontinuous_bdf.bdf", "failed", "BDF+D (discontinuous) recordings are not supported"), _bdf_discontinuous),
    (Case("all_samples_zero.edf", "failed", "no signal has samples (samples per record is 0 for every signal)"),
     _all_spr_zero),
    (Case("nan_range.edf", "failed", "no readable signal (EEG C3-M2: physical minimum is NaN ('nan'): values "
          "cannot be scaled; EOG E1-M2: physical minimum is NaN ('nan'): values cannot be scaled)"),
     _all("physical_min", "nan")),
    (Case("text_range.edf", "failed", "no readable signal (EEG C3-M2: physical maximum is not a number ('high'): "
          "values cannot be scaled; EOG E1-M2: physical maximum is not a number ('high'): values cannot be "
          "scaled)"), _all("physical_max", "high")),
    (Case("digital_min_eq_max.edf", "failed", "no readable signal (EEG C3-M2: digital minimum equals digital "
          "maximum (5): values cannot be scaled; EOG E1-M2: digital minimum equals digital maximum (5): values "
          "cannot be scaled)"), _all("digital_min,digital_max", ("5", "5"))),
    (Case("physical_min_eq_max.edf", "failed", "no readable signal (EEG C3-M2: physical minimum equals physical "
          "maximum (7): values cannot be scaled; EOG E1-M2: physical minimum equals physical maximum (7): "
          "values cannot be scaled)"), _all("physical_min,physical_max", ("7", "7"))),
    (Case("implausible_rate.edf", "failed", "no readable signal (EEG C3-M2: implausible sampling rate 128000 Hz "
          "(128 samples in a 0.001-s record); EOG E1-M2: implausible sampling rate 64000 Hz (64 samples in a "
          "0.001-s record))"), _implausible_rate),
    # ---- refused: readable, but nothing to stage honestly
    (Case("no_eeg_eog.edf", "failed", "no canonical channel could be formed from the labels ['ECG', 'SpO2']"),
     _no_eeg_eog),
    (Case("unknown_labels.edf", "failed", "no canonical channel could be formed from the labels ['Ch1', 'Ch2']"),
     _unknown_labels),
    (Case("only_emg.edf", "failed", "no usable EEG or EOG channel (only Chin); pass --channels with an explicit "
          "map if the labels are unusual"), _only_emg),
    (Case("eog_only.edf", "failed", "no EEG channel (only E1, E2, Chin): a hypnogram from EOG/EMG alone is not "
          "reliable; pass --allow-no-eeg to stage it anyway, or --channels/--dataset if the EEG has unusual "
          "labels"), _eog_only),
    (Case("flat.edf", "failed", "no usable channel (C3 EEG C3-M2: flat signal (no variation); E1 EOG E1-M2: flat "
          "signal (no variation))"), _flat),
    (Case("saturated.edf", "failed", "recording entirely saturated: every montage channel is clipped at its "
          "digital limits (EEG C3-M2: 100% of its epochs are at the digital limits (clipped); EOG E1-M2: 100% of "
          "its epochs are at the digital limits (clipped)); refusing to stage it", quality_gate=True), _saturated),
    (Case("shorter_than_an_epoch.edf", "failed", "recording shorter than one 30-s epoch"), _short),
    (Case("rate_too_low.edf", "failed", "no usable channel (C3 EEG C3-M2: sampling rate 0.5 Hz is too low for a "
          "0.3 Hz high-pass)"), _rate_too_low),
    (Case("annotation_only.edf", "skipped", "annotation-only EDF+ (no signals to stage)"), _annotation_only),
    (Case("folder.edf", "ignored", "is a folder, not an EDF file"), _folder),
    # ---- staged, with what was tolerated said
    (Case("data_cut.edf", "ok", "truncated: header declares 300 data records but the file holds 255; read up to "
          "the last complete record (255 s)"), _data_cut),
    (Case("extra_data.edf", "ok", "the file holds 303 data records, more than the 300 the header declares; the "
          "extra data is ignored"), _extra_data),
    (Case("unknown_record_count.edf", "ok", "number of data records unknown (-1) in the header: 300 read"),
     _edit(lambda p: patch_fixed(p, "n_records", "-1"))),
    (Case("invalid_start_date.edf", "ok", "invalid start date/time '31.02.20' '22.00.00': start time unknown"),
     _edit(lambda p: (patch_fixed(p, "date", "31.02.20"), patch(p, 88, "Startdate X X X X".ljust(80))))),
    (Case("duplicate_labels.edf", "ok", "label 'EEG C3-M2' appears 2 times: the first copy is used as "
          "'EEG C3-M2', the others are reachable as 'EEG C3-M2#2'"), _duplicates),
    (Case("one_channel_no_samples.edf", "ok", "signal 'Pleth' dropped: samples per record is 0 (no data)"),
     _one_channel_spr_zero),
    (Case("one_channel_digital_eq.edf", "ok", "signal 'Pleth' dropped: digital minimum equals digital maximum (0): "
          "values cannot be scaled"), _one_channel_digital_equal),
    (Case("nul_padded.edf", "ok", ""), _nul_padded),
    (Case("comma_decimals.edf", "ok", ""), _comma_decimals),
    (Case("temperature.edf", "ok", ""), _temperature),
    (Case("eeg_in_percent.edf", "ok", "C3 <- EEG C3-M2: unit '%' is not a voltage"),
     lambda p: write(p, PSG, units={"EEG C3-M2": "%"})),
    (Case("good.bdf", "ok", ""), _bdf),
    # substitutions and rate-limited bands are warnings in every output (issue 21), not only console notes
    (Case("shhs_like.edf", "ok", "E1 <- EOG(L): reference not stated in the label",
          "labels match the SHHS layout: its channel map is used"), _shhs_like),
    (Case("mesa_like.edf", "ok", "E1 <- EOG-L: reference not stated in the label",
          "labels match the MESA layout: its channel map is used"), _mesa_like),
    (Case("sleepedf_like.edf", "ok", "F3 <- EEG Fpz-Cz: bipolar Fpz-Cz standing in for F3",
          "F3   <- EEG Fpz-Cz   [bipolar Fpz-Cz standing in for F3]"), _sleepedf_like),
    (Case("low_rate.edf", "ok", "C3 <- EEG C3-M2: band 0.3-30 Hz: 60 Hz sampling cannot carry the 35 Hz low-pass "
          "the weights were trained on", "C3   <- EEG C3-M2   [band 0.3-30 Hz: 60 Hz sampling cannot carry the "
          "35 Hz low-pass]"), _low_rate),
]


def write_corpus(folder: Path) -> list[Case]:
    """Write every case into ``folder``; return the cases."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for case, make in CASES:
        make(folder / case.name)
    return [case for case, _ in CASES]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    cases = write_corpus(out)
    print(f"wrote {len(cases)} cases into {out}/")
