"""Subject-wise stratified cross-validation with an inner, subject-wise validation split.

Every subject has one class, so stratifying subjects (``StratifiedKFold`` over the subject list)
is the same as a ``StratifiedGroupKFold`` over recordings grouped by subject, and all
recordings of a subject always fall on the same side. The validation subjects of a fold are
drawn (stratified) from its training subjects only, never from the test fold.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from data.manifest import weights_from_counts


def stratified_subject_folds(y: np.ndarray, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Test fold of every subject.

    Parameters
    ----------
    y : ndarray of int
        Class of each subject.
    n_folds : int
        Number of folds K (>= 2).
    seed : int
        Shuffle seed.

    Returns
    -------
    ndarray of int
        ``fold[i]`` in ``0..K-1``; each fold holds about ``1/K`` of every class.

    Raises
    ------
    ValueError
        When a class has fewer subjects than folds.
    """
    y = np.asarray(y)
    if n_folds < 2:
        raise ValueError("n_folds must be >= 2")
    counts = np.bincount(y)
    present = counts[counts > 0]
    if len(present) < 2:
        raise ValueError(f"need at least two classes, got subject counts {counts.tolist()}")
    if present.min() < n_folds:
        raise ValueError(f"the smallest class has {present.min()} subjects: cannot make {n_folds} stratified "
                         f"folds (subject counts per class {counts.tolist()}); lower --folds")
    fold = np.full(len(y), -1, dtype=np.int64)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(skf.split(np.zeros(len(y)), y)):
        fold[test] = k
    return fold


def inner_validation(train: np.ndarray, y: np.ndarray, val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split training subjects into (train, validation), stratified when possible.

    Parameters
    ----------
    train : ndarray of int
        Subject indices of the training folds.
    y : ndarray of int
        Class of every subject (indexed by subject).
    val_fraction : float
        Share of ``train`` used for validation; at least one subject per class present.
    seed : int

    Returns
    -------
    tuple of ndarray
        ``(train_subjects, val_subjects)``, sorted, disjoint, union = ``train``.
    """
    train = np.asarray(train)
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be in (0, 1)")
    yt = y[train]
    n_classes = len(np.unique(yt))
    n_val = max(int(round(val_fraction * len(train))), n_classes)
    if n_val >= len(train):
        raise ValueError(f"{len(train)} training subjects are too few for a validation split")
    counts = np.bincount(yt)
    stratify = yt if counts[counts > 0].min() >= 2 else None  # stratified needs 2 subjects per class
    tr, va = train_test_split(train, test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(tr), np.sort(va)


def class_weights(y_train: np.ndarray, n_classes: int) -> np.ndarray:
    """Cross-entropy class weights from training *subject* counts: ``w_c = N / (K n_c)``.

    A class without training subjects gets weight 0. Weights average to 1 over present classes
    when all are present (balanced classes give all ones).

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666865348816, 2.0]
    """
    return weights_from_counts(np.bincount(np.asarray(y_train), minlength=n_classes), scale="balanced")
