"""DCSM: Danish Center for Sleep Medicine sleep staging dataset (Perslev et al. 2021, U-Sleep).

Layout: ``dcsm_dataset.zip`` from the ERDA archive extracts to ``data/sleep/DCSM/<record>/`` with
``psg.edf`` and ``hypnogram.ids`` per record (record folders are anonymised ids such as
``tp005f7e68_a084_46bb_9f0a_b6a084155a1c``); any depth is accepted. 255 nights of 255 patients,
so the record id is the subject. (The archive also lists HDF5 copies used by U-Time; only the
EDF is read here.)

Channels (label list printed by other loaders of the files): ``F3-M2, F4-M1, C3-M2, C4-M1,
O1-M2, O2-M1, E1-M2, E2-M2, CHIN, ECG-II, LAT, RAT, NASAL, THORAX, ABDOMEN, SNORE, SPO2``;
EEG/EOG (and chin) at 256 Hz (U-Sleep paper; PhysioEx/sleepdata loaders). The EEG is AASM
referenced; E2 is referenced to M2 (no M1 channel to re-reference it), used as recorded; CHIN is
already a bipolar chin EMG.

Stages: ``hypnogram.ids`` is a header-less CSV ``onset_s,duration_s,stage`` with one row per
run of equal stages, onset in seconds from the PSG start (U-Time ``ids`` format; PhysioEx and
LPSGM read column 1 as the duration and column 2 as ``W/N1/N2/N3/REM``). Runs are expanded to 30-s
epochs; time not covered by a row, and ``UNKNOWN`` rows, are -1. No lights times are published.
Licence: open access via ERDA (https://erda.ku.dk/public/archives/db553715ecbe1f3ac66c1dc569826eef/published-archive.html).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import events_to_epochs, read_csv_events
from preprocess.core.dataset import DatasetSpec, Record

CHANNEL_MAP = {
    "F3": ["F3-M2"],
    "F4": ["F4-M1"],
    "C3": ["C3-M2"],
    "C4": ["C4-M1"],
    "O1": ["O1-M2"],
    "O2": ["O2-M1"],
    "E1": ["E1-M2"],
    "E2": ["E2-M2"],
    "Chin": ["CHIN"],
}


def find(src: Path) -> list[Record]:
    return [Record(id=p.parent.name, subject=p.parent.name, signal=p, annotation=p.with_name("hypnogram.ids"))
            for p in sorted(Path(src).rglob("psg.edf"))]


def read_stages(record: Record, signal_start):
    return events_to_epochs(read_csv_events(record.annotation, 0, 1, 2, time_format="seconds"))


SPEC = DatasetSpec(
    name="dcsm",
    description="Danish Center for Sleep Medicine (255 clinical PSGs, 256 Hz, AASM runs in hypnogram.ids)",
    layout="<src>/**/<record>/psg.edf + hypnogram.ids",
    url="https://erda.ku.dk/public/archives/db553715ecbe1f3ac66c1dc569826eef/published-archive.html (open)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
