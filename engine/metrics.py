"""Metrics of class predictions (scikit-learn), for sleep staging and for subject classification.

One computation (:func:`label_scores`: accuracy, Cohen's κ, per-class F1, macro-F1, confusion)
serves both reports:

* :func:`staging_metrics` / :func:`evaluate_predictions`: the five sleep stages; epochs whose true
  label is −1 (unknown, movement, outside the lights-off range) are ignored; pooled over all
  epochs and per recording. A stage absent from truth and prediction has F1 ``NaN``.
* :func:`classification_metrics`: any number of named classes, plus balanced accuracy and ROC AUC
  (the ``window`` and ``subject`` blocks of ``nar_cls`` runs). A class absent from truth and
  prediction has F1 ``0.0`` there (the published ``metrics.json`` convention); macro-F1 leaves it
  out in both reports, so the two agree on every scalar.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

from preprocess.core.stages import STAGE_NAMES

STAGES = STAGE_NAMES  # metric keys: f1[name]
LABELS = list(range(len(STAGES)))


def staging_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """Metrics of one set of epochs.

    Parameters
    ----------
    y_true, y_pred : sequence of int
        True and predicted stages (0..4); epochs with ``y_true == -1`` are dropped.

    Returns
    -------
    dict
        ``n_epochs``, ``accuracy``, ``macro_f1`` (mean F1 over the classes present in truth or
        prediction; an absent class has F1 NaN and is not averaged), ``kappa`` (NaN when undefined, e.g. one class
        only), ``f1`` (stage name → F1) and ``confusion`` (5×5 list, rows = truth, columns =
        prediction, order W, N1, N2, N3, REM).
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}")
    keep = y_true >= 0
    t, p = y_true[keep], y_pred[keep]
    if len(t) == 0:
        nan = float("nan")
        return {"n_epochs": 0, "accuracy": nan, "macro_f1": nan, "kappa": nan,
                "f1": {s: nan for s in STAGES}, "confusion": [[0] * 5 for _ in range(5)]}
    sc = label_scores(t, p, LABELS)
    return {
        "n_epochs": int(len(t)),
        "accuracy": sc["accuracy"],
        "macro_f1": sc["macro_f1"],
        "kappa": sc["kappa"],
        "f1": {s: float(v) for s, v in zip(STAGES, sc["f1"])},
        "confusion": sc["confusion"],
    }


def label_scores(t: np.ndarray, p: np.ndarray, labels: Sequence[int]) -> dict:
    """Accuracy, κ, per-class F1, macro-F1 and confusion of non-empty label arrays.

    Parameters
    ----------
    t, p : ndarray of int
        True and predicted labels, same length (> 0), values in ``labels``.
    labels : sequence of int
        Class order of ``f1`` and of the confusion matrix.

    Returns
    -------
    dict
        ``accuracy``; ``kappa`` (NaN when undefined, e.g. one class only); ``f1`` (ndarray, one
        per label: ``2TP / (2TP + FP + FN)``, NaN for a class absent from truth and prediction);
        ``macro_f1`` (mean of the non-NaN F1, so e.g. a night without N3 is not penalised);
        ``confusion`` (list of lists, rows = truth, columns = prediction).

    Examples
    --------
    >>> sc = label_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), [0, 1, 2])
    >>> sc["accuracy"], round(sc["macro_f1"], 4), sc["f1"].tolist()[2], sc["confusion"][0]
    (0.75, 0.7333, nan, [1, 1, 0])
    """
    per_class = f1_score(t, p, labels=list(labels), average=None, zero_division=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # κ undefined (one class only) -> NaN, said in the docstring
        kappa = cohen_kappa_score(t, p, labels=list(labels))
    return {
        "accuracy": float(accuracy_score(t, p)),
        "kappa": float(kappa),
        "f1": per_class,
        "macro_f1": _nanmean(list(per_class)),
        "confusion": confusion_matrix(t, p, labels=list(labels)).tolist(),
    }


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
    """Metrics of predictions ``argmax(prob)`` against ``y_true``, for any named classes.

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
        ``n``, ``accuracy``, ``balanced_accuracy``, ``kappa`` (Cohen), ``macro_f1``, ``f1`` (class →
        F1; 0.0 for a class absent from truth and prediction), ``confusion`` (rows = truth, columns
        = prediction, class order of ``classes``), ``roc_auc`` (binary: of the positive class; more
        classes: macro one-vs-rest), ``roc_auc_kind``. Undefined values (e.g. AUC with one class
        present) are NaN, written as ``null`` in JSON.
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
    sc = label_scores(y_true, pred, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balanced accuracy with one class: warning
        bacc = balanced_accuracy_score(y_true, pred)
    return {
        "n": int(len(y_true)),
        "accuracy": sc["accuracy"],
        "balanced_accuracy": float(bacc),
        "kappa": sc["kappa"],
        "macro_f1": sc["macro_f1"],
        "f1": {c: 0.0 if math.isnan(v) else float(v) for c, v in zip(classes, sc["f1"])},
        "confusion": sc["confusion"],
        "roc_auc": roc_auc(y_true, prob, positive),
        "roc_auc_kind": kind,
    }


def evaluate_predictions(per_recording: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Pooled and per-recording metrics.

    Parameters
    ----------
    per_recording : mapping
        Recording name → ``(y_true, y_pred)`` arrays.

    Returns
    -------
    dict
        The pooled :func:`staging_metrics` (all epochs of all recordings together) plus
        ``per_recording`` (name → metrics without the confusion matrix) and ``mean_recording``
        (mean over recordings of accuracy, macro-F1 and κ, NaNs ignored).
    """
    names = sorted(per_recording)
    if names:
        t = np.concatenate([np.asarray(per_recording[n][0]).ravel() for n in names])
        p = np.concatenate([np.asarray(per_recording[n][1]).ravel() for n in names])
    else:
        t = p = np.zeros(0, dtype=np.int64)
    out = staging_metrics(t, p)
    rec = {}
    for n in names:
        m = staging_metrics(*per_recording[n])
        m.pop("confusion")
        rec[n] = m
    out["per_recording"] = rec
    out["mean_recording"] = {k: _nanmean([rec[n][k] for n in names]) for k in ("accuracy", "macro_f1", "kappa")}
    return out


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def scalar_metrics(metrics: Mapping, prefix: str = "") -> dict[str, float]:
    """Flat scalars of a metrics dict for logging: accuracy, macro_f1, kappa and f1_<stage>."""
    out = {f"{prefix}{k}": float(metrics[k]) for k in ("accuracy", "macro_f1", "kappa") if k in metrics}
    for s, v in metrics.get("f1", {}).items():
        out[f"{prefix}f1_{s}"] = float(v)
    return out


def json_safe(obj):
    """Replace NaN/inf floats by None recursively (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj
