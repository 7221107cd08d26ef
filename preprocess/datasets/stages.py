"""STAGES — Stanford Technology Analytics and Genomics in Sleep (NSRR), all 13 sites.

Cohort: ~1,500 adults/adolescents evaluated for sleep disorders at 20 data-collection sites of six
centres (Stanford, Bogan Sleep Consulting, Geisinger, Mayo Clinic, MedSleep, St Luke's); the
original PSGs are grouped by site code: BOGN, GSBB, GSDV, GSLH, GSSA, GSSW, MSMI, MSNF, MSQW, MSTH,
MSTR, STLK, STNF (evidence: NSRR STAGES overview on sleepdata.org; site folders as used by the
published LPSGM preprocessing, github.com/Deng-GuiFeng/LPSGM ``preprocess/STAGES_{1,2}.py``).

Layout: ``<src>/**/<SITE>/<SITE>NNNNN.edf`` with the scoring beside it as ``<SITE>NNNNN.csv``
(NSRR ``stages/original/STAGES PSGs/<SITE>/``). EDF stems may carry a suffix (``_1``); the CSV is
matched by the full stem first, then by the 9-character ID. MSLT files are skipped. Each ID is
one visit of one subject (subject = first 9 characters).

Scoring CSV (Stanford event export; evidence: Stanford-STAGES/utility
``events_transcode/remove_dates_from_evt_files.py`` and third-party readers):
``Start Time,Duration (seconds),Event`` with clock times, e.g. ``22:31:00, 30.000, Wake`` — note
the space after each comma. Both styles met in the release are read, and the columns are found by
name in any order:

* time column: ``HH:MM:SS`` (most files), or date + 12-hour time ``5/22/2018 8:16:00 PM`` (Stanford
  exports before the dates were stripped); times after midnight wrap (scoring crosses midnight);
* stage rows by site: one row per epoch with duration 0 (BOGN), one row per epoch with duration
  30 (MSTR, STNF, STLK, MSTH), or one row per *run* of equal epochs with duration 30·k (GSDV, GSBB,
  GSLH, GSSA, GSSW, MSMI, MSNF, MSQW) — a row spanning k epochs fills all k (durations are kept,
  0 means exactly one epoch, not "until the next row", so gaps stay unscored);
* stage words: ``Wake`` → W, ``Stage1/2/3`` → N1/N2/N3 (``Stage4`` → N3), ``REM`` → REM;
  ``UnknownStage``, ``No Stage``, ``MT`` → −1. ``Awake`` is a short technician event (3–21 s), not
  an epoch stage, and is ignored, as are arousals, respiratory and limb events. A stage row and an
  ``MT`` row at the same time (BOGN) keep the stage;
* three STNF files carry an absurd duration (2,592,000 s = 30 days) on one stage row: durations
  over 12 h are read as one epoch;
* ``Lights Off`` / ``Lights On`` rows, when present, are recorded as the ``lights`` attribute.

Alignment: the clock times have 1-s resolution and the first scored epoch rarely starts a whole
number of epochs after the EDF start. The signal is therefore read from the first point of the
scoring grid (``first onset mod 30 s`` is dropped, < 30 s) so every output epoch is exactly one
scored epoch; the stored ``start_time`` is that point. Epochs before the first and after the last
scored row are kept as −1 (DESIGN §5). A scoring that runs past the signal is refused as usual.

Channels (labels differ by site and recorder; matching ignores case and separators): referenced
derivations ``F3M2``/``F3-M2``, ``EEG_F3-A2`` (→ ``F3-A2``), … are used first; otherwise raw
electrodes are re-referenced to the contralateral mastoid (``F3`` − ``M2``); EOG as ``E1M2``,
``EOG_LOC-A2``, ``E1 (LEOG)``, ``LOC``, ``L-EOG``, ``EOG1``; chin EMG as ``EMG_Chin``/``Chin`` or the
bipolar pairs ``Chin1−Chin2``, ``EMG1−EMG2``, ``EMG #1−EMG #2``. Sampling rates vary by site
(200–512 Hz, up to 1 kHz); each channel is resampled from its own rate. Evidence for the labels:
LPSGM ``preprocess/STAGES_{1,2}.py`` channel tables. Not every site has every channel.

Licence / access: NSRR data use agreement, https://sleepdata.org/datasets/stages
"""

from __future__ import annotations

import re
from pathlib import Path

from preprocess.core.annotations import (
    AnnotationError,
    events_to_epochs,
    lights_kind,
    lights_pair,
    read_edf_start,
    start_offset,
)
from preprocess.core.dataset import DatasetSpec, Record, Scoring
from preprocess.core.dataset_helpers import (
    OffsetSource,
    clock_time,
    grid_offset,
    pad_to,
    read_event_rows,
    signal_epochs,
)
from preprocess.core.edf import EdfReader

SITES = ("BOGN", "GSBB", "GSDV", "GSLH", "GSSA", "GSSW", "MSMI", "MSNF", "MSQW", "MSTH", "MSTR", "STLK", "STNF")


def _eeg(site: str, ref: str, alt: str) -> list:
    return [f"{site}-{ref}", f"{site}-{alt}", (site, ref), (site, alt), f"{site}-{'M1' if ref == 'M2' else 'M2'}", site]


