"""Fixture writers in the raw formats of STAGES, MASS (SS1/SS3), BOAS and MNC.

Each ``write_<name>(out_dir, rng, n_recordings=..., minutes=6, ...)`` writes tiny recordings in the
dataset's public layout (folder structure, file names, channel labels, sampling rates, annotation
format and stage codes; see the dataset modules in ``preprocess/datasets`` for the evidence) and
returns one dict of ground truth per recording:

``id``, ``subject``, ``stages`` (expected harmonized label of every *output* epoch, −1 included,
or None when unscored), ``channels`` (expected canonical channels), ``derived`` (canonical →
``[a, b]`` derivations the pipeline must form), ``labels``, ``lights`` ((off, on) seconds from the
output start, or None), ``files`` and ``marker`` ((canonical channel, output epoch) whose first
2 s carry a strong 12 Hz burst, to check signal/label alignment; or None).

Signals come from :mod:`simulate.physiology` (``physiology=True``) or plain noise + sines
(faster, for tests that only need structure). Everything here is simulated.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from preprocess.core.stages import N1, N2, N3, REM, UNKNOWN, W

from .physiology import draw_subject_params, simulate_sites

EPOCH = 30.0
UNK = UNKNOWN


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------

def stage_runs(n: int, rng: np.random.Generator, unknown: bool = True) -> np.ndarray:
    """``n`` epochs of runs (1-4 epochs) of random stages, each stage present when ``n`` allows."""
    pool = [W, N1, N2, N3, REM] + ([UNK] if unknown else [])
    order = list(rng.permutation(pool))
    out: list[int] = []
    while len(out) < n:
        code = order.pop() if order else int(rng.choice(pool))
        out += [int(code)] * int(rng.integers(1, 4))
    return np.asarray(out[:n], dtype=np.int8)


def make_signals(n_epochs: int, channels: dict[str, tuple[str, float]], rng: np.random.Generator,
                 physiology: bool = True, stages: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, float]]:
    """``{label: (site, Hz)}`` → ``{label: (volts, Hz)}`` covering ``n_epochs`` × 30 s."""
    st = np.asarray(stages if stages is not None else stage_runs(n_epochs, rng), dtype=np.int8)
    if physiology:
        params = draw_subject_params(rng, seed=int(rng.integers(2**31)))
        sims = simulate_sites(st, channels, rng, params)
        return {k: (v, float(channels[k][1])) for k, v in sims.items()}
    out = {}
    for label, (_site, fs) in channels.items():
        n = int(round(n_epochs * EPOCH * fs))
        t = np.arange(n) / fs
        out[label] = (1e-6 * (15 * rng.standard_normal(n) + 20 * np.sin(2 * np.pi * rng.uniform(1, 12) * t)), float(fs))
    return out


def add_marker(x: np.ndarray, fs: float, t0: float, seconds: float = 2.0, amp_v: float = 800e-6) -> None:
    """Add a strong 12 Hz burst at ``t0`` seconds (in place): an alignment marker."""
    i0, n = int(round(t0 * fs)), int(round(seconds * fs))
    x[i0:i0 + n] += amp_v * np.sin(2 * np.pi * 12.0 * np.arange(n) / fs)


def write_edf(path: Path, signals: dict[str, tuple[np.ndarray, float]], start: dt.datetime,
              annotations=(), seconds: float | None = None) -> Path:
    """EDF (EDF+ when ``annotations``) with edfio; volts stored in µV; optional crop to ``seconds``."""
    import edfio

    sigs = []
    for label, (x, fs) in signals.items():
        data = np.asarray(x, dtype=np.float64) * 1e6
        if seconds is not None:
            data = data[: int(round(seconds * fs))]
        lo, hi = float(data.min()), float(data.max())
        pad = max(1e-3, 0.01 * (hi - lo))
        sigs.append(edfio.EdfSignal(data, fs, label=label, physical_dimension="uV", physical_range=(lo - pad, hi + pad)))
    edf = edfio.Edf(sigs, starttime=start.time(), recording=edfio.Recording(startdate=start.date()),
                    annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations] or None,
                    data_record_duration=1.0 if sigs else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


def write_annotation_edf(path: Path, annotations, start: dt.datetime) -> Path:
    """Annotation-only EDF+ (no signals), e.g. a MASS ``Base.edf``."""
    import edfio

    edf = edfio.Edf([], starttime=start.time(), recording=edfio.Recording(startdate=start.date()),
                    annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations])
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


def truth(rid, subject, stages, channels, derived=None, labels=None, lights=None, files=(), marker=None) -> dict:
    return {"id": rid, "subject": subject, "stages": None if stages is None else np.asarray(stages, np.int8),
            "channels": list(channels), "derived": dict(derived or {}), "labels": dict(labels or {}),
            "lights": lights, "files": [Path(f) for f in files], "marker": marker}


def output_stages(n_total: int, grid: float, lead: int, scored: np.ndarray) -> np.ndarray:
    """Expected labels of the output epochs: the signal starts ``grid`` s late, the scoring
    ``lead`` epochs after that, unscored epochs are −1."""
    n_out = int(np.floor((n_total * EPOCH - grid) / EPOCH + 1e-9))
    out = np.full(n_out, UNK, dtype=np.int8)
    out[lead:lead + len(scored)] = scored[: max(n_out - lead, 0)]
    return out


def _runs(stages: np.ndarray):
    edges = np.flatnonzero(np.diff(stages)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(stages)]])
    return [(int(a), int(b - a), int(stages[a])) for a, b in zip(starts, ends)]


# --------------------------------------------------------------------------------------------
# STAGES
# --------------------------------------------------------------------------------------------

_STAGES_WORDS = {W: "Wake", N1: "Stage1", N2: "Stage2", N3: "Stage3", REM: "REM", UNK: "UnknownStage"}
# site -> (channel style, CSV style, EEG rate, EMG rate, grid offset s, EDF start)
STAGES_SITES = {
    "BOGN": ("derived", "per_epoch_dur0", 200.0, 200.0, 13.0, dt.datetime(2018, 5, 22, 22, 41, 47)),
    "STNF": ("electrodes", "per_epoch_dur30", 256.0, 256.0, 7.0, dt.datetime(2018, 3, 2, 23, 57, 53)),
    "GSSA": ("emg_pairs", "blocks_reordered", 256.0, 200.0, 0.0, dt.datetime(2019, 1, 9, 21, 30, 0)),
}
_STAGES_CHANNELS = {
    "derived": ({"F3M2": "F3-M2", "F4M1": "F4-M1", "C3M2": "C3-M2", "C4M1": "C4-M1", "O1M2": "O1-M2",
                 "O2M1": "O2-M1", "E1M2": "E1-M2", "E2M2": "E2-M2", "EMG_Chin": "CHIN", "ECG": "ECG"}, {}),
    "electrodes": ({"F3": "F3", "F4": "F4", "C3": "C3", "C4": "C4", "O1": "O1", "O2": "O2", "M1": "M1", "M2": "M2",
                    "E1": "E1", "E2": "E2", "Chin1": "CHIN", "Chin2": "CHIN"},
                   {"F3": ["F3", "M2"], "F4": ["F4", "M1"], "C3": ["C3", "M2"], "C4": ["C4", "M1"],
                    "O1": ["O1", "M2"], "O2": ["O2", "M1"], "E1": ["E1", "M2"], "E2": ["E2", "M1"],
                    "Chin": ["Chin1", "Chin2"]}),
    "emg_pairs": ({"EEG_F3-A2": "F3-M2", "EEG_F4-A1": "F4-M1", "EEG_C3-A2": "C3-M2", "EEG_C4-A1": "C4-M1",
                   "EEG_O1-A2": "O1-M2", "EEG_O2-A1": "O2-M1", "EOG_LOC-A2": "E1-M2", "EOG_ROC-A2": "E2-M2",
                   "EMG1": "CHIN", "EMG2": "CHIN"}, {"Chin": ["EMG1", "EMG2"]}),
}
_STAGES_C4 = {"derived": "C4M1", "electrodes": "C4", "emg_pairs": "EEG_C4-A1"}


def _clock(t: dt.datetime, style: str) -> str:
    if style == "blocks_reordered":  # date + 12-hour clock (Stanford export before de-dating)
        return f"{t.month}/{t.day}/{t.year} {t.strftime('%I:%M:%S %p').lstrip('0')}"
    return t.strftime("%H:%M:%S")


def _stages_csv(path: Path, scored: np.ndarray, first: dt.datetime, style: str, lights_at=None) -> None:
    rows = []  # (time, duration, event)
    if lights_at:
        rows.append((lights_at[0], 0.0, "Lights Off"))
    if style == "blocks_reordered":
        for i0, n, code in _runs(scored):
            rows.append((first + dt.timedelta(seconds=EPOCH * i0), EPOCH * n, _STAGES_WORDS[code]))
    else:
        dur = 0.0 if style == "per_epoch_dur0" else EPOCH
        for i, code in enumerate(scored):
            t = first + dt.timedelta(seconds=EPOCH * i)
            rows.append((t, dur, _STAGES_WORDS[int(code)]))
            if style == "per_epoch_dur0" and i == 3:
                rows.append((t, dur, "MT"))  # BOGN: MT logged at the same time as a stage: the stage wins
        if style == "per_epoch_dur30":
            rows[-1] = (rows[-1][0], 2592000.0, rows[-1][2])  # STNF: absurd 30-day duration = one epoch
    # events that are not stages and must be ignored
    rows.append((first + dt.timedelta(seconds=EPOCH * 2 + 9), 6.0, "Awake"))
    rows.append((first + dt.timedelta(seconds=EPOCH * 4 + 3), 11.0, "Arousal"))
    rows.append((first + dt.timedelta(seconds=EPOCH * 5 + 1), 14.0, "Hypopnea"))
    if lights_at:
        rows.append((lights_at[1], 0.0, "Lights On"))
    rows.sort(key=lambda r: r[0])
    if style == "blocks_reordered":
        lines = ["Event,Start Time,Duration (seconds)"] + [f"{e},{_clock(t, style)},{d:.3f}" for t, d, e in rows]
    else:
        lines = ["Start Time,Duration (seconds),Event"] + [f"{_clock(t, style)}, {d:.3f}, {e}" for t, d, e in rows]
    path.write_text("\r\n".join(lines) + "\r\n")


def write_stages(out_dir, rng, n_recordings: int = 3, minutes: float = 6, physiology: bool = True,
                 sites=tuple(STAGES_SITES)) -> list[dict]:
    """STAGES: ``<out>/STAGES PSGs/<SITE>/<SITE>NNNNN.edf`` + ``.csv`` (one recording per site in turn).

    Every recording starts its scoring 2 epochs (+ a non-grid offset) after the EDF start and ends
    it 2 epochs before the EDF end; STNF crosses midnight and logs lights off/on.
    """
    out, root = [], Path(out_dir) / "STAGES PSGs"
    n_total = int(round(minutes * 60 / EPOCH))
    lead, tail = 2, 2
    for i in range(n_recordings):
        site = sites[i % len(sites)]
        ch_style, csv_style, fs, fs_emg, grid, start = STAGES_SITES[site]
        rid = f"{site}{i + 1:05d}"
        scored = stage_runs(n_total - lead - tail - (1 if grid else 0), rng)
        labels_sites, derived = _STAGES_CHANNELS[ch_style]
        req = {lab: (site_, fs_emg if site_ == "CHIN" else fs) for lab, site_ in labels_sites.items()}
        sig = make_signals(n_total, req, rng, physiology)
        first = start + dt.timedelta(seconds=grid + lead * EPOCH)
        marked_epoch = lead + 1
        c4 = _STAGES_C4[ch_style]
        add_marker(sig[c4][0], sig[c4][1], grid + marked_epoch * EPOCH)  # C4 (or C4 - M1) carries it
        edf = write_edf(root / site / f"{rid}.edf", sig, start)
        lights_at = None
        lights = None
        if site == "STNF":
            off = first - dt.timedelta(seconds=20)
            on = first + dt.timedelta(seconds=EPOCH * len(scored) + 5)
            lights_at = (off, on)
            lights = ((off - start).total_seconds() - grid, (on - start).total_seconds() - grid)
        _stages_csv(root / site / f"{rid}.csv", scored, first, csv_style, lights_at)
        expected = ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"]
        out.append(truth(rid, rid, output_stages(n_total, grid, lead, scored), expected, derived,
                         {"site": site}, lights, [edf, root / site / f"{rid}.csv"], ("C4", marked_epoch)))
    return out


# --------------------------------------------------------------------------------------------
# MASS
# --------------------------------------------------------------------------------------------

_MASS_WORDS = {W: "Sleep stage W", N1: "Sleep stage 1", N2: "Sleep stage 2", N3: "Sleep stage 3",
               REM: "Sleep stage R", UNK: "Sleep stage ?"}


def write_mass(out_dir, rng, subset: str = "03", n_recordings: int = 2, minutes: float = 6,
               physiology: bool = True, grid: float = 17.4, epoch_s: float = 30.0) -> list[dict]:
    """MASS: ``<out>/SS<k>/01-<subset>-NNNN PSG.edf`` + ``annotations/01-<subset>-NNNN Base.edf``.

    Even recordings use the ``-CLE`` montage with ``EEG A2-CLE`` (left EEG re-referenced to A2),
    odd ones ``-LER`` without A2. The first stage annotation starts ``grid`` s (not a multiple of
    30) + 2 epochs after the PSG start. ``epoch_s=20`` writes an SS2-style 20-s scoring.
    """
    out = []
    folder = Path(out_dir) / f"SS{int(subset)}"
    n_total = int(round(minutes * 60 / EPOCH))
    lead = 2
    for i in range(n_recordings):
        rid = f"01-{subset}-{i + 1:04d}"
        ref = "CLE" if i % 2 == 0 else "LER"
        req = {f"EEG {e}-{ref}": (f"{e}-M{'1' if e[-1] in '24' else '2'}", 256.0)
               for e in ("F3", "F4", "C3", "C4", "O1", "O2")}
        if ref == "CLE":
            req["EEG A2-CLE"] = ("M2-M1", 256.0)
        req |= {"EOG Left Horiz": ("E1-M2", 256.0), "EOG Right Horiz": ("E2-M1", 256.0),
                "EMG Chin1": ("CHIN", 256.0), "EMG Chin2": ("CHIN", 256.0), "EMG Chin3": ("CHIN", 256.0),
                "ECG I": ("ECG", 256.0)}
        sig = make_signals(n_total, req, rng, physiology)
        marked_epoch = lead + 2
        add_marker(sig[f"EEG C4-{ref}"][0], 256.0, grid + marked_epoch * EPOCH)
        start = dt.datetime(2012, 4, 3, 22, 10, 5) + dt.timedelta(minutes=7 * i)
        psg = write_edf(folder / f"{rid} PSG.edf", sig, start)
        n_scored = n_total - lead - 2
        scored = stage_runs(n_scored, rng)
        n_events = int(round(n_scored * EPOCH / epoch_s))
        codes = np.repeat(scored, 3)[:n_events] if epoch_s != EPOCH else scored
        ann = [(grid + lead * EPOCH + k * epoch_s, epoch_s, _MASS_WORDS[int(c)]) for k, c in enumerate(codes)]
        base = write_annotation_edf(folder / "annotations" / f"{rid} Base.edf", ann, start)
        derived = {e: [f"EEG {e}-CLE", "EEG A2-CLE"] for e in ("F3", "C3", "O1")} if ref == "CLE" else {}
        derived["Chin"] = ["EMG Chin1", "EMG Chin2"]
        out.append(truth(rid, rid, output_stages(n_total, grid, lead, scored),
                         ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"], derived, {}, None,
                         [psg, base], ("C4", marked_epoch)))
    return out


# --------------------------------------------------------------------------------------------
# BOAS
# --------------------------------------------------------------------------------------------

_BOAS_PSG = {"PSG_F3": "F3-M2", "PSG_F4": "F4-M1", "PSG_C3": "C3-M2", "PSG_C4": "C4-M1", "PSG_O1": "O1-M2",
             "PSG_O2": "O2-M1", "PSG_EOGL": "E1-M2", "PSG_EOGR": "E2-M1", "PSG_EMG": "CHIN", "PSG_ECG": "ECG"}


def write_boas(out_dir, rng, n_recordings: int = 3, minutes: float = 6, physiology: bool = True) -> list[dict]:
    """BOAS (BIDS): ``<out>/sub-<N>/eeg/sub-<N>_task-Sleep_acq-{psg,headband}_{eeg.edf,events.tsv}``,
    ``participants.tsv`` (recordings 1 and 2 share a ``pid``). Each EDF runs 28 s past its last
    whole epoch; ``stage_hum`` uses 8 (disconnection) for the −1 epochs."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "The Bitbrain Open Access Sleep (BOAS) dataset", '
                                                   '"BIDSVersion": "1.8.0", "License": "CC0"}\n')
    n = int(round(minutes * 60 / EPOCH))
    people, out = [], []
    for i in range(n_recordings):
        rid = f"sub-{i + 1}"
        pid = 88 if i < 2 else 100 + i
        age, sex = int(rng.integers(18, 80)), str(rng.choice(["f", "m"]))
        people.append(f"{rid}\t{pid}\t{age}\t{sex}")
        stages = stage_runs(n, rng)
        sig = make_signals(n + 1, {k: (v, 256.0) for k, v in _BOAS_PSG.items()}, rng, physiology,
                           stages=np.append(stages, W))
        start = dt.datetime(2023, 3, 24, 1, 28, 56) + dt.timedelta(days=i)
        eeg = root / rid / "eeg"
        psg = write_edf(eeg / f"{rid}_task-Sleep_acq-psg_eeg.edf", sig, start, seconds=n * EPOCH + 28)
        hb = make_signals(n + 1, {"HB_1": ("F3-F4", 256.0), "HB_2": ("F4-F3", 256.0)}, rng, physiology=False)
        write_edf(eeg / f"{rid}_task-Sleep_acq-headband_eeg.edf", hb, start, seconds=n * EPOCH + 28)
        rows = ["onset\tduration\tbegsample\tendsample\toffset\tstage_hum\tstage_ai"]
        hb_rows = ["onset\tduration\tbegsample\tendsample\toffset\tstage_ai"]
        for k, code in enumerate(stages):
            hum = 8 if code == UNK else int(code)
            ai = int(rng.choice([0, 1, 2, 3, 4]))
            b = k * 7680 + 1
            rows.append(f"{k * 30}\t30\t{b}\t{b + 7679}\t0\t{hum}\t{ai}")
            hb_rows.append(f"{k * 30}\t30\t{b}\t{b + 7679}\t0\t{ai if code != UNK else -2}")
        events = eeg / f"{rid}_task-Sleep_acq-psg_events.tsv"
        events.write_text("\n".join(rows) + "\n")
        (eeg / f"{rid}_task-Sleep_acq-headband_events.tsv").write_text("\n".join(hb_rows) + "\n")
        (root / rid / f"{rid}_scans.tsv").write_text(
            f"filename\tacq_time\neeg/{rid}_task-Sleep_acq-psg_eeg.edf\t{start.isoformat()}\n")
        out.append(truth(rid, f"pid{pid}", stages, ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"], {},
                         {"age": str(age), "sex": sex}, None, [psg, events]))
    (root / "participants.tsv").write_text("participant_id\tpid\tage\tsex\n" + "\n".join(people) + "\n")
    return out


