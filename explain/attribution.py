"""Why did the model stage this epoch so? Grad-CAM, guided Grad-CAM and channel attribution.

For every explained epoch ``e`` and every channel ``c`` of the recording:

``gradcam`` (n, C, 3000)
    Grad-CAM on the **last Conv1d of each CNN branch** (:func:`branch_last_convs`; 63 time
    steps in branch 1, 13 in branch 2), each map placed on the 3000 samples of the epoch at the
    receptive-field centres of its time steps and linearly interpolated, then summed over the two
    branches (the fusion of the published LPSGM Grad-CAM code). Non-negative; in units of the
    target logit, so values are comparable across channels and epochs.
``guided_gradcam`` (n, C, 3000)
    ``gradcam`` × the envelope of guided backpropagation (Hilbert envelope of the input-space
    guided gradient, Gaussian-smoothed with σ = 10 samples = 0.1 s), as published.
``guided_backprop`` (n, C, 3000)
    The guided-backpropagation gradient itself (signed; carries the frequency content the model
    responds to, e.g. 8–12 Hz on O1/O2 in wake).
``channel_attribution`` (n, C)
    Shapley values of the channels for the target logit (:func:`channel_shapley`): a channel
    is removed from the window exactly as the model handles a recording without it (LPSGM is
    trained on random channel subsets, so every subset is a valid input). Signed, in logit units;
    the channels sum to ``logit(all channels) − logit(no channel)``. Integrated gradients over
    the channel's token from a flat-epoch baseline was tried first and rejected: a flat line is
    itself REM-like (low EEG amplitude, atonic chin), so every REM epoch got negative
    attributions on all channels.

Target
    The target is the logit of one stage (default: the stage of the whole-night hypnogram, i.e.
    the argmax of the voted probabilities; or a stage the user names) at the epoch's **own CLS
    output** in one window that contains it. Default ``position="centre"``: the window in which
    the epoch sits at position ``L // 2`` (10 of 20: ten epochs of context before, nine after),
    shifted only at the edges of the night. The published Grad-CAM code uses position 0 (the
    window *starting* at the epoch), where the model sees no preceding context at all; every
    window containing an epoch votes for it, and the centred one is the most representative
    single vote (context on both sides, as a human scorer reads an epoch).
    ``position="first"`` (or an integer) reproduces the published choice.

Only the explained epoch's tokens carry gradients: the other epochs of the window enter as fixed
CNN features (computed once per recording, like :mod:`staging.predict`). This is exact: the
features of another epoch do not depend on the explained epoch's signal. Padding / absent
channels never reach the CNN and are masked as attention keys, so all their maps and their
attribution are exactly zero. In eval mode no operation mixes windows of a batch, so results do
not depend on batch composition (tested).

Library choice: captum's ``LayerGradCam`` (one call per branch layer), ``GuidedBackprop`` and
``ShapleyValueSampling`` do the attribution work; only the placement of the two branch maps on the
3000 samples and their fusion with the guided envelope are ours (captum's ``GuidedGradCam``
handles one layer and upsamples by stretching, which would misplace the branch-2 map by up to
2 s; see :func:`step_centres`).
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from preprocess.core.stages import STAGE_NAMES

EPOCH_SAMPLES = 3000
"""Samples per 30-s epoch at 100 Hz."""
SFREQ = 100.0
STAGES = STAGE_NAMES
GBP_SIGMA = 10.0
"""Gaussian smoothing (samples) of the guided-backprop envelope, as in the published code."""


# ------------------------------------------------------------------------------------------------
# Model access
# ------------------------------------------------------------------------------------------------


def branch_last_convs(model: nn.Module) -> tuple[nn.Conv1d, nn.Conv1d]:
    """The last ``nn.Conv1d`` of each CNN branch of the epoch encoder (Grad-CAM layers).

    Parameters
    ----------
    model : LPSGM
        Any model with ``epoch_encoder.encoder_branch1`` / ``encoder_branch2`` (the published
        attribute path; the last Conv1d is ``encoder_branchK[11]`` in the training layout).

    Returns
    -------
    tuple of nn.Conv1d
        Branch 1 (output 63 time steps) and branch 2 (13 time steps).
    """
    enc = model.epoch_encoder
    out = []
    for name in ("encoder_branch1", "encoder_branch2"):
        convs = [m for m in getattr(enc, name).modules() if isinstance(m, nn.Conv1d)]
        if not convs:
            raise ValueError(f"epoch_encoder.{name} has no Conv1d (an inference-fused model?)")
        out.append(convs[-1])
    return out[0], out[1]


def explainable_model(model: nn.Module) -> nn.Module:
    """A float32, eval-mode copy of ``model`` in its plain training-form layout.

    Gradients need the unfused modules (separate Conv1d / BatchNorm / ReLU, no in-place ReLU):
    guided backpropagation hooks every ``nn.ReLU``, and Grad-CAM hooks the last Conv1d. A copy
    keeps the caller's model (possibly prepared for fast inference) untouched.
    """
    m = copy.deepcopy(model).float().eval()
    unfuse = getattr(m, "unfused", None)  # an inference-optimised model may offer its plain form
    if callable(unfuse):
        m = unfuse().float().eval()
    enc = getattr(m, "epoch_encoder", None)
    if hasattr(enc, "fused"):
        enc.fused = False  # the folded-BN fast path is for no-grad inference; use the plain layers
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
        for p in mod.parameters(recurse=False):
            p.requires_grad_(False)  # gradients flow to inputs/activations only
    return m


def step_centres(branch: nn.Sequential, until: nn.Module, n_samples: int = EPOCH_SAMPLES) -> np.ndarray:
    """Input sample at the centre of the receptive field of each time step of ``until``'s output.

    Follows every layer with a ``kernel_size`` (Conv1d, MaxPool1d) up to and including ``until``:
    output step ``j`` of a layer with kernel k, stride s, padding p is centred on input step
    ``j·s − p + (k − 1)/2``. Branch 1: ``48 j − 3`` (j = 0..62); branch 2: ``200 j + 274.5``
    (j = 0..12) — a uniform stretch of 13 steps over 3000 samples would put them at
    ``230.8 j + 115``, up to 2.1 s off.

    Returns
    -------
    ndarray of float
        Centres in samples, one per output step.
    """
    pos = np.arange(n_samples, dtype=np.float64)
    for layer in branch:
        k = getattr(layer, "kernel_size", None)
        if k is not None:
            k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, layer.stride, layer.padding))
            d = getattr(layer, "dilation", 1)
            d = d[0] if isinstance(d, tuple) else d
            if p == "same" or p == "valid":
                p = (k - 1) * d // 2 if p == "same" else 0
            n_out = (len(pos) + 2 * p - d * (k - 1) - 1) // s + 1
            j = np.arange(n_out)
            # index into the previous grid: fractional, extrapolated linearly beyond the edges
            idx = j * s - p + d * (k - 1) / 2.0
            step = pos[1] - pos[0] if len(pos) > 1 else 1.0
            pos = pos[0] + idx * step
        if layer is until:
            return pos
    raise ValueError("layer not found in branch")


def upsample_steps(cam: np.ndarray, centres: np.ndarray, n_samples: int = EPOCH_SAMPLES) -> np.ndarray:
    """Linear interpolation of per-step maps ``(..., steps)`` onto ``n_samples`` samples
    (constant beyond the first/last centre)."""
    t = np.arange(n_samples, dtype=np.float64)
    flat = cam.reshape(-1, cam.shape[-1])
    out = np.stack([np.interp(t, centres, row) for row in flat]) if len(flat) else np.zeros((0, n_samples))
    return out.reshape(*cam.shape[:-1], n_samples)


def guided_envelope(gbp: np.ndarray, sigma: float = GBP_SIGMA) -> np.ndarray:
    """Hilbert envelope of a guided-backprop signal, Gaussian-smoothed (σ in samples)."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import hilbert

    if gbp.size == 0:
        return gbp.copy()
    env = np.abs(hilbert(gbp, axis=-1))
    return gaussian_filter1d(env, sigma, axis=-1, mode="nearest")


