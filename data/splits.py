"""Subject-wise splits of manifest rows: train/val(/test) per dataset, and k-fold.

A subject may have several recordings (visits); every split keeps all recordings of a subject
on the same side. Splits are deterministic functions of the rows and the seed: the subjects of
each dataset are sorted, then shuffled with a generator seeded by ``(seed, crc32(dataset))``, so
adding a dataset does not reshuffle the others.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Sequence

import numpy as np


def _subjects_by_dataset(rows: Sequence[dict]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        groups[r.get("dataset", "")].add(str(r["subject"]))
    return {d: sorted(s) for d, s in sorted(groups.items())}


def _shuffled(subjects: list[str], dataset: str, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, zlib.crc32(dataset.encode())])
    return [subjects[i] for i in rng.permutation(len(subjects))]


def _n_held(n_subjects: int, fraction: float) -> int:
    """Subjects held out for a fraction: rounded, at least 1 when fraction > 0 and n >= 2."""
    if fraction <= 0 or n_subjects < 2:
        return 0
    return max(1, int(round(fraction * n_subjects)))


def split_by_subject(rows: Sequence[dict], val_fraction: float = 0.1, test_fraction: float = 0.0,
                     seed: int = 0) -> dict[str, list[dict]]:
    """Split recordings into train / val / test by subject, separately for each dataset.

    Parameters
    ----------
    rows : sequence of dict
        Manifest rows with ``dataset`` and ``subject`` keys.
    val_fraction, test_fraction : float
        Fraction of each dataset's subjects held out for validation / test. A dataset with at
        least two subjects gets at least one validation (and test) subject when the fraction is
        positive, and always keeps at least one training subject.
    seed : int
        Split seed.

    Returns
    -------
    dict
        ``{"train": rows, "val": rows, "test": rows}``, each in the input order.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"invalid fractions val={val_fraction} test={test_fraction}")
    side: dict[tuple[str, str], str] = {}
    for dataset, subjects in _subjects_by_dataset(rows).items():
        order = _shuffled(subjects, dataset, seed)
        n_test = _n_held(len(order), test_fraction)
        n_val = _n_held(len(order), val_fraction)
        while n_test + n_val >= len(order) and (n_test or n_val):  # keep a training subject
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        for i, s in enumerate(order):
            side[dataset, s] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for r in rows:
        out[side[r.get("dataset", ""), str(r["subject"])]].append(r)
    return out


def kfold_by_subject(rows: Sequence[dict], folds: int, fold: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Subject-wise k-fold split of (usually one dataset's) recordings.

    Subjects are sorted, shuffled with the seed and dealt into ``folds`` nearly equal groups
    (``numpy.array_split``); fold ``fold`` is held out. Over ``fold = 0..folds-1`` every subject is
    held out exactly once.

    Parameters
    ----------
    rows : sequence of dict
        Manifest rows with a ``subject`` key (and ``dataset``; subjects of different datasets
        are distinct).
    folds : int
        Number of folds K (>= 2, at most the number of subjects).
    fold : int
        Held-out fold, ``0 <= fold < folds``.
    seed : int
        Shuffle seed.

    Returns
    -------
    tuple of list
        ``(train_rows, test_rows)``.
    """
    keys = sorted({(r.get("dataset", ""), str(r["subject"])) for r in rows})
    if folds < 2:
        raise ValueError("folds must be >= 2")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}), got {fold}")
    if len(keys) < folds:
        raise ValueError(f"{len(keys)} subjects cannot be split into {folds} folds")
    rng = np.random.default_rng([seed, zlib.crc32(b"kfold")])
    order = [keys[i] for i in rng.permutation(len(keys))]
    held = {order[i] for i in np.array_split(np.arange(len(order)), folds)[fold]}
    train = [r for r in rows if (r.get("dataset", ""), str(r["subject"])) not in held]
    test = [r for r in rows if (r.get("dataset", ""), str(r["subject"])) in held]
    return train, test
