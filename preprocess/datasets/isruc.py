"""ISRUC-Sleep (Khalighi et al. 2016), all three subgroups in one dataset.

Release layout (http://sleeptight.isr.uc.pt/ISRUC_Sleep/: folders ``subgroupI``, ``subgroupII``,
``subgroupIII``, one ``.rar`` per subject): subgroups I and III unpack to ``<n>/<n>.rec`` with the
two scorers' files ``<n>/<n>_1.txt`` and ``<n>/<n>_2.txt``; subgroup II (8 subjects recorded twice)
to ``<n>/<session>/<session>.rec`` + ``<session>_1.txt`` / ``_2.txt``. The ``.rec`` files are EDF
(read by content). Subgroup I: 100 subjects (1 night each, many with apnoea); II: 8 subjects x 2
sessions; III: 10 healthy subjects. Subject numbers restart in every subgroup, so ids carry the
subgroup: records ``sg1-<n>``, ``sg2-<n>-s<k>``, ``sg3-<n>``, subjects ``sg1-<n>``, ``sg2-<n>``,
``sg3-<n>`` (the two sessions of a subgroup-II subject share the subject). The subgroup is read
from the nearest folder named like ``subgroupI``/``Subgroup_1``/``subgroup3``/``SG2``/``ISRUC_S1``;
without one, the ``<n>/<k>/<k>.rec`` layout means subgroup II and a flat layout is left unknown
(``<n>``, with a warning). Labels: ``subgroup``, ``session`` (II), ``scorer``.

Channels, 200 Hz (labels printed from the files by other users): most nights ``LOC-A2, ROC-A1,
F3-A2, C3-A2, O1-A2, F4-A1, C4-A1, O2-A1, X1 ... X8, SaO2, DC3, DC8`` (some lack F3/F4); other
nights use AASM names ``E1-M2, E2-M1, F3-M2, C3-M2, O1-M2, F4-M1, C4-M1, O2-M1``, with the
auxiliary channels either ``X1 ... X8`` or ``24 ... 31``; a few store unreferenced electrodes
``F3, C3, O1, F4, C4, O2, LOC, ROC, A1, A2`` (re-referenced here to the contralateral mastoid).
``X1`` is the chin EMG (ISRUC channel list as used by the LPSGM reference map; X2 is the ECG); in
the numbered variant the chin is ``24`` (same position; LPSGM reference map). Not verified against
the ISRUC documentation itself here.

Stages: ``<n>_1.txt`` = scorer 1 (used, as in LPSGM and most literature; ``_2`` only when ``_1`` is
missing — two scorers have no consensus to build), one code per line per 30-s epoch from the
recording start: 0 W, 1 N1, 2 N2, 3 N3, 5 REM (AASM; no code 4). Unknown codes are an error. No
lights times. Licence: free for research with citation (ISRUC-Sleep, sleeptight.isr.uc.pt).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from preprocess.core.annotations import read_epoch_text
from preprocess.core.dataset import DatasetSpec, Record, first_existing

log = logging.getLogger("preprocess")


def _eeg(site: str, ref: str) -> list:
    m = "M" + ref[1]
    return [f"{site}-{m}", f"{site}-{ref}", (site, ref), (site, m)]


CHANNEL_MAP = {
    "F3": _eeg("F3", "A2"),
    "F4": _eeg("F4", "A1"),
    "C3": _eeg("C3", "A2"),
    "C4": _eeg("C4", "A1"),
    "O1": _eeg("O1", "A2"),
    "O2": _eeg("O2", "A1"),
    "E1": ["E1-M2", "LOC-A2", ("LOC", "A2"), ("E1", "M2")],
    "E2": ["E2-M1", "ROC-A1", ("ROC", "A1"), ("E2", "M1")],
    "Chin": ["X1", "24"],
}

STAGE_CODES = {0: 0, 1: 1, 2: 2, 3: 3, 5: 4}

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "1": 1, "2": 2, "3": 3}
_SUBGROUP = re.compile(r"(?:isruc(?:sleep)?)?(?:subgroup|sg|s)(iii|ii|i|[123])")


def subgroup_of(path: Path, src: Path) -> int | None:
    """Subgroup number from the nearest folder (up to ``src``) named like ``subgroupII``/``SG2``."""
    for parent in path.parents:
        m = _SUBGROUP.fullmatch(re.sub(r"[^a-z0-9]", "", parent.name.lower()))
        if m:
            return _ROMAN[m.group(1)]
        if parent == src:
            break
    return None


def find(src: Path) -> list[Record]:
    src = Path(src)
    records = []
    for rec in sorted(src.rglob("*.rec")):
        if not rec.stem.isdigit():
            continue
        session_layout = rec.parent.name == rec.stem and rec.parent.parent.name.isdigit()
        group = subgroup_of(rec, src) or (2 if session_layout else None)
        subject = rec.parent.parent.name if session_layout else rec.stem
        prefix = f"sg{group}-" if group else ""
        rid = f"{prefix}{subject}" + (f"-s{rec.stem}" if session_layout else "")
        if group is None:
            log.warning("isruc: no subgroup folder above %s; record id %s", rec, rid)
        scorers = [rec.with_name(f"{rec.stem}_{k}.txt") for k in (1, 2)]
        annotation = first_existing(scorers)
        labels = {"subgroup": group, "scorer": 2 if annotation == scorers[1] else 1}
        if session_layout:
            labels["session"] = int(rec.stem)
        records.append(Record(id=rid, subject=f"{prefix}{subject}", signal=rec, annotation=annotation, labels=labels))
    return records


def read_stages(record, signal_start):
    return read_epoch_text(record.annotation, STAGE_CODES)


SPEC = DatasetSpec(
    name="isruc",
    description="ISRUC-Sleep subgroups I-III (126 nights, 200 Hz, AASM scorer 1)",
    layout="<src>/subgroupI|II|III/<n>/<n>.rec + <n>_1.txt (subgroup II: <n>/<k>/<k>.rec + <k>_1.txt)",
    url="https://sleeptight.isr.uc.pt/ (free for research, cite Khalighi et al. 2016)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
