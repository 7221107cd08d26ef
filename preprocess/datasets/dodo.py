"""DOD-O: Dreem Open Dataset, patients with obstructive sleep apnea (55 nights, 5 scorers).

Same file format as :mod:`preprocess.datasets.dodh` (``<uuid>.h5``, S3 bucket ``dreem-dod-o``;
signals under ``signals/<modality>/<derivation>`` at 250 Hz in µV; consensus ``hypnogram`` with
-1 not scored, 0 W, 1 N1, 2 N2, 3 N3, 4 REM per 30 s). DOD-O derivations (third-party loaders of
the same files): EEG ``C3_M2, C4_M1, F3_F4, F3_M2, F3_O1, F4_O2, O1_M2, O2_M1`` (some loaders
also list ``O1_M1``); ``EOG1``, ``EOG2``; ``signals/emg/EMG`` (chin), ``signals/emg/ECG``. There
is no F4_M1 in DOD-O.

Channel map: F3 ← F3_M2, C3 ← C3_M2, C4 ← C4_M1, O1 ← O1_M2, O2 ← O2_M1, E1 ← EOG1, E2 ← EOG2,
Chin ← EMG — the official LPSGM DOD-O channel list. Every record carries the label
``diagnosis = "OSA"`` (the cohort). Licence: open (Dreem).
"""

from __future__ import annotations

from preprocess.core.dataset import DatasetSpec
from preprocess.core.sources import dod_stages, find_dod, open_dod

CHANNEL_MAP = {
    "F3": ["F3_M2"],
    "C3": ["C3_M2"],
    "C4": ["C4_M1"],
    "O1": ["O1_M2"],
    "O2": ["O2_M1"],
    "E1": ["EOG1"],
    "E2": ["EOG2"],
    "Chin": ["EMG"],
}

SPEC = DatasetSpec(
    name="dodo",
    description="Dreem Open Dataset - Obstructive (55 OSA nights, 250 Hz HDF5, 5-scorer consensus)",
    layout="<src>/**/<uuid>.h5 (signals/eeg/*, signals/eog/EOG1|EOG2, signals/emg/EMG, hypnogram)",
    url="https://github.com/Dreem-Organization/dreem-learning-open (S3 bucket dreem-dod-o, open)",
    channel_map=CHANNEL_MAP,
    find=lambda src: find_dod(src, {"diagnosis": "OSA"}),
    read_stages=dod_stages,
    open_signals=open_dod,
)
