"""HMC: Haaglanden Medisch Centrum sleep staging database (PhysioNet ``hmc-sleep-staging``).

Layout (PhysioNet ``recordings/``): ``SNxxx.edf`` (PSG) + ``SNxxx_sleepscoring.edf`` (scoring,
annotation-only EDF+C); the ``.txt``/``.csv`` exports of the same scoring are ignored. 151 nights
from 151 patients (``SN001`` ... ``SN154``, ids are subjects).

Channels (PhysioNet page; label lists printed by other loaders of the files): ``EEG F4-M1``,
``EEG C4-M1``, ``EEG O2-M1``, ``EEG C3-M2``, ``EMG chin``, ``EOG E1-M2``, ``EOG E2-M2``, ``ECG``,
all at 256 Hz. Already AASM-referenced, so the map is direct; note E2 is referenced to M2 (not
M1) in this database — there is no separate mastoid to re-reference it, so ``EOG E2-M2`` is used
as recorded. No F3/O1.

Stages: AASM, one EDF+ annotation per 30-s epoch, ``Sleep stage W/N1/N2/N3/R`` (checked on the
real ``SN001_sleepscoring.edf``: 854 epochs, W 151, N1 109, N2 430, N3 23, R 141). The scoring's
own header start is aligned with the PSG start (:func:`start_offset`). The scoring also holds
``Lights off@@EEG F4-A1`` / ``Lights on@@EEG Fpz-Cz`` events (SN001: 33.43 s and 25618.74 s); they
are stored as ``lights`` = (off, on) seconds from the signal start, filled while the stages are
read (returned with the stages as a ``Scoring``). Epochs outside lights-off keep their scored stage (DESIGN §5).
Licence: ODC-BY 1.0 (Alvarez-Estevez & Rijsman 2021; https://physionet.org/content/hmc-sleep-staging/).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import read_edf_start, read_edfplus_lights, read_edfplus_stages, start_offset
from preprocess.core.dataset import DatasetSpec, Record, Scoring, find_pairs
from preprocess.core.lights import lights_pair

CHANNEL_MAP = {
    "F4": ["EEG F4-M1"],
    "C3": ["EEG C3-M2"],
    "C4": ["EEG C4-M1"],
    "O2": ["EEG O2-M1"],
    "E1": ["EOG E1-M2"],
    "E2": ["EOG E2-M2"],
    "Chin": ["EMG chin"],
}


def find(src: Path) -> list[Record]:
    records = find_pairs(src, "SN*.edf", lambda p: p.with_name(f"{p.stem}_sleepscoring.edf"))
    return [r for r in records if not r.signal.stem.endswith("_sleepscoring")]


def read_stages(record: Record, signal_start):
    stages = read_edfplus_stages(record.annotation, signal_start=signal_start)
    lights = read_edfplus_lights(record.annotation)
    if lights is not None:
        offset = start_offset(read_edf_start(record.annotation), signal_start)
        lights = lights_pair(*(None if t is None else t + offset for t in lights))
    return Scoring(stages, lights)


SPEC = DatasetSpec(
    name="hmc",
    description="Haaglanden Medisch Centrum (151 clinical PSGs, 256 Hz, AASM EDF+ scoring, lights)",
    layout="<src>/**/SNxxx.edf + SNxxx_sleepscoring.edf",
    url="https://physionet.org/content/hmc-sleep-staging/ (open, ODC-BY 1.0)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
