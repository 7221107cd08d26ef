"""PhysioNet/CinC Challenge 2018 "You Snooze You Win" (MGH sleep lab), training set.

Layout (PhysioNet ``challenge-2018/1.0.0``): ``training/trNN-NNNN/trNN-NNNN.hea`` (WFDB header),
``trNN-NNNN.mat`` (MATLAB v4 ``val`` matrix, header format ``16+24``) and ``trNN-NNNN-arousal.mat``
(MATLAB v7.3 = HDF5 with ``data/arousals`` and ``data/sleep_stages``). 994 training records (one
per subject); the 989 ``test/teNN-NNNN`` records carry no scoring and are skipped (``te`` prefix
or a ``test`` folder).

Signals (13, challenge page): ``F3-M2, F4-M1, C3-M2, C4-M1, O1-M2, O2-M1, E1-M2, Chin1-Chin2,
ABD, CHEST, AIRFLOW, SaO2, ECG``; all sampled at 200 Hz (SaO2 resampled to 200 Hz), EEG/EOG/EMG in
µV (header units). Physical values use the header gain and baseline. Map: AASM derivations one to
one; there is no E2 (only E1-M2 is recorded). The WFDB header and ``.mat`` are read by
:class:`preprocess.core.sources.WfdbSource` (no ``wfdb`` dependency).

Stages: ``data/sleep_stages/{wake,nonrem1,nonrem2,nonrem3,rem,undefined}`` are 0/1 vectors with
one value per signal sample (200 Hz), scored by MGH technologists in 30-s intervals (AASM:
wakefulness, stage 1/2/3, REM, undefined). Each 30-s epoch from the signal start takes the stage
marked on most of its samples (:func:`read_sample_stages`); ``undefined`` (e.g. before lights
off) → -1, kept on the full timeline. No explicit lights times. Licence: ODC-BY / open
(https://physionet.org/content/challenge-2018/1.0.0/).
"""

from __future__ import annotations

from pathlib import Path

from preprocess.core.dataset import DatasetSpec, Record
from preprocess.core.sources import WfdbSource, read_sample_stages, read_wfdb_header

CHANNEL_MAP = {
    "F3": ["F3-M2"],
    "F4": ["F4-M1"],
    "C3": ["C3-M2"],
    "C4": ["C4-M1"],
    "O1": ["O1-M2"],
    "O2": ["O2-M1"],
    "E1": ["E1-M2"],
    "Chin": ["Chin1-Chin2"],
}


def find(src: Path) -> list[Record]:
    src, records = Path(src), []
    for hea in sorted(src.rglob("*.hea")):
        rid = hea.stem
        if rid.startswith("te") or "test" in (p.lower() for p in hea.relative_to(src).parts[:-1]):
            continue  # test set: not scored
        records.append(Record(id=rid, subject=rid, signal=hea.with_suffix(".mat"),
                              annotation=hea.with_name(f"{rid}-arousal.mat")))
    return records


def read_stages(record: Record, signal_start):
    header = read_wfdb_header(Path(record.signal).with_suffix(".hea"))
    return read_sample_stages(record.annotation, header.sfreq)


SPEC = DatasetSpec(
    name="physionet2018",
    description="PhysioNet/CinC Challenge 2018 training set (994 MGH PSGs, 200 Hz WFDB, per-sample stages)",
    layout="<src>/**/trNN-NNNN/trNN-NNNN.hea + .mat + -arousal.mat",
    url="https://physionet.org/content/challenge-2018/1.0.0/ (open)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
    open_signals=lambda record: WfdbSource(Path(record.signal).with_suffix(".hea")),
)
