"""Windows over a night and the vote that joins them: the model-level rules training, validation and
inference share.

The model sees windows of ``L = 20`` consecutive 30-s epochs. Training tiles a recording with
non-overlapping windows from a random offset (:func:`train_starts`, :func:`max_offset`);
validation and inference cover every epoch with windows ``stride`` apart, the last one aligned to
the end of the night (:func:`cover_starts`, :func:`window_starts`); an epoch's probabilities are
the sum of the softmax outputs of every window containing it (:func:`add_window_votes`,
:func:`normalize_votes`). ``data`` (window datasets), ``engine`` (validation) and ``staging``
(inference) import these from here, so none of them imports another for them.
"""

from __future__ import annotations

import numpy as np
import torch

SEQ_LEN = 20
"""Epochs per window of the published models."""


def train_starts(lo: int, hi: int, n_epochs: int, seq_len: int, offset: int) -> np.ndarray:
    """Starts of non-overlapping windows tiling ``[lo, hi)`` from ``lo + offset``.

    A range no longer than one window gives one window (placed to stay inside the recording
    when possible; it is padded when the recording itself is shorter than ``seq_len``).
    """
    if hi - lo <= seq_len:
        return np.array([max(0, min(lo, n_epochs - seq_len))], dtype=np.int64)
    return np.arange(lo + offset, hi - seq_len + 1, seq_len, dtype=np.int64)


def max_offset(lo: int, hi: int, seq_len: int) -> int:
    """Number of distinct random offsets such that at least one full window fits in ``[lo, hi)``."""
    return max(1, min(seq_len, hi - lo - seq_len + 1))


def cover_starts(lo: int, hi: int, n_epochs: int, seq_len: int, stride: int) -> np.ndarray:
    """Starts of windows with ``stride`` that together cover every epoch of ``[lo, hi)``.

    The last window is aligned to ``hi`` so the tail is covered too.

    Examples
    --------
    >>> cover_starts(0, 45, 45, 20, 20).tolist()
    [0, 20, 25]
    """
    if not 1 <= stride <= seq_len:
        raise ValueError(f"stride must be in [1, {seq_len}] to cover every epoch, got {stride}")
    if hi - lo <= seq_len:
        return np.array([max(0, min(lo, n_epochs - seq_len))], dtype=np.int64)
    starts = list(range(lo, hi - seq_len + 1, stride))
    if starts[-1] + seq_len < hi:
        starts.append(hi - seq_len)
    return np.array(starts, dtype=np.int64)


def window_starts(n_epochs: int, length: int = 20, stride: int = 1) -> np.ndarray:
    """First epoch of every window over a whole recording, the last one aligned to its end.

    :func:`cover_starts` over ``[0, n_epochs)``, for inference.

    Parameters
    ----------
    n_epochs : int
        Epochs in the recording (>= 1).
    length : int
        Window length in epochs.
    stride : int
        Step between consecutive windows in epochs (>= 1; at most ``length`` when the recording
        is longer than one window, so that windows leave no gap: ValueError otherwise).

    Returns
    -------
    ndarray of int
        Sorted, unique start indices. Every epoch lies in at least one window. A recording
        shorter than ``length`` gives the single start ``0`` (one window of ``n_epochs``).

    Examples
    --------
    >>> window_starts(45, 20, 10).tolist()
    [0, 10, 20, 25]
    """
    if n_epochs < 1:
        raise ValueError(f"at least one epoch is needed, got {n_epochs}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1 epoch, got {stride}")
    if n_epochs <= length:  # one window of the whole recording, whatever the stride
        return np.zeros(1, dtype=np.int64)
    return cover_starts(0, n_epochs, n_epochs, length, stride)  # refuses a stride that leaves gaps


def add_window_votes(total: torch.Tensor, starts: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Add each window's softmax probabilities to the per-epoch vote totals, in place.

    The one voting rule of the project (inference, online staging and validation during training and
    fine-tuning all call it): an epoch's score is the **sum of the softmax probabilities** of every window that
    contains it, as the published inference does (not the sum of logits).

    Parameters
    ----------
    total : torch.Tensor
        ``(n_epochs, n_classes)`` running sums of one recording (float64 recommended).
    starts : torch.Tensor
        ``(B,)`` first epoch of each window.
    logits : torch.Tensor
        ``(B, L, n_classes)`` model outputs of the windows. Positions past the end of the recording
        (the padded tail of a recording shorter than ``L``) are ignored.

    Returns
    -------
    torch.Tensor
        ``total`` (modified in place).
    """
    probs = torch.softmax(logits.to(total.dtype), dim=-1).to(total.device)  # in the totals' precision
    return add_window_probs(total, starts, probs)


def add_window_probs(total: torch.Tensor, starts: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """:func:`add_window_votes` for windows whose softmax probabilities ``(B, L, n_classes)`` are at hand.

    For callers that kept the probabilities rather than the logits (``nar_cls`` caches them); the sum
    over the windows containing each epoch is the same rule. Returns ``total``, modified in place.
    """
    probs = probs.to(device=total.device, dtype=total.dtype)
    idx = starts.to(total.device).long()[:, None] + torch.arange(probs.shape[1], device=total.device)
    valid = idx < total.shape[0]
    # no boolean-mask indexing: its output size depends on the data, which makes a GPU wait for
    # the host once per window batch; positions past the end add an exact 0 to the last row instead
    probs = torch.where(valid[..., None], probs, torch.zeros((), dtype=probs.dtype, device=probs.device))
    total.index_add_(0, idx.clamp(max=total.shape[0] - 1).reshape(-1), probs.reshape(-1, probs.shape[-1]))
    return total


def normalize_votes(total: torch.Tensor) -> torch.Tensor:
    """Vote totals → per-epoch probabilities (rows sum to 1); rows without any vote become NaN."""
    return total / total.sum(dim=1, keepdim=True)


__all__ = ["SEQ_LEN", "add_window_probs", "add_window_votes", "cover_starts", "max_offset", "normalize_votes", "train_starts",
           "window_starts"]