# --------------------------------------------------------------------------------------------
# MNC
# --------------------------------------------------------------------------------------------

_NSRR_CONCEPT = {W: "Wake|0", N1: "Stage 1 sleep|1", N2: "Stage 2 sleep|2", N3: "Stage 3 sleep|3",
                 REM: "REM sleep|5", UNK: "Unscored|9"}
_EANNOT = {W: "wake", N1: "N1", N2: "N2", N3: "N3", REM: "REM", UNK: "unscored"}
_NSRR_EEG = {e: e for e in ("F3", "F4", "C3", "C4", "O1", "O2", "M1", "M2", "E1", "E2")}
# (cohort, file id, table id, diagnosis text, scoring, chin labels, has frontal)
MNC_RECORDINGS = [
    ("cnc", "chc001", "CHC001", "NON-NARCOLEPSY CONTROL", "xml", {"cchin_l": "CHIN"}, True),
    ("cnc", "chp002", "CHP002", "T1 NARCOLEPSY", "xml", {"cchin_l": "CHIN"}, True),
    ("dhc", "training/Sub01", "SUB001", "OTHER HYPERSOMNIA", "eannot", {"chin": "CHIN"}, True),
    ("dhc", "test/controls/N0020", "N0020", "NON-NARCOLEPSY CONTROL", "xml", {"chin": "CHIN"}, True),
    ("dhc", "training/Sub99", None, None, "eannot", {"chin": "CHIN"}, True),
    ("fhc", "171001b-c", "171001B-C", "OTHER HYPERSOMNIA", None, {"lchin": "CHIN", "cchin": "CHIN"}, True),
    ("ssc", "ssc_4708_1", "SSC_4708_1", "NON-NARCOLEPSY CONTROL", "xml", {"lchin": "CHIN", "cchin": "CHIN"}, False),
]
_DX = {"NON-NARCOLEPSY CONTROL": "non-narcolepsy control", "T1 NARCOLEPSY": "type 1 narcolepsy",
       "OTHER HYPERSOMNIA": "other hypersomnia"}


