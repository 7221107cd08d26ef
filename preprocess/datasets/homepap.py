"""HomePAP (home vs lab CPAP titration) — NSRR.

Layout: ``polysomnography/edfs/lab/{full,split}/homepap-lab-{full,split}-<NNNNNNN>.edf`` with
``annotations-events-nsrr/lab/<kind>/<id>-nsrr.xml`` (preferred) or ``-profusion.xml``
(nsrr/homepap-documentation, "Polysomnography introduction"). Subject = ``<NNNNNNN>``;
``labels = {"visit": "lab-full" | "lab-split" ...}``.

Channels (nsrr/homepap-documentation "Montage and sampling rate information", lab studies,
200 Hz): F4-M1, C4-M1, O2-M1, F3-M2, C3-M2, O1-M2, E1 and E2 against REF (FPz), chin Lchin-Cchin.
The page notes that not every cluster recorded to the reference in the same way, so each
canonical channel accepts the referenced label (``C3-M2``), then the electrode pair
(C3 − M2 / A2); E1 = E1 − M2, E2 = E2 − M1 (older labels ``E-1``, ``L-EOG``, ``LOC`` accepted, raw as
a last resort); Chin = ``Lchin-Cchin`` label, else Lchin − Cchin, else Lchin − Rchin, else a single
``Chin`` channel.

Stages: NSRR or Profusion XML, epochs from the EDF start (stage 4 → N3 if present).
Access: https://sleepdata.org/datasets/homepap (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import eeg_vs_contralateral_mastoid, find_records, read_xml_stages, referenced

CHANNEL_MAP = {
    **eeg_vs_contralateral_mastoid(),
    "E1": referenced("E1", ("M2", "A2")) + referenced("E-1", ("M2", "A2")) + referenced("L-EOG", ("M2", "A2"))
    + referenced("LOC", ("M2", "A2")) + ["E1", "E-1", "L-EOG", "LOC"],
    "E2": referenced("E2", ("M1", "A1")) + referenced("E-2", ("M1", "A1")) + referenced("R-EOG", ("M1", "A1"))
    + referenced("ROC", ("M1", "A1")) + ["E2", "E-2", "R-EOG", "ROC"],
    "Chin": ["Lchin-Cchin", ("Lchin", "Cchin"), ("Rchin", "Cchin"), ("Lchin", "Rchin"), "Chin1-Chin2", "Chin"],
}


def _labels(rid: str) -> dict:
    parts = rid.split("-")
    return {"visit": "-".join(parts[1:-1])} if len(parts) > 2 else {}


def find(src: Path):
    return find_records(src, labels_of=_labels)


SPEC = DatasetSpec(
    name="homepap",
    description="HomePAP lab studies: six EEG vs contralateral mastoid, E1-M2, E2-M1, Lchin-Cchin",
    layout="<src>/polysomnography/edfs/lab/{full,split}/homepap-lab-<kind>-NNNNNNN.edf + "
           "annotations-events-nsrr/lab/<kind>/<id>-nsrr.xml",
    url="https://sleepdata.org/datasets/homepap (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