# ------------------------------------------------------------------------------------------------
# Forward functions over the explained epoch
# ------------------------------------------------------------------------------------------------


class _EpochLogits(nn.Module):
    """Logits of the explained epochs as a function of their own signals (context fixed).

    ``forward(x, context, channels, position)``: x (B, C, 3000) signals of the explained epochs,
    context (B, L, C, 512) CNN features of their windows (the explained position is replaced),
    channels (B, C) long with −1 = padding, position (B,) long → (B, n_classes) logits at each
    window's explained position.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def tokens(self, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        B, C, T = x.shape
        idx = (channels >= 0).reshape(-1).nonzero().squeeze(1)
        f = self.model.encode_epochs(x.reshape(B * C, T).index_select(0, idx))
        return f.new_zeros(B * C, f.shape[1]).index_copy(0, idx, f).reshape(B, C, -1)

    def forward(self, x, context, channels, position):
        return _logits_from_tokens(self.model, self.tokens(x, channels), context, channels, position)


class _ChannelGate(nn.Module):
    """Logits at the explained position as a function of which channels are present.

    ``forward(gate, feats, channels, position)``: gate (B, C), a channel is present where
    gate > 0.5 and otherwise removed from the whole window exactly as the model removes a missing
    channel (padding index −1: no token, masked as attention key).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, gate, feats, channels, position):
        ch = torch.where(gate > 0.5, channels, torch.full_like(channels, -1))
        logits = self.model.forward_features(feats, ch)
        return logits[torch.arange(len(position), device=logits.device), position]


