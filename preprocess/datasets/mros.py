"""MrOS Sleep Study (Osteoporotic Fractures in Men), visits 1 and 2 — NSRR.

Layout: ``polysomnography/edfs/visit{1,2}/mros-visit{1,2}-aa<NNNN>.edf`` with
``annotations-events-nsrr/visit{1,2}/<id>-nsrr.xml`` (preferred) or
``annotations-events-profusion/visit{1,2}/<id>-profusion.xml`` (nsrr/mros-documentation,
"Polysomnography introduction"; note some visit-1 recordings have only the Profusion XML, e.g.
aa1510/aa1876/aa3545 whose NSRR XML were removed in March 2025). Subject = ``aa<NNNN>``, shared by
both visits; ``labels = {"visit": 1|2}``.

Channels (nsrr/mros-documentation ``equipment-mros1.md``): every electrode is recorded against
Fpz at 256 Hz — ``C3``, ``C4``, ``A1``, ``A2``, ``LOC``, ``ROC``, ``L Chin``, ``R Chin`` — so all
canonical channels are re-referenced: C3 = C3 − A2, C4 = C4 − A1, E1 = LOC − A2, E2 = ROC − A1,
Chin = L Chin − R Chin (the NSRR canonical-signal definitions for MrOS use the same pairs). The
montage table lists "Left EOG = ROC" and "Right EOG = LOC"; LOC/ROC are the left/right outer
canthus by convention and we map LOC → E1 (left), ROC → E2.

Stages: R&K (stage 4 → N3), NSRR or Profusion XML, epochs from the EDF start (see
:mod:`preprocess.datasets.shhs`). Access: https://sleepdata.org/datasets/mros (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_xml_stages, referenced, visit_field

CHANNEL_MAP = {
    "C3": referenced("C3", ("A2", "M2")),
    "C4": referenced("C4", ("A1", "M1")),
    "E1": referenced("LOC", ("A2", "M2")),
    "E2": referenced("ROC", ("A1", "M1")),
    "Chin": ["L Chin-R Chin", ("L Chin", "R Chin"), ("LChin", "RChin")],
}


def _labels(rid: str) -> dict:
    visit = visit_field(rid).removeprefix("visit")
    return {"visit": int(visit)} if visit.isdigit() else {}


def find(src: Path):
    return find_records(src, labels_of=_labels)


SPEC = DatasetSpec(
    name="mros",
    description="MrOS visits 1+2: C3-A2, C4-A1, LOC-A2, ROC-A1, L-R chin (re-referenced from Fpz); R&K",
    layout="<src>/polysomnography/edfs/visit{1,2}/mros-visit{1,2}-aaNNNN.edf + annotations-events-nsrr/"
           "visit{1,2}/<id>-nsrr.xml (or -profusion.xml)",
    url="https://sleepdata.org/datasets/mros (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
