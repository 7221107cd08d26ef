"""Whole-night prediction: encode every epoch once, then vote over overlapping windows.

The published inference slides a window of ``L = 20`` epochs over the night with stride 1, runs
the full model on each window and, for every epoch, sums the softmax probabilities of all the
windows that contain it. The CNN part of that computation is the same for an epoch whatever
window it sits in (in eval mode the epoch encoder sees one channel of one epoch at a time), so
here each (epoch, channel) token is encoded **once** and the windows only run the sequence
encoder on the stored features. With stride 1 the result equals the reference voting (to float
tolerance); a larger stride runs fewer windows and still covers every epoch, because the last
window is always aligned to the end of the night.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from data.windows import window_starts
from preprocess.core.channels import CHANNEL_INDEX

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_STRIDE

EPOCH_SAMPLES = 3000
"""Samples per 30-s epoch at 100 Hz."""

SHORT_POLICIES = ("window", "zeros")


def channel_indices(names: Sequence[str]) -> list[int]:
    """Canonical channel names → canonical indices (the model's channel ids)."""
    try:
        return [CHANNEL_INDEX[n] for n in names]
    except KeyError as exc:
        raise ValueError(f"unknown canonical channel {exc.args[0]!r}") from None


def _per_channel_epochs(signals: np.ndarray) -> list[np.ndarray]:
    """Views ``(n_epochs, 3000)`` of each channel, from ``(C, T)`` or ``(E, C, 3000)`` input."""
    if signals.ndim == 2:
        n = signals.shape[1] // EPOCH_SAMPLES
        if n < 1:
            raise ValueError(f"signals hold {signals.shape[1]} samples, fewer than one epoch")
        return [signals[c, : n * EPOCH_SAMPLES].reshape(n, EPOCH_SAMPLES) for c in range(signals.shape[0])]
    if signals.ndim == 3 and signals.shape[2] == EPOCH_SAMPLES:
        return [signals[:, c] for c in range(signals.shape[1])]
    raise ValueError(f"signals must be (channels, samples) or (epochs, channels, 3000), got {signals.shape}")


@torch.inference_mode()
def encode_recording(model, signals: np.ndarray, device: str | torch.device = "cpu",
                     chunk: int = 256) -> torch.Tensor:
    """CNN features of every (epoch, channel) token, each computed once.

    Parameters
    ----------
    model : LPSGM
        In eval mode.
    signals : ndarray
        Z-scored signals at 100 Hz, ``(n_channels, n_samples)`` (a trailing partial epoch is
        ignored) or ``(n_epochs, n_channels, 3000)``; any float dtype (float16 is upcast per
        chunk, so a float16 night never exists as float32 in memory).
    device : str or torch.device
    chunk : int
        Epochs per CNN call; bounds the activation memory.

    Returns
    -------
    torch.Tensor
        ``(n_epochs, n_channels, 512)`` float32 on ``device``.
    """
    per_channel = _per_channel_epochs(signals)
    n_epochs = per_channel[0].shape[0]
    feats = None
    for c, epochs in enumerate(per_channel):
        for s in range(0, n_epochs, chunk):
            x = torch.as_tensor(np.ascontiguousarray(epochs[s:s + chunk]), device=device).float()
            f = model.encode_epochs(x)
            if feats is None:
                feats = torch.empty(n_epochs, len(per_channel), f.shape[1], device=device)
            feats[s:s + len(x), c] = f
    return feats


@torch.inference_mode()
def vote_windows(model, feats: torch.Tensor, channels: Sequence[int], stride: int = DEFAULT_STRIDE,
                 batch_size: int = DEFAULT_BATCH_SIZE, short: str = "window", pad_feature: torch.Tensor | None = None,
                 progress=None) -> np.ndarray:
    """Sum softmax probabilities over overlapping windows of precomputed features.

    Parameters
    ----------
    model : LPSGM
    feats : torch.Tensor
        ``(n_epochs, n_channels, 512)`` from :func:`encode_recording`.
    channels : sequence of int
        Canonical index of each channel (no padding).
    stride : int
        Window step in epochs; 1 reproduces the reference voting.
    batch_size : int
        Windows per forward pass of the sequence encoder.
    short : {"window", "zeros"}
        Recordings shorter than the model's window: ``"window"`` runs one window of the
        recording's own length (positions 0..n−1); ``"zeros"`` appends all-zero epochs up to the
        window length (``pad_feature`` = CNN features of a zero epoch per channel,
        ``(n_channels, 512)``) and discards their outputs.
    progress : callable(n_done, n_total), optional

    Returns
    -------
    ndarray of float64, shape (n_epochs, n_classes)
        Per-epoch probabilities (rows sum to 1).
    """
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
    length = model.cfg.seq_len
    n_epochs, n_channels = feats.shape[:2]
    device = feats.device
    ch = torch.as_tensor(list(channels), dtype=torch.long, device=device)
    if ch.numel() != n_channels:
        raise ValueError(f"{n_channels} feature channels but {ch.numel()} channel indices")
    if n_epochs < length and short == "zeros":
        if pad_feature is None:
            raise ValueError("short='zeros' needs pad_feature (CNN features of a zero epoch)")
        pad = pad_feature.to(device)[None].expand(length - n_epochs, -1, -1)
        probs = _window_probs(model, torch.cat([feats, pad])[None], ch)[0, :n_epochs]
        return probs.double().cpu().numpy()
    win = min(length, n_epochs)
    starts = window_starts(n_epochs, win, stride)
    total = torch.zeros(n_epochs, model.cfg.n_classes, dtype=torch.float64, device=device)
    offsets = torch.arange(win, device=device)
    for b in range(0, len(starts), batch_size):
        s = torch.as_tensor(starts[b:b + batch_size], device=device)
        idx = s[:, None] + offsets  # (B, win) epoch index of every window position
        p = _window_probs(model, feats[idx], ch)  # (B, win, n_classes)
        total.index_add_(0, idx.reshape(-1), p.reshape(-1, p.shape[-1]).double())
        if progress is not None:
            progress(min(b + batch_size, len(starts)), len(starts))
    total /= total.sum(dim=1, keepdim=True)
    return total.cpu().numpy()


def _window_probs(model, window_feats: torch.Tensor, ch: torch.Tensor) -> torch.Tensor:
    """Softmax over classes for a batch of windows ``(B, L, C, 512)``."""
    logits = model.forward_features(window_feats, ch[None].expand(window_feats.shape[0], -1))
    return torch.softmax(logits.float(), dim=-1)


@torch.inference_mode()
def predict_proba(model, signals: np.ndarray, channels: Sequence[str] | Sequence[int],
                  stride: int = DEFAULT_STRIDE, batch_size: int = DEFAULT_BATCH_SIZE, device: str | torch.device = "cpu",
                  short: str = "window", progress=None) -> np.ndarray:
    """Stage probabilities of every 30-s epoch of a preprocessed recording.

    Parameters
    ----------
    model : LPSGM
        Eval-mode model on ``device``.
    signals : ndarray
        ``(n_channels, n_samples)`` at 100 Hz or ``(n_epochs, n_channels, 3000)``, z-scored
        (the output of :func:`preprocess.core.pipeline.load_montage`).
    channels : sequence of str or int
        Canonical names (``"C3"``) or indices of the channels, in the order of ``signals``.
    stride : int
        Window step in epochs (1 = reference voting over every window).
    batch_size : int
        Windows per forward pass; the CNN encodes ``batch_size × 20`` epochs per call.
    device : str or torch.device
    short : {"window", "zeros"}
        Policy for recordings shorter than 20 epochs, see :func:`vote_windows`.
    progress : callable(n_done, n_total), optional

    Returns
    -------
    ndarray of float64, shape (n_epochs, 5)
        Probabilities of W, N1, N2, N3, REM; rows sum to 1.
    """
    idx = [c if isinstance(c, (int, np.integer)) else channel_indices([c])[0] for c in channels]
    feats = encode_recording(model, signals, device, chunk=max(1, batch_size * model.cfg.seq_len // 2))
    pad_feature = None
    if short == "zeros" and feats.shape[0] < model.cfg.seq_len:
        zero = torch.zeros(1, EPOCH_SAMPLES, device=feats.device)
        pad_feature = model.encode_epochs(zero).expand(feats.shape[1], -1)
    return vote_windows(model, feats, idx, stride, batch_size, short, pad_feature, progress)