@torch.no_grad()
def channel_shapley(model: nn.Module, tok: torch.Tensor, context: torch.Tensor, channels: torch.Tensor,
                    position: torch.Tensor, target: torch.Tensor, n_samples: int = 8, seed: int = 0) -> np.ndarray:
    """Shapley values of the channels for the target logit (captum ``ShapleyValueSampling``).

    A player is a channel; removing it removes it from the window, the way the model sees a
    recording without that channel (it was trained with random channel subsets, so every subset
    is a valid input). Permutation sampling keeps efficiency exactly: the values of the real
    channels sum to ``logit(all channels) − logit(no channel)``. Redundant channels (six EEG
    derivations, two EOG) share their credit, which leave-one-out would miss. The permutations
    come from a fixed seed, so a result does not depend on the batch or the global RNG.

    Returns
    -------
    ndarray (B, C)
        Zero at padding channels.
    """
    from captum.attr import ShapleyValueSampling

    B, L = context.shape[:2]
    at = torch.nn.functional.one_hot(position, L).to(context.dtype)[:, :, None, None]
    feats = context * (1 - at) + tok[:, None] * at
    C = channels.shape[1]
    gate = (channels >= 0).to(feats.dtype)
    with torch.random.fork_rng(devices=[]):  # captum draws permutations with torch.randperm (CPU)
        torch.manual_seed(seed)
        sv = ShapleyValueSampling(_ChannelGate(model)).attribute(
            gate, baselines=0.0, target=target, additional_forward_args=(feats, channels, position),
            feature_mask=torch.arange(C, device=feats.device)[None], n_samples=n_samples,
            perturbations_per_eval=C)
    return (sv * gate).cpu().numpy().astype(np.float32)


def _logits_from_tokens(model, tok, context, channels, position):
    B, L = context.shape[:2]
    at = torch.nn.functional.one_hot(position, L).to(context.dtype)[:, :, None, None]  # (B, L, 1, 1)
    feats = context * (1 - at) + tok[:, None] * at
    logits = model.forward_features(feats, channels)
    return logits[torch.arange(B, device=logits.device), position]


# ------------------------------------------------------------------------------------------------
# Core: explain a batch of windows at one position each
# ------------------------------------------------------------------------------------------------


