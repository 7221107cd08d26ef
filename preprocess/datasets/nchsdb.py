"""NCH Sleep DataBank (Nationwide Children's Hospital) — NSRR.

Layout: ``sleep_data/<STUDY_PAT_ID>_<SLEEP_STUDY_ID>.edf`` with ``<same>.tsv`` next to it
(nsrr/nchsdb-documentation README "/sleep_data: raw physiological data (EDF) and annotations
(TSV)"; the NSRR harmonisation notes, studies/nchsdb/proc.md of the NSRR Luna repository, confirm
the two-field underscore ids and 3,984 studies of 3,673 patients). Subject = ``STUDY_PAT_ID``
(238 patients have 2 studies, some more). A Luna ``<id>.annot`` conversion is accepted when the
``.tsv`` is absent (the published LPSGM preprocessing read that).

TSV (same proc.md): a header row ``onset  duration  description``, tab-separated, onset in seconds
from the EDF start (not aligned to whole seconds, e.g. 24780.9609375), stage rows
``Sleep stage W|N1|N2|N3|R|?`` of 30 s, plus markers and events (ignored). Epoch ``i`` takes the
stage covering its midpoint, so the sub-second offset does not shift epochs. ``Sleep stage ?`` → −1.
Some studies carry no staging or a truncated/empty TSV (proc.md lists one all-NUL file): those
fail with the file named. Scoring that stops before the end of the EDF is padded with −1.

Channels (proc.md EDF header dump; EDF+C without annotation signal, 256 Hz in the NSRR canonical
definitions): ``EEG F3-M2``, ``EEG F4-M1``, ``EEG C3-M2``, ``EEG C4-M1``, ``EEG O1-M2``,
``EEG O2-M1``, ``EOG LOC-M2``, ``EOG ROC-M1``, ``EMG Chin1-Chin2`` (also ``EMG Chin2-Chin1``,
``Chin1-Chin3`` … variants), all already referenced.

Access: https://sleepdata.org/datasets/nchsdb (NSRR agreement, non-commercial use).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec
from preprocess.core.nsrr import find_records, read_scoring

CHANNEL_MAP = {
    "F3": ["EEG F3-M2"],
    "F4": ["EEG F4-M1", "EEG F4-M2"],
    "C3": ["EEG C3-M2"],
    "C4": ["EEG C4-M1", "EEG C4-M2"],
    "O1": ["EEG O1-M2"],
    "O2": ["EEG O2-M1"],
    "E1": ["EOG LOC-M2", "EOG E1-M2"],
    "E2": ["EOG ROC-M1", "EOG ROC-M2", "EOG E2-M1"],
    "Chin": ["EMG Chin1-Chin2", "EMG Chin2-Chin1", "EMG Chin1-Chin3", "EMG Chin3-Chin2", "EMG Chin3-Chin1"],
}


def find(src: Path):
    return find_records(src, scoring=(".tsv", ".annot"), subject_of=lambda rid: rid.split("_")[0])



SPEC = DatasetSpec(
    name="nchsdb",
    description="NCH Sleep DataBank (children): 6 referenced EEG, LOC/ROC, chin; TSV events (AASM)",
    layout="<src>/sleep_data/<patient>_<study>.edf + <patient>_<study>.tsv",
    url="https://sleepdata.org/datasets/nchsdb (NSRR, registration and data use agreement; non-commercial)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_scoring,
)
