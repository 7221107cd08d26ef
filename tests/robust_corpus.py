"""Generators of inputs that cannot be right (issue 21), one per class, each with its exact outcome.

Every class is built from its definition with parameters drawn from a seeded generator (a rate
below the minimum, a gap of some length at some record, some EEG labels carrying one signal...),
so a new seed gives new members of the same class. The physiological classes start from the
first 20 epochs of the bundled simulated night (``examples/simulated_night.edf``: 9 channels at
100 Hz), the noise classes are synthesised at 256 Hz (mains at 50 or 60 Hz needs it).

:func:`write_cases` writes one file per class into a folder and returns :class:`Case` objects:
the status, the exact reason (a regular expression where the reason quotes a measured number),
and the exact warnings. Run ``python -m tests.robust_corpus OUT_DIR [SEED]`` for a manual look.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "simulated_night.edf"
START = dt.datetime(2021, 3, 4, 22, 30, 0)
EPOCHS = 20
LABELS = ("EEG F3-M2", "EEG F4-M1", "EEG C3-M2", "EEG C4-M1", "EEG O1-M2", "EEG O2-M1", "EOG E1-M2", "EOG E2-M1",
          "EMG Chin")
CANONICAL = ("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin")
KIND = dict(zip(CANONICAL, ("EEG",) * 6 + ("EOG",) * 2 + ("EMG",)))
NO_EEG_EOG = "no usable EEG or EOG channel (only Chin); pass --channels with an explicit map if the labels are unusual"


@dataclass
class Case:
    """One generated input and what ``inference.py`` must report for it.

    Attributes
    ----------
    name : str
        File name in the folder.
    klass : str
        The class of input it belongs to.
    status : {"ok", "failed"}
    reason : str
        Regular expression the summary reason must match in full ("" for ok).
    warnings : list of str
        Regular expressions, one per warning the outputs must carry, in order.
    params : dict
        The drawn parameters (for the table).
    """

    name: str
    klass: str
    status: str
    reason: str = ""
    warnings: list = field(default_factory=list)
    params: dict = field(default_factory=dict)


def base_night() -> dict[str, np.ndarray]:
    """The first :data:`EPOCHS` epochs of the bundled simulated night, label → µV at 100 Hz."""
    from preprocess.core.edf import EdfReader

    with EdfReader(EXAMPLE) as r:
        return {lab: r.read(lab)[0][: EPOCHS * 3000] * 1e6 for lab in LABELS}


def write_edf(path: Path, signals: dict, sfreq: float | dict, unit: str | dict = "uV", annotations=(),
              record: float = 1.0) -> Path:
    """EDF(+C with ``annotations``) of ``{label: samples}`` written with edfio, physical range = the data's."""
    import edfio

    out = []
    for lab, x in signals.items():
        fs = sfreq[lab] if isinstance(sfreq, dict) else sfreq
        u = unit[lab] if isinstance(unit, dict) else unit
        lo, hi = float(np.min(x)), float(np.max(x))
        out.append(edfio.EdfSignal(np.asarray(x, float), fs, label=lab, physical_dimension=u,
                                   physical_range=(lo, hi) if hi > lo else (lo - 1, hi + 1)))
    kw = {"annotations": [edfio.EdfAnnotation(*a) for a in annotations]} if annotations else {}
    edfio.Edf(out, starttime=START.time(), recording=edfio.Recording(startdate=START.date()),
              data_record_duration=record, **kw).write(path)
    return path


def _q(text: str) -> str:
    return re.escape(text)


NUM = r"[0-9.e+-]+"
"""A measured number in a reason (its value is the measurement's, the rest of the text is exact)."""


# ------------------------------------------------------------------------------------------ classes


def good_night(folder: Path, rng) -> Case:
    write_edf(folder / "good_night.edf", base_night(), 100.0)
    return Case("good_night.edf", "good night", "ok")


