"""BOAS — Bitbrain Open Access Sleep dataset (OpenNeuro ds005555), PSG part.

128 nights recorded simultaneously with a Micromed Brain Quick Plus Evolution PSG and a Bitbrain
forehead EEG headband; human consensus scoring of the PSG (three AASM scorers, majority vote, a
fourth scorer for three-way disagreements). Evidence: ds005555 README (OpenNeuro, v1.1.1, CC0)
and the dataset's BIDS files (OpenNeuroDatasets/ds005555 mirror).

Layout (BIDS 1.8): ``<src>/sub-<N>/eeg/sub-<N>_task-Sleep_acq-psg_eeg.edf`` with
``sub-<N>_task-Sleep_acq-psg_events.tsv`` beside it; the headband has its own
``_acq-headband_eeg.edf`` / ``_events.tsv``. Only the PSG is used: the headband's two forehead
electrodes (``HB_1``, ``HB_2`` at about AF7/AF8) have no canonical counterpart and its events file
holds only the automatic ``stage_ai`` column. Both systems run at 256 Hz.

Subjects: the 128 ``sub-<N>`` folders are nights, not people; ``participants.tsv`` maps each
``participant_id`` to a ``pid`` (100 distinct values in v1.1.1, while the README says 108 people),
so recordings of one person share a subject (``pid<value>``) and never straddle a split. Age and
sex from that table go into ``labels`` when present.

Stages: ``events.tsv`` columns ``onset duration begsample endsample offset stage_hum stage_ai``,
one 30-s row per epoch from the EDF start (onset in seconds, begsample 1-based). ``stage_hum`` (human
consensus) is used: 0 W, 1 N1, 2 N2, 3 N3, 4 REM, 8 PSG disconnection (→ −1); any other code → −1.
``stage_ai`` (automatic) is ignored. The table can stop up to one partial epoch before the EDF ends.

Channels (labels as used by the published LPSGM BOAS preprocessing, github.com/Deng-GuiFeng/LPSGM
``preprocess/BOAS.py``): ``PSG_F3``, ``PSG_F4``, ``PSG_C3``, ``PSG_C4``, ``PSG_O1``, ``PSG_O2``,
``PSG_EOGL`` (or a single ``PSG_EOG``) → E1, ``PSG_EOGR`` → E2, ``PSG_EMG`` → Chin. The reference of
the PSG channels is the one recorded (given in the BIDS ``channels.tsv``; not verified here), so
no re-referencing is applied.

Licence: CC0, https://openneuro.org/datasets/ds005555
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.annotations import AnnotationError, events_to_epochs
from preprocess.core.dataset import DatasetSpec, Record
from preprocess.core.dataset_helpers import find_near, pick_column, read_table

CHANNEL_MAP = {
    "F3": ["PSG_F3"],
    "F4": ["PSG_F4"],
    "C3": ["PSG_C3"],
    "C4": ["PSG_C4"],
    "O1": ["PSG_O1"],
    "O2": ["PSG_O2"],
    "E1": ["PSG_EOGL", "PSG_EOG"],
    "E2": ["PSG_EOGR"],
    "Chin": ["PSG_EMG"],
}
STAGE_CODES = {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4}  # 8 = disconnection and anything else -> -1
_SUFFIX = "_task-Sleep_acq-psg_eeg.edf"


def _participants(src: Path) -> dict[str, dict]:
    path = find_near(src, ["participants.tsv"], levels=1)
    if path is None:
        return {}
    out = {}
    for row in read_table(path):
        pid_col = pick_column(row, "participant_id")
        if pid_col:
            out[row[pid_col]] = row
    return out


def find(src: Path) -> list[Record]:
    people = _participants(Path(src))
    records = []
    for edf in sorted(Path(src).rglob(f"sub-*{_SUFFIX}")):
        rid = edf.name[: -len(_SUFFIX)]
        row = people.get(rid, {})
        pid = row.get(pick_column(row, "pid") or "", "")
        labels = {k: row[c] for k, c in (("age", pick_column(row, "age")), ("sex", pick_column(row, "sex")))
                  if c and row[c] not in ("", "n/a")}
        records.append(Record(id=rid, subject=f"pid{pid}" if pid not in ("", "n/a") else rid, signal=edf,
                              annotation=edf.with_name(f"{rid}_task-Sleep_acq-psg_events.tsv"), labels=labels))
    return records


def read_stages(record: Record, signal_start):
    rows = read_table(record.annotation)
    name = Path(record.annotation).name
    if not rows:
        raise AnnotationError(f"{name}: empty events table")
    cols = [pick_column(rows[0], c) for c in ("onset", "duration", "stage_hum")]
    if None in cols:
        raise AnnotationError(f"{name}: needs columns onset, duration, stage_hum; has {list(rows[0])}")
    try:
        events = [(float(r[cols[0]]), float(r[cols[1]]), STAGE_CODES.get(r[cols[2]].split(".")[0], -1))
                  for r in rows]
    except ValueError as exc:
        raise AnnotationError(f"{name}: {exc}") from None
    return events_to_epochs(events)


SPEC = DatasetSpec(
    name="boas",
    description="Bitbrain Open Access Sleep (ds005555) PSG: F3 F4 C3 C4 O1 O2, EOG L/R, chin; consensus AASM stages",
    layout="<src>/sub-<N>/eeg/sub-<N>_task-Sleep_acq-psg_eeg.edf + ..._acq-psg_events.tsv (+ participants.tsv)",
    url="https://openneuro.org/datasets/ds005555 (CC0)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