@dataclass
class Explanation:
    """Explanations of ``n`` epochs over ``C`` channels (arrays are NumPy, float32 unless noted).

    Attributes
    ----------
    gradcam, guided_gradcam, guided_backprop : ndarray (n, C, 3000)
        See the module docstring; zero on padding channels.
    gradcam_branch1 : ndarray (n, C, 63)
    gradcam_branch2 : ndarray (n, C, 13)
    channel_attribution : ndarray (n, C)
        Shapley value of each channel for the target logit (logit units).
    target : ndarray of int (n,)
        Explained stage (0..4).
    window_logits : ndarray (n, 5)
        Logits of the explained window position.
    """

    gradcam: np.ndarray
    guided_gradcam: np.ndarray
    guided_backprop: np.ndarray
    gradcam_branch1: np.ndarray
    gradcam_branch2: np.ndarray
    channel_attribution: np.ndarray
    target: np.ndarray
    window_logits: np.ndarray
    meta: dict = field(default_factory=dict)

    @staticmethod
    def concat(parts: Sequence["Explanation"]) -> "Explanation":
        names = ("gradcam", "guided_gradcam", "guided_backprop", "gradcam_branch1", "gradcam_branch2",
                 "channel_attribution", "target", "window_logits")
        return Explanation(*(np.concatenate([getattr(p, n) for p in parts]) for n in names),
                           meta=dict(parts[0].meta) if parts else {})


def explain_features(model: nn.Module, target_x: torch.Tensor, context: torch.Tensor,
                     channels: torch.Tensor, position: torch.Tensor, target: torch.Tensor | None = None,
                     shapley_samples: int = 8) -> Explanation:
    """Explain one epoch per window.

    Parameters
    ----------
    model : LPSGM
        Output of :func:`explainable_model` (float32, eval, plain layout).
    target_x : torch.Tensor
        (B, C, 3000) signals of the explained epochs (z-scored; the model clamps).
    context : torch.Tensor
        (B, L, C, 512) CNN features of each window (the explained position is ignored).
    channels : torch.Tensor
        (B, C) long canonical index, −1 = padding.
    position : torch.Tensor
        (B,) long, position of the explained epoch in its window.
    target : torch.Tensor, optional
        (B,) long stage to explain; default the window's own argmax.
    shapley_samples : int
        Permutations for the channel Shapley values (each costs C sequence-encoder passes).

    Returns
    -------
    Explanation
    """
    from captum.attr import GuidedBackprop, LayerGradCam

    dev = context.device
    x = target_x.to(dev, torch.float32)
    ch = channels.to(dev).long()
    pos = position.to(dev).long()
    ctx = context.to(dev, torch.float32).detach()
    B, C, T = x.shape
    net = _EpochLogits(model)
    real = (ch >= 0)
    with torch.no_grad():
        tok = net.tokens(x, ch)
        logits = _logits_from_tokens(model, tok, ctx, ch, pos)
    tgt = logits.argmax(1) if target is None else target.to(dev).long()
    args = (ctx, ch, pos)
    idx = real.reshape(-1).nonzero().squeeze(1).cpu().numpy()

    cams, steps = [], []
    for layer in branch_last_convs(model):
        # relu_attributions: the Grad-CAM ReLU (evidence *for* the target only), as published
        a = LayerGradCam(net, layer).attribute(x, target=tgt, additional_forward_args=args,
                                               relu_attributions=True)
        a = a.detach().squeeze(1).cpu().numpy()  # (n_real_tokens, steps)
        full = np.zeros((B * C, a.shape[-1]), np.float32)
        full[idx] = a
        cams.append(full.reshape(B, C, -1))
        steps.append(a.shape[-1])
    enc = model.epoch_encoder
    centres = [step_centres(enc.encoder_branch1, branch_last_convs(model)[0], T),
               step_centres(enc.encoder_branch2, branch_last_convs(model)[1], T)]
    gradcam = sum(upsample_steps(c, z, T) for c, z in zip(cams, centres)).astype(np.float32)

    with warnings.catch_warnings():  # captum announces its (temporary) ReLU hooks on every call
        warnings.simplefilter("ignore", UserWarning)
        gbp = GuidedBackprop(net).attribute(x.clone().requires_grad_(True), target=tgt,
                                            additional_forward_args=args)
    gbp = (gbp.detach() * real[:, :, None]).cpu().numpy().astype(np.float32)
    guided = (gradcam * guided_envelope(gbp)).astype(np.float32)

    attribution = channel_shapley(model, tok, ctx, ch, pos, tgt, shapley_samples)

    return Explanation(gradcam, guided, gbp, cams[0], cams[1], attribution,
                       tgt.cpu().numpy().astype(np.int64), logits.float().cpu().numpy())


