"""Childhood Adenotonsillectomy Trial (CHAT) — NSRR.

Layout: ``polysomnography/edfs/{baseline,followup,nonrandomized}/chat-<visit>-<NNNNNN>.edf`` with
``annotations-events-nsrr/<visit>/<id>-nsrr.xml`` (preferred) or ``-profusion.xml``. Subject =
``<NNNNNN>``, shared by the baseline and follow-up studies; ``labels = {"visit": <folder>}``.

Channels (nsrr/chat-documentation ``equipment/montage-and-sampling-rate-information.md``; minimum
200 Hz, may be exceeded): electrodes F3, F4, C3, C4, T3, T4, O1, O2, M1, M2, E1, E2, Lchin, Rchin,
Cchin recorded against the reference FPz, with display derivations F3/M2, F4/M1, C3/M2, C4/M1,
O1/M2, O2/M1, E1/FPz, E2/FPz, Lchin/Cchin. Formed here: F3 = F3 − M2, F4 = F4 − M1, C3 = C3 − M2,
C4 = C4 − M1, O1 = O1 − M2, O2 = O2 − M1, E1 = E1 − M2, E2 = E2 − M1 (AASM; NSRR's canonical
signals also re-reference E1/E2 to a mastoid), Chin = Lchin − Cchin (falls back to Rchin − Cchin,
Lchin − Rchin). Already-derived labels (``C3-M2``) are used first when present.

Stages: NSRR or Profusion XML, epochs from the EDF start (stage 4 → N3 if present).
Access: https://sleepdata.org/datasets/chat (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import (
    eeg_vs_contralateral_mastoid,
    find_records,
    read_xml_stages,
    referenced,
    visit_field,
)

CHANNEL_MAP = {
    **eeg_vs_contralateral_mastoid(),
    "E1": referenced("E1", ("M2", "A2"), raw=True),
    "E2": referenced("E2", ("M1", "A1"), raw=True),
    "Chin": ["Lchin-Cchin", ("Lchin", "Cchin"), ("Rchin", "Cchin"), ("Lchin", "Rchin")],
}


def find(src: Path):
    return find_records(src, labels_of=lambda rid: {"visit": visit_field(rid)})


SPEC = DatasetSpec(
    name="chat",
    description="CHAT (children): F3/F4/C3/C4/O1/O2 vs contralateral mastoid, E1-M2, E2-M1, Lchin-Cchin",
    layout="<src>/polysomnography/edfs/{baseline,followup,nonrandomized}/chat-<visit>-NNNNNN.edf + "
           "annotations-events-nsrr/<visit>/<id>-nsrr.xml",
    url="https://sleepdata.org/datasets/chat (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
