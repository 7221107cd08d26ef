"""Cleveland Family Study (CFS), visit 5 — NSRR.

Layout: ``polysomnography/edfs/cfs-visit5-<NNNNNN>.edf`` with
``annotations-events-nsrr/cfs-visit5-<NNNNNN>-nsrr.xml`` (preferred) or ``-profusion.xml``.
Subject = ``<NNNNNN>`` (family membership is a covariate, not in the file name).

Channels (nsrr/cfs-documentation ``equipment/montage-and-sampling-rate-information.md``): C3,
C4, A1, A2, LOC, ROC at 128 Hz, EMG1/EMG2/EMG3 at 256 Hz (CFSv1 and CFSv2 differ only in some
rates); the table's "channel derivation" column gives the display derivations C3/A2, C4/A1,
LOC/A2, ROC/A1, EMG1/EMG2. The EDF electrodes are referenced to the recording reference, so the
derivations are formed here (NSRR's own canonical-signal file for CFS does the same: C4 vs M1,
LOC vs M2, EMG1 vs EMG2): C3 = C3 − A2, C4 = C4 − A1, E1 = LOC − A2, E2 = ROC − A1,
Chin = EMG1 − EMG2 (EMG at 256 Hz, resampled from its own rate).

Stages: R&K (stage 4 → N3), NSRR or Profusion XML, epochs from the EDF start.
Access: https://sleepdata.org/datasets/cfs (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_xml_stages, referenced

CHANNEL_MAP = {
    "C3": referenced("C3", ("A2", "M2")),
    "C4": referenced("C4", ("A1", "M1")),
    "E1": referenced("LOC", ("A2", "M2")) + referenced("E1", ("M2", "A2")),
    "E2": referenced("ROC", ("A1", "M1")) + referenced("E2", ("M1", "A1")),
    "Chin": ["EMG1-EMG2", ("EMG1", "EMG2"), ("EMG1", "EMG3")],
}


def find(src: Path):
    return find_records(src, labels_of=lambda rid: {"visit": 5})


SPEC = DatasetSpec(
    name="cfs",
    description="Cleveland Family Study visit 5: C3-A2, C4-A1, LOC-A2, ROC-A1, EMG1-EMG2; R&K",
    layout="<src>/polysomnography/edfs/cfs-visit5-NNNNNN.edf + annotations-events-nsrr/cfs-visit5-NNNNNN-nsrr.xml",
    url="https://sleepdata.org/datasets/cfs (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
