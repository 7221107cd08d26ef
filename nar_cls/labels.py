"""Subject labels: reading them, normalising diagnosis spellings, and mapping them to task classes.

A subject's label comes either from the ``labels`` attribute of its harmonized files (JSON,
copied into ``manifest.csv``; key chosen with ``--label-key``, default ``diagnosis``) or from a
CSV file with a ``subject`` column and a label column (``--labels-csv``; the column is
``--label-key`` when present, else ``label``).

Diagnosis text is normalised (lower case, every run of non-alphanumeric characters becomes one
space) and looked up in :data:`DIAGNOSIS_MAP`, which sends the spellings used by MNC, NSRR and
the literature to three groups:

======================  =====================================================================
group                   accepted spellings (after normalisation)
======================  =====================================================================
``control``             control, controls, non narcolepsy control, healthy, healthy control,
                        normal, hc, nc, ctrl
``NT1``                 nt1, t1, t1n, type 1 narcolepsy, t1 narcolepsy, narcolepsy type 1,
                        narcolepsy with cataplexy, narcolepsy 1
``other_hypersomnia``   other hypersomnia, hypersomnia, t2 ih, nt2 ih, nt2, t2, t2n,
                        type 2 narcolepsy, t2 narcolepsy, narcolepsy type 2,
                        narcolepsy without cataplexy, ih, idiopathic hypersomnia
======================  =====================================================================

A value not in the map leaves the subject out (with a warning listing the unknown values).
The ``custom`` task skips the map: its classes are the values given with ``--classes``.

Sleep-apnoea and depression tasks (the published LPSGM's APPLES recipes):

* ``osa``: the label is the subject's AHI (events/h; key ``ahi``), binned at ``ahi_cuts``: one cut
  (default 30, the reference's severe vs non-severe) gives ``AHI<30`` / ``AHI>=30``; the AASM cuts
  5 15 30 give ``none`` / ``mild`` / ``moderate`` / ``severe``
  (:func:`preprocess.core.subject_tables.ahi_class`).
* ``depression``: ``control`` vs ``depressed`` (key ``depression``; spellings in
  :data:`DEPRESSION_MAP`).

Both read their values from the files' ``labels``, a labels CSV, or the NSRR subject tables
(:mod:`preprocess.core.subject_tables`, joined by subject id at training time).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from preprocess.core.subject_tables import AHI_CLASSES, AHI_CUTS, ahi_class

GROUPS = ("control", "NT1", "other_hypersomnia")

_SPELLINGS = {
    "control": ["control", "controls", "non narcolepsy control", "non narcolepsy controls", "healthy",
                "healthy control", "healthy controls", "normal", "hc", "nc", "ctrl"],
    "NT1": ["nt1", "t1", "t1n", "type 1 narcolepsy", "t1 narcolepsy", "narcolepsy type 1",
            "narcolepsy with cataplexy", "narcolepsy 1", "type i narcolepsy", "narcolepsy type i"],
    "other_hypersomnia": ["other hypersomnia", "other hypersomnias", "hypersomnia", "t2 ih", "nt2 ih", "nt2",
                          "t2", "t2n", "type 2 narcolepsy", "t2 narcolepsy", "narcolepsy type 2",
                          "narcolepsy without cataplexy", "ih", "idiopathic hypersomnia",
                          "type ii narcolepsy", "narcolepsy type ii"],
}

#: Normalised diagnosis text → group (one of :data:`GROUPS`).
DIAGNOSIS_MAP: dict[str, str] = {s: g for g, names in _SPELLINGS.items() for s in names}


@dataclass(frozen=True)
class Task:
    """A classification task: class names and the class of each group.

    Attributes
    ----------
    name : str
        ``3class``, ``merge_NT1``, ``normal_vs_abnormal``, ``osa``, ``depression`` or ``custom``.
    classes : tuple of str
        Class names, in output order.
    group_to_class : dict
        Group (or, for ``custom``, normalised label) → class index.
    positive : int or None
        Class scored by the binary ROC AUC (None for more than two classes).
    ahi_cuts : tuple of float, optional
        ``osa``: AHI thresholds (events/h); the label is a number binned at them.
    label_key : str
        Default key of the subject value in the files' ``labels`` / a labels CSV.
    """

    name: str
    classes: tuple[str, ...]
    group_to_class: dict
    positive: int | None
    ahi_cuts: tuple[float, ...] | None = None
    label_key: str = "diagnosis"

    @property
    def n_classes(self) -> int:
        return len(self.classes)


_DEPRESSION_SPELLINGS = {
    "control": ["control", "controls", "healthy", "healthy control", "hc", "non depressed", "nondepressed",
                "not depressed", "no depression", "0"],
    "depressed": ["depressed", "depression", "mdd", "major depression", "major depressive disorder", "1"],
}
#: Normalised depression label text → ``control`` / ``depressed``.
DEPRESSION_MAP: dict[str, str] = {s: g for g, names in _DEPRESSION_SPELLINGS.items() for s in names}


def osa_task(cuts: Sequence[float] = (30.0,)) -> Task:
    """``osa`` task binned at ``cuts`` (events/h, increasing): ``AHI<c`` / ``AHI>=c`` for one cut,
    the AASM class names for 5 15 30, ``AHI[a,b)`` otherwise.

    Examples
    --------
    >>> osa_task().classes, osa_task((5, 15, 30)).classes
    (('AHI<30', 'AHI>=30'), ('none', 'mild', 'moderate', 'severe'))
    """
    cuts = tuple(float(c) for c in cuts)
    if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:])) or cuts[0] <= 0:
        raise ValueError(f"--ahi-cuts must be positive and increasing, got {list(cuts)}")
    if cuts == AHI_CUTS:
        classes = AHI_CLASSES
    elif len(cuts) == 1:
        classes = (f"AHI<{cuts[0]:g}", f"AHI>={cuts[0]:g}")
    else:
        edges = (0.0, *cuts, math.inf)
        classes = tuple(f"AHI[{a:g},{b:g})" for a, b in zip(edges, edges[1:]))
    return Task("osa", classes, {}, 1 if len(classes) == 2 else None, cuts, "ahi")


TASKS = {
    "3class": Task("3class", GROUPS, {g: i for i, g in enumerate(GROUPS)}, None),
    "merge_NT1": Task("merge_NT1", ("non_NT1", "NT1"), {"control": 0, "NT1": 1, "other_hypersomnia": 0}, 1),
    "normal_vs_abnormal": Task("normal_vs_abnormal", ("control", "abnormal"),
                               {"control": 0, "NT1": 1, "other_hypersomnia": 1}, 1),
    "osa": osa_task(),
    "depression": Task("depression", ("control", "depressed"), {"control": 0, "depressed": 1}, 1,
                       label_key="depression"),
}


def normalize_text(value: object) -> str:
    """Lower case, runs of non-alphanumeric characters → one space, stripped.

    Examples
    --------
    >>> normalize_text("  Non-Narcolepsy_Control ")
    'non narcolepsy control'
    >>> normalize_text("T2/IH")
    't2 ih'
    """
    return re.sub(r"[^0-9a-z]+", " ", str(value).lower()).strip()


def normalize_diagnosis(value: object) -> str | None:
    """Group of a diagnosis text (``control``, ``NT1``, ``other_hypersomnia``) or None if unknown.

    Examples
    --------
    >>> normalize_diagnosis("type 1 narcolepsy"), normalize_diagnosis("T2/IH"), normalize_diagnosis("x")
    ('NT1', 'other_hypersomnia', None)
    """
    if value is None:
        return None
    return DIAGNOSIS_MAP.get(normalize_text(value))


def get_task(name: str, classes: Sequence[str] | None = None, ahi_cuts: Sequence[float] | None = None) -> Task:
    """The task ``name``; ``custom`` needs ``classes`` (raw label values, compared normalised).

    Parameters
    ----------
    name : str
        Key of :data:`TASKS` or ``custom``.
    classes : sequence of str, optional
        For ``custom``: the class names in output order; the last one is the positive class of
        the binary AUC when there are two.
    ahi_cuts : sequence of float, optional
        For ``osa``: AHI thresholds (default 30: severe vs non-severe).
    """
    if name == "osa":
        return osa_task(ahi_cuts or (30.0,))
    if name == "custom":
        if not classes or len(classes) < 2:
            raise ValueError("--task custom needs --classes with at least two label values")
        keys = [normalize_text(c) for c in classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"--classes are not distinct after normalisation: {list(classes)}")
        return Task("custom", tuple(classes), {k: i for i, k in enumerate(keys)},
                    1 if len(classes) == 2 else None)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS) + ['custom']}")
    return TASKS[name]


def label_to_class(value: object, task: Task) -> int | None:
    """Class index of a raw label value for ``task`` (None: not part of the task)."""
    if task.ahi_cuts is not None:
        try:
            return ahi_class(float(value), task.ahi_cuts)
        except (TypeError, ValueError):
            return None
    if task.name == "custom":
        key = normalize_text(value)
    elif task.name == "depression":
        key = None if value is None else DEPRESSION_MAP.get(normalize_text(value))
    else:
        key = normalize_diagnosis(value)
    return None if key is None else task.group_to_class.get(key)


def read_labels_csv(path: str | Path, label_key: str = "diagnosis") -> dict[str, str]:
    """``subject → label`` from a CSV with a ``subject`` column and a ``label_key`` (or ``label``) column.

    Subjects may be written ``SUBJECT`` or ``DATASET/SUBJECT``.
    """
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        column = label_key if label_key in fields else "label" if "label" in fields else None
        if "subject" not in fields or column is None:
            raise ValueError(f"{path}: needs columns 'subject' and '{label_key}' (or 'label'), has {fields}")
        return {row["subject"].strip(): row[column] for row in reader if row[column] not in (None, "")}


def subject_key(row: dict) -> str:
    """Unique subject id across datasets: ``DATASET/SUBJECT``."""
    return f"{row.get('dataset', '')}/{row['subject']}"


def assign_labels(rows: Sequence[dict], task: Task, label_key: str | None = None,
                  labels_csv: dict[str, str] | None = None, table_values: dict[int, dict] | None = None,
                  excluded: list | None = None) -> tuple[dict[str, int], dict[str, str]]:
    """Class of every subject of ``rows`` (manifest rows with ``dataset``, ``subject``, ``labels``).

    Parameters
    ----------
    rows : sequence of dict
        One per recording.
    task : Task
    label_key : str, optional
        Key of the ``labels`` dict / table values (default: the task's, e.g. ``ahi``).
    labels_csv : dict, optional
        From :func:`read_labels_csv`; looked up by ``DATASET/SUBJECT`` then ``SUBJECT``. Wins over
        the tables and the files.
    table_values : dict, optional
        Row index → subject-table values (:func:`preprocess.core.subject_tables.join`); when
        given, a row without table values has no label (it is never read from elsewhere).
    excluded : list, optional
        Receives one ``{"subject", "reason"}`` per subject left out (written as ``excluded.csv``).

    Returns
    -------
    tuple of dict
        ``(classes, raw)``: subject key → class index, and subject key → raw label text, for the
        subjects that have a label mapping to a class of the task. Subjects without a label, with
        an unknown label, outside the task, or whose recordings disagree are left out with a
        warning (and listed in ``excluded``).
    """
    label_key = label_key or task.label_key
    out = excluded if excluded is not None else []
    raw_by_subject: dict[str, set[str]] = defaultdict(set)
    no_label: dict[str, int] = defaultdict(int)
    for i, row in enumerate(rows):
        key = subject_key(row)
        if labels_csv is not None:
            value = labels_csv.get(key, labels_csv.get(str(row["subject"])))
        elif table_values is not None:
            value = (table_values.get(i) or {}).get(label_key)
        else:
            value = (row.get("labels") or {}).get(label_key)
        if value is None or value == "":
            no_label[key] += 1
            continue
        raw_by_subject[key].add(str(value))
    classes, raw, unknown, conflict = {}, {}, Counter(), []
    for key, values in sorted(raw_by_subject.items()):
        mapped = {label_to_class(v, task) for v in values}
        if len(mapped) > 1:
            conflict.append(key)
            out.append({"subject": key, "reason": f"recordings disagree: {sorted(values)}"})
            continue
        (c,) = mapped
        if c is None:
            unknown.update(values)
            out.append({"subject": key, "reason": f"label {sorted(values)[0]!r} is not part of task {task.name}"})
            continue
        classes[key], raw[key] = c, sorted(values)[0]
    unlabelled = sorted(k for k in no_label if k not in raw_by_subject)
    where = ("row in the labels CSV" if labels_csv is not None else f"'{label_key}' in the subject tables"
             if table_values is not None else f"'{label_key}' label")
    for key in unlabelled:
        out.append({"subject": key, "reason": f"no {where}"})
    if no_label:
        warnings.warn(f"{sum(no_label.values())} recordings ({len(unlabelled)} subjects) have no {where}: "
                      f"left out, listed in excluded.csv: {unlabelled[:5]}", stacklevel=2)
    if unknown:
        warnings.warn(f"labels not part of task {task.name} (subjects left out): {dict(unknown)}", stacklevel=2)
    if conflict:
        warnings.warn(f"{len(conflict)} subjects have recordings with different labels (left out): "
                      f"{conflict[:5]}", stacklevel=2)
    return classes, raw
