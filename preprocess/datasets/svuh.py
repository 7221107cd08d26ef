"""SVUH / UCD: St Vincent's University Hospital / University College Dublin Sleep Apnea Database.

PhysioNet ``ucddb`` (1.0.0): 25 overnight PSGs of 25 adults with suspected sleep-disordered
breathing, records ``ucddb002`` ... ``ucddb028`` (004, 016 absent). Layout: ``ucddbNNN.rec`` (the
PSG — an ordinary EDF file despite the extension; read by content), ``ucddbNNN_stage.txt`` (stages),
``ucddbNNN_respevt.txt`` and ``ucddbNNN_lifecard.edf`` (unused), any folder depth.

Channels (EDF labels as read from the files by other users): ``C3A2``, ``C4A1`` (EEG C3-A2,
C4-A1), ``Lefteye``, ``RightEye`` (EOG; referenced to the opposite ear per a loader of the files:
left eye to A2, right eye to A1), ``EMG`` (submental), ``ECG``, ``Flow``, ``ribcage``, ``abdo``,
``Sum``, ``SpO2``, ``Pulse``, ``BodyPos``. EEG/EOG/EMG/ECG at 128 Hz (7.8 ms sampling interval);
respiratory/oximetry channels slower. Map: C3 ← C3A2, C4 ← C4A1, E1 ← Lefteye, E2 ← RightEye,
Chin ← EMG (all as recorded; no separate mastoid electrodes exist).

Stages (``_stage.txt``): one integer per line, one line per 30-s epoch from the PSG start, R&K
scoring. Code table of the PhysioNet ucddb page: **0 Wake, 1 REM, 2 Stage 1, 3 Stage 2, 4 Stage 3,
5 Stage 4, 6 Artifact, 7 Indeterminate** → W, REM, N1, N2, N3, N3, -1, -1 (8 also seen in other
loaders' tables, → -1). The table used by the LPSGM reference (0-3 as W/N1/N2/N3, 4→N3, 5→REM)
turns Stage 2 into N3 and REM into N1 (≈37 % N3, implausible for an apnoea cohort) — it is wrong;
an independent loader of the same files uses the code table above. No lights times are published.
Licence: ODC-BY (PhysioNet, https://physionet.org/content/ucddb/1.0.0/).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import read_epoch_text
from preprocess.core.dataset import DatasetSpec, find_pairs

CHANNEL_MAP = {
    "C3": ["C3A2"],
    "C4": ["C4A1"],
    "E1": ["Lefteye"],
    "E2": ["RightEye"],
    "Chin": ["EMG"],
}

STAGE_CODES = {0: 0, 1: 4, 2: 1, 3: 2, 4: 3, 5: 3, 6: -1, 7: -1, 8: -1}
"""ucddb ``_stage.txt`` code → harmonized stage (PhysioNet ucddb code table)."""


def find(src: Path):
    return find_pairs(src, "ucddb*.rec", lambda p: p.with_name(f"{p.stem}_stage.txt"))


def read_stages(record, signal_start):
    return read_epoch_text(record.annotation, STAGE_CODES)


SPEC = DatasetSpec(
    name="svuh",
    description="St Vincent's Univ. Hospital / UCD sleep apnea database (25 PSGs, 128 Hz, R&K per-epoch codes)",
    layout="<src>/**/ucddbNNN.rec (EDF) + ucddbNNN_stage.txt",
    url="https://physionet.org/content/ucddb/1.0.0/ (open, ODC-BY)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
