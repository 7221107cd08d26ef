"""Pediatric Adenotonsillectomy Trial for Snoring (PATS) — NSRR.

Layout: ``polysomnography/<id>.edf`` with an NSRR/Luna ``<id>.annot`` next to it (the layout the
published LPSGM ``preprocess/PATS.py`` reads); NSRR / Profusion XML with the same id (scored in
Compumedics at the Brigham sleep reading center, nsrr/pats-documentation README "PSG scoring")
are accepted as a fallback. The exact id scheme is not spelled out on the public pages we could
read; the subject is the first run of five or more digits in the id (else the id itself), so the
baseline and 12-month PSGs of one child share a subject whatever the visit field looks like.

Channels: the PATS montage (nsrr/pats-documentation ``montage-and-sampling-rate-information.md``,
200 Hz) records F3, F4, C3, C4, O1, O2, M1, M2, E1, E2, lchin, rchin, cchin against Fpz, and the
README lists the derivations F3-M2, F4-M1, C3-M2, C4-M1, O1-M2, O2-M1, E1-M2, E2-M2. The released
EDFs carry the derived labels ``F3_M2`` … ``O2_M1``, ``LOC``, ``ROC``, ``EMG`` (published
preprocessing); both styles are accepted: a derived label first, then the electrode pair
(F3 − M2 …, E1 − M2, E2 − M1; Chin = lchin − cchin, rchin − cchin, lchin − rchin).

Stages: AASM pediatric, ``.annot`` classes W/N1/N2/N3/R, ``?`` → −1, clock times crossing
midnight; full timeline kept (padded with −1 to the end of the EDF).
Access: https://sleepdata.org/datasets/pats (NSRR agreement).
"""

from __future__ import annotations

import re
from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import (
    NSRR_XML,
    PROFUSION_XML,
    eeg_vs_contralateral_mastoid,
    find_records,
    read_scoring,
)

CHANNEL_MAP = {
    **eeg_vs_contralateral_mastoid(),
    "E1": ["LOC", "E1-M2", ("E1", "M2")],
    "E2": ["ROC", "E2-M1", "E2-M2", ("E2", "M1")],
    "Chin": ["EMG", "Chin", ("lchin", "cchin"), ("rchin", "cchin"), ("lchin", "rchin")],
}


def _subject(rid: str) -> str:
    m = re.search(r"\d{5,}", rid)
    return m.group(0) if m else rid


def find(src: Path):
    return find_records(src, scoring=(".annot", NSRR_XML, PROFUSION_XML), subject_of=_subject)



SPEC = DatasetSpec(
    name="pats",
    description="PATS (children): F3/F4/C3/C4/O1/O2 vs mastoid, LOC, ROC, chin EMG; NSRR .annot (AASM)",
    layout="<src>/polysomnography/<id>.edf + <id>.annot (or NSRR XML)",
    url="https://sleepdata.org/datasets/pats (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_scoring,
)
