"""Sleep Heart Health Study (SHHS), visits 1 and 2 — NSRR.

Layout (NSRR release): ``polysomnography/edfs/shhs{1,2}/shhs{1,2}-<nsrrid>.edf`` with
``polysomnography/annotations-events-nsrr/shhs{1,2}/shhs{1,2}-<nsrrid>-nsrr.xml`` (preferred) or
``annotations-events-profusion/shhs{1,2}/shhs{1,2}-<nsrrid>-profusion.xml``. Visit 1 and visit 2
are two recordings of the same participant: the recording id keeps the visit
(``shhs1-200001``, ``shhs2-200001``), the subject is the shared ``nsrrid`` (``200001``), so
subject-wise splits keep both visits together; ``labels = {"visit": 1 or 2}``.

Channels (nsrr/shhs-documentation, pages "Montage and Sampling Rate Information" for SHHS1 and
SHHS2): ``EEG(sec)`` = C3/A2 and ``EEG`` = C4/A1, both already referenced to the contralateral
mastoid, 125 Hz (SHHS2v4 files: 128 Hz). So **C3 ← EEG(sec), C4 ← EEG**. The published LPSGM
preprocessing (Deng-GuiFeng/LPSGM ``preprocess/SHHS.py``) maps ``EEG`` → C3 and ``EEG(sec)`` →
C4, i.e. swaps the hemispheres; corrected here. Some SHHS2 EDFs label the secondary EEG
``EEG2``, ``EEG 2``, ``EEG sec`` or ``EEG(SEC)`` (alias lists of Luna/NSRR and of public loaders,
e.g. jesperstroem/CSDP ``sdo/shhs.py``), accepted as C3.
``EOG(L)`` / ``EOG(R)`` are each recorded against PG1 (no mastoid channel in the EDF, so they are
used as recorded: E1 ← EOG(L), E2 ← EOG(R)), 50 Hz (SHHS2v4: 64 Hz). ``EMG`` (chin, already
bipolar) 125 Hz (SHHS2v4: 128 Hz) → Chin. Every channel is resampled from its own rate.

Stages: R&K. Profusion ``<SleepStage>`` codes per 30-s epoch from the EDF start: 0 W, 1, 2,
3 and 4 (→ N3), 5 REM, others (6 movement, 9 unscored) → −1; NSRR XML ``Stages|Stages`` events
(``Stage 4 sleep|4`` → N3, ``Unscored|9`` → −1), start/duration in seconds from the EDF start.

Access: https://sleepdata.org/datasets/shhs (NSRR data access agreement; registration required).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import NSRR_XML, PROFUSION_XML, find_records, last_field, read_xml_stages

CHANNEL_MAP = {
    "C3": ["EEG(sec)", "EEG(SEC)", "EEG sec", "EEG 2", "EEG2", "EEG_SEC", "EEG_2"],
    "C4": ["EEG"],
    "E1": ["EOG(L)"],
    "E2": ["EOG(R)"],
    "Chin": ["EMG"],
}


def _labels(rid: str) -> dict:
    visit = rid.split("-")[0].removeprefix("shhs")
    return {"visit": int(visit)} if visit.isdigit() else {}


def find(src: Path):
    return find_records(src, scoring=(NSRR_XML, PROFUSION_XML), subject_of=last_field, labels_of=_labels,
                        accept=lambda p: p.name.lower().startswith("shhs"))


SPEC = DatasetSpec(
    name="shhs",
    description="SHHS visits 1+2: C3-A2 (EEG(sec)), C4-A1 (EEG), EOG(L)/(R), chin EMG; R&K (4→N3)",
    layout="<src>/polysomnography/edfs/shhs{1,2}/shhs{1,2}-<id>.edf + annotations-events-nsrr/shhs{1,2}/"
           "shhs{1,2}-<id>-nsrr.xml (or annotations-events-profusion/.../<id>-profusion.xml)",
    url="https://sleepdata.org/datasets/shhs (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
