"""Subject-level labels from the NSRR subject tables (AHI, depression items), per dataset.

NSRR publishes one CSV per dataset and visit besides the signals (``datasets/`` folder of each
release). Two layouts are read here:

* the **harmonized** table ``<dataset>-harmonized-dataset-<version>.csv``: the same variable names in
  every dataset (``nsrr_ahi_hp3r_aasm15`` etc.), made by NSRR's ``prepare-<dataset>-for-nsrr.sas``;
* the dataset's own **source** table (``shhs1-dataset-<v>.csv``, ``mros-visit1-dataset-<v>.csv``,
  ``apples-dataset-<v>.csv``, ...), where the AHI has the study's variable name.

AHI variables (events per hour of sleep) and where each name comes from:

=========  ===================  ===========================  ==============================================
dataset    id column            AHI column tried, in order   source of the names
=========  ===================  ===========================  ==============================================
apples     ``fileid`` (the      ``nsrr_ahi_chicago1999``     apples-harmonized-dataset-0.1.0.csv as read by
           EDF id), ``nsrrid``                               public APPLES analyses (``visitn``, ``fileid``)
shhs       ``nsrrid``           ``nsrr_ahi_hp3r_aasm15``,    prepare-shhs-for-nsrr.sas: hp3u = ``ahi_a0h3``,
                                ``ahi_a0h3a``, ``ahi_a0h3``  hp3r_aasm15 = ``ahi_a0h3a``, hp4u_aasm15 =
                                ``nsrr_ahi_hp4u_aasm15``,    ``ahi_a0h4``, hp4r = ``ahi_a0h4a``
                                ``ahi_a0h4``
cfs        ``nsrrid``           same names as SHHS           sleepdata.org/datasets/cfs/variables/ahi_a0h3
                                                             ("nsrr_ahi_hp3u ... :ahi_a0h3: at Visit 5")
ccshs      ``nsrrid``           same names as SHHS           prepare-ccshs-for-nsrr.sas (same mapping)
mesa       ``mesaid``/``nsrrid`` same names as SHHS          NSRR harmonized variables (hp3r_aasm15, ...)
mros       ``nsrrid``           ``nsrr_ahi_hp3r_aasm15``,    prepare-mros-for-nsrr.sas: hp3u = ``poahi3``,
                                ``poahi3a``, ``poahi3``,     hp3r_aasm15 = ``poahi3a``, hp4u_aasm15 =
                                ``nsrr_ahi_hp4u_aasm15``,    ``poahi4``, hp4r = ``poahi4a``
                                ``poahi4``
=========  ===================  ===========================  ==============================================

The default is the AASM 2015 *recommended* hypopnea rule (≥ 30 % flow reduction with ≥ 3 %
desaturation or an arousal: ``nsrr_ahi_hp3r_aasm15``); ``ahi_column=`` picks another one (e.g.
``nsrr_ahi_hp4u_aasm15``, the ≥ 4 % "acceptable" rule). Severity classes follow the AASM
thresholds (Berry et al., AASM Manual; ICSD-3): none < 5 ≤ mild < 15 ≤ moderate < 30 ≤ severe
events/h (:func:`ahi_class`).

APPLES depression (source table ``apples-dataset-0.1.0.csv``, keyed ``appleid`` = harmonized
``nsrrid``, baseline ``visitn == 1``): ``depressionmedhxhp`` (medical history: depression, 1/0),
``hamdtotalscore`` (17-item Hamilton Depression Rating Scale) and ``bditotalscore`` (Beck
Depression Inventory). The published LPSGM labels combine these three (its paper's supplementary
methods, not reproduced here); :func:`depression_label` uses the usual severity cut-offs instead:
HAM-D ≥ 8 is at least mild depression (Zimmerman et al. 2013, J Affect Disord 150:384), BDI-II ≥ 14
is at least mild (Beck et al. 1996 manual). ``depressed`` = history 1 and HAM-D ≥ 8 or BDI ≥ 14;
``control`` = history 0, HAM-D ≤ 7 and BDI ≤ 13; anything else (disagreeing or missing items) has
no label and is reported.

Recordings are joined to table rows by subject id (:func:`join`): ids are compared without case,
``<dataset>-`` prefixes and leading zeros (``mesa-sleep-0001`` ↔ ``mesaid`` 1, ``aa0001`` ↔
``AA0001``), and by visit when both sides have one. A recording whose subject is not in the table
is returned in ``missing`` with the reason, never given a class.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

#: AASM AHI severity thresholds, events per hour of sleep: none / mild / moderate / severe.
AHI_CUTS = (5.0, 15.0, 30.0)
AHI_CLASSES = ("none", "mild", "moderate", "severe")

_SHHS_LIKE = ("nsrr_ahi_hp3r_aasm15", "ahi_a0h3a", "ahi_a0h3", "nsrr_ahi_hp3u",
              "nsrr_ahi_hp4u_aasm15", "ahi_a0h4", "nsrr_ahi_hp4r", "ahi_a0h4a")


@dataclass(frozen=True)
class TableSpec:
    """Column names of one dataset's subject tables.

    Attributes
    ----------
    ids : tuple of str
        Subject id columns, first present wins.
    ahi : tuple of str
        AHI columns (events/h), first present wins.
    visit : tuple of str
        Visit columns (optional in the table).
    """

    ids: tuple[str, ...]
    ahi: tuple[str, ...]
    visit: tuple[str, ...] = ("visitn", "visitnumber", "visit")


SPECS: dict[str, TableSpec] = {
    "apples": TableSpec(("fileid", "nsrrid"), ("nsrr_ahi_chicago1999", "nsrr_ahi_hp3r_aasm15", "ahi")),
    "shhs": TableSpec(("nsrrid",), _SHHS_LIKE),
    "cfs": TableSpec(("nsrrid",), _SHHS_LIKE),
    "ccshs": TableSpec(("nsrrid",), _SHHS_LIKE),
    "mesa": TableSpec(("mesaid", "nsrrid"), _SHHS_LIKE),
    "mros": TableSpec(("nsrrid",), ("nsrr_ahi_hp3r_aasm15", "poahi3a", "poahi3", "nsrr_ahi_hp3u",
                                    "nsrr_ahi_hp4u_aasm15", "poahi4", "nsrr_ahi_hp4r", "poahi4a")),
}

#: APPLES depression items (source table) and the cut-offs of :func:`depression_label`.
APPLES_DEPRESSION = {"id": "appleid", "history": "depressionmedhxhp", "hamd": "hamdtotalscore",
                     "bdi": "bditotalscore", "baseline_visit": 1}
HAMD_MIN_DEPRESSED, BDI_MIN_DEPRESSED = 8.0, 14.0


def _spec(dataset: str) -> TableSpec:
    if dataset not in SPECS:
        raise ValueError(f"no subject-table reader for dataset {dataset!r}; known: {sorted(SPECS)}")
    return SPECS[dataset]


def normalize_id(value: object) -> str:
    """Comparable subject id: lower case, ``<dataset>-...-`` prefix and leading zeros removed.

    Examples
    --------
    >>> normalize_id("mesa-sleep-0001"), normalize_id(1), normalize_id("AA0001"), normalize_id("apples-140001")
    ('1', '1', 'aa0001', '140001')
    """
    text = str(value).strip().lower()
    if text.endswith(".0") and text[:-2].isdigit():  # pandas-style floats in a CSV
        text = text[:-2]
    text = text.rsplit("-", 1)[-1]
    return (text.lstrip("0") or "0") if text.isdigit() else text


def _number(value: object) -> float | None:
    """A float, or None for empty / NSRR missing codes (``.``, ``M``, ``NA``) / non-numbers."""
    try:
        x = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _visit(value: object) -> int | None:
    x = _number(value)
    return None if x is None else int(x)


def _read_csv(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return [c.strip() for c in (reader.fieldnames or [])], rows


def _first(columns: Sequence[str], wanted: Iterable[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[w.lower()] for w in wanted if w.lower() in lower), None)


@dataclass
class SubjectTable:
    """Subject values of one dataset: ``values[(id, visit)] = {"ahi": ..., "depression": ...}``.

    ``visit`` is None when the table has no visit column. ``source`` names the columns used.
    """

    dataset: str
    values: dict[tuple[str, int | None], dict] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    def lookup(self, subject: object, visit: int | None = None) -> tuple[dict | None, str]:
        """``(values, "")`` for a subject (and visit), or ``(None, reason)``."""
        sid = normalize_id(subject)
        if (sid, visit) in self.values:
            return self.values[(sid, visit)], ""
        if (sid, None) in self.values:
            return self.values[(sid, None)], ""
        rows = [k for k in self.values if k[0] == sid]
        if not rows:
            return None, f"subject {subject} not in the {self.dataset} table"
        if len(rows) == 1 and visit is None:
            return self.values[rows[0]], ""
        return None, (f"subject {subject}: visit {visit} not in the {self.dataset} table "
                      f"(visits {sorted(str(k[1]) for k in rows)})")


def read_ahi_table(dataset: str, path: str | os.PathLike, ahi_column: str | None = None) -> SubjectTable:
    """AHI per subject (and visit) from an NSRR subject table.

    Parameters
    ----------
    dataset : str
        Key of :data:`SPECS` (``apples``, ``shhs``, ``cfs``, ``ccshs``, ``mesa``, ``mros``).
    path : path-like
        The CSV (harmonized or source layout).
    ahi_column : str, optional
        Column to use instead of the first of ``SPECS[dataset].ahi`` present.

    Returns
    -------
    SubjectTable
        ``values[(id, visit)]["ahi"]`` (float, or None where the table has no value).

    Raises
    ------
    ValueError
        Unknown dataset, or a table without an id or AHI column (the message names the file).
    """
    spec = _spec(dataset)
    columns, rows = _read_csv(path)
    id_col = _first(columns, spec.ids)
    ahi_col = _first(columns, [ahi_column] if ahi_column else spec.ahi)
    if id_col is None or ahi_col is None:
        want = f"one of {list(spec.ids)} and " + (repr(ahi_column) if ahi_column else f"one of {list(spec.ahi)}")
        raise ValueError(f"{path}: not a {dataset} subject table (needs {want})")
    visit_col = _first(columns, spec.visit)
    table = SubjectTable(dataset, source={"file": Path(path).name, "id": id_col, "ahi": ahi_col, "visit": visit_col})
    for row in rows:
        if not str(row.get(id_col) or "").strip():
            continue
        key = (normalize_id(row[id_col]), _visit(row[visit_col]) if visit_col else None)
        table.values.setdefault(key, {})["ahi"] = _number(row.get(ahi_col))
    return table


def depression_label(history: object, hamd: object, bdi: object) -> str | None:
    """``depressed``, ``control`` or None (items disagree or are missing).

    Examples
    --------
    >>> depression_label(1, 12, 20), depression_label(0, 3, 5), depression_label(0, 12, 5), depression_label(1, None, None)
    ('depressed', 'control', None, None)
    """
    h, d, b = _number(history), _number(hamd), _number(bdi)
    if h is None or (d is None and b is None):
        return None
    high = (d is not None and d >= HAMD_MIN_DEPRESSED) or (b is not None and b >= BDI_MIN_DEPRESSED)
    low = (d is None or d < HAMD_MIN_DEPRESSED) and (b is None or b < BDI_MIN_DEPRESSED)
    if h == 1 and high:
        return "depressed"
    if h == 0 and low:
        return "control"
    return None


def read_apples(harmonized: str | os.PathLike, source: str | os.PathLike | None = None,
                ahi_column: str | None = None) -> SubjectTable:
    """APPLES: AHI from the harmonized table, depression items from the source table.

    The recordings' subject is the ``fileid`` of the diagnostic PSG; the harmonized table links
    ``fileid`` to ``nsrrid``, and the source table's baseline row (``visitn`` 1) of ``appleid`` =
    ``nsrrid`` holds the questionnaires. Values: ``ahi``, ``depression`` (from
    :func:`depression_label`, None when undecided), ``hamd``, ``bdi``, ``depression_history``.
    """
    columns, rows = _read_csv(harmonized)
    for need in ("fileid", "nsrrid"):
        if _first(columns, [need]) is None:
            raise ValueError(f"{harmonized}: not an APPLES harmonized table (no '{need}' column)")
    ahi_col = _first(columns, [ahi_column] if ahi_column else SPECS["apples"].ahi)
    if ahi_col is None:
        raise ValueError(f"{harmonized}: no AHI column (tried {list(SPECS['apples'].ahi)})")
    fid, nid = _first(columns, ["fileid"]), _first(columns, ["nsrrid"])
    items: dict[str, dict] = {}
    if source is not None:
        s_cols, s_rows = _read_csv(source)
        names = APPLES_DEPRESSION
        cols = {k: _first(s_cols, [names[k]]) for k in ("id", "history", "hamd", "bdi")}
        missing = [names[k] for k, c in cols.items() if c is None]
        if missing:
            raise ValueError(f"{source}: not an APPLES source table (missing columns {missing})")
        s_visit = _first(s_cols, ["visitn"])
        for r in s_rows:
            if s_visit and _visit(r[s_visit]) not in (None, names["baseline_visit"]):
                continue
            items[normalize_id(r[cols["id"]])] = {
                "depression_history": _number(r[cols["history"]]), "hamd": _number(r[cols["hamd"]]),
                "bdi": _number(r[cols["bdi"]]),
                "depression": depression_label(r[cols["history"]], r[cols["hamd"]], r[cols["bdi"]])}
    table = SubjectTable("apples", source={"file": Path(harmonized).name, "id": fid, "ahi": ahi_col,
                                           "depression_file": Path(source).name if source else None})
    for r in rows:
        if not str(r.get(fid) or "").strip():  # visits without a diagnostic PSG
            continue
        values = {"ahi": _number(r.get(ahi_col)), "nsrrid": str(r[nid]).strip()}
        if source is not None:
            values.update(items.get(normalize_id(r[nid]), {"depression": None}))
        table.values[(normalize_id(r[fid]), None)] = values
    return table


def read_subject_table(dataset: str, paths: Sequence[str | os.PathLike], ahi_column: str | None = None) -> SubjectTable:
    """The table reader of ``dataset``: APPLES takes ``[harmonized, source]``, the others one file."""
    _spec(dataset)
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: subject table not found")
    if dataset == "apples":
        return read_apples(paths[0], paths[1] if len(paths) > 1 else None, ahi_column)
    if len(paths) != 1:
        raise ValueError(f"{dataset}: give one subject table, got {len(paths)}")
    return read_ahi_table(dataset, paths[0], ahi_column)


def ahi_class(ahi: float | None, cuts: Sequence[float] = AHI_CUTS) -> int | None:
    """Class index of an AHI: the number of cuts it reaches (``ahi >= cut``); None for None.

    Examples
    --------
    >>> [ahi_class(a) for a in (0, 4.9, 5, 14.9, 15, 29.9, 30, 80)]
    [0, 0, 1, 1, 2, 2, 3, 3]
    >>> ahi_class(31, (30,)), ahi_class(29, (30,))
    (1, 0)
    """
    if ahi is None or (isinstance(ahi, float) and math.isnan(ahi)):
        return None
    return int(sum(float(ahi) >= c for c in cuts))


def dataset_key(name: str) -> str | None:
    """The :data:`SPECS` key of a harmonized dataset folder (``shhs``, ``SIM-APPLES`` → ``apples``)."""
    low = name.lower()
    return next((k for k in SPECS if re.search(rf"(^|[^a-z]){k}($|[^a-z])", low)), None)


def join(rows: Sequence[dict], tables: dict[str, SubjectTable]) -> tuple[dict[int, dict], list[dict]]:
    """Table values of each recording row (manifest rows: ``dataset``, ``subject``, ``labels``).

    Returns
    -------
    tuple
        ``(values, missing)``: row index → table values; and one ``{"dataset", "subject",
        "recording", "reason"}`` per recording that found no row (dataset without a table,
        subject or visit absent).
    """
    values, missing = {}, []
    for i, row in enumerate(rows):
        ds = str(row.get("dataset", ""))
        table = tables.get(ds) or tables.get(dataset_key(ds) or "")
        if table is None:
            reason = f"no subject table given for dataset {ds}"
            found = None
        else:
            visit = (row.get("labels") or {}).get("visit")
            found, reason = table.lookup(row["subject"], _visit(visit) if visit is not None else None)
        if found is None:
            missing.append({"dataset": ds, "subject": row["subject"], "recording": row.get("recording", ""),
                            "reason": reason})
        else:
            values[i] = found
    return values, missing
