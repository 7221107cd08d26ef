"""Cleveland Children's Sleep and Health Study (CCSHS), TREC visit — NSRR.

Layout: ``polysomnography/edfs/ccshs-trec-<NNNNNNN>.edf`` with
``annotations-events-nsrr/ccshs-trec-<NNNNNNN>-nsrr.xml`` (preferred) or ``-profusion.xml``
(nsrr/ccshs-documentation, "Polysomnography introduction"). Subject = ``<NNNNNNN>``.

Channels (nsrr/ccshs-documentation "Montage and sampling rate information"): every electrode is
recorded against Fpz — C3, C4, A1, A2 (EEG, 128 Hz), LOC, ROC (EOG, 128 Hz), EMG1 = centre chin,
EMG2 = left submentalis, EMG3 = right submentalis (rate not given in the table; 256 Hz in our
fixtures). Derivations formed here: C3 = C3 − A2, C4 = C4 − A1, E1 = LOC − A2, E2 = ROC − A1,
Chin = EMG2 − EMG1 (AASM: a submental electrode against the chin electrode; falls back to
EMG3 − EMG1, then EMG2 − EMG3).

Stages: R&K (stage 4 → N3), NSRR or Profusion XML, epochs from the EDF start.
Access: https://sleepdata.org/datasets/ccshs (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_xml_stages, referenced

CHANNEL_MAP = {
    "C3": referenced("C3", ("A2", "M2")),
    "C4": referenced("C4", ("A1", "M1")),
    "E1": referenced("LOC", ("A2", "M2")),
    "E2": referenced("ROC", ("A1", "M1")),
    "Chin": [("EMG2", "EMG1"), ("EMG3", "EMG1"), ("EMG2", "EMG3")],
}


def find(src: Path):
    return find_records(src, labels_of=lambda rid: {"visit": "trec"})


SPEC = DatasetSpec(
    name="ccshs",
    description="CCSHS (TREC): C3-A2, C4-A1, LOC-A2, ROC-A1, chin (re-referenced from Fpz); R&K",
    layout="<src>/polysomnography/edfs/ccshs-trec-NNNNNNN.edf + annotations-events-nsrr/ccshs-trec-NNNNNNN-nsrr.xml",
    url="https://sleepdata.org/datasets/ccshs (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
