"""Finding harmonized recordings and summarising them from the per-dataset manifests.

Everything here works from ``manifest.csv`` (one row per recording, DESIGN §6), so listing,
splitting and class weighting never open the HDF5 files themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from preprocess.core.hdf5 import MANIFEST, is_valid, manifest_row, read_info, read_manifest
from preprocess.core.stages import STAGE_NAMES


def _rows_from_files(dataset_dir: Path) -> list[dict]:
    """Manifest rows built in memory from the files (fallback when ``manifest.csv`` is missing)."""
    rows = []
    for p in sorted(dataset_dir.glob("*.h5")):
        if is_valid(p):
            info = read_info(p)
            row = manifest_row(info)
            row["channels"] = row["channels"].split()
            row["labels"] = info.labels
            row["path"] = str(p)
            rows.append(row)
    return rows


def load_recordings(roots: str | os.PathLike | Sequence[str | os.PathLike],
                    datasets: Iterable[str] | None = None, scored_only: bool = True) -> list[dict]:
    """List the recordings below one or more harmonized roots.

    Parameters
    ----------
    roots : path or sequence of paths
        Harmonized roots; each holds one folder per dataset (``<root>/<DATASET>/*.h5``). A path
        that is itself a dataset folder (it contains ``.h5`` files) is accepted too.
    datasets : iterable of str, optional
        Keep only these dataset folders (case-insensitive names).
    scored_only : bool
        Drop recordings without stages (e.g. MNC), which cannot be used for staging.

    Returns
    -------
    list of dict
        Manifest rows (see :func:`preprocess.core.hdf5.read_manifest`) with an added ``dataset``
        key (the folder name), sorted by dataset then recording.

    Raises
    ------
    FileNotFoundError
        A root does not exist, or nothing was found.
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    wanted = {d.lower() for d in datasets} if datasets else None
    rows: list[dict] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"harmonized root not found: {root}")
        dirs = [root] if any(root.glob("*.h5")) else [d for d in sorted(root.iterdir()) if d.is_dir()]
        for d in dirs:
            if wanted is not None and d.name.lower() not in wanted:
                continue
            if (d / MANIFEST).exists():
                found = read_manifest(d)
            elif any(d.glob("*.h5")):
                found = _rows_from_files(d)
            else:
                continue
            for row in found:
                if scored_only and not int(row["scored"]):
                    continue
                rows.append({**row, "dataset": d.name})
    if not rows:
        what = f" for datasets {sorted(wanted)}" if wanted else ""
        raise FileNotFoundError(f"no scored harmonized recordings found under {list(map(str, roots))}{what}")
    return sorted(rows, key=lambda r: (r["dataset"], r["recording"]))


def stage_counts(rows: Sequence[dict]) -> np.ndarray:
    """Total number of epochs per stage (W, N1, N2, N3, REM) over manifest rows."""
    return np.array([sum(int(r[f"n_{s}"]) for r in rows) for s in STAGE_NAMES], dtype=np.int64)


def class_weights(rows: Sequence[dict], mode: str = "inverse") -> np.ndarray:
    """Cross-entropy class weights from the stage counts of the training manifests.

    Parameters
    ----------
    rows : sequence of dict
        Manifest rows of the training recordings.
    mode : {"inverse", "sqrt", "none"}
        ``inverse``: ``w_c ∝ 1 / n_c``; ``sqrt``: ``w_c ∝ 1 / sqrt(n_c)``; ``none``: all ones.

    Returns
    -------
    ndarray, shape (5,)
        float32 weights normalised to mean 1 over the classes present; 0 for absent classes.

    Examples
    --------
    Counts (W, N1, N2, N3, REM) = (100, 25, 100, 50, 25) give inverse weights proportional to
    (1, 4, 1, 2, 4), i.e. (0.4167, 1.6667, 0.4167, 0.8333, 1.6667) after normalisation.
    """
    counts = stage_counts(rows)
    if not (counts > 0).any():
        raise ValueError("no scored epochs in the training manifests")
    if mode not in CLASS_WEIGHT_MODES:
        raise ValueError(f"unknown class-weight mode {mode!r}; expected inverse, sqrt or none")
    return weights_from_counts(counts, power=CLASS_WEIGHT_MODES[mode], scale="mean")


CLASS_WEIGHT_MODES = {"inverse": 1.0, "sqrt": 0.5, "none": 0.0}


def weights_from_counts(counts, power: float = 1.0, scale: str = "mean") -> np.ndarray:
    """Class weights ``w_c ∝ n_c ** -power`` from class counts; 0 for a class with no example.

    The one implementation behind staging's :func:`class_weights` (epoch counts) and
    ``nar_cls.splits.class_weights`` (subject counts); they differ only in ``scale``.

    Parameters
    ----------
    counts : array-like of int
        Examples per class.
    power : float
        1 = inverse frequency, 0.5 = inverse square root, 0 = all present classes equal.
    scale : {"mean", "balanced"}
        ``mean``: weights averaging 1 over the present classes. ``balanced``: ``w_c = N / (K n_c)``
        (scikit-learn's ``"balanced"``; ``power`` must be 1), which averages 1 only when the
        classes are balanced.

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> weights_from_counts([3, 1]).tolist(), weights_from_counts([3, 1], scale="balanced").tolist()
    ([0.5, 1.5], [0.6666666865348816, 2.0])
    """
    counts = np.asarray(counts).astype(np.float64)
    present = counts > 0
    w = np.zeros(len(counts))
    if scale == "balanced":
        if power != 1.0:
            raise ValueError("scale='balanced' is defined for power 1 only")
        w[present] = counts.sum() / (present.sum() * counts[present])
    elif scale == "mean":
        w[present] = 1.0 if power == 0 else 1.0 / counts[present] ** power
        w = w / w[present].mean()
    else:
        raise ValueError(f"unknown scale {scale!r}; expected 'mean' or 'balanced'")
    return w.astype(np.float32)