def explain_windows(model: nn.Module, x: torch.Tensor, channels: torch.Tensor, position: int | torch.Tensor = 0,
                    target: torch.Tensor | None = None, shapley_samples: int = 8) -> Explanation:
    """Explain position ``position`` of each window of a model-format batch.

    Parameters
    ----------
    model : LPSGM
        Any loaded model (a plain float32 eval copy is made).
    x : torch.Tensor
        (B, L, C, 3000), as for ``model(x, channels)``.
    channels : torch.Tensor
        (B, C) long, −1 = padding.
    position : int or torch.Tensor
        Window position(s) to explain (0 = the published choice).
    target : torch.Tensor, optional
        (B,) stages to explain; default each window's argmax at ``position``.
    """
    m = explainable_model(model)
    B, L = x.shape[:2]
    pos = torch.as_tensor(position, dtype=torch.long).expand(B) if not torch.is_tensor(position) or \
        position.dim() == 0 else position.long()
    with torch.no_grad():
        ctx = m.encode_tokens(x.float(), channels.long())
    tx = x[torch.arange(B), pos.to(x.device)]
    return explain_features(m, tx, ctx, channels, pos, target, shapley_samples)


# ------------------------------------------------------------------------------------------------
# Recording level
# ------------------------------------------------------------------------------------------------


def epoch_signals(signals: np.ndarray, epochs: Sequence[int]) -> np.ndarray:
    """``(len(epochs), C, 3000)`` float32 copies of the given epochs from ``(C, n_samples)`` or
    ``(n_epochs, C, 3000)`` signals (a trailing partial epoch is ignored)."""
    idx = np.asarray(list(epochs), dtype=np.int64)
    if signals.ndim == 2:
        n = signals.shape[1] // EPOCH_SAMPLES
        if idx.size and idx.max() >= n:
            raise ValueError(f"epoch {idx.max()} beyond the {n} epochs of the signals")
        view = signals[:, : n * EPOCH_SAMPLES].reshape(signals.shape[0], n, EPOCH_SAMPLES)
        return np.ascontiguousarray(view[:, idx].transpose(1, 0, 2), dtype=np.float32)
    if signals.ndim == 3 and signals.shape[2] == EPOCH_SAMPLES:
        return np.ascontiguousarray(signals[idx], dtype=np.float32)
    raise ValueError(f"signals must be (channels, samples) or (epochs, channels, 3000), got {signals.shape}")


