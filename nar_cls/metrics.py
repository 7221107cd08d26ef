"""Subject aggregation of window predictions, and the mean over folds of their metrics.

The metrics themselves (:func:`classification_metrics`: accuracy, balanced accuracy, κ, F1,
confusion, ROC AUC) live in :mod:`engine.metrics`, shared with sleep staging; they are
re-exported here for ``nar_cls`` callers.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from engine.metrics import classification_metrics, roc_auc

__all__ = ["AGGREGATIONS", "aggregate_subjects", "classification_metrics", "roc_auc", "summarize_folds"]

AGGREGATIONS = ("mean", "vote")


def aggregate_subjects(prob: np.ndarray, win_subject: np.ndarray, how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Subject probabilities from window probabilities.

    Parameters
    ----------
    prob : ndarray, shape (n_windows, n_classes)
        Window probabilities.
    win_subject : ndarray of int
        Subject index of each window (all recordings of a subject pooled).
    how : {"mean", "vote"}
        ``mean``: average of the window probabilities; ``vote``: share of windows whose argmax is
        each class (majority vote; the shares also serve as scores for the AUC).

    Returns
    -------
    tuple of ndarray
        ``(subjects, subject_prob)``: sorted unique subject indices and their ``(n, n_classes)``
        probabilities.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    >>> aggregate_subjects(p, np.array([0, 0, 1]))[1].round(2).tolist()
    [[0.65, 0.35], [0.2, 0.8]]
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown subject aggregation {how!r}; expected one of {AGGREGATIONS}")
    prob = np.asarray(prob, dtype=np.float64)
    if how == "vote":
        prob = np.eye(prob.shape[1])[prob.argmax(axis=1)]
    subjects, inverse = np.unique(win_subject, return_inverse=True)
    sums = np.zeros((len(subjects), prob.shape[1]))
    np.add.at(sums, inverse, prob)
    return subjects, sums / np.bincount(inverse)[:, None]


def summarize_folds(per_fold: Sequence[dict], keys: Sequence[str] = ("accuracy", "balanced_accuracy", "kappa",
                                                                     "macro_f1", "roc_auc")) -> dict:
    """Mean and standard deviation over folds of the scalar metrics (NaN folds ignored)."""
    out = {}
    for k in keys:
        vals = np.array([m[k] for m in per_fold if m.get(k) is not None and not math.isnan(m[k])])
        out[k] = {"mean": float(vals.mean()) if len(vals) else math.nan,
                  "std": float(vals.std(ddof=0)) if len(vals) else math.nan, "n_folds": int(len(vals))}
    return out
