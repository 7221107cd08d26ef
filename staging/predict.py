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

from models.windows import add_window_votes, normalize_votes, window_starts
from preprocess.core.channels import CHANNEL_INDEX
from preprocess.core.signal import EPOCH_SAMPLES  # 30 s at 100 Hz, fixed by the model

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_STRIDE

SHORT_POLICIES = ("window", "zeros")


def channel_indices(names: Sequence[str]) -> list[int]:
    """Canonical channel names → canonical indices (the model's channel ids)."""
    try:
        return [CHANNEL_INDEX[n] for n in names]
    except KeyError as exc:
        raise ValueError(f"unknown canonical channel {exc.args[0]!r}") from None


FEATURE_DIM = 512
"""CNN features per token (``models.config.CNN_DIM``)."""

CPU_TOKENS_PER_CALL = 256
"""Tokens per CNN call on CPU: the first-layer activations take ~0.2 MB per token, so 256 tokens
keep the call's transient near 50-100 MB (1,024 took 250-380 MB, a third of the process's peak).
One thread runs 128-1,024 tokens per call at the same CPU-seconds; two threads lose 10-40 % at 256
against 1,024 under load (bench/memory_night.py, issue 23 notes)."""

GPU_TOKENS_PER_CALL = 8192
"""Tokens per CNN call on a GPU: a whole 8-h 8-channel night (7,680 tokens) in one call."""

GPU_MIN_WINDOWS_PER_CALL = 512
"""On a GPU the sequence encoder runs at least this many windows per call (launch-bound otherwise)."""


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


def _token_blocks(signals: np.ndarray) -> tuple[int, int, list[tuple[torch.Tensor, slice]]]:
    """Split a night into blocks of tokens that are free views of ``signals``.

    Returns ``(n_epochs, n_channels, blocks)``; each block is ``(tokens (n, 3000), where)`` with
    ``where`` indexing the matching rows of the ``(n_channels, n_epochs)`` or ``(n_epochs ·
    n_channels)`` feature table (see :func:`encode_recording`).
    """
    x = torch.as_tensor(np.asarray(signals))  # shares memory with the array
    if x.ndim == 2:
        n = x.shape[1] // EPOCH_SAMPLES
        if n < 1:
            raise ValueError(f"signals hold {x.shape[1]} samples, fewer than one epoch")
        per_channel = x[:, : n * EPOCH_SAMPLES].reshape(x.shape[0], n, EPOCH_SAMPLES)
        return n, x.shape[0], [(per_channel[c], slice(c * n, (c + 1) * n)) for c in range(x.shape[0])]
    if x.ndim == 3 and x.shape[2] == EPOCH_SAMPLES:
        if not x.is_contiguous():
            x = x.contiguous()
        return x.shape[0], x.shape[1], [(x.reshape(-1, EPOCH_SAMPLES), slice(0, x.shape[0] * x.shape[1]))]
    raise ValueError(f"signals must be (channels, samples) or (epochs, channels, 3000), got {tuple(x.shape)}")


