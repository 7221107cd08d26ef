"""Simulated raw recordings in the NSRR release formats (fixtures for the NSRR dataset modules).

One writer per dataset: ``write_<name>(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]``.
Each writes the dataset's folder layout, file names, EDF channel labels and native sampling rates
and its scoring files (NSRR XML, Compumedics Profusion XML, Luna ``.annot``, NCHSDB ``.tsv``, WSC
``.stg.txt`` / ``.allscore.txt`` / ``.log.txt`` / ``.eannot``), and returns the truth of every
recording::

    {"id", "subject", "stages" (int8, one per 30-s epoch of the signal, -1 unknown),
     "channels" (canonical names expected), "montage" (canonical -> label or [a, b]),
     "labels", "lights" ((off, on) seconds or None), "signal", "annotation"}

Signals come from :mod:`simulate.physiology` (stage-dependent EEG/EOG/EMG); every EDF carries a
few seconds past its last whole epoch (dropped by the pipeline). Stage sequences use R&K stage 4
and movement where the dataset was scored with R&K, so the "4 → N3" and "movement → -1" rules are
exercised. The facts behind each format are in the docstrings of ``preprocess/datasets/<name>.py``.
Simulated data: nothing here is a real recording.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

EPOCH = 30.0
TAIL_S = 7  # seconds past the last whole epoch
CODE = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "N4": 3, "R": 4, "?": -1, "MT": -1}
_RK_NIGHT = ["W", "W", "N1", "N2", "N2", "N3", "N4", "N4", "R", "R", "MT", "?"]
_AASM_NIGHT = ["W", "W", "N1", "N2", "N2", "N3", "N3", "N2", "R", "R", "W", "?"]

# NSRR XML EventConcepts and Profusion SleepStage codes per token
_NSRR_CONCEPT = {"W": "Wake|0", "N1": "Stage 1 sleep|1", "N2": "Stage 2 sleep|2", "N3": "Stage 3 sleep|3",
                 "N4": "Stage 4 sleep|4", "R": "REM sleep|5", "?": "Unscored|9", "MT": "Movement|6"}
_PROFUSION = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "N4": 4, "R": 5, "?": 9, "MT": 6}


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------

def night_tokens(n_epochs: int, rng: np.random.Generator, rk: bool = True) -> list[str]:
    """A short night of stage tokens (W, N1, N2, N3, N4, R, ?, MT) of ``n_epochs`` epochs."""
    base = _RK_NIGHT if rk else _AASM_NIGHT
    reps = -(-n_epochs // len(base))
    tokens = (base * reps)[:n_epochs]
    shift = int(rng.integers(0, n_epochs))  # rotate, so recordings differ
    return tokens[shift:] + tokens[:shift]


def truth(tokens: list[str]) -> np.ndarray:
    return np.array([CODE[t] for t in tokens], dtype=np.int8)


def simulate(stages: np.ndarray, channels: dict[str, tuple[str, float]], rng: np.random.Generator,
             tail_s: int = TAIL_S) -> dict[str, tuple[np.ndarray, float]]:
    """``{label: (site, sfreq)}`` → ``{label: (µV signal, sfreq)}`` covering the stages plus a tail."""
    stages = np.append(np.asarray(stages), -1)  # one more epoch to cut the tail from
    try:
        from simulate.physiology import draw_subject_params, simulate_sites

        params = draw_subject_params(rng)
        volts = simulate_sites(stages, channels, rng, params)
        out = {label: volts[label] * 1e6 for label in channels}
    except ImportError:  # pragma: no cover - physiology model not available: noise + stage sines
        out = {}
        for label, (_site, fs) in channels.items():
            t = np.arange(int(len(stages) * EPOCH * fs)) / fs
            amp = np.repeat(np.where(stages == 3, 60.0, 15.0), int(EPOCH * fs))
            out[label] = amp * np.sin(2 * np.pi * 2.0 * t) + rng.normal(0, 5, t.size)
    n_s = (len(stages) - 1) * EPOCH + tail_s
    return {label: (x[: int(round(n_s * channels[label][1]))], channels[label][1]) for label, x in out.items()}


def write_edf(path: Path, signals: dict[str, tuple[np.ndarray, float]], start: dt.datetime) -> Path:
    """EDF (edfio) with one 1-s data record per second; signals in µV."""
    import edfio

    path.parent.mkdir(parents=True, exist_ok=True)
    sigs = []
    for label, (data, fs) in signals.items():
        data = np.asarray(data, dtype=np.float64)
        lo, hi = float(data.min()), float(data.max())
        if hi - lo < 1e-6:
            lo, hi = lo - 1.0, hi + 1.0
        unit = "%" if label.lower() in ("sao2", "spo2") else "uV"
        sigs.append(edfio.EdfSignal(data, fs, label=label, physical_dimension=unit, physical_range=(lo, hi)))
    edf = edfio.Edf(sigs, starttime=start.time(), data_record_duration=1.0,
                    recording=edfio.Recording(startdate=start.date()))
    edf.write(path)
    return path


def _runs(tokens: list[str]) -> list[tuple[int, int, str]]:
    """(first epoch, n epochs, token) for each run of equal tokens."""
    runs, i = [], 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j] == tokens[i]:
            j += 1
        runs.append((i, j - i, tokens[i]))
        i = j
    return runs


def write_nsrr_xml(path: Path, tokens: list[str], duration_s: float, start: dt.datetime) -> Path:
    """NSRR XML: PSGAnnotation / ScoredEvents (one Stages|Stages event per run of a stage)."""
    events = [("", "Recording Start Time", 0.0, duration_s,
               f"<ClockTime>00.00.00 {start:%H.%M.%S}</ClockTime>")]
    events += [("Stages|Stages", _NSRR_CONCEPT[tok], i * EPOCH, n * EPOCH, "") for i, n, tok in _runs(tokens)]
    events.append(("Arousals|Arousals", "Arousal|Arousal ()", 95.5, 6.0,
                   "<SignalLocation>C3</SignalLocation>"))
    events.append(("Respiratory|Respiratory", "SpO2 desaturation|SpO2 desaturation", 120.0, 14.0,
                   "<SpO2Nadir>89</SpO2Nadir><SpO2Baseline>94</SpO2Baseline>"))
    body = []
    for etype, concept, t0, dur, extra in events:
        etype_xml = f"<EventType>{etype}</EventType>" if etype else "<EventType/>"
        body.append(f"<ScoredEvent>\n{etype_xml}\n<EventConcept>{concept}</EventConcept>\n"
                    f"<Start>{t0:g}</Start>\n<Duration>{dur:g}</Duration>\n{extra}\n</ScoredEvent>")
    text = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<PSGAnnotation>\n'
            "<SoftwareVersion>Compumedics</SoftwareVersion>\n<EpochLength>30</EpochLength>\n"
            "<ScoredEvents>\n" + "\n".join(body) + "\n</ScoredEvents>\n</PSGAnnotation>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_profusion_xml(path: Path, tokens: list[str]) -> Path:
    """Compumedics Profusion XML: CMPStudyConfig with one <SleepStage> per 30-s epoch."""
    stages = "\n".join(f"<SleepStage>{_PROFUSION[t]}</SleepStage>" for t in tokens)
    text = ('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<CMPStudyConfig>\n'
            "<EpochLength>30</EpochLength>\n<StepChannels/>\n<ScoredEvents>\n<ScoredEvent>\n"
            "<Name>Arousal ()</Name>\n<Start>95.5</Start>\n<Duration>6</Duration>\n<Input>C3</Input>\n"
            "</ScoredEvent>\n</ScoredEvents>\n<SleepStages>\n" + stages + "\n</SleepStages>\n</CMPStudyConfig>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _clock(start: dt.datetime, seconds: float, millis: bool = False) -> str:
    t = start + dt.timedelta(seconds=seconds)
    return f"{t:%H:%M:%S}.{t.microsecond // 1000:03d}" if millis else f"{t:%H:%M:%S}"


def _record(rid, subject, signal, annotation, tokens, channels, montage, labels=None, lights=None) -> dict:
    return {"id": rid, "subject": subject, "stages": truth(tokens), "channels": channels, "montage": montage,
            "labels": labels or {}, "lights": lights, "signal": signal, "annotation": annotation}


def _xml_recording(root: Path, rel_edf: str, rid: str, subject: str, tokens: list[str],
                   chans: dict[str, tuple[str, float]], start: dt.datetime, rng: np.random.Generator,
                   xml: tuple[str, ...] = ("nsrr", "profusion")) -> tuple[Path, Path]:
    """EDF under polysomnography/edfs/<rel> + its XMLs under annotations-events-{nsrr,profusion}/<rel>."""
    poly = root / "polysomnography"
    edf = write_edf(poly / "edfs" / rel_edf, simulate(truth(tokens), chans, rng), start)
    sub = Path(rel_edf).parent
    paths = {}
    if "nsrr" in xml:
        paths["nsrr"] = write_nsrr_xml(poly / "annotations-events-nsrr" / sub / f"{rid}-nsrr.xml", tokens,
                                       len(tokens) * EPOCH + TAIL_S, start)
    if "profusion" in xml:
        paths["profusion"] = write_profusion_xml(poly / "annotations-events-profusion" / sub / f"{rid}-profusion.xml",
                                                 tokens)
    return edf, paths.get("nsrr") or paths["profusion"]


NSRR_START = dt.datetime(1985, 1, 1, 21, 58, 17)  # NSRR de-identified EDF date 01.01.85


# --------------------------------------------------------------------------------------------
# XML cohorts
# --------------------------------------------------------------------------------------------

def write_shhs(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """SHHS: shhs1 (SHHS1 rates 125/50/125 Hz, NSRR + Profusion XML) and shhs2 of the same
    participant (SHHS2v4 rates 128/64/128 Hz, secondary EEG labelled ``EEG 2``, Profusion only)."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        visit = 1 + k % 2
        nsrrid = str(200001 + k // 2)
        rid = f"shhs{visit}-{nsrrid}"
        tokens = night_tokens(2 * minutes, rng, rk=True)
        eeg_fs, eog_fs, sec = (125.0, 50.0, "EEG(sec)") if visit == 1 else (128.0, 64.0, "EEG 2")
        chans = {"SaO2": ("ECG", 1.0), "H.R." if visit == 1 else "PR": ("ECG", 1.0), sec: ("C3-M2", eeg_fs),
                 "ECG": ("ECG", eeg_fs), "EMG": ("CHIN", eeg_fs), "EOG(L)": ("E1", eog_fs),
                 "EOG(R)": ("E2", eog_fs), "EEG": ("C4-M1", eeg_fs)}
        edf, ann = _xml_recording(root, f"shhs{visit}/{rid}.edf", rid, nsrrid, tokens, chans, NSRR_START, rng,
                                  xml=("nsrr", "profusion") if visit == 1 else ("profusion",))
        out.append(_record(rid, nsrrid, edf, ann, tokens, ["C3", "C4", "E1", "E2", "Chin"],
                           {"C3": sec, "C4": "EEG", "E1": "EOG(L)", "E2": "EOG(R)", "Chin": "EMG"},
                           {"visit": visit}))
    return out


def write_mros(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """MrOS: visit1 and visit2 of ``aa0001`` (electrodes vs Fpz at 256 Hz); visit 2 without NSRR XML."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        visit, sub = 1 + k % 2, f"aa{1 + k // 2:04d}"
        rid = f"mros-visit{visit}-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=True)
        chans = {"C3": ("C3", 256.0), "C4": ("C4", 256.0), "A1": ("M1", 256.0), "A2": ("M2", 256.0),
                 "ROC": ("E2", 256.0), "LOC": ("E1", 256.0), "L Chin": ("CHIN", 256.0), "R Chin": ("FPZ", 256.0),
                 "SAO2": ("ECG", 1.0)}
        edf, ann = _xml_recording(root, f"visit{visit}/{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng,
                                  xml=("nsrr", "profusion") if visit == 1 else ("profusion",))
        out.append(_record(rid, sub, edf, ann, tokens, ["C3", "C4", "E1", "E2", "Chin"],
                           {"C3": ["C3", "A2"], "C4": ["C4", "A1"], "E1": ["LOC", "A2"], "E2": ["ROC", "A1"],
                            "Chin": ["L Chin", "R Chin"]}, {"visit": visit}))
    return out


def write_mesa(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """MESA: ``mesa-sleep-NNNN``, EEG1 Fz-Cz, EEG2 Cz-Oz, EEG3 C4-M1, EOG-L/R vs FPz, EMG; 256 Hz."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        sub = f"{1 + k:04d}"
        rid = f"mesa-sleep-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=False)
        chans = {"EKG": ("ECG", 256.0), "EOG-L": ("E1-FPZ", 256.0), "EOG-R": ("E2-FPZ", 256.0),
                 "EMG": ("CHIN", 256.0), "EEG1": ("FZ-CZ", 256.0), "EEG2": ("CZ-OZ", 256.0),
                 "EEG3": ("C4-M1", 256.0), "SpO2": ("ECG", 1.0)}
        edf, ann = _xml_recording(root, f"{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["C4", "E1", "E2", "Chin"],
                           {"C4": "EEG3", "E1": "EOG-L", "E2": "EOG-R", "Chin": "EMG"}))
    return out


def write_cfs(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """CFS: ``cfs-visit5-NNNNNN``; C3, C4, M1, M2, LOC, ROC at 128 Hz, EMG1-3 at 256 Hz (vs reference)."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        sub = str(800002 + 8 * k)
        rid = f"cfs-visit5-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=True)
        chans = {"C3": ("C3", 128.0), "C4": ("C4", 128.0), "M1": ("M1", 128.0), "M2": ("M2", 128.0),
                 "LOC": ("E1", 128.0), "ROC": ("E2", 128.0), "EMG1": ("CHIN", 256.0), "EMG2": ("FPZ", 256.0),
                 "EMG3": ("FPZ", 256.0)}
        edf, ann = _xml_recording(root, f"{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["C3", "C4", "E1", "E2", "Chin"],
                           {"C3": ["C3", "M2"], "C4": ["C4", "M1"], "E1": ["LOC", "M2"], "E2": ["ROC", "M1"],
                            "Chin": ["EMG1", "EMG2"]}, {"visit": 5}))
    return out


def write_ccshs(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """CCSHS: ``ccshs-trec-NNNNNNN``; C3, C4, A1, A2, LOC, ROC at 128 Hz, EMG1-3 at 256 Hz vs Fpz."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        sub = str(1800001 + k)
        rid = f"ccshs-trec-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=True)
        chans = {"C3": ("C3", 128.0), "C4": ("C4", 128.0), "A1": ("M1", 128.0), "A2": ("M2", 128.0),
                 "LOC": ("E1", 128.0), "ROC": ("E2", 128.0), "EMG1": ("FPZ", 256.0), "EMG2": ("CHIN", 256.0),
                 "EMG3": ("FPZ", 256.0)}
        edf, ann = _xml_recording(root, f"{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["C3", "C4", "E1", "E2", "Chin"],
                           {"C3": ["C3", "A2"], "C4": ["C4", "A1"], "E1": ["LOC", "A2"], "E2": ["ROC", "A1"],
                            "Chin": ["EMG2", "EMG1"]}, {"visit": "trec"}))
    return out


_SIX_EEG = {"F3": "M2", "F4": "M1", "C3": "M2", "C4": "M1", "O1": "M2", "O2": "M1"}


def _electrodes(fs: float, extra: dict[str, str]) -> dict[str, tuple[str, float]]:
    chans = {site: (site, fs) for site in ("F3", "F4", "C3", "C4", "O1", "O2", "M1", "M2", "E1", "E2")}
    chans.update({label: (site, fs) for label, site in extra.items()})
    return chans


def _six_eeg_montage(eog=("E1", "E2")) -> dict:
    m = {k: [k, ref] for k, ref in _SIX_EEG.items()}
    m.update({"E1": [eog[0], "M2"], "E2": [eog[1], "M1"]})
    return m


def write_chat(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """CHAT: baseline and follow-up of ``300001``; electrodes vs FPz at 200 Hz, Lchin/Rchin/Cchin."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        visit, sub = ("baseline", "followup")[k % 2], str(300001 + k // 2)
        rid = f"chat-{visit}-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=False)
        chans = _electrodes(200.0, {"T3": "T3", "T4": "T4", "Lchin": "CHIN", "Rchin": "FPZ", "Cchin": "FPZ"})
        edf, ann = _xml_recording(root, f"{visit}/{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                           _six_eeg_montage() | {"Chin": ["Lchin", "Cchin"]}, {"visit": visit}))
    return out


def write_abc(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """ABC: baseline and month09 of ``900001``; all electrodes vs Fpz at 256 Hz, Chin1-3."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        visit, sub = ("baseline", "month09", "month18")[k % 3], str(900001 + k // 3)
        rid = f"abc-{visit}-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=False)
        chans = _electrodes(256.0, {"Chin1": "FPZ", "Chin2": "CHIN", "Chin3": "FPZ"})
        edf, ann = _xml_recording(root, f"{visit}/{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                           _six_eeg_montage() | {"Chin": ["Chin2", "Chin1"]}, {"visit": visit}))
    return out


def write_homepap(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """HomePAP lab studies at 200 Hz: ``lab/full`` with referenced labels (F3-M2 ..., Lchin-Cchin),
    ``lab/split`` with electrodes recorded against the reference."""
    root, out = Path(out_dir), []
    for k in range(n_recordings):
        kind, sub = ("full", "split")[k % 2], str(1600039 + k)
        rid = f"homepap-lab-{kind}-{sub}"
        tokens = night_tokens(2 * minutes, rng, rk=False)
        if kind == "full":
            chans = {f"{s}-{r}": (f"{s}-{r}", 200.0) for s, r in _SIX_EEG.items()}
            chans.update({"E1": ("E1", 200.0), "E2": ("E2", 200.0), "M1": ("M1", 200.0), "M2": ("M2", 200.0),
                          "Lchin-Cchin": ("CHIN", 200.0)})
            montage = {f"{s}": f"{s}-{r}" for s, r in _SIX_EEG.items()}
            montage.update({"E1": ["E1", "M2"], "E2": ["E2", "M1"], "Chin": "Lchin-Cchin"})
        else:
            chans = _electrodes(200.0, {"Lchin": "CHIN", "Cchin": "FPZ", "Rchin": "FPZ"})
            montage = _six_eeg_montage() | {"Chin": ["Lchin", "Cchin"]}
        edf, ann = _xml_recording(root, f"lab/{kind}/{rid}.edf", rid, sub, tokens, chans, NSRR_START, rng)
        out.append(_record(rid, sub, edf, ann, tokens, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                           montage, {"visit": f"lab-{kind}"}))
    return out


# --------------------------------------------------------------------------------------------
# Luna .annot cohorts (APPLES, PATS)
# --------------------------------------------------------------------------------------------

def write_annot(path: Path, tokens: list[str], start: dt.datetime, scored: int) -> Path:
    """NSRR/Luna ``.annot``: header row, one stage row per epoch with clock start/stop times."""
    lines = ["class\tinstance\tchannel\tstart\tstop\tmeta"]
    for i, tok in enumerate(tokens[:scored]):
        cls = "N3" if tok == "N4" else tok
        lines.append(f"{cls}\t.\t.\t{_clock(start, i * EPOCH)}\t{_clock(start, (i + 1) * EPOCH)}\t.")
        if i == 3:
            lines.append(f"arousal_standard\t.\t.\t{_clock(start, i * EPOCH + 12)}\t{_clock(start, i * EPOCH + 18)}\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def _annot_dataset(out_dir, rng, n_recordings, minutes, ids, chans_of, montage) -> list[dict]:
    root, out = Path(out_dir) / "polysomnography", []
    for k in range(n_recordings):
        rid, sub = ids(k)
        tokens = night_tokens(2 * minutes, rng, rk=False)
        start = dt.datetime(1985, 1, 1, 23, 58, 30)  # crosses midnight
        edf = write_edf(root / f"{rid}.edf", simulate(truth(tokens), chans_of(k), rng), start)
        scored = len(tokens) - 2  # the scoring stops two epochs before the end of the EDF
        ann = write_annot(root / f"{rid}.annot", tokens, start, scored)
        rec = _record(rid, sub, edf, ann, tokens, list(montage), montage)
        rec["stages"][scored:] = -1
        out.append(rec)
    return out


def write_apples(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """APPLES: ``polysomnography/apples-NNNNNN.edf`` + ``.annot``; referenced labels, 200/100 Hz."""
    def chans(k):
        fs = 200.0 if k % 2 == 0 else 100.0
        return {"C3_M2": ("C3-M2", fs), "C4_M1": ("C4-M1", fs), "O1_M2": ("O1-M2", fs), "O2_M1": ("O2-M1", fs),
                "LOC": ("E1-M2", fs), "ROC": ("E2-M1", fs), "EMG": ("CHIN", fs), "ECG": ("ECG", fs)}

    montage = {"C3": "C3_M2", "C4": "C4_M1", "O1": "O1_M2", "O2": "O2_M1", "E1": "LOC", "E2": "ROC", "Chin": "EMG"}
    return _annot_dataset(out_dir, rng, n_recordings, minutes,
                          lambda k: (f"apples-{130001 + k}", str(130001 + k)), chans, montage)


def write_pats(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """PATS: ``polysomnography/<id>.edf`` + ``.annot`` with the harmonised labels F3_M2 … LOC, ROC, EMG
    (200 Hz). The id scheme is an assumption (``pats-NNNNNN``)."""
    def chans(k):
        c = {f"{s}_{r}": (f"{s}-{r}", 200.0) for s, r in _SIX_EEG.items()}
        c.update({"LOC": ("E1-M2", 200.0), "ROC": ("E2-M2", 200.0), "EMG": ("CHIN", 200.0)})
        return c

    montage = {s: f"{s}_{r}" for s, r in _SIX_EEG.items()} | {"E1": "LOC", "E2": "ROC", "Chin": "EMG"}
    return _annot_dataset(out_dir, rng, n_recordings, minutes,
                          lambda k: (f"pats-{800001 + k}", str(800001 + k)), chans, montage)


# --------------------------------------------------------------------------------------------
# NCHSDB
# --------------------------------------------------------------------------------------------

def write_nchsdb(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """NCHSDB: ``sleep_data/<patient>_<study>.edf`` (256 Hz, referenced labels) + ``.tsv`` events.

    Stage rows start 0.9609375 s past each epoch boundary (as in the real files), markers and
    events are interleaved, and the staging stops two epochs before the end of the EDF.
    The first two recordings belong to the same patient."""
    root, out = Path(out_dir) / "sleep_data", []
    eeg = {f"EEG {s}-{r}": (f"{s}-{r}", 256.0) for s, r in _SIX_EEG.items()}
    for k in range(n_recordings):
        patient = str(10000 + 3 * (k // 2))
        rid = f"{patient}_{17728 + k}"
        tokens = night_tokens(2 * minutes, rng, rk=False)
        chin = "EMG Chin1-Chin2" if k % 2 == 0 else "EMG Chin2-Chin1"
        chans = {"EOG LOC-M2": ("E1-M2", 256.0), "EOG ROC-M1": ("E2-M1", 256.0), chin: ("CHIN", 256.0), **eeg,
                 "EEG CZ-O1": ("CZ-O1", 256.0), "ECG EKG2-EKG": ("ECG", 256.0), "SpO2": ("ECG", 1.0)}
        start = dt.datetime(2001, 1, 1, 20, 3, 7)
        edf = write_edf(root / f"{rid}.edf", simulate(truth(tokens), chans, rng), start)
        scored = len(tokens) - 2
        rows = [(1.03515625, 0.0, "Montage:NCH_PSG_STANDARD, Ref"), (1.03515625, 0.0, "Start Recording"),
                (1.6171875, 0.0, "Video Recording ON")]
        words = {"W": "W", "N1": "N1", "N2": "N2", "N3": "N3", "R": "R", "?": "?"}
        for i, tok in enumerate(tokens[:scored]):
            rows.append((i * EPOCH + 0.9609375, 30.0, f"Sleep stage {words[tok]}"))
        rows += [(62.62890625, 0.0, "Body Position: Right"), (104.70703125, 7.609375, "EEG arousal"),
                 (157.36328125, 7.0, "Oxygen Desaturation")]
        rows.sort(key=lambda r: r[0])
        ann = root / f"{rid}.tsv"
        ann.write_text("onset\tduration\tdescription\n" + "".join(f"{o!r}\t{d!r}\t{t}\n" for o, d, t in rows))
        rec = _record(rid, patient, edf, ann, tokens, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"],
                      {s: f"EEG {s}-{r}" for s, r in _SIX_EEG.items()}
                      | {"E1": "EOG LOC-M2", "E2": "EOG ROC-M1", "Chin": chin})
        rec["stages"][scored:] = -1
        out.append(rec)
    return out


# --------------------------------------------------------------------------------------------
# WSC
# --------------------------------------------------------------------------------------------

_EANNOT = {"W": "W", "N1": "N1", "N2": "N2", "N3": "N3", "N4": "N3", "R": "R", "?": "?", "MT": "movement"}


def write_wsc(out_dir, rng, n_recordings=2, minutes=6) -> list[dict]:
    """WSC: alternating Gamma (100 Hz; ``.stg.txt`` with R&K stage 4, ``.log.txt`` with lights,
    ``.sco.txt``, ``.eannot``) and Twin (200 Hz; ``.allscore.txt`` with stage changes and lights,
    ``.eannot``) studies in ``polysomnography/``. The second Gamma study has no stg header (as
    ``wsc-visit1-62741`` in the release)."""
    root, out = Path(out_dir) / "polysomnography", []
    for k in range(n_recordings):
        gamma = k % 2 == 0
        visit, sub = 1 + k // 2, str(10119 + k % 2)
        rid = f"wsc-visit{visit}-{sub}"
        base = root / f"{rid}-nsrr"
        tokens = night_tokens(2 * minutes, rng, rk=gamma)
        start = dt.datetime(1985, 1, 1, 22, 10, 5)
        if gamma:
            chans = {"E1": ("E1-M2", 100.0), "E2": ("E2-M1", 100.0), "C3_M2": ("C3-M2", 100.0),
                     "O1_M2": ("O1-M2", 100.0), "chin": ("CHIN", 100.0), "ECG": ("ECG", 100.0)}
            montage = {"C3": "C3_M2", "O1": "O1_M2", "E1": "E1", "E2": "E2", "Chin": "chin"}
        else:
            chans = {"E1": ("E1-M2", 200.0), "E2": ("E2-M1", 200.0)}
            chans.update({f"{s}_M2": (f"{s}-M2", 200.0) for s in ("F3", "Fz", "Cz", "C3", "Pz", "O1")})
            chans.update({"cchin_l": ("CHIN", 200.0), "ECG": ("ECG", 200.0)})
            montage = {"F3": "F3_M2", "C3": "C3_M2", "O1": "O1_M2", "E1": "E1", "E2": "E2", "Chin": "cchin_l"}
        edf = write_edf(Path(f"{base}.edf"), simulate(truth(tokens), chans, rng), start)
        stages = truth(tokens)
        if gamma:
            stg = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "N4": 4, "R": 5, "MT": 6, "?": 7}
            header = ["Epoch\tUser-Defined Stage\tCAST-Defined Stage"] if k < 2 else []
            rows = [f"{i + 1}\t{stg[t]}\t{stg[t]}" for i, t in enumerate(tokens)]
            ann = Path(f"{base}.stg.txt")
            ann.write_text("\n".join(header + rows) + "\n")
            lights = (60.0, 330.0)
            Path(f"{base}.log.txt").write_text(
                f"\t{_clock(start, 0)} 1\tRecording Started\t\n\t{_clock(start, 20)} 1\tBiocals\t\n"
                f"\t{_clock(start, 60)} 3\tLights Out\t\n\t{_clock(start, 330)} 12\tLights On\t\n")
            Path(f"{base}.sco.txt").write_text(
                "Epoch\tTime\tStage\tPosition\tMarker Text\n5\t22:12:11\t2\tSupine\tSpon Arousal\n")
        else:
            ann = Path(f"{base}.allscore.txt")
            stages[0] = -1  # stage rows begin with the second epoch
            words = {"W": "W", "N1": "N1", "N2": "N2", "N3": "N3", "R": "R", "?": "NO STAGE", "MT": "MVT"}
            lines = [f"{_clock(start, -3600, True)}\tNEW MONTAGE - PSG",  # before START RECORDING: ignored
                     f"{_clock(start, 0, True)}\tSTART RECORDING",
                     f"{_clock(start, 45.5, True)}\tLIGHTS OUT"]
            runs = _runs(["skip"] + tokens[1:])
            for i, _n, tok in runs[1:]:
                lines.append(f"{_clock(start, i * EPOCH, True)}\tSTAGE - {words[tok]}")
                if i == 4:
                    lines.append(f"{_clock(start, i * EPOCH + 9.2, True)}\tAROUSAL - SPONTANEOUS - DUR: 4.0 SEC.")
            lines.append(f"{_clock(start, 341.0, True)}\tLIGHTS ON")
            lines.sort(key=lambda line: line.split("\t")[0])  # chronological (no midnight in this night)
            ann.write_text("\r\n".join(lines) + "\r\n")
            lights = (45.5, 341.0)
        Path(f"{base}.eannot").write_text("\n".join(_EANNOT[t] for t in tokens) + "\n")
        out.append(_record(rid, sub, edf, ann, tokens, [c for c in ("F3", "C3", "O1", "E1", "E2", "Chin")
                                                         if c in montage], montage, {"visit": visit}, lights))
        out[-1]["stages"] = stages
    return out


WRITERS = {
    "shhs": write_shhs, "mros": write_mros, "mesa": write_mesa, "cfs": write_cfs, "ccshs": write_ccshs,
    "chat": write_chat, "abc": write_abc, "homepap": write_homepap, "apples": write_apples, "pats": write_pats,
    "nchsdb": write_nchsdb, "wsc": write_wsc,
}