CHANNEL_MAP = {
    "F3": _eeg("F3", "M2", "A2"),
    "F4": _eeg("F4", "M1", "A1"),
    "C3": _eeg("C3", "M2", "A2"),
    "C4": _eeg("C4", "M1", "A1"),
    "O1": _eeg("O1", "M2", "A2"),
    "O2": _eeg("O2", "M1", "A1"),
    "E1": ["E1-M2", "LOC-A2", "E1-A2", ("E1", "M2"), ("E1", "A2"), ("LOC", "M2"), ("LOC", "A2"),
           "E1 (LEOG)", "L-EOG", "LOC", "EOG1", "E1"],
    "E2": ["E2-M1", "ROC-A1", "E2-A1", "E2-M2", "ROC-A2", ("E2", "M1"), ("E2", "A1"), ("ROC", "M1"), ("ROC", "A1"),
           "E2 (REOG)", "R-EOG", "ROC", "EOG2", "E2"],
    "Chin": ["Chin1-Chin2", "EMG Chin", "Chin", ("Chin1", "Chin2"), ("EMG1", "EMG2"), ("EMG #1", "EMG #2"),
             ("Chin1", "Chin3"), "Chin1"],
}

# normalised event text -> stage code ("Awake" deliberately absent: a technician event)
STAGE_WORDS = {
    "wake": 0, "stage1": 1, "stage2": 2, "stage3": 3, "stage4": 3, "rem": 4,
    "unknownstage": -1, "nostage": -1, "unscored": -1, "mt": -1, "movementtime": -1,
}
_ID = re.compile(r"^([A-Za-z]{4}\d{5})")
_MAX_ROW_S = 12 * 3600.0


def find(src: Path) -> list[Record]:
    records = []
    for edf in sorted(p for p in Path(src).rglob("*") if p.suffix.lower() == ".edf" and not p.name.startswith(".")):
        m = _ID.match(edf.stem)
        if not m or "mslt" in edf.stem.lower():
            continue
        subject = m.group(1).upper()
        csvs = {p.stem.lower(): p for p in edf.parent.iterdir() if p.suffix.lower() == ".csv"}
        annotation = csvs.get(edf.stem.lower()) or csvs.get(subject.lower()) or edf.with_suffix(".csv")
        records.append(Record(id=edf.stem, subject=subject, signal=edf, annotation=annotation,
                              labels={"site": subject[:4]}))
    return records


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _scoring(record: Record):
    """Stage events ``(onset, duration, code)`` and lights, in seconds from the EDF header start."""
    name = Path(record.annotation).name
    start = read_edf_start(record.signal)
    if start is None:
        raise AnnotationError(f"{Path(record.signal).name}: no start time in the EDF header to place clock times")
    start_s = start.hour * 3600 + start.minute * 60 + start.second
    rows = read_event_rows(record.annotation, ("Start Time", "Time", "Onset Time", "Onset"),
                           ("Duration (seconds)", "Duration"), ("Event", "Description", "Annotation"))
    stages, marks = [], {"off": [], "on": []}
    for line, t, d, label in rows:
        code, kind = STAGE_WORDS.get(_key(label)), lights_kind(label)
        if code is None and kind is None:
            continue
        try:
            onset = (clock_time(t)[1] - start_s + 7200.0) % 86400.0 - 7200.0  # [-2 h, 22 h) after start
        except ValueError as exc:
            raise AnnotationError(f"{name}: line {line}: {exc}") from None
        if kind is not None:
            marks[kind].append(onset)
            continue
        try:
            duration = float(d) if d else 0.0
        except ValueError:
            raise AnnotationError(f"{name}: line {line}: bad duration {d!r}") from None
        if not 0 < duration <= _MAX_ROW_S:
            duration = 30.0  # 0 = one epoch (BOGN); absurd 30-day rows (STNF) = one epoch
        stages.append((onset, duration, code))
    if not stages:
        raise AnnotationError(f"{name}: no sleep stage rows found")
    stages.sort(key=lambda e: (e[0], e[2] >= 0))  # same time: a real stage wins over MT/unknown
    off = min(marks["off"]) if marks["off"] else None
    on = max(marks["on"]) if marks["on"] else None
    return stages, start, grid_offset(min(e[0] for e in stages)), (off, on)


def open_signals(record: Record):
    _, _, grid, _ = _scoring(record)
    reader = EdfReader(record.signal)
    return OffsetSource(reader, grid) if grid else reader


def read_stages(record: Record, signal_start):
    events, header_start, grid, (off, on) = _scoring(record)
    shift = start_offset(header_start, signal_start) if signal_start is not None else -grid
    lights = lights_pair(None if off is None else off + shift, None if on is None else on + shift)
    stages = events_to_epochs(events, offset_s=shift)
    return Scoring(pad_to(stages, signal_epochs(record.signal, skip_s=-shift)), lights)


SPEC = DatasetSpec(
    name="stages",
    description="STAGES (NSRR), 13 sites: site-specific EEG/EOG/chin labels, CSV event scoring (AASM)",
    layout="<src>/**/<SITE>/<SITE>NNNNN.edf + <SITE>NNNNN.csv (Start Time,Duration (seconds),Event)",
    url="https://sleepdata.org/datasets/stages (NSRR data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
    open_signals=open_signals,
)
