"""Dataset profiles: how a simulated night is laid out on disk for each dataset's raw format.

A profile decides recording/subject ids, the channel list (labels, which simulator site each label
records, sampling rate, physical unit), and writes the signal file(s) plus the dataset's annotation
file. The registry ``PROFILES`` maps a dataset name to a profile; adding a format is a small
subclass of :class:`Profile` (or :class:`EdfProfile`) plus ``register_profile``.

Reusable helpers: :func:`edf_signal` (volts -> EdfSignal in uV/mV/V with a physical range taken
from the data plus headroom, int16 digital range), :func:`write_edf`, :func:`record_duration`,
:func:`stage_events` (stages -> (onset, duration, text) events, per epoch or merged runs) and
:func:`write_annotation_edf` (annotation-only EDF+C, Sleep-EDF/HMC style).

Layouts:

* ``sleepedf`` - Sleep-EDF Expanded SC: ``SC4ssNE0-PSG.edf`` (plain EDF, 30-s data records):
  ``EEG Fpz-Cz``, ``EEG Pz-Oz``, ``EOG horizontal`` at 100 Hz; ``Resp oro-nasal``,
  ``EMG submental`` (1 Hz envelope: high-pass 16 Hz, rectified, low-pass 0.7 Hz, as in the real
  files), ``Temp rectal``, ``Event marker`` at 1 Hz. Hypnogram ``SC4ssNE?-Hypnogram.edf`` (the
  scorer letter varies like the real files: C, H, J, P, ...), annotation-only EDF+C, runs of
  ``Sleep stage W/1/2/3/4/R`` and ``Movement time`` (-1 epochs); deep N3 written as R&K stage 4;
  as in the real files a final ``Sleep stage ?`` span starts where scoring ends and runs past the
  end of the PSG.
  Two nights per subject (SC4ss1E0, SC4ss2E0).
* ``hmc`` - Haaglanden Medisch Centrum: ``SNnnn.edf`` (EDF, 1-s records, 256 Hz) with ``EEG F4-M1``,
  ``EEG C4-M1``, ``EEG O2-M1``, ``EEG C3-M2``, ``EMG chin``, ``EOG E1-M2``, ``EOG E2-M2``, ``ECG``;
  scoring ``SNnnn_sleepscoring.edf``: one 30-s ``Sleep stage W/N1/N2/N3/R`` annotation per epoch,
  ``Lights off@@EEG F4-A1`` / ``Lights on@@EEG F4-A1`` events; -1 epochs are left unannotated (gap).
* ``generic`` - a full 9-channel montage (F3, F4, C3, C4, O1, O2, E1, E2, chin) under one of
  several label styles chosen per recording (``EEG C3-M2``; ``C3-A2``/``LOC-A2``/``Chin1-Chin2``;
  unreferenced ``C3`` + ``M1``/``M2``; unreferenced ``C3`` + ``A1``/``A2`` with ``LOC``/``ROC``;
  ``C3:M2`` separators; AASM EEG with one differential ``EOG LOC-ROC``), EEG rate among 256, 200,
  128, 100 Hz (EOG and chin sometimes at another rate), unit uV/mV/V, mains 50 or 60 Hz, sometimes
  an ``ECG``. Files ``SIMnnnn.edf`` + ``SIMnnnn-Hypnogram.edf`` (annotation-only EDF+C, one 30-s
  annotation per epoch: ``Sleep stage W/N1/N2/N3/R``, ``Sleep stage ?`` for -1).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from edfio import Edf, EdfAnnotation, EdfSignal, Patient, Recording
from scipy.signal import butter, sosfiltfilt

from .hypnogram import EPOCH_SEC, N1, N2, N3, REM, UNKNOWN, W
from .physiology import parse_site

_UNIT_SCALE = {"uV": 1e6, "mV": 1e3, "V": 1.0, "": 1.0, "DegC": 1.0}


# ------------------------------------------------------------------------------------------------
# Channel specification and per-recording plan
# ------------------------------------------------------------------------------------------------


@dataclass
class ChannelSpec:
    """One signal in the file. ``site`` is a simulator site (``C4-M1``, ``C3``, ``CHIN``, ``ECG``) or,
    for ``kind != "signal"``, the source site of a derived signal."""

    label: str
    site: str
    sfreq: float
    dimension: str = "uV"
    transducer: str = ""
    prefilter: str = ""
    kind: str = "signal"  # signal | emg_envelope | resp | temp | marker

    @property
    def sim_sfreq(self) -> float:
        """Rate at which the simulator produces the source signal."""
        return 100.0 if self.kind == "emg_envelope" else self.sfreq


@dataclass
class RecordingPlan:
    rec_id: str
    subject: str
    channels: list[ChannelSpec]
    start: dt.datetime
    subject_key: int  # subject number used to seed per-subject physiology
    line_freq: float = 50.0
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# EDF helpers
# ------------------------------------------------------------------------------------------------


def _fits(v: float) -> bool:
    """Prints (as edfio writes it: ``str``) in 8 characters without an exponent, both signs."""
    s = str(int(v)) if float(v).is_integer() else str(v)
    return "e" not in s and len(s) + 1 <= 8


def nice_physical_max(m: float) -> float:
    """Smallest 'nice' value >= m whose negative prints in the 8-character EDF header field."""
    m = max(float(m), 1e-12)
    k = int(np.floor(np.log10(m)))
    for exp in range(k, k + 3):
        for mant in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
            v = float(f"{mant * 10.0**exp:.12g}")
            if v >= m and _fits(v):
                return v
    return float(np.ceil(m))


def edf_signal(data_volts: np.ndarray, spec: ChannelSpec, headroom: float = 1.1) -> EdfSignal:
    """Volts -> EdfSignal in ``spec.dimension``; symmetric physical range from the data with headroom,
    digital range int16. Non-voltage signals (resp, temp, marker) are passed in their own units."""
    scale = _UNIT_SCALE[spec.dimension] if spec.kind in ("signal", "emg_envelope") else 1.0
    x = np.asarray(data_volts, dtype=np.float64) * scale
    if spec.kind == "temp":
        lo, hi = float(np.floor(x.min()) - 1), float(np.ceil(x.max()) + 1)
    else:
        m = nice_physical_max(np.max(np.abs(x)) * headroom if len(x) else 1.0)
        lo, hi = -m, m
    return EdfSignal(
        x,
        spec.sfreq,
        label=spec.label,
        transducer_type=spec.transducer,
        physical_dimension=spec.dimension,
        physical_range=(lo, hi),
        digital_range=(-32768, 32767),
        prefiltering=spec.prefilter,
    )


def record_duration(rates, candidates=(1.0, 2.0, 5.0, 10.0, 30.0)) -> float:
    """Shortest data-record duration in which every channel has a whole number of samples."""
    for d in candidates:
        if all(abs(r * d - round(r * d)) < 1e-9 for r in rates):
            return d
    raise ValueError(f"no EDF record duration fits the rates {sorted(set(rates))}")


def write_edf(
    path: Path,
    signals: list[EdfSignal],
    start: dt.datetime,
    patient: Patient | None = None,
    recording: Recording | None = None,
    annotations: list[EdfAnnotation] | None = None,
    data_record_duration: float | None = None,
) -> Path:
    """Write EDF (EDF+C when annotations are given) with edfio."""
    rates = [s.sampling_frequency for s in signals]
    drd = data_record_duration or (record_duration(rates) if rates else None)
    if recording is None:
        recording = Recording(startdate=start.date())
    edf = Edf(
        signals,
        patient=patient,
        recording=recording,
        starttime=start.time().replace(microsecond=0),
        data_record_duration=drd,
        annotations=annotations,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


def stage_events(
    stages: np.ndarray,
    labels: dict[int, str | None],
    merge_runs: bool = False,
    epoch_sec: float = EPOCH_SEC,
    offset: float = 0.0,
) -> list[tuple[float, float, str]]:
    """Stage codes -> (onset, duration, text). A code mapped to None is left unannotated (gap).
    ``merge_runs``: one event per run of equal labels (Sleep-EDF), else one per epoch (HMC)."""
    out: list[tuple[float, float, str]] = []
    texts = [labels.get(int(s)) for s in stages]
    i = 0
    while i < len(texts):
        j = i + 1
        if merge_runs:
            while j < len(texts) and texts[j] == texts[i]:
                j += 1
        if texts[i] is not None:
            out.append((offset + i * epoch_sec, (j - i) * epoch_sec, texts[i]))
        i = j
    return out


def write_annotation_edf(
    path: Path,
    events: list[tuple[float, float, str]],
    start: dt.datetime,
    patient: Patient | None = None,
    recording: Recording | None = None,
) -> Path:
    """Annotation-only EDF+C (no signals), like Sleep-EDF hypnograms and HMC scoring files."""
    ann = [EdfAnnotation(float(o), float(d) if d else None, t) for o, d, t in events]
    return write_edf(path, [], start, patient, recording, annotations=ann, data_record_duration=0)


# ------------------------------------------------------------------------------------------------
# Derived (non-EEG) signals
# ------------------------------------------------------------------------------------------------


def emg_envelope(emg_volts_100hz: np.ndarray, fs_in: float = 100.0, fs_out: float = 1.0) -> np.ndarray:
    """Sleep-EDF style EMG envelope: high-pass 16 Hz, rectify, low-pass 0.7 Hz, sample at 1 Hz."""
    hp = butter(4, 16.0, "highpass", fs=fs_in, output="sos")
    lp = butter(2, 0.7, "lowpass", fs=fs_in, output="sos")
    env = sosfiltfilt(lp, np.abs(sosfiltfilt(hp, emg_volts_100hz)))
    step = int(round(fs_in / fs_out))
    n = len(env) // step
    return np.maximum(env[: n * step].reshape(n, step).mean(axis=1), 0.0)


def _aux_signal(kind: str, stages: np.ndarray, sfreq: float, rng: np.random.Generator) -> np.ndarray:
    n = int(round(len(stages) * EPOCH_SEC * sfreq))
    t = np.arange(n) / sfreq
    sleep = np.repeat(np.isin(stages, [N1, N2, N3, REM]).astype(float), int(round(EPOCH_SEC * sfreq)))[:n]
    if kind == "resp":  # oro-nasal thermistor: breathing ~0.25 Hz, slower and regular in NREM
        rate = 0.27 - 0.03 * sleep + 0.01 * np.sin(2 * np.pi * t / 900.0)
        phase = 2 * np.pi * np.cumsum(rate) / sfreq
        return 400.0 * np.sin(phase) * (1 + 0.2 * rng.standard_normal(n)) + 30 * rng.standard_normal(n)
    if kind == "temp":  # rectal temperature: falls ~0.5 degC across the night
        return 37.1 - 0.5 * np.sin(np.pi * t / max(t[-1] if n else 1.0, 1.0)) + 0.01 * rng.standard_normal(n)
    if kind == "marker":
        x = np.zeros(n)
        x[: int(2 * sfreq)] = 2000.0  # button held ~2 s at the start (lights off)
        return x
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------------
# Profiles
# ------------------------------------------------------------------------------------------------


class Profile:
    """Interface of a dataset format. Subclasses implement ``plan`` and ``write``."""

    name = "base"
    line_freq = 50.0

    def plan(self, index: int, rng: np.random.Generator) -> RecordingPlan:
        raise NotImplementedError

    def write(
        self, out_dir: Path, plan: RecordingPlan, hyp, signals: dict[str, np.ndarray], subject: dict
    ) -> list[Path]:
        """Write one recording; ``signals`` maps channel label -> data (volts, or own unit for aux)."""
        raise NotImplementedError


def _start_time(rng: np.random.Generator, years: tuple[int, int]) -> dt.datetime:
    day = dt.date(int(rng.integers(years[0], years[1] + 1)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
    minutes = int(rng.integers(21 * 60 + 30, 23 * 60 + 45))
    return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60, int(rng.integers(0, 60))))


class EdfProfile(Profile):
    """Signals in one EDF file, stages in an annotation-only EDF+ file."""

    headroom = 1.1

    def psg_path(self, out_dir: Path, plan: RecordingPlan) -> Path:
        return out_dir / f"{plan.rec_id}.edf"

    def patient(self, plan: RecordingPlan, subject: dict) -> Patient | None:
        return Patient(code=plan.subject, sex=subject.get("sex", "X"))

    def recording(self, plan: RecordingPlan) -> Recording | None:
        return Recording(startdate=plan.start.date())

    def data_record_duration(self, plan: RecordingPlan) -> float | None:
        return None

    def annotation_files(self, out_dir: Path, plan: RecordingPlan, hyp, subject: dict) -> list[Path]:
        return []

    def signals_for_edf(self, plan: RecordingPlan, signals: dict[str, np.ndarray]) -> list[EdfSignal]:
        return [edf_signal(signals[c.label], c, self.headroom) for c in plan.channels]

    def write(self, out_dir, plan, hyp, signals, subject):
        out_dir = Path(out_dir)
        psg = write_edf(
            self.psg_path(out_dir, plan),
            self.signals_for_edf(plan, signals),
            plan.start,
            patient=self.patient(plan, subject),
            recording=self.recording(plan),
            data_record_duration=self.data_record_duration(plan),
        )
        return [psg] + self.annotation_files(out_dir, plan, hyp, subject)


class SleepEDFProfile(EdfProfile):
    name = "sleepedf"
    scorers = "CHJPAVWMGU"
    labels = {W: "Sleep stage W", N1: "Sleep stage 1", N2: "Sleep stage 2", N3: "Sleep stage 3",
              REM: "Sleep stage R", UNKNOWN: "Movement time"}

    def plan(self, index, rng):
        subj, night = divmod(index, 2)
        if subj > 99:
            raise ValueError("sleepedf layout holds at most 200 recordings (SC400..SC499)")
        eeg = dict(sfreq=100.0, dimension="uV", transducer="Ag-AgCl electrodes",
                   prefilter="HP:0.5Hz LP:100Hz [enhanced cassette BW]")
        ch = [
            ChannelSpec("EEG Fpz-Cz", "Fpz-Cz", **eeg),
            ChannelSpec("EEG Pz-Oz", "Pz-Oz", **eeg),
            ChannelSpec("EOG horizontal", "E1-E2", **eeg),
            ChannelSpec("Resp oro-nasal", "", 1.0, "", "Oral-nasal thermistors", "HP:0.03Hz LP:0.9Hz", "resp"),
            ChannelSpec("EMG submental", "CHIN", 1.0, "uV", "Ag-AgCl electrodes", "HP:16Hz Rectification LP:0.7Hz",
                        "emg_envelope"),
            ChannelSpec("Temp rectal", "", 1.0, "DegC", "Rectal thermistor", "", "temp"),
            ChannelSpec("Event marker", "", 1.0, "", "Marker button", "Hold during 2 seconds", "marker"),
        ]
        rec_id = f"SC4{subj:02d}{night + 1}E0"
        return RecordingPlan(rec_id, f"SC4{subj:02d}", ch, _start_time(rng, (1989, 1994)), subj,
                             extra={"scorer": self.scorers[int(rng.integers(len(self.scorers)))],
                                    "trailing_unscored_s": 30.0 * int(rng.integers(20, 120))})

    def psg_path(self, out_dir, plan):
        return out_dir / f"{plan.rec_id}-PSG.edf"

    def patient(self, plan, subject):
        sex = subject.get("sex", "X")
        desc = f"{'Female' if sex == 'F' else 'Male'}_{subject.get('age', 0)}yr"
        return Patient(code="X", sex=sex, name=desc)

    def data_record_duration(self, plan):
        return 30.0

    def hypnogram_path(self, out_dir, plan):
        return out_dir / f"{plan.rec_id[:-1]}{plan.extra['scorer']}-Hypnogram.edf"

    def annotation_files(self, out_dir, plan, hyp, subject):
        codes = np.asarray(hyp.stages, dtype=int).copy()
        codes[(codes == N3) & hyp.stage4] = 33  # R&K stage 4
        labels = {**self.labels, 33: "Sleep stage 4"}
        ev = stage_events(codes, labels, merge_runs=True)
        # like the real files: an unscored "?" span from the end of scoring past the end of the PSG
        ev.append((len(codes) * EPOCH_SEC, float(plan.extra["trailing_unscored_s"]), "Sleep stage ?"))
        return [write_annotation_edf(self.hypnogram_path(out_dir, plan), ev, plan.start,
                                     self.patient(plan, subject), self.recording(plan))]


class HMCProfile(EdfProfile):
    name = "hmc"
    labels = {W: "Sleep stage W", N1: "Sleep stage N1", N2: "Sleep stage N2", N3: "Sleep stage N3",
              REM: "Sleep stage R", UNKNOWN: None}

    def plan(self, index, rng):
        fs = 256.0
        ch = [
            ChannelSpec("EEG F4-M1", "F4-M1", fs),
            ChannelSpec("EEG C4-M1", "C4-M1", fs),
            ChannelSpec("EEG O2-M1", "O2-M1", fs),
            ChannelSpec("EEG C3-M2", "C3-M2", fs),
            ChannelSpec("EMG chin", "CHIN", fs),
            ChannelSpec("EOG E1-M2", "E1-M2", fs),
            ChannelSpec("EOG E2-M2", "E2-M2", fs),
            ChannelSpec("ECG", "ECG", fs),
        ]
        rec_id = f"SN{index + 1:03d}"
        lights = {"lights_off_s": round(float(rng.uniform(1, 60)), 2), "lights_on_before_end_s": round(float(rng.uniform(1, 30)), 2)}
        return RecordingPlan(rec_id, rec_id, ch, _start_time(rng, (2018, 2019)), index, extra=lights)

    def patient(self, plan, subject):
        return Patient(code=plan.rec_id)

    def recording(self, plan):
        return Recording()  # anonymised start date, as in the public HMC files

    def data_record_duration(self, plan):
        return 1.0

    def annotation_files(self, out_dir, plan, hyp, subject):
        ev = stage_events(hyp.stages, self.labels, merge_runs=False)
        n_sec = len(hyp.stages) * EPOCH_SEC
        ev.append((plan.extra["lights_off_s"], 0.0, "Lights off@@EEG F4-A1"))
        ev.append((round(n_sec - plan.extra["lights_on_before_end_s"], 2), 0.0, "Lights on@@EEG F4-A1"))
        ev.sort(key=lambda e: e[0])
        return [write_annotation_edf(out_dir / f"{plan.rec_id}_sleepscoring.edf", ev, plan.start,
                                     self.patient(plan, subject), self.recording(plan))]


# label styles for the generic profile: canonical channel -> (label, site)
_GENERIC_STYLES = {
    "aasm": [("EEG F3-M2", "F3-M2"), ("EEG F4-M1", "F4-M1"), ("EEG C3-M2", "C3-M2"), ("EEG C4-M1", "C4-M1"),
             ("EEG O1-M2", "O1-M2"), ("EEG O2-M1", "O2-M1"), ("EOG E1-M2", "E1-M2"), ("EOG E2-M1", "E2-M1"),
             ("EMG Chin", "CHIN")],
    "a-ref": [("F3-A2", "F3-A2"), ("F4-A1", "F4-A1"), ("C3-A2", "C3-A2"), ("C4-A1", "C4-A1"),
              ("O1-A2", "O1-A2"), ("O2-A1", "O2-A1"), ("LOC-A2", "LOC-A2"), ("ROC-A1", "ROC-A1"),
              ("Chin1-Chin2", "CHIN")],
    "raw-m": [("F3", "F3"), ("F4", "F4"), ("C3", "C3"), ("C4", "C4"), ("O1", "O1"), ("O2", "O2"),
              ("E1", "E1"), ("E2", "E2"), ("M1", "M1"), ("M2", "M2"), ("EMG Chin", "CHIN")],
    "raw-a": [("EEG F3", "F3"), ("EEG F4", "F4"), ("EEG C3", "C3"), ("EEG C4", "C4"), ("EEG O1", "O1"),
              ("EEG O2", "O2"), ("LOC", "E1"), ("ROC", "E2"), ("A1", "M1"), ("A2", "M2"), ("Chin EMG", "CHIN")],
    "colon": [("F3:M2", "F3-M2"), ("F4:M1", "F4-M1"), ("C3:M2", "C3-M2"), ("C4:M1", "C4-M1"),
              ("O1:M2", "O1-M2"), ("O2:M1", "O2-M1"), ("E1:M2", "E1-M2"), ("E2:M1", "E2-M1"), ("Chin", "CHIN")],
    "diff-eog": [("EEG F3-M2", "F3-M2"), ("EEG F4-M1", "F4-M1"), ("EEG C3-M2", "C3-M2"), ("EEG C4-M1", "C4-M1"),
                 ("EEG O1-M2", "O1-M2"), ("EEG O2-M1", "O2-M1"), ("EOG LOC-ROC", "E1-E2"), ("EMG Chin", "CHIN")],
}
_GENERIC_RATES = (256.0, 200.0, 128.0, 100.0)


class GenericProfile(EdfProfile):
    name = "generic"
    labels = {W: "Sleep stage W", N1: "Sleep stage N1", N2: "Sleep stage N2", N3: "Sleep stage N3",
              REM: "Sleep stage R", UNKNOWN: "Sleep stage ?"}
    styles = _GENERIC_STYLES

    def plan(self, index, rng):
        style = sorted(self.styles)[int(rng.integers(len(self.styles)))]
        fs = float(rng.choice(_GENERIC_RATES))
        fs_eog = fs if rng.random() < 0.75 else float(rng.choice(_GENERIC_RATES))
        fs_emg = fs if rng.random() < 0.7 else float(rng.choice(_GENERIC_RATES))
        unit = str(rng.choice(["uV", "uV", "uV", "mV", "V"]))
        ch = []
        for label, site in self.styles[style]:
            first = parse_site(site)[0]
            rate = fs_emg if first == "CHIN" else fs_eog if first in ("E1", "E2") else fs
            ch.append(ChannelSpec(label, site, rate, unit, "AgAgCl electrode", ""))
        if rng.random() < 0.5:
            ch.append(ChannelSpec(str(rng.choice(["ECG", "EKG"])), "ECG", fs, unit))
        rec_id = f"SIM{index + 1:04d}"
        return RecordingPlan(rec_id, rec_id, ch, _start_time(rng, (2015, 2023)), index,
                             line_freq=float(rng.choice([50.0, 60.0])), extra={"label_style": style})

    def annotation_files(self, out_dir, plan, hyp, subject):
        ev = stage_events(hyp.stages, self.labels, merge_runs=False)
        return [write_annotation_edf(out_dir / f"{plan.rec_id}-Hypnogram.edf", ev, plan.start,
                                     self.patient(plan, subject), self.recording(plan))]


# What users have beyond the generic layouts: ipsilateral references, bipolar leads, unreferenced
# electrodes without mastoids, a DREAMS-like ipsilateral A1 montage, any rate from 50 to 512 Hz.
_FIELD_STYLES = {
    **_GENERIC_STYLES,
    "ipsi": [("EEG F3-M1", "F3-M1"), ("EEG F4-M2", "F4-M2"), ("EEG C3-M1", "C3-M1"), ("EEG C4-M2", "C4-M2"),
             ("EEG O1-M1", "O1-M1"), ("EEG O2-M2", "O2-M2"), ("EOG E1-M1", "E1-M1"), ("EOG E2-M2", "E2-M2"),
             ("EMG Chin", "CHIN")],
    "dreams": [("C3-A1", "C3-M1"), ("O1-A1", "O1-M1"), ("EOG1-A1", "E1-M1"), ("EOG2-A1", "E2-M1"), ("EMG1", "CHIN")],
    "bipolar": [("EEG Fpz-Cz", "FPZ-CZ"), ("EEG Pz-Oz", "PZ-OZ"), ("EOG LOC-ROC", "E1-E2"), ("EMG submental", "CHIN")],
    "unref": [("C3", "C3"), ("C4", "C4"), ("O1", "O1"), ("O2", "O2"), ("F3", "F3"), ("F4", "F4"),
              ("E1", "E1"), ("E2", "E2"), ("Chin", "CHIN")],
}
_FIELD_RATES = (50.0, 64.0, 100.0, 128.0, 200.0, 250.0, 256.0, 500.0, 512.0)
_REFERENCES = ("M1", "M2")


class FieldProfile(GenericProfile):
    """``field`` - training data for what users have: the generic layout (same files, read by
    ``python -m preprocess generic``) with more montages (``_FIELD_STYLES``), a native rate from 50 to
    512 Hz (50-Hz recordings carry nothing above 25 Hz), a random subset of 1-9 of the montage's
    signals (at least one EEG; unreferenced mastoids stay), and 35 % of recordings cut to a 30-min
    excerpt (``plan.extra["excerpt_epochs"]``, taken where the sleeper is asleep)."""

    name = "field"
    styles = _FIELD_STYLES

    def plan(self, index, rng):
        style = sorted(self.styles)[int(rng.integers(len(self.styles)))]
        fs = float(rng.choice(_FIELD_RATES))
        fs_eog = fs if rng.random() < 0.75 else float(rng.choice(_FIELD_RATES))
        fs_emg = fs if rng.random() < 0.7 else float(rng.choice(_FIELD_RATES))
        unit = str(rng.choice(["uV", "uV", "uV", "mV", "V"]))
        rows = self.styles[style]
        refs = [r for r in rows if parse_site(r[1])[0] in _REFERENCES]
        sig = [r for r in rows if r not in refs]
        eeg = [r for r in sig if parse_site(r[1])[0] not in ("E1", "E2", "CHIN")]
        k = int(rng.integers(1, len(sig) + 1))
        first = eeg[int(rng.integers(len(eeg)))]
        rest = [r for r in sig if r != first]
        keep = {first} | {rest[i] for i in rng.permutation(len(rest))[: k - 1]}
        ch = []
        for label, site in rows:
            if (label, site) not in keep and (label, site) not in refs:
                continue
            a = parse_site(site)[0]
            rate = fs_emg if a == "CHIN" else fs_eog if a in ("E1", "E2") else fs
            ch.append(ChannelSpec(label, site, rate, unit, "AgAgCl electrode", ""))
        rec_id = f"SIM{index + 1:04d}"
        extra = {"label_style": style, "n_signals": k}
        if rng.random() < 0.35:
            extra["excerpt_epochs"] = 60
        return RecordingPlan(rec_id, rec_id, ch, _start_time(rng, (2015, 2023)), index,
                             line_freq=float(rng.choice([50.0, 60.0])), extra=extra)


PROFILES: dict[str, Profile] = {}


def register_profile(profile: Profile, name: str | None = None) -> Profile:
    PROFILES[name or profile.name] = profile
    return profile


for _p in (SleepEDFProfile(), HMCProfile(), GenericProfile(), FieldProfile()):
    register_profile(_p)


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown dataset profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def aasm_generic_seed(start: int) -> int:
    """First seed ≥ ``start`` whose generic-profile recording is the 9-channel AASM montage at 100 Hz.

    Known-answer checks (explanations) need every canonical channel under its AASM label and no
    resampling; the generic profile draws its layout per seed, so they search for such a seed.
    """
    profile = get_profile("generic")
    for seed in range(start, start + 10_000):
        plan = profile.plan(0, np.random.default_rng([seed, 0]))
        if (plan.extra.get("label_style") == "aasm" and {c.sfreq for c in plan.channels} == {100.0}
                and not any(c.site == "ECG" for c in plan.channels)):
            return seed
    raise RuntimeError(f"no AASM generic seed in [{start}, {start + 10_000})")
