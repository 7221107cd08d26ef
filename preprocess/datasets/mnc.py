"""MNC — Mignot Nature Communications narcolepsy cohorts (NSRR): ``mnc-cnc``, ``mnc-dhc``,
``mnc-fhc``, ``mnc-ihc``, ``mnc-khc``, ``mnc-ssc``.

Recordings of Stephansen et al., "Neural network analysis of sleep stages enables efficient
diagnosis of narcolepsy", Nat Commun 9:5229 (2018), re-released by NSRR with harmonised EDF labels.
One spec per cohort (run e.g. ``python -m preprocess mnc-cnc --src <MNC root> --dst OUT``; ``--src``
may be the MNC root or the cohort folder itself):

=========  ===========================================  ======================================
spec       cohort (as described in the paper)           scoring in the NSRR release
=========  ===========================================  ======================================
mnc-cnc    CNC, Chinese narcolepsy cohort (Beijing)      yes (``chc/chp###-nsrr``)
mnc-dhc    DHC, Danish hypersomnia cohort (Glostrup)     yes (``Sub##``/``N####``; subfolders
                                                         ``training``, ``test/controls``, …)
mnc-fhc    FHC, French hypersomnia cohort (Montpellier)  no
mnc-ihc    IHC, Italian hypersomnia cohort (Bologna)     no
mnc-khc    KHC, Korean hypersomnia cohort                no
mnc-ssc    SSC, Stanford Sleep Cohort                    yes (``ssc_####_#``)
=========  ===========================================  ======================================

Evidence: NSRR MNC documentation (github.com/nsrr/mnc-documentation: ``pages/README.md``,
``edf-harmonization-process.md``, ``montage-and-sampling-rate-information.md``): "3 subcohorts
provided scoring annotations: SSC, CNC, and DHC", converted to ``.eannot`` (one row per 30-s
epoch; N4 merged into N3; wake, N1, N2, N3, REM, unscored) and NSRR ``.xml``. The IS-RC cohort
(inter-scorer reliability, no diagnosis contrast) is not offered.

Layout: ``<MNC>/<cohort>/**/<id>-nsrr.edf`` with ``<id>-nsrr.xml`` / ``<id>-nsrr.eannot`` beside
it when scored; the original (Box) copies ``<id>.edf`` + ``<id>.sta`` are read too (.sta: one
stage per row, optionally after the epoch number; CNC/SSC codes 0 W, 1 N1, 2 N2, 3 N3, 4 N4,
5 REM, 7 unknown; DHC codes 1 W, 0 REM, −1 N1, −2 N2, −3 N3 — from the NSRR page). When both exist the ``-nsrr`` EDF is used.
Staging is **optional** here: recordings without a scoring file are written without ``stages``
(DESIGN §6), and the scoring is cropped/padded to the signal without a length check because the
cohort's primary label is the diagnosis and the NSRR stage files were converted from other formats.

Diagnosis (``labels``): the subject table ``cohorts_deid.xlsx`` shipped with the data (also read as
``.csv``; searched in ``--src`` and up to three parent folders) matches subject IDs to cohort, a
narcolepsy/control diagnosis, CSF hypocretin-1 and HLA-DQB1*06:02 (NSRR page "Subject data").
Columns are found by name (``ID``, ``Cohort``, ``Diagnosis``, ``CSF hypocretin-1``, ``DQ0602``,
``Label``). Diagnosis texts in that table read ``NON-NARCOLEPSY CONTROL``, ``T1 NARCOLEPSY`` and
``OTHER HYPERSOMNIA`` (third-party readers of the file; not verified against the file itself) and
are stored as ``labels["diagnosis"]`` ∈ {``"non-narcolepsy control"``, ``"type 1 narcolepsy"``,
``"other hypersomnia"``}, with ``labels["cohort"]`` (``"CNC"`` …), ``labels["diagnosis_raw"]`` and,
when present, ``hypocretin`` and ``dqb1_0602``. IDs are matched ignoring case, separators and zero
padding (the table's ``SUB001`` is the file ``Sub01``). A recording absent from the table keeps
``labels = {"cohort": …}`` without ``diagnosis`` (reported in the manifest, usable for staging only).

Channels (NSRR harmonised labels; single electrodes referenced to the recording reference):
EEG ``F3 F4 C3 C4 O1 O2`` re-referenced to the contralateral mastoid ``M2``/``M1`` when present
(DESIGN §3; ready-made ``C3-M2`` style labels are used first), otherwise kept as recorded; EOG
``E1``/``E2`` against ``M2``/``M1``; chin EMG ``chin`` (linked) or ``cchin_l``, else the bipolar
``lchin − cchin`` / ``rchin − lchin``. Rates differ by cohort (EEG 128–512 Hz). Some SSC headers carry
``NA`` instead of a start time; those files are read with an unknown start time.

Licence / access: NSRR data use agreement, https://sleepdata.org/datasets/mnc
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from preprocess.core.annotations import read_epoch_text, read_nsrr_xml
from preprocess.core.dataset import DatasetSpec, Record
from preprocess.core.dataset_helpers import find_near, id_key, pick_column, read_table
from preprocess.core.nsrr import eeg_vs_contralateral_mastoid

COHORTS = {
    "cnc": "Chinese narcolepsy cohort",
    "dhc": "Danish hypersomnia cohort",
    "fhc": "French hypersomnia cohort",
    "ihc": "Italian hypersomnia cohort",
    "khc": "Korean hypersomnia cohort",
    "ssc": "Stanford Sleep Cohort",
}
DIAGNOSES = ("non-narcolepsy control", "type 1 narcolepsy", "other hypersomnia")


CHANNEL_MAP = {
    **eeg_vs_contralateral_mastoid(raw=True, sites=("F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2")),
    "Chin": ["chin", "cchin_l", ("lchin", "cchin"), ("rchin", "lchin"), "rchin_c", "cchin", "lchin"],
}
_STA_CODES = {
    "dhc": {1: 0, 0: 4, -1: 1, -2: 2, -3: 3},
    "default": {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 7: -1},
}


def diagnosis_label(text: str) -> str:
    """Harmonised diagnosis from the table's wording (``T1 NARCOLEPSY`` → ``type 1 narcolepsy``)."""
    t = re.sub(r"[^a-z0-9]+", " ", str(text).lower()).strip()
    if "control" in t:
        return DIAGNOSES[0]
    if re.search(r"\b(t1|nt1|type 1|type i)\b", t) and "narco" in t:
        return DIAGNOSES[1]
    if "hypersomnia" in t or re.search(r"\b(t2|nt2|type 2|type ii)\b", t):
        return DIAGNOSES[2]
    return t


