"""Linear probe on frozen subject features: the second stage reported next to the fine-tuned head.

A subject's feature vector (:func:`probe_features`, the one place where it is assembled) is the
mean of its window embeddings (the backbone's per-epoch outputs after its final LayerNorm,
averaged over the window, then over all windows of all the subject's recordings) followed by the
10 night-level values of the hypnogram the backbone's own staging classifier predicts
(:func:`nar_cls.hypnogram.hypnogram_summary`: stage shares, sleep onset latency, REM latency from
sleep onset with its censoring indicator, WASO, stage shifts per hour; averaged over the subject's
recordings). ``scratch`` has no trained staging classifier: its subjects get the embedding part
only. The probe is ``StandardScaler`` + ``LogisticRegression(class_weight=
"balanced")`` (the published LPSGM second stage), fitted on the fold's training and validation
subjects and applied to its test subjects. For ``partial`` the features come from the frozen
initial backbone; for ``full`` / ``joint`` / ``scratch`` from the fold's fine-tuned backbone,
frozen after training.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def subject_features(emb: np.ndarray, win_subject: np.ndarray, n_subjects: int) -> np.ndarray:
    """Mean window embedding per subject, shape (n_subjects, d); rows of absent subjects are NaN.

    Examples
    --------
    >>> subject_features(np.array([[1., 2.], [3., 4.], [5., 6.]]), np.array([0, 0, 2]), 3).tolist()
    [[2.0, 3.0], [nan, nan], [5.0, 6.0]]
    """
    sums = np.zeros((n_subjects, emb.shape[1]))
    np.add.at(sums, win_subject, emb)
    counts = np.bincount(win_subject, minlength=n_subjects).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def probe_features(emb: np.ndarray, cohort, stage_prob: np.ndarray | None = None) -> np.ndarray:
    """Subject features of the linear probe, (n_subjects, d_model [+ 10]).

    Parameters
    ----------
    emb : ndarray, shape (n_windows, d_model)
        Window embeddings of every evaluation window of ``cohort``.
    cohort : nar_cls.cohort.Cohort
        Gives the windows' recordings, starts and subjects.
    stage_prob : ndarray, shape (n_windows, L, 5), optional
        Softmax of the staging logits of the same windows; None leaves the hypnogram part out.

    Returns
    -------
    ndarray
        Mean window embedding, then (with ``stage_prob``) the columns of
        :data:`nar_cls.hypnogram.HYPNOGRAM_FEATURES` (shares 0–1, latencies and WASO in minutes,
        censoring 0/1, shifts per hour).
    """
    x = subject_features(emb, cohort.win_subject, len(cohort.subjects))
    return x if stage_prob is None else np.hstack([x, cohort_hypnogram_features(cohort, stage_prob)])


def cohort_hypnogram_features(cohort, stage_prob: np.ndarray) -> np.ndarray:
    """:func:`nar_cls.hypnogram.subject_hypnogram_features` of every subject of ``cohort``, (n_subjects, 10),
    from the staging probabilities (n_windows, L, 5) of its evaluation windows."""
    from .hypnogram import subject_hypnogram_features

    n_epochs = np.array([cohort.data.windows.n_epochs(i) for i in range(len(cohort.rows))])
    return subject_hypnogram_features(stage_prob, cohort.win_rec, cohort.win_start, n_epochs, cohort.rec_subject,
                                      len(cohort.subjects))


def _scale_columns(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x * w


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int = 0, c: float = 1.0, blocks=None) -> Pipeline:
    """``StandardScaler`` + ``LogisticRegression(class_weight="balanced", C=c)`` fitted on (x, y).

    ``blocks``: widths of consecutive column blocks (e.g. ``[608, 10]``: mean embedding, hypnogram
    summary). After standardisation each column of a block of width ``d`` is multiplied by
    ``1/sqrt(d)``, so every block carries the same total variance under the L2 penalty (otherwise
    608 embedding columns drown 10 summary values); None = plain standardisation.
    """
    steps = [StandardScaler()]
    if blocks is not None:
        if sum(blocks) != x.shape[1]:
            raise ValueError(f"probe blocks {list(blocks)} do not add up to the {x.shape[1]} feature columns")
        w = np.concatenate([np.full(int(d), 1.0 / np.sqrt(d)) for d in blocks])
        steps.append(FunctionTransformer(_scale_columns, kw_args={"w": w}))
    steps.append(LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed))
    return make_pipeline(*steps).fit(x, y)


def probe_probabilities(model: Pipeline, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities (n, n_classes) in task class order (a class absent from training gets 0)."""
    out = np.zeros((len(x), n_classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out