def write_nsrr_xml(path: Path, stages: np.ndarray) -> Path:
    """NSRR XML (``PSGAnnotation``/``ScoredEvents``): one ``Stages|Stages`` event per run of epochs."""
    ev = ["<ScoredEvent><EventType/><EventConcept>Recording Start Time</EventConcept><Start>0</Start>"
          f"<Duration>{len(stages) * EPOCH:.1f}</Duration><ClockTime>00.00.00 22.00.00</ClockTime></ScoredEvent>"]
    for i0, n, code in _runs(np.asarray(stages)):
        ev.append(f"<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>{escape(_NSRR_CONCEPT[code])}"
                  f"</EventConcept><Start>{i0 * EPOCH:.1f}</Start><Duration>{n * EPOCH:.1f}</Duration></ScoredEvent>")
    ev.append("<ScoredEvent><EventType>Arousals|Arousals</EventType><EventConcept>Arousal|Arousal ()</EventConcept>"
              "<Start>95.2</Start><Duration>7.0</Duration></ScoredEvent>")
    path.write_text('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<PSGAnnotation>'
                    "<SoftwareVersion>Compumedics</SoftwareVersion><EpochLength>30</EpochLength><ScoredEvents>"
                    + "".join(ev) + "</ScoredEvents></PSGAnnotation>\n")
    return path


