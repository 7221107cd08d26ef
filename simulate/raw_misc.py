"""Simulated recordings in the raw release format of DCSM, DOD-H/DOD-O, HMC, ISRUC, SVUH (UCDDB)
and the PhysioNet/CinC Challenge 2018.

Each ``write_<name>(out_dir, rng, n_recordings=2, minutes=6, ...)`` writes the dataset's folder
layout, file names, channel labels, sampling rates, scoring format and stage codes (see the
matching module in :mod:`preprocess.datasets` for the evidence), and returns one dict of truth per
recording::

    {"id", "subject", "stages" (int8, one harmonized code per 30-s epoch of the signal),
     "channels" (canonical names the pipeline must find), "derived" (canonical -> [a, b] where
     the pipeline must re-reference), "labels", "lights" (or None), "files"}

Signals follow the stages through :mod:`simulate.physiology` (``physiology=False`` gives cheap
noise repeated every 37 s, for long nights in fast tests). EDF files are written with edfio, HDF5 with h5py, MATLAB
v4 with :func:`scipy.io.savemat` and MATLAB v7.3 as HDF5 with a MATLAB user block.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np

from preprocess.core.stages import N1, N2, N3, REM, UNKNOWN, W

from .physiology import draw_subject_params, simulate_sites

EPOCH = 30.0
UNK = UNKNOWN
_PATTERN = np.array([W, W, N1, N2, N2, N3, N3, N2, REM, REM, UNK, N1, N2, W], dtype=np.int8)


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------

def night(n_epochs: int, rng: np.random.Generator, unknown: bool = True) -> np.ndarray:
    """A short stage sequence with every stage (and a -1 epoch unless ``unknown=False``)."""
    pattern = _PATTERN if unknown else _PATTERN[_PATTERN != UNK]
    start = int(rng.integers(len(pattern)))
    return np.resize(np.roll(pattern, -start), n_epochs).astype(np.int8)


def signals_for(stages: np.ndarray, channels: dict[str, tuple[str, float]], rng: np.random.Generator,
                physiology: bool = True) -> dict[str, np.ndarray]:
    """``{label: (site, sfreq)}`` -> ``{label: volts}``, one value per sample of the night."""
    if physiology:
        params = draw_subject_params(rng, seed=int(rng.integers(2**31)))
        return simulate_sites(stages, channels, rng, params)
    out = {}
    for label, (_site, sfreq) in channels.items():
        n = int(round(len(stages) * EPOCH * sfreq))
        m = int(round(37 * sfreq))  # a 37-s block of noise + sine, repeated (fast for long nights)
        t = np.arange(m) / sfreq
        block = 15.0 * rng.standard_normal(m) + 20.0 * np.sin(2 * np.pi * rng.uniform(1, 12) * t)
        out[label] = np.resize(block * 1e-6, n)
    return out


def write_edf(path: Path, signals: dict[str, tuple[np.ndarray, float]], start: dt.datetime,
              annotations=(), unit: str = "uV") -> Path:
    """EDF/EDF+ with edfio: ``{label: (volts, sfreq)}``, stored in µV with 1-s data records."""
    import edfio

    scale = {"uV": 1e6, "mV": 1e3, "V": 1.0}[unit]
    sigs = []
    for label, (x, sfreq) in signals.items():
        data = np.asarray(x, dtype=np.float64) * scale
        lo, hi = float(data.min()), float(data.max())
        pad = max(1e-3, 0.01 * (hi - lo))
        sigs.append(edfio.EdfSignal(data, sfreq, label=label, physical_dimension=unit,
                                    physical_range=(lo - pad, hi + pad)))
    edf = edfio.Edf(sigs, starttime=start.time(), recording=edfio.Recording(startdate=start.date()),
                    annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations] or None)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


def _truth(rid, subject, stages, channels, derived=None, labels=None, lights=None, files=()):
    return {"id": rid, "subject": subject, "stages": np.asarray(stages, dtype=np.int8),
            "channels": list(channels), "derived": dict(derived or {}), "labels": dict(labels or {}),
            "lights": lights, "files": [Path(f) for f in files]}


def _runs(stages: np.ndarray):
    """(first epoch, length, code) of each run of equal codes."""
    edges = np.flatnonzero(np.diff(stages)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(stages)]])
    return [(int(a), int(b - a), int(stages[a])) for a, b in zip(starts, ends)]


# --------------------------------------------------------------------------------------------
# DCSM
# --------------------------------------------------------------------------------------------

DCSM_CHANNELS = {  # label: (site, Hz)
    "F3-M2": ("F3-M2", 256), "F4-M1": ("F4-M1", 256), "C3-M2": ("C3-M2", 256), "C4-M1": ("C4-M1", 256),
    "O1-M2": ("O1-M2", 256), "O2-M1": ("O2-M1", 256), "E1-M2": ("E1-M2", 256), "E2-M2": ("E2-M2", 256),
    "CHIN": ("CHIN", 256), "ECG-II": ("ECG", 256),
}
_DCSM_WORDS = {W: "W", N1: "N1", N2: "N2", N3: "N3", REM: "REM"}


def write_dcsm(out_dir, rng, n_recordings=2, minutes=6, physiology=True) -> list[dict]:
    """``data/sleep/DCSM/<record>/psg.edf`` + ``hypnogram.ids`` (``onset,duration,stage`` runs).

    -1 epochs are written as a gap in the runs (time no row covers)."""
    root = Path(out_dir) / "data" / "sleep" / "DCSM"
    truths = []
    for k in range(n_recordings):
        rid = f"tp{k:02d}5f7e68_a084_46bb_9f0a_b6a084155a1c"
        stages = night(int(minutes * 2), rng)
        sig = signals_for(stages, DCSM_CHANNELS, rng, physiology)
        folder = root / rid
        write_edf(folder / "psg.edf", {lab: (sig[lab], fs) for lab, (_s, fs) in DCSM_CHANNELS.items()},
                  dt.datetime(2016, 3, 4, 22, 10, 0))
        rows = [f"{a * 30},{n * 30},{_DCSM_WORDS[c]}" for a, n, c in _runs(stages) if c != UNK]
        (folder / "hypnogram.ids").write_text("\n".join(rows) + "\n")
        truths.append(_truth(rid, rid, stages, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                             files=[folder / "psg.edf", folder / "hypnogram.ids"]))
    return truths


# --------------------------------------------------------------------------------------------
# DOD-H / DOD-O
# --------------------------------------------------------------------------------------------

DODH_SIGNALS = {
    "eeg": ["C3_M2", "F3_F4", "F3_M2", "F3_O1", "F4_M1", "F4_O2", "FP1_F3", "FP1_M2", "FP1_O1",
            "FP2_F4", "FP2_M1", "FP2_O2"],
    "eog": ["EOG1", "EOG2"],
    "emg": ["EMG", "ECG"],
}
DODO_SIGNALS = {
    "eeg": ["C3_M2", "C4_M1", "F3_F4", "F3_M2", "F3_O1", "F4_O2", "O1_M2", "O2_M1"],
    "eog": ["EOG1", "EOG2"],
    "emg": ["EMG", "ECG"],
}


def _dod_site(name: str) -> str:
    return {"EOG1": "E1-M2", "EOG2": "E2-M1", "EMG": "CHIN", "ECG": "ECG"}.get(name, name.replace("_", "-"))


def _write_dod(out_dir, rng, n_recordings, minutes, physiology, layout, expected, tag) -> list[dict]:
    import h5py

    sfreq = 250.0
    truths = []
    for k in range(n_recordings):
        rid = f"{tag}{k:01d}b799f6-8a4f-4224-8797-ea971f78fb53"
        stages = night(int(minutes * 2), rng)
        names = [n for group in layout.values() for n in group]
        sig = signals_for(stages, {n: (_dod_site(n), sfreq) for n in names}, rng, physiology)
        path = Path(out_dir) / f"{rid}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        description = []
        with h5py.File(path, "w") as f:
            f.create_dataset("hypnogram", data=stages.astype(np.int64))
            for group, members in layout.items():
                g = f.require_group(f"signals/{group}")
                g.attrs["fs"] = sfreq
                g.attrs["unit"] = np.bytes_("uV")
                for n in members:
                    g.create_dataset(n, data=(sig[n] * 1e6).astype(np.float32))
                    description.append({"path": f"signals/{group}/{n}", "name": n, "domain": group,
                                        "fs": sfreq, "unit": "uV", "default": True})
            f.attrs.create("description", np.bytes_(json.dumps(description)))
            f.attrs["start_time"] = 1_500_000_000.0 + 86400.0 * k
            f.attrs["duration"] = float(len(stages) * EPOCH)
        truths.append(_truth(rid, rid, stages, expected,
                             labels={"diagnosis": "healthy" if tag == "h" else "OSA"}, files=[path]))
    return truths


def write_dodh(out_dir, rng, n_recordings=2, minutes=6, physiology=True) -> list[dict]:
    """``<uuid>.h5`` with ``signals/{eeg,eog,emg}/*`` at 250 Hz (µV) and the consensus ``hypnogram``."""
    return _write_dod(out_dir, rng, n_recordings, minutes, physiology, DODH_SIGNALS,
                      ["F3", "F4", "C3", "E1", "E2", "Chin"], "h")


def write_dodo(out_dir, rng, n_recordings=2, minutes=6, physiology=True) -> list[dict]:
    """As :func:`write_dodh` with the DOD-O derivations (C4/O1/O2, no F4)."""
    return _write_dod(out_dir, rng, n_recordings, minutes, physiology, DODO_SIGNALS,
                      ["F3", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"], "o")


# --------------------------------------------------------------------------------------------
# HMC
# --------------------------------------------------------------------------------------------

HMC_CHANNELS = {
    "EEG F4-M1": ("F4-M1", 256), "EEG C4-M1": ("C4-M1", 256), "EEG O2-M1": ("O2-M1", 256),
    "EEG C3-M2": ("C3-M2", 256), "EMG chin": ("CHIN", 256), "EOG E1-M2": ("E1-M2", 256),
    "EOG E2-M2": ("E2-M2", 256), "ECG": ("ECG", 256),
}
_HMC_CANON = {"EEG F4-M1": "F4", "EEG C4-M1": "C4", "EEG O2-M1": "O2", "EEG C3-M2": "C3",
              "EMG chin": "Chin", "EOG E1-M2": "E1", "EOG E2-M2": "E2"}
_HMC_WORDS = {W: "Sleep stage W", N1: "Sleep stage N1", N2: "Sleep stage N2", N3: "Sleep stage N3",
              REM: "Sleep stage R"}


def _hmc_scoring_truth(path: Path):
    """Stages (per 30 s from the scoring start) and lights of an HMC scoring file, via MNE."""
    import mne

    ann = mne.read_annotations(str(path))
    codes = {v: k for k, v in _HMC_WORDS.items()}
    stages = {int(round(o / EPOCH)): codes[d] for o, d in zip(ann.onset, ann.description) if d in codes}
    out = np.full(max(stages) + 1, UNK, dtype=np.int8)
    for i, c in stages.items():
        out[i] = c
    off = [o for o, d in zip(ann.onset, ann.description) if d.lower().startswith("lights off")]
    on = [o for o, d in zip(ann.onset, ann.description) if d.lower().startswith("lights on")]
    return out, ((off[0] if off else None), (on[-1] if on else None))


def write_hmc(out_dir, rng, n_recordings=2, minutes=6, physiology=True, scoring: Path | None = None,
              channels: list[str] | None = None, first_number: int = 1) -> list[dict]:
    """``SNxxx.edf`` (256 Hz, HMC labels) + ``SNxxx_sleepscoring.edf`` (EDF+, one stage per 30 s,
    ``Lights off@@EEG F4-A1`` / ``Lights on@@EEG Fpz-Cz``).

    ``scoring``: a real HMC scoring file; it becomes ``SN001_sleepscoring.edf`` (copied verbatim)
    and SN001's PSG spans it (start = scoring start). ``channels``: subset of the HMC labels to
    write (all by default). Records are numbered from ``first_number``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = channels or list(HMC_CHANNELS)
    chans = {lab: HMC_CHANNELS[lab] for lab in labels}
    truths = []
    for k in range(n_recordings):
        rid = f"SN{k + first_number:03d}"
        psg, sc = out_dir / f"{rid}.edf", out_dir / f"{rid}_sleepscoring.edf"
        start = dt.datetime(2001, 1, 1, 23, 59, 30) if k == 0 else dt.datetime(2001, 1, 1, 22, 41, 0)
        if k == 0 and scoring is not None:
            shutil.copyfile(scoring, sc)
            stages, lights = _hmc_scoring_truth(sc)
            sim_stages = stages
        else:
            stages = night(int(minutes * 2), rng, unknown=False)
            lights = (35.5, len(stages) * EPOCH - 20.25)
            ann = [(i * EPOCH, EPOCH, _HMC_WORDS[int(c)]) for i, c in enumerate(stages)]
            ann += [(lights[0], 0, "Lights off@@EEG F4-A1"), (lights[1], 0, "Lights on@@EEG Fpz-Cz")]
            write_edf(sc, {}, start, annotations=sorted(ann))
            sim_stages = stages
        # the PSG runs a few seconds past the last scored epoch (trailing partial epoch)
        sig = signals_for(sim_stages, chans, rng, physiology)
        extra = {lab: int(7 * fs) for lab, (_s, fs) in chans.items()}
        write_edf(psg, {lab: (np.concatenate([sig[lab], sig[lab][:extra[lab]]]), fs)
                        for lab, (_s, fs) in chans.items()}, start)
        expected = [c for c in ("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin")
                    if c in {_HMC_CANON.get(lab) for lab in labels}]
        truths.append(_truth(rid, rid, stages, expected, lights=lights, files=[psg, sc]))
    return truths


# --------------------------------------------------------------------------------------------
# ISRUC-Sleep
# --------------------------------------------------------------------------------------------

_ISRUC_AUX_X = {"X1": ("CHIN", 200), "X2": ("ECG", 200)}
ISRUC_VARIANTS = {
    # subgroup I style: mastoid-referenced labels with A1/A2
    "A": {"LOC-A2": ("E1-M2", 200), "ROC-A1": ("E2-M1", 200), "F3-A2": ("F3-M2", 200),
          "C3-A2": ("C3-M2", 200), "O1-A2": ("O1-M2", 200), "F4-A1": ("F4-M1", 200),
          "C4-A1": ("C4-M1", 200), "O2-A1": ("O2-M1", 200), **_ISRUC_AUX_X},
    # AASM labels, numbered auxiliary channels (chin = 24)
    "M": {"E1-M2": ("E1-M2", 200), "E2-M1": ("E2-M1", 200), "F3-M2": ("F3-M2", 200),
          "C3-M2": ("C3-M2", 200), "O1-M2": ("O1-M2", 200), "F4-M1": ("F4-M1", 200),
          "C4-M1": ("C4-M1", 200), "O2-M1": ("O2-M1", 200), "24": ("CHIN", 200), "25": ("ECG", 200)},
    # unreferenced electrodes: the pipeline derives X - A
    "raw": {"ROC": ("ROC", 200), "A1": ("A1", 200), "LOC": ("LOC", 200), "A2": ("A2", 200),
            "C4": ("C4", 200), "O2": ("O2", 200), "C3": ("C3", 200), "O1": ("O1", 200),
            "F4": ("F4", 200), "F3": ("F3", 200), **_ISRUC_AUX_X},
}
_ISRUC_RAW_DERIVED = {"F3": ["F3", "A2"], "F4": ["F4", "A1"], "C3": ["C3", "A2"], "C4": ["C4", "A1"],
                      "O1": ["O1", "A2"], "O2": ["O2", "A1"], "E1": ["LOC", "A2"], "E2": ["ROC", "A1"]}
_ISRUC_CODE = {W: 0, N1: 1, N2: 2, N3: 3, REM: 5}


def write_isruc(out_dir, rng, n_recordings=2, minutes=6, physiology=True) -> list[dict]:
    """``subgroupI/<n>/<n>.rec`` (n_recordings subjects), ``subgroupII/1/{1,2}/{1,2}.rec`` and
    ``subgroupIII/1/1.rec``, each with ``_1.txt`` (scorer 1, used) and ``_2.txt`` (scorer 2,
    different on purpose). Channel-label variants cycle: A1/A2 labels, AASM labels with numbered
    auxiliaries, unreferenced electrodes."""
    root = Path(out_dir)
    plan = [("subgroupI", 1, str(n + 1), None) for n in range(n_recordings)]
    plan += [("subgroupII", 2, "1", "1"), ("subgroupII", 2, "1", "2"), ("subgroupIII", 3, "1", None)]
    variants = ["A", "M", "raw"]
    truths = []
    for k, (folder, group, subj, session) in enumerate(plan):
        variant = variants[k % len(variants)]
        chans = ISRUC_VARIANTS[variant]
        stages = night(int(minutes * 2), rng, unknown=False)
        sig = signals_for(stages, chans, rng, physiology)
        stem = session or subj
        base = root / folder / subj / (session or "") / stem
        base.parent.mkdir(parents=True, exist_ok=True)
        rec = base.with_suffix(".rec")
        write_edf(rec, {lab: (sig[lab], fs) for lab, (_s, fs) in chans.items()}, dt.datetime(2009, 5, 12, 23, 5, 0))
        codes = [_ISRUC_CODE[int(c)] for c in stages]
        rec.with_name(f"{stem}_1.txt").write_text("\n".join(map(str, codes)) + "\n\n")
        other = [2 if c == 1 else c for c in codes]  # scorer 2 disagrees on N1
        rec.with_name(f"{stem}_2.txt").write_text("\n".join(map(str, other)) + "\n\n")
        rid = f"sg{group}-{subj}" + (f"-s{session}" if session else "")
        labels = {"subgroup": group, "scorer": 1} | ({"session": int(session)} if session else {})
        truths.append(_truth(rid, f"sg{group}-{subj}", stages, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                             derived=_ISRUC_RAW_DERIVED if variant == "raw" else {}, labels=labels,
                             files=[rec, rec.with_name(f"{stem}_1.txt")]))
    return truths


# --------------------------------------------------------------------------------------------
# SVUH / UCDDB
# --------------------------------------------------------------------------------------------

SVUH_CHANNELS = {
    "Lefteye": ("E1-A2", 128), "RightEye": ("E2-A1", 128), "C3A2": ("C3-A2", 128), "C4A1": ("C4-A1", 128),
    "EMG": ("CHIN", 128), "ECG": ("ECG", 128), "SpO2": ("ECG", 8), "Flow": ("ECG", 8),
}
UCDDB_RECORDS = ["002", "003", "005", "006", "007", "008", "009", "010", "011", "012", "013", "014", "015",
                 "017", "018", "019", "020", "021", "022", "023", "024", "025", "026", "027", "028"]


def write_svuh(out_dir, rng, n_recordings=2, minutes=6, physiology=True) -> list[dict]:
    """``files/ucddbNNN.rec`` (EDF) + ``ucddbNNN_stage.txt`` with the ucddb code table
    (0 W, 1 REM, 2 S1, 3 S2, 4 S3, 5 S4, 6 artifact, 7 indeterminate): N3 epochs alternate between
    S3 and S4, -1 epochs between artifact and indeterminate."""
    root = Path(out_dir) / "files"
    truths = []
    for k in range(n_recordings):
        rid = f"ucddb{UCDDB_RECORDS[k]}"
        stages = night(int(minutes * 2), rng)
        sig = signals_for(stages, SVUH_CHANNELS, rng, physiology)
        rec = root / f"{rid}.rec"
        write_edf(rec, {lab: (sig[lab], fs) for lab, (_s, fs) in SVUH_CHANNELS.items()},
                  dt.datetime(2002, 6, 1, 23, 15, 0))
        n3 = unk = 0
        lines = []
        for c in stages:
            if c == N3:
                lines.append(4 + n3 % 2)
                n3 += 1
            elif c == UNK:
                lines.append(6 + unk % 2)
                unk += 1
            else:
                lines.append({W: 0, REM: 1, N1: 2, N2: 3}[int(c)])
        (root / f"{rid}_stage.txt").write_text("\n".join(map(str, lines)) + "\n")
        truths.append(_truth(rid, rid, stages, ["C3", "C4", "E1", "E2", "Chin"],
                             files=[rec, root / f"{rid}_stage.txt"]))
    return truths


# --------------------------------------------------------------------------------------------
# PhysioNet/CinC Challenge 2018
# --------------------------------------------------------------------------------------------

P2018_SIGNALS = [  # label, site, gain field
    ("F3-M2", "F3-M2", "1/uV"), ("F4-M1", "F4-M1", "1/uV"), ("C3-M2", "C3-M2", "1/uV"),
    ("C4-M1", "C4-M1", "1/uV"), ("O1-M2", "O1-M2", "1/uV"), ("O2-M1", "O2-M1", "1/uV"),
    ("E1-M2", "E1-M2", "1/uV"), ("Chin1-Chin2", "CHIN", "1/uV"), ("ABD", "ECG", "1/uV"),
    ("CHEST", "ECG", "1/uV"), ("AIRFLOW", "ECG", "1/uV"), ("SaO2", "ECG", "655.35(-32768)/%"),
    ("ECG", "ECG", "1000/mV"),
]
_P2018_KEYS = {W: "wake", N1: "nonrem1", N2: "nonrem2", N3: "nonrem3", REM: "rem", UNK: "undefined"}


def write_mat73(path: Path, datasets: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file (HDF5 after the 512-byte MATLAB user block) holding ``datasets``
    (``"data/sleep_stages/wake"`` -> array, written with the HDF5 shape given)."""
    import h5py

    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, arr in datasets.items():
            f.create_dataset(key, data=np.asarray(arr))
        f.create_dataset("#refs#/a", data=np.zeros(2, dtype=np.uint64))
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM")
    return path


def write_physionet2018(out_dir, rng, n_recordings=2, minutes=6, physiology=True, offset_s: float = 10.0,
                        test_records: int = 1) -> list[dict]:
    """``training/trNN-NNNN/`` with ``.hea`` (13 signals, 200 Hz, ``16+24`` format), ``.mat``
    (MATLAB v4 ``val`` int16) and ``-arousal.mat`` (v7.3: ``data/arousals`` (L, 1) float64 and
    ``data/sleep_stages/*`` (1, L) uint8). The scoring grid starts ``offset_s`` seconds after the
    signal (< half an epoch, so every signal epoch is covered mostly by one scored epoch); the first
    scored epochs are ``undefined``. ``test_records`` unscored ``test/teNN-NNNN`` records are added."""
    import scipy.io

    fs = 200
    truths = []
    names = [(f"training/tr03-{5 + k:04d}", True) for k in range(n_recordings)]
    names += [(f"test/te04-{k + 1:04d}", False) for k in range(test_records)]
    for rel, scored in names:
        folder = Path(out_dir) / rel
        folder.mkdir(parents=True, exist_ok=True)
        rid = folder.name
        stages = night(int(minutes * 2), rng)
        stages[0] = UNK  # recordings start "undefined" before lights off
        sig = signals_for(stages, {lab: (site, fs) for lab, site, _g in P2018_SIGNALS}, rng, physiology)
        rows = []
        for lab, _site, gain in P2018_SIGNALS:
            g = float(gain.split("(")[0].split("/")[0])
            base = int(gain.split("(")[1].split(")")[0]) if "(" in gain else 0
            unit = {"uV": 1e6, "mV": 1e3, "%": 1e6}[gain.rsplit("/", 1)[1]]
            rows.append(np.clip(np.round(sig[lab] * unit * g + base), -32768, 32767).astype(np.int16))
        val = np.stack(rows)
        n = val.shape[1]
        scipy.io.savemat(folder / f"{rid}.mat", {"val": val}, format="4")
        lines = [f"{rid} {len(P2018_SIGNALS)} {fs} {n}"]
        lines += [f"{rid}.mat 16+24 {gain} 16 0 {int(val[i, 0])} 0 0 {lab}" for i, (lab, _s, gain) in enumerate(P2018_SIGNALS)]
        (folder / f"{rid}.hea").write_text("\n".join(lines) + "\n")
        files = [folder / f"{rid}.mat", folder / f"{rid}.hea"]
        if scored:
            per_sample = np.full(n, UNK, dtype=np.int8)
            shift = int(offset_s * fs)
            per_sample[shift:] = np.repeat(stages, int(EPOCH * fs))[: n - shift]
            data = {"data/arousals": np.zeros((n, 1))}
            for code, key in _P2018_KEYS.items():
                data[f"data/sleep_stages/{key}"] = (per_sample == code).astype(np.uint8)[None, :]
            arousal = write_mat73(folder / f"{rid}-arousal.mat", data)
            files.append(arousal)
            truths.append(_truth(rid, rid, stages, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "Chin"], files=files))
    return truths