def rate_below_minimum(folder: Path, rng) -> Case:
    """Every channel at a rate below the EOG minimum (20 Hz) but above what the chain refuses."""
    from scipy.signal import resample

    rate = float(rng.integers(1, 20))
    night = {lab: resample(x, int(EPOCHS * 30 * rate)) for lab, x in base_night().items()}
    write_edf(folder / "rate_below_minimum.edf", night, rate)
    drops = [f"{c} {lab}: sampling rate {rate:g} Hz is below the {40 if KIND[c] == 'EEG' else 20} Hz minimum for "
             f"{KIND[c]} (its sleep bands do not fit under the Nyquist rate)"
             for c, lab in zip(CANONICAL[:8], LABELS[:8])]
    chin = f"Chin EMG Chin: sampling rate {rate:g} Hz is too low for a 10 Hz high-pass"
    reason = f"no usable channel ({chin}); dropped by the quality gate: " + "; ".join(drops)
    return Case("rate_below_minimum.edf", "rate below the minimum", "failed", _q(reason), params={"rate_hz": rate})


def rate_limits_band(folder: Path, rng) -> Case:
    """Every channel at a rate whose Nyquist band ends below 90 % of the weights' 35-Hz low-pass."""
    from scipy.signal import resample

    rate = float(rng.integers(40, 63))
    night = {lab: resample(x, int(EPOCHS * 30 * rate)) for lab, x in base_night().items()}
    write_edf(folder / "rate_limits_band.edf", night, rate)
    warns = [_q(f"{c} <- {lab}: band 0.3-{rate / 2:g} Hz: {rate:g} Hz sampling cannot carry the 35 Hz low-pass "
                f"the weights were trained on") for c, lab in zip(CANONICAL[:8], LABELS[:8])]
    return Case("rate_limits_band.edf", "rate limits the trained band", "ok", warnings=warns, params={"rate_hz": rate})


def edf_c_with_gap(folder: Path, rng) -> Case:
    """An EDF+C (1-s records) whose record onsets jump by ``gap`` seconds at record ``at``."""
    path = write_edf(folder / "edf_c_gap.edf", base_night(), 100.0, annotations=[(0.0, 0.0, "Recording starts here")])
    gap, at = float(rng.integers(30, 7200)), int(rng.integers(60, EPOCHS * 30 - 60))
    shift_onsets(path, at, gap)
    reason = (f"EDF+C (continuous) in the header, but its data records are not contiguous: record {at} starts at "
              f"{at + gap:g} s, {gap:g} s after the end of record {at - 1}; a recording with gaps is not supported "
              "(EDF+D)")
    return Case("edf_c_gap.edf", "EDF+C with a time gap", "failed", _q(reason), params={"gap_s": gap, "record": at})


def shift_onsets(path: Path, first: int, seconds: float) -> None:
    """Add ``seconds`` to the time-keeping onset of every data record from ``first`` on (byte edit)."""
    raw = bytearray(path.read_bytes())
    n_signals = int(raw[252:256])
    hdr = 256 * (n_signals + 1)
    spr = [int(raw[256 + 216 * n_signals + 8 * i: 256 + 216 * n_signals + 8 * (i + 1)]) for i in range(n_signals)]
    labels = [raw[256 + 16 * i: 256 + 16 * (i + 1)].decode().strip() for i in range(n_signals)]
    k = labels.index("EDF Annotations")
    rec = 2 * sum(spr)
    off, size = 2 * sum(spr[:k]), 2 * spr[k]
    n_records = (len(raw) - hdr) // rec
    for r in range(first, n_records):
        a = hdr + r * rec + off
        tal = bytes(raw[a:a + size])
        onset = float(tal[: tal.index(b"\x14")])
        new = f"+{onset + seconds:g}".encode() + b"\x14\x14\x00"
        rest = tal[tal.index(b"\x14\x14\x00") + 3:]
        raw[a:a + size] = (new + rest).ljust(size, b"\x00")[:size]
    path.write_bytes(bytes(raw))


def _noise_night(make, rate: float = 256.0) -> dict:
    n = int(EPOCHS * 30 * rate)
    return {lab: make(n, i) for i, lab in enumerate(LABELS)}


def _nonphysio_drops() -> str:
    return "; ".join(f"{c} {lab}: no physiological signal in 100% of its epochs: " + "{what}"
                     for c, lab in zip(CANONICAL[:8], LABELS[:8]))