def window_for(epoch: np.ndarray, n_epochs: int, length: int, position: str | int = "centre") -> tuple:
    """Window start and position of each explained epoch.

    Parameters
    ----------
    epoch : ndarray of int
    n_epochs : int
        Epochs in the recording.
    length : int
        Window length (the model's ``seq_len``, or the recording length if shorter).
    position : {"centre", "first"} or int
        Wanted position of the epoch in its window (``centre`` = ``length // 2``; ``first`` = 0,
        the published choice); windows are shifted at the ends of the night so they stay inside.

    Returns
    -------
    tuple of ndarray
        ``(start, position)``.
    """
    epoch = np.asarray(epoch, dtype=np.int64)
    length = min(length, n_epochs)
    want = {"centre": length // 2, "center": length // 2, "first": 0}.get(position, position)
    if not isinstance(want, (int, np.integer)) or not 0 <= want < length:
        raise ValueError(f"position must be 'centre', 'first' or 0..{length - 1}, got {position!r}")
    start = np.clip(epoch - want, 0, n_epochs - length)
    return start, epoch - start


def explain_recording(model: nn.Module, signals: np.ndarray, channels: Sequence[int], epochs: Sequence[int],
                      target: Sequence[int] | int | None = None, position: str | int = "centre",
                      batch_size: int = 8, device: str | torch.device = "cpu", shapley_samples: int = 8,
                      progress=None) -> Explanation:
    """Explain chosen epochs of a preprocessed recording.

    Parameters
    ----------
    model : LPSGM
        Loaded model (official or ours); not modified.
    signals : ndarray
        ``(C, n_samples)`` at 100 Hz or ``(n_epochs, C, 3000)``, z-scored (as for
        :func:`staging.predict.predict_proba`).
    channels : sequence of int
        Canonical index of each channel of ``signals``.
    epochs : sequence of int
        Epochs to explain (0-based).
    target : int or sequence of int, optional
        Stage(s) to explain; default each window's own argmax at the explained position.
    position : {"centre", "first"} or int
        See :func:`window_for`.
    batch_size : int
        Explained epochs per backward pass (bounds memory: activations of
        ``batch_size × C`` epochs plus ``batch_size`` windows of the sequence encoder).
    device : str or torch.device
    shapley_samples : int
        See :func:`channel_shapley`.
    progress : callable(n_done, n_total), optional

    Returns
    -------
    Explanation
        In the order of ``epochs``; ``meta`` holds ``epochs``, ``window_start``, ``position``.
    """
    from staging.predict import encode_recording

    m = explainable_model(model).to(device)
    feats = encode_recording(m, signals, device)  # (E, C, 512), each token once
    n_epochs = feats.shape[0]
    epochs = np.asarray(list(epochs), dtype=np.int64)
    if epochs.size and (epochs.min() < 0 or epochs.max() >= n_epochs):
        raise ValueError(f"epochs must lie in 0..{n_epochs - 1}")
    length = min(m.cfg.seq_len, n_epochs)
    start, pos = window_for(epochs, n_epochs, length, position)
    if target is not None:
        target = np.array(np.broadcast_to(np.asarray(target, dtype=np.int64), epochs.shape))
    ch = torch.as_tensor(list(channels), dtype=torch.long, device=device)
    offsets = torch.arange(length, device=device)
    parts = []
    for b in range(0, len(epochs), batch_size):
        sl = slice(b, b + batch_size)
        e, s = epochs[sl], torch.as_tensor(start[sl], device=device)
        ctx = feats[s[:, None] + offsets]  # (B, L, C, 512)
        tx = torch.as_tensor(epoch_signals(signals, e), device=device)
        tg = None if target is None else torch.as_tensor(target[sl], device=device)
        parts.append(explain_features(m, tx, ctx, ch[None].expand(len(e), -1),
                                      torch.as_tensor(pos[sl], device=device), tg, shapley_samples))
        if progress is not None:
            progress(min(b + batch_size, len(epochs)), len(epochs))
    if not parts:
        C = len(ch)
        z = np.zeros((0, C, EPOCH_SAMPLES), np.float32)
        parts = [Explanation(z, z, z, np.zeros((0, C, 63), np.float32), np.zeros((0, C, 13), np.float32),
                             np.zeros((0, C), np.float32), np.zeros(0, np.int64), np.zeros((0, 5), np.float32))]
    out = Explanation.concat(parts)
    out.meta.update(epochs=epochs, window_start=start, position=pos)
    return out


# ------------------------------------------------------------------------------------------------
# Epoch selection, saving, pages
# ------------------------------------------------------------------------------------------------


def select_epochs(spec: str, probs: np.ndarray) -> np.ndarray:
    """Epochs named by a ``--explain`` specification.

    ``all``; ranges and lists ``100-140,150`` (0-based, inclusive); ``low-confidence`` or
    ``low-confidence:0.7`` (epochs whose top voted probability is below 0.6 / the given value);
    a stage name ``W|N1|N2|N3|REM`` (epochs staged so). Items can be combined with commas.
    """
    n = len(probs)
    chosen: list[np.ndarray] = []
    for item in (t.strip() for t in spec.split(",")):
        if not item:
            continue
        low = item.lower()
        if low == "all":
            chosen.append(np.arange(n))
        elif low.startswith("low-confidence"):
            thr = float(item.split(":", 1)[1]) if ":" in item else 0.6
            chosen.append(np.flatnonzero(probs.max(1) < thr))
        elif item.upper() in STAGES or item.upper() == "R":
            k = STAGES.index("REM" if item.upper() == "R" else item.upper())
            chosen.append(np.flatnonzero(probs.argmax(1) == k))
        elif re.fullmatch(r"\d+(-\d+)?", item):
            a, _, b = item.partition("-")
            lo, hi = int(a), int(b or a)
            if hi < lo or lo >= n:
                raise ValueError(f"--explain: epoch range {item!r} outside 0..{n - 1}")
            chosen.append(np.arange(lo, min(hi, n - 1) + 1))
        else:
            raise ValueError(f"--explain: cannot read {item!r} (all, 100-140, low-confidence[:P], W|N1|N2|N3|REM)")
    return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


# ------------------------------------------------------------------------------------------------
# Checking explanations against known event times (simulated PSG: simulate.read_events)
# ------------------------------------------------------------------------------------------------


def event_mask(events: Sequence[dict], epochs: Sequence[int], kinds: set[str], channel: str | None = None,
               sfreq: float = SFREQ, epoch_samples: int = EPOCH_SAMPLES) -> np.ndarray:
    """Samples of the given epochs covered by events of the given kinds.

    Parameters
    ----------
    events : sequence of dict
        ``{"onset": s, "duration": s, "kind": str, "channels": [site, ...] or ["all"]}`` (the rows of
        :func:`simulate.read_events`); onsets in seconds from the first sample.
    epochs : sequence of int
    kinds : set of str
    channel : str, optional
        Canonical channel (``C3``): only events whose ``channels`` reach it (a site ``C3-M2``
        matches ``C3``; ``all`` matches every channel). None: every event of the kinds.

    Returns
    -------
    ndarray of bool, (len(epochs), epoch_samples)
    """
    epochs = np.asarray(list(epochs), dtype=np.int64)
    out = np.zeros((len(epochs), epoch_samples), bool)
    row = {int(e): i for i, e in enumerate(epochs)}
    for ev in events:
        if ev["kind"] not in kinds:
            continue
        sites = [c.split("-")[0].upper() for c in ev["channels"]]
        if channel is not None and "ALL" not in sites and channel.upper() not in sites:
            continue
        a = ev["onset"] * sfreq
        b = a + ev["duration"] * sfreq
        for e in range(int(a // epoch_samples), int(np.ceil(b / epoch_samples))):
            if e in row:
                lo, hi = max(a - e * epoch_samples, 0), min(b - e * epoch_samples, epoch_samples)
                out[row[e], int(np.floor(lo)):int(np.ceil(hi))] = True
    return out


def mass_ratio(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Mean saliency inside ``mask`` divided by the mean outside (1 = no preference)."""
    inside, outside = saliency[mask], saliency[~mask]
    if inside.size == 0 or outside.size == 0 or outside.mean() <= 0:
        return float("nan")
    return float(inside.mean() / outside.mean())


def within_epoch_ratio(saliency: np.ndarray, mask: np.ndarray) -> float:
    """:func:`mass_ratio` within rows: each row (one channel of one epoch) scaled to unit mean.

    Only rows with samples both inside and outside ``mask`` and some saliency count. Grad-CAM's
    scale differs between epochs (it follows the gradient of each epoch's logit), so pooling raw
    maps mixes "is this epoch salient" with "where in the epoch": an event-free epoch with a
    larger map lowers the pooled ratio without saying anything about the events. Scaling each
    row to unit mean leaves only the within-epoch placement, weighting every row equally.

    Parameters
    ----------
    saliency, mask : ndarray, (rows, samples)

    Returns
    -------
    float
        Mean scaled saliency inside ÷ outside (1 = no preference); NaN without usable rows.
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    total = saliency.mean(1)
    keep = mask.any(1) & (~mask).any(1) & (total > 0)
    if not keep.any():
        return float("nan")
    return mass_ratio(saliency[keep] / total[keep, None], mask[keep])


def band_power(x: np.ndarray, lo: float, hi: float, sfreq: float = SFREQ) -> np.ndarray:
    """Welch power of ``x`` (..., samples) summed over ``lo``–``hi`` Hz (4-s segments)."""
    from scipy.signal import welch

    f, p = welch(np.asarray(x, dtype=np.float64), fs=sfreq, nperseg=int(4 * sfreq), axis=-1)
    return p[..., (f >= lo) & (f <= hi)].sum(-1)


__all__ = ["EPOCH_SAMPLES", "Explanation", "SFREQ", "STAGES", "band_power", "branch_last_convs", "channel_shapley",
           "epoch_signals", "event_mask", "explain_features", "explain_recording", "explain_windows",
           "explainable_model", "guided_envelope", "mass_ratio", "select_epochs", "step_centres", "upsample_steps",
           "window_for", "within_epoch_ratio"]
