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

__all__ = ["AGGREGATIONS", "aggregate_subjects", "calibration", "classification_metrics", "roc_auc", "summarize_folds"]

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


def calibration(y: np.ndarray, prob: np.ndarray, positive: int | None, threshold: float = 0.5,
                n_bins: int = 10) -> dict:
    """Operating point, Brier score and reliability curve of subject probabilities.

    Parameters
    ----------
    y : ndarray of int
        True class per subject.
    prob : ndarray, shape (n, K)
        Subject probabilities.
    positive : int or None
        Binary tasks: the positive class; the operating point is ``p(positive) >= threshold``.
        None (more classes): the predicted class is the argmax; sensitivity and specificity are
        one-vs-rest per class.
    threshold : float
        Binary operating point on ``p(positive)``.
    n_bins : int
        Equal-width probability bins of the reliability curve (of ``p(positive)``, or of the
        top-class confidence for more classes).

    Returns
    -------
    dict
        ``operating_point`` (rule, sensitivity, specificity, counts), ``brier`` (binary: mean
        squared error of ``p(positive)``; more classes: mean over subjects of the summed squared
        error over classes), ``reliability`` (per non-empty bin: ``lo``, ``hi``, ``n``,
        ``mean_predicted``, ``observed``).

    Examples
    --------
    >>> c = calibration(np.array([0, 0, 1, 1]), np.array([[.9, .1], [.4, .6], [.3, .7], [.8, .2]]), 1)
    >>> c["operating_point"]["sensitivity"], c["operating_point"]["specificity"], round(c["brier"], 4)
    (0.5, 0.5, 0.275)
    """
    y = np.asarray(y, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    k = prob.shape[1]
    if positive is not None:
        score, truth = prob[:, positive], (y == positive)
        pred = score >= threshold
        tp, fn = int((pred & truth).sum()), int((~pred & truth).sum())
        tn, fp = int((~pred & ~truth).sum()), int((pred & ~truth).sum())
        op = {"rule": f"p({positive}) >= {threshold:g}", "threshold": threshold,
              "sensitivity": tp / (tp + fn) if tp + fn else math.nan,
              "specificity": tn / (tn + fp) if tn + fp else math.nan, "tp": tp, "fn": fn, "tn": tn, "fp": fp}
        brier = float(np.mean((score - truth) ** 2)) if len(y) else math.nan
        observed = truth.astype(float)
    else:
        pred = prob.argmax(1)
        op = {"rule": "argmax", "per_class": {}}
        for c in range(k):
            t, p = y == c, pred == c
            op["per_class"][c] = {"sensitivity": float((t & p).sum() / t.sum()) if t.sum() else math.nan,
                                  "specificity": float((~t & ~p).sum() / (~t).sum()) if (~t).sum() else math.nan}
        brier = float(np.mean(((np.eye(k)[y] - prob) ** 2).sum(1))) if len(y) else math.nan
        score, observed = prob.max(1), (pred == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.floor(score * n_bins + 1e-9).astype(int), 0, n_bins - 1)  # bin b = [b/n, (b+1)/n)
    curve = [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": int((which == b).sum()),
              "mean_predicted": float(score[which == b].mean()), "observed": float(observed[which == b].mean())}
             for b in range(n_bins) if (which == b).any()]
    return {"operating_point": op, "brier": brier, "reliability": curve}
