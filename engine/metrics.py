"""Sleep-staging metrics (scikit-learn): accuracy, macro-F1, Cohen's κ, per-class F1, confusion.

Epochs whose true label is −1 (unknown, movement, outside the lights-off range) are ignored.
Metrics are reported pooled over all epochs and per recording.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

STAGES = ("W", "N1", "N2", "N3", "REM")
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
    # F1 = 2TP / (2TP + FP + FN); a class absent from both truth and prediction has no F1 (NaN)
    # and is left out of the macro average (e.g. a night without N3).
    per_class = f1_score(t, p, labels=LABELS, average=None, zero_division=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # κ undefined (one class only) -> NaN, said in the docstring
        kappa = cohen_kappa_score(t, p, labels=LABELS)
    return {
        "n_epochs": int(len(t)),
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": _nanmean(list(per_class)),
        "kappa": float(kappa),
        "f1": {s: float(v) for s, v in zip(STAGES, per_class)},
        "confusion": confusion_matrix(t, p, labels=LABELS).tolist(),
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