@torch.inference_mode()
def encode_recording(model, signals: np.ndarray, device: str | torch.device = "cpu",
                     chunk: int | None = None) -> torch.Tensor:
    """CNN features of every (epoch, channel) token, each computed once, in a few large calls.

    Parameters
    ----------
    model : LPSGM
        In eval mode.
    signals : ndarray
        Z-scored signals at 100 Hz, ``(n_channels, n_samples)`` (a trailing partial epoch is
        ignored) or ``(n_epochs, n_channels, 3000)``; any float dtype. The night crosses to the
        device once in its own dtype (float16 stays float16: half the bytes) and is cast to
        float32 per call on the device, so a float16 night never exists as float32 whole.
    device : str or torch.device
    chunk : int, optional
        Tokens (channel-epochs) per CNN call; default :data:`CPU_TOKENS_PER_CALL` or
        :data:`GPU_TOKENS_PER_CALL`. Bounds the activation memory; the result does not depend on it.

    Returns
    -------
    torch.Tensor
        ``(n_epochs, n_channels, 512)`` float32 on ``device``.
    """
    device = torch.device(device)
    if chunk is None:
        chunk = GPU_TOKENS_PER_CALL if device.type == "cuda" else CPU_TOKENS_PER_CALL
    n_epochs, n_channels, blocks = _token_blocks(signals)
    if len(blocks) == 1 and np.asarray(signals).ndim == 3:  # epoch-major tokens already
        table = torch.empty(n_epochs * n_channels, FEATURE_DIM, device=device)
        columns = [table]
    else:  # one channel's epochs per block, written straight into its column of the epoch-major table
        table = torch.empty(n_epochs, n_channels, FEATURE_DIM, device=device)  # (no transposed copy after)
        columns = [table[:, c] for c in range(n_channels)]
    for (tokens, _), rows in zip(blocks, columns):
        tokens = tokens.to(device, non_blocking=True)
        for s in range(0, tokens.shape[0], chunk):
            rows[s:s + chunk] = model.encode_epochs(tokens[s:s + chunk].float())
    return table.view(n_epochs, n_channels, FEATURE_DIM)


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
        logits = _window_logits(model, torch.cat([feats, pad])[None], ch)
        total = torch.zeros(n_epochs, model.cfg.n_classes, dtype=torch.float64, device=device)
        return normalize_votes(add_window_votes(total, torch.zeros(1, dtype=torch.long), logits)).cpu().numpy()
    win = min(length, n_epochs)
    starts = window_starts(n_epochs, win, stride)
    if device.type == "cuda":  # results do not depend on the batch size; a GPU wants big ones
        batch_size = max(batch_size, GPU_MIN_WINDOWS_PER_CALL)
    total = torch.zeros(n_epochs, model.cfg.n_classes, dtype=torch.float64, device=device)
    offsets = torch.arange(win, device=device)
    # the starts cross to the device once: a copy from host memory per batch would make a GPU stream wait
    starts_dev = torch.as_tensor(starts, device=device)
    for b in range(0, len(starts), batch_size):
        s = starts_dev[b:b + batch_size]
        logits = _window_logits(model, feats[s[:, None] + offsets], ch)  # (B, win, n_classes)
        add_window_votes(total, s, logits)
        if progress is not None:
            progress(min(b + batch_size, len(starts)), len(starts))
    return normalize_votes(total).cpu().numpy()


def _window_logits(model, window_feats: torch.Tensor, ch: torch.Tensor) -> torch.Tensor:
    """Logits of a batch of windows ``(B, L, C, 512)`` from stored CNN features."""
    return model.forward_features(window_feats, ch[None].expand(window_feats.shape[0], -1))


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
        Windows per forward pass of the sequence encoder (at least 512 on a GPU); the CNN runs
        in separate large calls (:func:`encode_recording`).
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
    return vote_features(model, encode_recording(model, signals, device), idx, stride, batch_size, short, progress)


@torch.inference_mode()
def vote_features(model, feats: torch.Tensor, channels: Sequence[int], stride: int = DEFAULT_STRIDE,
                  batch_size: int = DEFAULT_BATCH_SIZE, short: str = "window", progress=None) -> np.ndarray:
    """:func:`predict_proba` from the features of :func:`encode_recording` (the signals may be freed
    in between: the staging pipeline drops the whole-night montage before the windows run).

    ``short="zeros"`` on a night shorter than the window encodes one all-zero epoch as the padding.
    """
    pad_feature = None
    if short == "zeros" and feats.shape[0] < model.cfg.seq_len:
        zero = torch.zeros(1, EPOCH_SAMPLES, device=feats.device)
        pad_feature = model.encode_epochs(zero).expand(feats.shape[1], -1)
    return vote_windows(model, feats, channels, stride, batch_size, short, pad_feature, progress)
