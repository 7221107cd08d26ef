"""Classification metrics of window and subject predictions, and subject aggregation.

Generic over the number of classes (the staging metrics of :mod:`engine.metrics` are fixed to the
five sleep stages); adds balanced accuracy and ROC AUC. Could be folded into ``engine/metrics.py``.

Keys of :func:`classification_metrics` (the ``window`` and ``subject`` blocks of every
``metrics.json``):

``n``, ``accuracy``, ``balanced_accuracy``, ``kappa`` (Cohen), ``macro_f1``, ``f1`` (class → F1),
``confusion`` (rows = truth, columns = prediction, class order of ``classes``), ``roc_auc``
(binary: of the positive class; more classes: macro one-vs-rest), ``roc_auc_kind``. Undefined
values (e.g. AUC with one class present) are NaN, written as ``null`` in JSON.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

AGGREGATIONS = ("mean", "vote")


def roc_auc(y_true: np.ndarray, prob: np.ndarray, positive: int | None) -> float:
    """Binary AUC of ``positive`` or macro one-vs-rest AUC; NaN when a class is missing from truth."""
    y_true = np.asarray(y_true)
    n_classes = prob.shape[1]
    if positive is not None:
        t = y_true == positive
        return float(roc_auc_score(t, prob[:, positive])) if 0 < t.sum() < len(t) else math.nan
    if len(np.unique(y_true)) < n_classes:
        return math.nan
    p = prob / prob.sum(axis=1, keepdims=True)
    return float(roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=list(range(n_classes))))


def classification_metrics(y_true: Sequence[int], prob: np.ndarray, classes: Sequence[str],
                           positive: int | None = None) -> dict:
    """Metrics of predictions ``argmax(prob)`` against ``y_true``.

    Parameters
    ----------
    y_true : sequence of int
        True class per item (window or subject).
    prob : ndarray, shape (n, n_classes)
        Class probabilities (rows summing to 1).
    classes : sequence of str
        Class names (keys of ``f1``).
    positive : int, optional
        Positive class of the binary AUC; None: macro one-vs-rest AUC.

    Returns
    -------
    dict
        See the module docstring.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    labels = list(range(len(classes)))
    kind = f"binary:{classes[positive]}" if positive is not None else "macro_ovr"
    if len(y_true) == 0:
        nan = math.nan
        return {"n": 0, "accuracy": nan, "balanced_accuracy": nan, "kappa": nan, "macro_f1": nan,
                "f1": {c: nan for c in classes}, "confusion": [[0] * len(classes) for _ in classes],
                "roc_auc": nan, "roc_auc_kind": kind}
    pred = prob.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # κ / balanced accuracy with one class: NaN or warning
        kappa = cohen_kappa_score(y_true, pred, labels=labels)
        bacc = balanced_accuracy_score(y_true, pred)
    f1 = f1_score(y_true, pred, labels=labels, average=None, zero_division=0.0)
    present = np.isin(labels, np.unique(np.concatenate([y_true, pred])))
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, pred)),
        "balanced_accuracy": float(bacc),
        "kappa": float(kappa),
        "macro_f1": float(np.mean(f1[present])),
        "f1": {c: float(v) for c, v in zip(classes, f1)},
        "confusion": confusion_matrix(y_true, pred, labels=labels).tolist(),
        "roc_auc": roc_auc(y_true, prob, positive),
        "roc_auc_kind": kind,
    }


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