@functools.lru_cache(maxsize=8)
def _diagnosis_table(folder: str) -> dict[str, dict]:
    path = find_near(folder, ["cohorts_deid.xlsx", "cohorts_deid.csv", "*cohort*.xlsx", "*cohort*.csv"], levels=3)
    if path is None:
        return {}
    rows = read_table(path)
    if not rows:
        return {}
    col = {k: pick_column(rows[0], *names) for k, names in {
        "id": ("ID", "subject", "subject_id", "nsrrid"), "cohort": ("Cohort",),
        "diagnosis": ("Diagnosis", "Dx"), "hypocretin": ("CSF hypocretin-1", "CSF hypocretin", "hypocretin", "CSF"),
        "dqb1_0602": ("DQ0602", "DQB1*06:02", "DQB10602", "HLA"), "paper_label": ("Label",)}.items()}
    if col["id"] is None or col["diagnosis"] is None:
        return {}
    table = {}
    for row in rows:
        if not row.get(col["id"]):
            continue
        entry = {"diagnosis": diagnosis_label(row[col["diagnosis"]]), "diagnosis_raw": row[col["diagnosis"]]}
        for key in ("hypocretin", "dqb1_0602", "paper_label"):
            value = row.get(col[key] or "", "")
            if value not in ("", "NA", "N/A", "nan"):
                try:
                    entry[key] = float(value) if key == "hypocretin" else value
                except ValueError:
                    entry[key] = value
        table[id_key(row[col["id"]])] = entry
    return table


def _cohort_folder(src: Path, cohort: str) -> Path:
    if src.name.lower() == cohort:
        return src
    for cand in (src / cohort, src / cohort.upper(), src / "polysomnography" / cohort):
        if cand.is_dir():
            return cand
    hits = [p for p in src.rglob("*") if p.is_dir() and p.name.lower() == cohort]
    return min(hits, key=lambda p: len(p.parts)) if hits else src / cohort


def _finder(cohort: str):
    def find(src: Path) -> list[Record]:
        folder = _cohort_folder(Path(src), cohort)
        if not folder.is_dir():
            return []
        edfs = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".edf" and not p.name.startswith("."))
        nsrr = {p.stem[:-5].lower() for p in edfs if p.stem.lower().endswith("-nsrr")}
        table = _diagnosis_table(str(folder))
        records = []
        for edf in edfs:
            rid = edf.stem[:-5] if edf.stem.lower().endswith("-nsrr") else edf.stem
            if edf.stem == rid and rid.lower() in nsrr:
                continue  # the NSRR-harmonised copy of this recording is used instead
            labels = {"cohort": cohort.upper()} | table.get(id_key(rid), {})
            scoring = [edf.with_suffix(s) for s in (".xml", ".eannot")] + \
                      [edf.with_name(f"{rid}{s}") for s in (".xml", ".eannot", ".sta", ".STA")]
            annotation = next((p for p in scoring if p.exists()), None)
            subject = re.sub(r"_\d+$", "", rid) if cohort == "ssc" else rid  # ssc_<subject>_<visit>
            records.append(Record(id=rid, subject=subject, signal=edf, annotation=annotation, labels=labels))
        return records
    return find


def read_stages(record: Record, signal_start):
    path = record.annotation
    if path is None:
        return None
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        return read_nsrr_xml(path)
    if suffix == ".eannot":
        return read_epoch_text(path, mapping=None)
    codes = _STA_CODES["dhc" if record.labels.get("cohort") == "DHC" else "default"]
    return read_epoch_text(path, mapping=codes, column=-1)  # last field: '[epoch] stage'


def _spec(cohort: str) -> DatasetSpec:
    return DatasetSpec(
        name=f"mnc-{cohort}",
        description=f"MNC {cohort.upper()} ({COHORTS[cohort]}): narcolepsy diagnosis labels"
                    + (", stages" if cohort in ("cnc", "dhc", "ssc") else ", unscored"),
        layout=f"<src>/{cohort}/**/<id>-nsrr.edf [+ <id>-nsrr.xml] (+ cohorts_deid.xlsx in <src>)",
        url="https://sleepdata.org/datasets/mnc (NSRR data use agreement)",
        channel_map=CHANNEL_MAP,
        find=_finder(cohort),
        read_stages=read_stages,
        max_mismatch_epochs=None,
    )


SPECS = [_spec(c) for c in COHORTS]