def write_xlsx(path: Path, rows: list[list]) -> Path:
    """A minimal one-sheet .xlsx (Office Open XML; strings inline, numbers as numbers)."""
    def cell(r, c, v):
        ref = f"{chr(65 + c)}{r + 1}"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f'<c r="{ref}"><v>{v}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>'
    sheet = "".join(f'<row r="{r + 1}">' + "".join(cell(r, c, v) for c, v in enumerate(row) if v is not None)
                    + "</row>" for r, row in enumerate(rows))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>",
        "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
        '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        f'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main}"><sheetData>'
        f"{sheet}</sheetData></worksheet>",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def write_mnc(out_dir, rng, minutes: float = 6, physiology: bool = True, recordings=MNC_RECORDINGS) -> list[dict]:
    """MNC: ``<out>/mnc/<cohort>/**/<id>-nsrr.edf`` (+ ``-nsrr.xml`` / ``-nsrr.eannot`` when scored) and
    ``<out>/mnc/cohorts_deid.xlsx``. Scorings stop 3 epochs before the EDF end. SSC also gets an
    original (non-NSRR) copy ``<id>.edf`` that must be ignored; ``Sub99`` is missing from the table."""
    root = Path(out_dir) / "mnc"
    n = int(round(minutes * 60 / EPOCH))
    table = [["ID", "Cohort", "Diagnosis", "DQ0602", "CSF hypocretin-1", "Label"]]
    out = []
    for k, (cohort, fid, table_id, dx, scoring, chin, frontal) in enumerate(recordings):
        eeg = {lab: site for lab, site in _NSRR_EEG.items() if frontal or lab not in ("F3", "F4")}
        req = {lab: (site, 128.0) for lab, site in eeg.items()} | {lab: (site, 256.0) for lab, site in chin.items()}
        sig = make_signals(n, req, rng, physiology)
        path = root / cohort / f"{fid}-nsrr.edf"
        start = dt.datetime(2015, 6, 1, 22, 0, 0) + dt.timedelta(days=k)
        write_edf(path, sig, start)
        rid = Path(fid).name
        stages = stage_runs(n - 3, rng) if scoring else None
        files = [path]
        if scoring == "xml":
            files.append(write_nsrr_xml(path.with_suffix(".xml"), stages))
        elif scoring == "eannot":
            ann = path.with_suffix(".eannot")
            ann.write_text("\n".join(_EANNOT[int(c)] for c in stages) + "\n")
            files.append(ann)
        if cohort == "ssc":  # an original copy beside the harmonised one: ignored
            write_edf(root / cohort / f"{rid}.edf", {"C3": sig["C3"]}, start)
        labels = {"cohort": cohort.upper()}
        if table_id is not None:
            hcrt = float(rng.choice([15.0, 350.0])) if dx == "T1 NARCOLEPSY" else 320.0
            table.append([table_id, cohort.upper(), dx, "Positive" if "T1" in dx else "Negative", hcrt, "Train"])
            labels |= {"diagnosis": _DX[dx], "diagnosis_raw": dx, "hypocretin": hcrt,
                       "dqb1_0602": "Positive" if "T1" in dx else "Negative", "paper_label": "Train"}
        channels = [c for c in ("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2") if c in eeg] + ["Chin"]
        derived = {c: [c, "M2" if c in ("F3", "C3", "O1", "E1") else "M1"] for c in channels if c != "Chin"}
        if "lchin" in chin:
            derived["Chin"] = ["lchin", "cchin"]
        expected = None if stages is None else np.concatenate([stages, np.full(3, UNK, np.int8)])
        subject = "ssc_4708" if cohort == "ssc" else rid
        out.append(truth(rid, subject, expected, channels, derived, labels, None, files))
    write_xlsx(root / "cohorts_deid.xlsx", table)
    return out
