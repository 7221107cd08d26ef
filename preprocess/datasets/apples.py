"""Apnea Positive Pressure Long-term Efficacy Study (APPLES) — NSRR.

Layout: ``polysomnography/apples-<NNNNNN>.edf`` with the scoring next to it as an NSRR/Luna
``apples-<NNNNNN>.annot`` (tab-separated ``class instance channel start stop meta``, clock times
``hh:mm:ss``, crossing midnight). APPLES has no ``annotations-events-*`` XML folders (NSRR release;
the published LPSGM ``preprocess/APPLES.py`` and other public loaders read ``<id>.annot`` next to
``<id>.edf``); an NSRR XML with the same id is accepted as a fallback. One diagnostic PSG per
participant is shared (``fileid``), so subject = ``<NNNNNN>``.

Channels (nsrr/apples-documentation README, "Polysomnography Acquisition", Alice 4): EEG C3-M2,
C4-M1, O2-M1, O1-M2 and EOG LOC-M2, ROC-M1 are recorded as referenced derivations; the EDF labels
are ``C3_M2``, ``C4_M1``, ``O1_M2``, ``O2_M1``, ``LOC``, ``ROC`` and the chin ``EMG`` (100 or 200 Hz).
C3 ← C3_M2, C4 ← C4_M1, O1 ← O1_M2, O2 ← O2_M1, E1 ← LOC, E2 ← ROC, Chin ← EMG.

Stages: scored with R&K criteria; the ``.annot`` classes are ``W``, ``N1``, ``N2``, ``N3``, ``R``
(``N4``/``NREM4`` → N3 if present), ``?`` → −1; other rows (arousals, apnoeas) are ignored. The
published preprocessing dropped every epoch that is not W/N1-N3/R and had a midnight-wrap test that
could never be true; here clock times before the EDF start are taken as after midnight and the
full timeline is kept (unscored → −1, padded to the end of the EDF).

Access: https://sleepdata.org/datasets/apples (NSRR agreement, non-commercial use).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import NSRR_XML, PROFUSION_XML, find_records, read_scoring

CHANNEL_MAP = {
    "C3": ["C3_M2", "C3-A2"],
    "C4": ["C4_M1", "C4-A1"],
    "O1": ["O1_M2", "O1-A2"],
    "O2": ["O2_M1", "O2-A1"],
    "E1": ["LOC", "LOC-M2", "E1"],
    "E2": ["ROC", "ROC-M1", "E2"],
    "Chin": ["EMG", "EMG Chin", "Chin"],
}


def find(src: Path):
    return find_records(src, scoring=(".annot", NSRR_XML, PROFUSION_XML))



SPEC = DatasetSpec(
    name="apples",
    description="APPLES: C3-M2, C4-M1, O1-M2, O2-M1, LOC, ROC, chin EMG; NSRR .annot (R&K, clock times)",
    layout="<src>/polysomnography/apples-NNNNNN.edf + apples-NNNNNN.annot",
    url="https://sleepdata.org/datasets/apples (NSRR, registration and data use agreement; non-commercial)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_scoring,
)
