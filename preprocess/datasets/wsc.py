"""Wisconsin Sleep Cohort (WSC) — NSRR.

Layout (nsrr/wsc-documentation CHANGELOG, Nov 2020: EDFs moved from ``polysomnography/edfs`` to
``polysomnography``; "Polysomnography introduction"): ``polysomnography/wsc-visit<V>-<ID>-nsrr.edf``
with its scoring files next to it:

* ``.stg.txt`` — WSC original staging of the **Gamma** studies (Grass Heritage, 2000-2009): a
  header ``Epoch  User-Defined Stage  CAST-Defined Stage`` (missing in at least one file) and one
  row per 30-s epoch counted from the EDF start; User-Defined Stage codes 0 W, 1, 2, 3, **4 (R&K
  stage 4 → N3)**, 5 REM, 6 movement (−1), 7 unscored (−1) — code table from the NSRR
  harmonisation notes (studies/wsc/proc.md of the NSRR Luna repository: "0 W, 1 N1, 2 N2, 3 N3,
  4 N3, 5 R, 6 movement, 7 ?"). The published LPSGM ``preprocess/WSC.py`` maps only 0-3 and 5 and
  turns stage 4 into "unknown", dropping those epochs; here 4 merges into N3 (DESIGN §5).
* ``.allscore.txt`` — original staging and events of the **Twin** studies (Grass Comet,
  2009-): tab-separated ``hh:mm:ss.fff <tab> text`` rows; ``START RECORDING`` at the EDF start,
  ``STAGE - W|N1|N2|N3|R|NO STAGE|MVT`` only where the stage changes (it lasts until the next
  stage row; the last one until the end of the EDF), ``LIGHTS OUT`` / ``LIGHTS ON``. Rows before
  ``START RECORDING`` are ignored; epochs before the first stage row are −1.
* ``.eannot`` — NSRR's one-label-per-epoch conversion of either file (W, N1, N2, N3, R, ?,
  movement) used when the original is absent.
* ``.log.txt`` — Gamma biocalibration/lights log; lights-off/on taken from its ``Lights Out`` /
  ``Lights On`` rows (clock time in the row), like the ``LIGHTS OUT/ON`` rows of ``.allscore.txt``.

The originals are preferred: they are what the WSC team scored (and where R&K stage 4 is
explicit); NSRR built the ``.eannot`` from them with the same code table.

Recording id ``wsc-visit<V>-<ID>`` (the ``-nsrr`` tag dropped); subject ``<ID>`` (up to 5 visits).

Channels (nsrr/wsc-documentation "Montage and sampling rate information"; EDF labels were
harmonised by NSRR): Gamma at 100 Hz — ``E1`` (E1-M2), ``E2`` (E2-M1), ``C3_M2``, ``O1_M2``,
``chin``; Twin at 200 Hz — ``E1``, ``E2``, ``F3_M2``, ``Fz_M2``, ``Cz_M2``, ``C3_M2``, ``Pz_M2``,
``O1_M2``, ``cchin_l`` (linked centre & left chin). A few studies have ``C4_M1``, ``F4_M1``,
``O2_M1``, ipsilateral ``_M1``/``_M2`` or average-referenced ``_AVG`` leads (NSRR canonical
signal file for WSC; published preprocessing); the contralateral mastoid is preferred, then the
ipsilateral one, then the average reference.

Access: https://sleepdata.org/datasets/wsc (NSRR agreement).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from preprocess.core.annotations import AnnotationError, events_to_epochs, read_epoch_text, stage_code
from preprocess.core.dataset import DatasetSpec, Record, Scoring
from preprocess.core.lights import lights_pair
from preprocess.core.nsrr import (
    clock_seconds,
    edf_duration,
    find_records,
    first_last,
    lights_kind,
    pad_to_signal,
)

CHANNEL_MAP = {
    "F3": ["F3_M2", "F3_M1", "F3_AVG"],
    "F4": ["F4_M1", "F4_M2", "F4_AVG"],
    "C3": ["C3_M2", "C3_M1", "C3_AVG"],
    "C4": ["C4_M1", "C4_M2", "C4_AVG"],
    "O1": ["O1_M2", "O1_M1", "O1_AVG"],
    "O2": ["O2_M1", "O2_M2", "O2_AVG"],
    "E1": ["E1"],
    "E2": ["E2"],
    "Chin": ["chin", "cchin_l", "cchin_r", "rchin_l"],
}

STG_CODES = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: -1, 7: -1}
SCORING = (".stg.txt", ".allscore.txt", ".eannot")
_CLOCK_FIELD = re.compile(r"\d{1,2}:\d{2}:\d{2}(\.\d+)?(\s+\S+)?")


def _id(edf: Path) -> str:
    return edf.stem.removesuffix("-nsrr")


def _labels(rid: str) -> dict:
    visit = rid.split("-")[1].removeprefix("visit") if rid.count("-") >= 2 else ""
    return {"visit": int(visit)} if visit.isdigit() else {}


def find(src: Path) -> list[Record]:
    return find_records(src, scoring=SCORING, id_of=_id, labels_of=_labels,
                        accept=lambda p: p.name.lower().startswith("wsc-"))


def read_stg(path: Path) -> np.ndarray:
    """Gamma ``.stg.txt``: epoch number + User-Defined Stage per row (header optional)."""
    column, rows = None, {}
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\r\n").split("\t")
            values = [x.strip() for x in fields if x.strip()]
            if not values:
                continue
            if not values[0].isdigit():  # header row
                names = [x.strip().lower() for x in fields]
                column = names.index("user-defined stage") if "user-defined stage" in names else None
                continue
            token = fields[column].strip() if column is not None and column < len(fields) else ""
            token = token or (values[1] if len(values) > 1 else "")
            try:
                rows[int(values[0])] = STG_CODES.get(int(token), -1)
            except ValueError:
                raise AnnotationError(f"{path.name}: line {lineno}: bad stage row {line.strip()!r}") from None
    if not rows:
        raise AnnotationError(f"{path.name}: no stage rows")
    out = np.full(max(rows), -1, dtype=np.int8)
    for epoch, code in rows.items():
        if epoch >= 1:
            out[epoch - 1] = code
    return out


def _rows(path: Path) -> list[tuple[str, str]]:
    """(clock time, text) of every tab-separated row holding an ``hh:mm:ss[.fff]`` field."""
    rows = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            fields = [x.strip() for x in line.rstrip("\r\n").split("\t")]
            clock = next((x for x in fields if _CLOCK_FIELD.fullmatch(x)), None)
            if clock:
                rows.append((clock, " ".join(x for x in fields if x and x != clock)))
    return rows


def _origin(clock: str) -> dt.time:
    h, m, s = clock.split()[0].split(":")
    return dt.time(int(h), int(m), int(float(s)))


def read_allscore(record: Record, signal_start) -> Scoring:
    """Twin ``.allscore.txt``: stage-change rows from ``START RECORDING`` on; lights rows."""
    path = Path(record.annotation)
    rows = _rows(path)
    starts = [i for i, (_, text) in enumerate(rows) if text.upper() == "START RECORDING"]
    if not starts:
        raise AnnotationError(f"{path.name}: no START RECORDING row")
    origin = signal_start or _origin(rows[starts[-1]][0])  # clock times count from the EDF start
    # several START RECORDING rows (restarts): the one at the EDF start
    first = min(starts, key=lambda i: min(clock_seconds(rows[i][0], origin), 86400 - clock_seconds(rows[i][0], origin)))
    changes, lights = [], []
    for clock, text in rows[first:]:
        t = clock_seconds(clock, origin)
        upper = text.upper()
        if upper.startswith("STAGE"):
            token = upper.split("-", 1)[-1].strip()
            code = -1 if token in ("NO STAGE", "MVT") else stage_code(token)
            changes.append((t, -1 if code is None else code))
        elif lights_kind(text):
            lights.append((t, lights_kind(text)))
    if not changes:
        raise AnnotationError(f"{path.name}: no STAGE rows")
    changes.sort(key=lambda c: c[0])
    end = edf_duration(record) or changes[-1][0] + 30.0  # the last stage lasts to the end of the EDF
    bounds = [c[0] for c in changes[1:]] + [max(end, changes[-1][0])]
    events = [(t, stop - t, code) for (t, code), stop in zip(changes, bounds) if stop > t]
    return Scoring(pad_to_signal(events_to_epochs(events), record), lights_pair(*first_last(lights)))


def read_log_lights(record: Record, signal_start) -> tuple[float, float] | None:
    """Lights Out / Lights On rows of the Gamma ``.log.txt`` next to the EDF, if any."""
    log = Path(str(record.signal)[: -len(".edf")] + ".log.txt")
    if not log.exists() or signal_start is None:
        return None
    rows = [(clock_seconds(clock, signal_start), lights_kind(text)) for clock, text in _rows(log)]
    return lights_pair(*first_last([r for r in rows if r[1]]))


def read_stages(record: Record, signal_start) -> np.ndarray:
    name = str(record.annotation)
    if name.endswith(".stg.txt"):
        return Scoring(read_stg(Path(name)), read_log_lights(record, signal_start))
    if name.endswith(".allscore.txt"):
        return read_allscore(record, signal_start)
    return Scoring(read_epoch_text(name, mapping=None), read_log_lights(record, signal_start))


SPEC = DatasetSpec(
    name="wsc",
    description="Wisconsin Sleep Cohort: C3-M2, O1-M2 (+F3/Fz/Cz/Pz in Twin), E1, E2, chin; .stg.txt / "
                ".allscore.txt / .eannot (R&K 4 → N3)",
    layout="<src>/polysomnography/wsc-visitV-ID-nsrr.edf + wsc-visitV-ID-nsrr.{stg.txt,allscore.txt,eannot}",
    url="https://sleepdata.org/datasets/wsc (NSRR, registration and data use agreement)",
    channel_map=CHANNEL_MAP,
    find=find,
    read_stages=read_stages,
)
