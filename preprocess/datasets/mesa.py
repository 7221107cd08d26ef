"""MESA Sleep (Multi-Ethnic Study of Atherosclerosis) — NSRR.

Layout: ``polysomnography/edfs/mesa-sleep-<NNNN>.edf`` with
``annotations-events-nsrr/mesa-sleep-<NNNN>-nsrr.xml`` (preferred) or
``annotations-events-profusion/mesa-sleep-<NNNN>-profusion.xml`` (nsrr/mesa-documentation,
"Polysomnography introduction"). One in-home night per participant; subject = ``<NNNN>``.

Channels (nsrr/mesa-documentation, "Montage and sampling rate information"; all 256 Hz):
``EEG1`` = Fz/Cz, ``EEG2`` = Cz/Oz, ``EEG3`` = C4/M1, ``EOG-L`` (E1) and ``EOG-R`` (E2) against FPz,
``EMG`` chin (EMG−/EMG+, centre/left chin). C4 ← EEG3 (the one AASM derivation). E1 ← EOG-L and
E2 ← EOG-R as recorded (no mastoid channel in the EDF to re-reference them). Fz-Cz and Cz-Oz are
bipolar leads without a mastoid reference and no canonical equivalent; they are not used
(the published LPSGM preprocessing also keeps C4, E1, E2, Chin only).

Stages: NSRR or Profusion XML, epochs from the EDF start (Profusion codes 0 W, 1-3, 4 → N3,
5 REM, others −1; the scoring criteria are not restated here). Access: https://sleepdata.org/datasets/mesa (NSRR agreement).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_xml_stages

CHANNEL_MAP = {
    "C4": ["EEG3", "C4-M1"],
    "E1": ["EOG-L", "E1"],
    "E2": ["EOG-R", "E2"],
    "Chin": ["EMG", "Chin"],
}


def find(src: Path):
    return find_records(src)


SPEC = DatasetSpec(
    name="mesa",
    description="MESA Sleep: C4-M1 (EEG3), EOG-L/R (vs FPz), chin EMG; NSRR/Profusion XML",
    layout="<src>/polysomnography/edfs/mesa-sleep-NNNN.edf + annotations-events-nsrr/mesa-sleep-NNNN-nsrr.xml",
    url="https://sleepdata.org/datasets/mesa (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_xml_stages,
)
