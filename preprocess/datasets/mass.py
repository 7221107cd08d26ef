"""MASS — Montreal Archive of Sleep Studies, subsets SS1 and SS3 (``mass_ss1``, ``mass_ss3``).

MASS (O'Reilly et al., J Sleep Res 2014) has five subsets of whole nights recorded at 256 Hz:
SS1 (53 recordings) and SS3 (62) scored with AASM rules on **30-s** epochs; SS2 (19), SS4 (40) and
SS5 (26) scored with R&K rules on **20-s** epochs. Only SS1 and SS3 are provided: a 20-s scoring
cannot be turned into 30-s labels without inventing the label of every epoch that straddles two
scored epochs, so SS2/SS4/SS5 are out of scope (a Base file with 20-s stage annotations is refused
with that reason). Evidence: the MASS description (subset table) reproduced in the ``sleepless``
package (Idiap) docs; the published LPSGM preprocessing handles exactly SS1 and SS3
(github.com/Deng-GuiFeng/LPSGM ``preprocess/MASS-SS1-SS3.py``).

Layout (as distributed): ``<src>/**/01-SS-NNNN PSG.edf`` (signals) and ``01-SS-NNNN Base.edf``
(EDF+ annotation file holding the stages; some copies keep them in an ``annotations/`` folder —
the Base file is found by name anywhere under ``src``). ``SS`` is the subset (``01``, ``03``): one
MASS root can serve both specs. Each recording is a different subject (subject = recording ID).

Stages: EDF+ annotations ``Sleep stage W``, ``Sleep stage 1/2/3`` (AASM N1/N2/N3 written as
numbers), ``Sleep stage R``, ``Sleep stage ?`` (→ −1); a stray ``Sleep stage 4`` would merge into N3.
The annotations do **not** start at the PSG start: the first scored epoch begins at an arbitrary
onset (e.g. 17.4 s). The signal is therefore read from ``first onset mod 30 s`` (< 30 s dropped)
so that every output epoch coincides with one scored 30-s epoch; the stored ``start_time`` is
that point; epochs outside the scored span stay −1 (DESIGN §5). The Base file's own header start
is honoured (normally equal to the PSG's).

Channels (evidence: EDF label lists quoted by several MASS readers, e.g. SS1/SS3
``EEG F3-CLE … EEG O2-CLE``, ``EEG A2-CLE``, ``EOG Left Horiz``, ``EOG Right Horiz``,
``EMG Chin1/2/3``): EEG is referenced to computed linked ears (``-CLE``) or, in some recordings,
linked-ear reference (``-LER``). Because ``EEG A2-CLE`` is recorded, the left-hemisphere channels are
re-referenced exactly to the contralateral ear: (X−CLE) − (A2−CLE) = X − A2 (DESIGN §3 rule). A1
is not available on its own, so F4/C4/O2 keep the linked-ear reference (closest available to
X−M1). EOG: ``EOG Left Horiz`` → E1, ``EOG Right Horiz`` → E2 (reference as recorded). Chin: the
bipolar ``EMG Chin1 − EMG Chin2`` (falls back to Chin1 − Chin3).

Licence / access: registration and data use agreement, http://massdb.herokuapp.com (Borealis:
doi:10.5683/SP3/9MYUCS).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from preprocess.core.annotations import (
    AnnotationError,
    events_to_epochs,
    lights_kind,
    lights_pair,
    read_edf_annotations,
    read_edf_start,
    stage_code,
    start_offset,
)
from preprocess.core.dataset import DatasetSpec, Record, Scoring
from preprocess.core.dataset_helpers import (
    OffsetSource,
    grid_offset,
    pad_to,
    signal_epochs,
)
from preprocess.core.edf import EdfReader

CHANNEL_MAP = {
    "F3": [("EEG F3-CLE", "EEG A2-CLE"), "EEG F3-CLE", "EEG F3-LER"],
    "F4": ["EEG F4-CLE", "EEG F4-LER"],
    "C3": [("EEG C3-CLE", "EEG A2-CLE"), "EEG C3-CLE", "EEG C3-LER"],
    "C4": ["EEG C4-CLE", "EEG C4-LER"],
    "O1": [("EEG O1-CLE", "EEG A2-CLE"), "EEG O1-CLE", "EEG O1-LER"],
    "O2": ["EEG O2-CLE", "EEG O2-LER"],
    "E1": ["EOG Left Horiz"],
    "E2": ["EOG Right Horiz"],
    "Chin": [("EMG Chin1", "EMG Chin2"), ("EMG Chin1", "EMG Chin3"), "EMG Chin"],
}
_ID = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")


def _finder(subset: str):
    def find(src: Path) -> list[Record]:
        bases = {p.name[: -len(" Base.edf")]: p for p in Path(src).rglob("* Base.edf")}
        records = []
        for psg in sorted(Path(src).rglob("* PSG.edf")):
            rid = psg.name[: -len(" PSG.edf")]
            m = _ID.match(rid)
            if not m or m.group(2) != subset:
                continue
            records.append(Record(id=rid, subject=rid, signal=psg,
                                  annotation=bases.get(rid, psg.with_name(f"{rid} Base.edf"))))
        return records
    return find


def _scoring(record: Record):
    """Stage events (relative to the Base file start), lights, Base start and the grid offset."""
    name = Path(record.annotation).name
    events, base_start = read_edf_annotations(record.annotation)
    stages = [(e.onset, e.duration, stage_code(e.label)) for e in events]
    stages = [e for e in stages if e[2] is not None]
    if not stages:
        raise AnnotationError(f"{name}: no sleep stage annotations found")
    durations = [d for _, d, _ in stages if d > 0]
    epoch = float(np.median(durations)) if durations else 30.0
    if abs(epoch - 30.0) > 0.5:
        raise AnnotationError(f"{name}: stages are scored on {epoch:g}-s epochs; only the 30-s subsets "
                              "(SS1, SS3) are supported")
    psg_offset = start_offset(base_start, read_edf_start(record.signal))
    grid = grid_offset(min(e[0] for e in stages) + psg_offset)
    off = [e.onset for e in events if lights_kind(e.label) == "off"]
    on = [e.onset for e in events if lights_kind(e.label) == "on"]
    return stages, (min(off) if off else None, max(on) if on else None), base_start, psg_offset, grid


def open_signals(record: Record):
    grid = _scoring(record)[-1]
    reader = EdfReader(record.signal)
    return OffsetSource(reader, grid) if grid else reader


def read_stages(record: Record, signal_start):
    stages, (off, on), base_start, psg_offset, grid = _scoring(record)
    shift = start_offset(base_start, signal_start) if signal_start and base_start else psg_offset - grid
    lights = lights_pair(None if off is None else off + shift, None if on is None else on + shift)
    return Scoring(pad_to(events_to_epochs(stages, offset_s=shift), signal_epochs(record.signal, skip_s=grid)), lights)


def _spec(subset: str, n: int) -> DatasetSpec:
    return DatasetSpec(
        name=f"mass_ss{int(subset)}",
        description=f"MASS SS{int(subset)} ({n} nights, AASM 30-s epochs): EEG -CLE/-LER, EOG, chin EMG "
                    "(SS2/SS4/SS5 are 20-s R&K: not supported)",
        layout=f"<src>/**/01-{subset}-NNNN PSG.edf + 01-{subset}-NNNN Base.edf (EDF+ stage annotations)",
        url="http://massdb.herokuapp.com (registration; doi:10.5683/SP3/9MYUCS)",
        channel_map=CHANNEL_MAP,
        find=_finder(subset),
        read_stages=read_stages,
        open_signals=open_signals,
    )


SPECS = [_spec("01", 53), _spec("03", 62)]