def line_noise_only(folder: Path, rng) -> Case:
    """Electrodes off: every channel mains hum (50 or 60 Hz) plus a little white noise."""
    mains, amp = float(rng.choice([50.0, 60.0])), float(rng.uniform(50, 500))
    t = np.arange(int(EPOCHS * 30 * 256)) / 256.0
    night = _noise_night(lambda n, i: amp * np.sin(2 * np.pi * mains * t[:n] + i) + rng.normal(0, amp / 50, n))
    write_edf(folder / "line_noise_only.edf", night, 256.0)
    what = (rf"mains hum \({NUM}% of the power within 1 Hz of 50/60 Hz\) over a flat spectrum: an electrode off\?")
    reason = _q(NO_EEG_EOG + "; dropped by the quality gate: ") + _q(_nonphysio_drops()).replace(
        _q("{what}"), what)
    return Case("line_noise_only.edf", "mains hum only (electrodes off)", "failed", reason,
                params={"mains_hz": mains, "amplitude_uV": round(amp, 1)})


SPECTRUM_TEXT = ("its sleep bands (0.3-16 Hz) carry less than 2x the power density of 20-40 Hz (white noise has 1x, "
                 "EEG 7x and more)")


def white_noise(folder: Path, rng) -> Case:
    sd = float(rng.uniform(5, 50))
    write_edf(folder / "white_noise.edf", _noise_night(lambda n, i: rng.normal(0, sd, n)), 256.0)
    reason = NO_EEG_EOG + "; dropped by the quality gate: " + _nonphysio_drops().replace("{what}", SPECTRUM_TEXT)
    return Case("white_noise.edf", "white noise", "failed", _q(reason), params={"sd_uV": round(sd, 1)})


def no_sleep_bands(folder: Path, rng) -> Case:
    """Noise whose power lies above the sleep bands (band-passed between 20 Hz and an upper edge)."""
    from scipy.signal import butter, sosfiltfilt

    top = float(rng.uniform(40, 100))
    sos = butter(4, [20.0, top], btype="band", fs=256.0, output="sos")
    night = _noise_night(lambda n, i: sosfiltfilt(sos, rng.normal(0, 30, n)))
    write_edf(folder / "no_sleep_bands.edf", night, 256.0)
    reason = NO_EEG_EOG + "; dropped by the quality gate: " + _nonphysio_drops().replace("{what}", SPECTRUM_TEXT)
    return Case("no_sleep_bands.edf", "spectrum without 1/f and sleep bands", "failed", _q(reason),
                params={"band_hz": f"20-{top:.0f}"})


def copies(folder: Path, rng) -> Case:
    """``k`` EEG labels carry one signal (copies or bridged electrodes), and E2 carries E1's."""
    night = base_night()
    k = int(rng.integers(2, 7))
    chosen = sorted(rng.choice(6, size=k, replace=False))
    for j in chosen[1:]:
        night[LABELS[j]] = night[LABELS[chosen[0]]].copy()
    night["EOG E2-M1"] = night["EOG E1-M2"].copy()
    write_edf(folder / "copies.edf", night, 100.0)
    first = chosen[0]
    warns = [_q(f"{CANONICAL[j]} {LABELS[j]} dropped: same signal as {CANONICAL[first]} ({LABELS[first]}, r = 1.000): "
                f"a copied channel or bridged electrodes; {CANONICAL[first]} kept") for j in chosen[1:]]
    warns.append(_q("E2 EOG E2-M1 dropped: same signal as E1 (EOG E1-M2, r = 1.000): a copied channel or bridged "
                    "electrodes; E1 kept"))
    return Case("copies.edf", "identical channels", "ok", warnings=warns,
                params={"copies": " ".join(CANONICAL[j] for j in chosen) + ", E1 E2"})


def wrong_unit(folder: Path, rng) -> Case:
    """µV numbers written with another voltage unit: nV (1000x too small) or mV/V (too large)."""
    unit = str(rng.choice(["nV", "mV", "V"]))
    write_edf(folder / f"uv_labelled_{unit}.edf", base_night(), 100.0, unit=unit)
    parts = []
    for c, lab in zip(CANONICAL, LABELS):
        kind = KIND[c]
        if unit == "nV":
            floor = {"EEG": 0.5, "EOG": 0.5, "EMG": 0.1}[kind]
            parts.append(_q(f"{c} {lab}: implausibly small amplitude for {kind} (median epoch SD ") + NUM
                         + _q(f" µV, below the {floor:g} µV of any connected electrode): wrong unit field ('{unit}')? "
                              "or an electrode not connected"))
        else:
            parts.append(_q(f"{c} {lab}: implausible amplitude for a voltage (median epoch SD ") + NUM
                         + _q(f" mV; wrong unit field ('{unit}')?)"))
    if unit == "mV":  # the chin EMG (a few µV) read as mV is still below the limit
        parts = parts[:8]
        reason = _q(NO_EEG_EOG + "; dropped by the quality gate: ") + "; ".join(parts)
    else:
        reason = _q("no usable channel (") + "; ".join(parts) + r"\)"
    return Case(f"uv_labelled_{unit}.edf", f"amplitude implausible for its unit ({unit})", "failed", reason,
                params={"unit": unit})


