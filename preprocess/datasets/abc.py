"""Apnea, Bariatric surgery, and CPAP study (ABC) — NSRR.

Layout: ``polysomnography/edfs/{baseline,month09,month18}/abc-<visit>-<NNNNNN>.edf`` with
``annotations-events-nsrr/<visit>/<id>-nsrr.xml`` (preferred) or ``-profusion.xml``. Subject =
``<NNNNNN>`` (three visits per participant); ``labels = {"visit": <visit>}``.

Channels (nsrr/abc-documentation "Montage and sampling rate information", Compumedics E-series):
F3, F4, C3, C4, O1, O2, M1, M2, E1, E2, Chin1 (centre), Chin2 (left submentalis), Chin3 (right
submentalis), each recorded against Fpz at 256 Hz. Formed here: F3 = F3 − M2, F4 = F4 − M1,
C3 = C3 − M2, C4 = C4 − M1, O1 = O1 − M2, O2 = O2 − M1, E1 = E1 − M2, E2 = E2 − M1,
Chin = Chin2 − Chin1 (AASM submental vs chin electrode; falls back to Chin3 − Chin1,
Chin2 − Chin3).

Stages: NSRR or Profusion XML, epochs from the EDF start (stage 4 → N3 if present).
Access: https://sleepdata.org/datasets/abc (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_xml_stages, referenced, visit_field

CHANNEL_MAP = {
    "F3": referenced("F3", ("M2",)),
    "F4": referenced("F4", ("M1",)),
    "C3": referenced("C3", ("M2",)),
    "C4": referenced("C4", ("M1",)),
    "O1": referenced("O1", ("M2",)),
    "O2": referenced("O2", ("M1",)),
    "E1": referenced("E1", ("M2",)),
    "E2": referenced("E2", ("M1",)),
    "Chin": [("Chin2", "Chin1"), ("Chin3", "Chin1"), ("Chin2", "Chin3")],
}


def find(src: Path):
    return find_records(src, labels_of=lambda rid: {"visit": visit_field(rid)})


SPEC = DatasetSpec(
    name="abc",
    description="ABC: six EEG vs contralateral mastoid, E1-M2, E2-M1, Chin2-Chin1 (re-referenced from Fpz)",
    layout="<src>/polysomnography/edfs/{baseline,month09,month18}/abc-<visit>-NNNNNN.edf + "
           "annotations-events-nsrr/<visit>/<id>-nsrr.xml",
    url="https://sleepdata.org/datasets/abc (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