def coarse_quantisation(folder: Path, rng) -> Case:
    """Every EEG channel quantised to ``levels`` levels over its range (an 8-bit export, worse)."""
    levels = int(rng.integers(8, 21))
    night = base_night()
    for lab in LABELS[:6]:
        x = night[lab]
        lo, hi = x.min(), x.max()
        night[lab] = lo + np.round((x - lo) / (hi - lo) * (levels - 1)) * (hi - lo) / (levels - 1)
    write_edf(folder / "coarse_quantisation.edf", night, 100.0)
    warns = [_q(f"{lab}: coarse quantisation: steps of ") + NUM + _q(" µV for a median epoch SD of ") + NUM
             + _q(" µV (") + NUM + _q(" steps per SD, fewer than 4): an 8-bit export or a recorder range set too wide?")
             for lab in LABELS[:6]]
    return Case("coarse_quantisation.edf", "coarse quantisation", "ok", warnings=warns, params={"levels": levels})


def lights_outside(folder: Path, rng) -> Case:
    """Lights-off annotated before the recording start and lights-on after its end."""
    before, after = float(rng.integers(60, 3600)), float(rng.integers(60, 3600))
    end = EPOCHS * 30.0
    write_edf(folder / "lights_outside.edf", base_night(), 100.0,
              annotations=[(-before, 0.0, "Lights off"), (end + after, 0.0, "Lights on")])
    warns = [_q(f"lights-off is {before:g} s before the recording start: time in bed starts at the recording start "
                "(TIB, SE, SOL and latencies count from there)"),
             _q(f"lights-on is {after:g} s after the recording end: time in bed ends at the recording end")]
    return Case("lights_outside.edf", "lights outside the recording", "ok", warnings=warns,
                params={"off_s": -before, "on_s": end + after})


def lights_out_of_order(folder: Path, rng) -> Case:
    on = float(rng.integers(30, 200))
    off = on + float(rng.integers(30, 300))
    write_edf(folder / "lights_out_of_order.edf", base_night(), 100.0,
              annotations=[(on, 0.0, "Lights on"), (off, 0.0, "Lights off")])
    warns = [_q(f"lights annotations out of order: lights-on at {on:g} s is not after lights-off at {off:g} s "
                "(annotations in the file); both ignored, time in bed = the whole recording")]
    return Case("lights_out_of_order.edf", "lights out of order", "ok", warnings=warns,
                params={"off_s": off, "on_s": on})


def dangling_link(folder: Path, rng) -> Case:
    target = folder / f"moved_away_{int(rng.integers(1000))}.edf"
    (folder / "dangling_link.edf").symlink_to(target)
    return Case("dangling_link.edf", "dangling symbolic link", "failed",
                _q(f"dangling symbolic link (its target {target} does not exist)"))


def fifo(folder: Path, rng) -> Case:
    os.mkfifo(folder / "named_pipe.edf")
    return Case("named_pipe.edf", "FIFO instead of a file", "failed",
                _q("not a regular file (a FIFO (named pipe)): not read"))


CLASSES = (good_night, rate_below_minimum, rate_limits_band, edf_c_with_gap, line_noise_only, white_noise,
           no_sleep_bands, copies, wrong_unit, coarse_quantisation, lights_outside, lights_out_of_order,
           dangling_link, fifo)


def write_cases(folder: Path, seed: int = 0) -> list[Case]:
    """Write one member of every class into ``folder`` (parameters drawn with ``seed``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [make(folder, rng) for make in CLASSES]


if __name__ == "__main__":
    for c in write_cases(Path(sys.argv[1] if len(sys.argv) > 1 else "robust_corpus"),
                         int(sys.argv[2]) if len(sys.argv) > 2 else 0):
        print(f"{c.name}: {c.klass} {c.params} -> {c.status}")
