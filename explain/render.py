"""Explanations as files: ``NAME.explain.npz`` and one PNG page per explained epoch.

:func:`write_explanation` runs the attribution (:mod:`explain.attribution`) on a preprocessed
recording and writes both; :func:`explain_hook` is the per-recording callback ``inference.py
--explain`` hands to the staging batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from torch import nn

from preprocess.core.atomic import atomic_write

from .attribution import SFREQ, STAGES, Explanation, epoch_signals, explain_recording, select_epochs


def save_npz(path: Path, exp: Explanation, channel_names: Sequence[str], probs: np.ndarray | None = None,
             info: dict | None = None) -> Path:
    """Write ``NAME.explain.npz`` atomically (maps as float16 to halve the size).

    Keys: ``epochs`` (n,), ``channels`` (C,) names, ``gradcam`` / ``guided_gradcam`` /
    ``guided_backprop`` (n, C, 3000), ``gradcam_branch1`` (n, C, 63), ``gradcam_branch2`` (n, C, 13),
    ``channel_attribution`` (n, C), ``target`` (n,) stage index, ``target_stage`` (n,) names,
    ``window_start`` / ``position`` (n,), ``window_logits`` (n, 5), ``probs`` (n, 5) whole-night
    voted probabilities of the explained epochs, ``info`` (JSON string).
    """
    import json

    arrays = {
        "epochs": exp.meta["epochs"], "channels": np.asarray(list(channel_names)),
        "gradcam": exp.gradcam.astype(np.float16), "guided_gradcam": exp.guided_gradcam.astype(np.float16),
        "guided_backprop": exp.guided_backprop.astype(np.float16),
        "gradcam_branch1": exp.gradcam_branch1, "gradcam_branch2": exp.gradcam_branch2,
        "channel_attribution": exp.channel_attribution, "target": exp.target,
        "target_stage": np.asarray([STAGES[t] for t in exp.target]),
        "window_start": exp.meta["window_start"], "position": exp.meta["position"],
        "window_logits": exp.window_logits, "info": np.asarray(json.dumps(info or {}, default=str)),
    }
    if probs is not None:
        arrays["probs"] = probs[exp.meta["epochs"]].astype(np.float32)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(Path(path), write)


def render_page(path: Path, signals_epoch: np.ndarray, saliency: np.ndarray, attribution: np.ndarray,
                channel_names: Sequence[str], title: str) -> Path:
    """One explanation page: each channel's 30-s trace over its saliency, attribution bars at the side.

    Parameters
    ----------
    signals_epoch : ndarray (C, 3000)
        Z-scored signals of the epoch.
    saliency : ndarray (C, 3000)
        Non-negative map (normalised here by its maximum over the whole page, so channels
        compare).
    attribution : ndarray (C,)
        Channel attribution (signed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    C = len(channel_names)
    t = np.arange(signals_epoch.shape[-1]) / SFREQ
    top = float(np.max(saliency)) if saliency.size else 0.0
    sal = saliency / top if top > 0 else np.zeros_like(saliency)
    fig = plt.figure(figsize=(12, 0.75 * C + 1.4))
    gs = fig.add_gridspec(C, 2, width_ratios=(6, 1), wspace=0.05, hspace=0.08)
    for c in range(C):
        ax = fig.add_subplot(gs[c, 0])
        ax.imshow(sal[c][None], aspect="auto", cmap="jet", vmin=0, vmax=1, alpha=0.55,
                  extent=(0, t[-1], -1, 1), interpolation="bilinear")
        y = np.clip(signals_epoch[c], -6, 6) / 6.0
        ax.plot(t, y, color="k", lw=0.5)
        ax.set_xlim(0, t[-1])
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.set_ylabel(channel_names[c], rotation=0, ha="right", va="center", fontsize=9)
        if c < C - 1:
            ax.set_xticks([])
        else:
            ax.set_xlabel("time in epoch (s)")
    axb = fig.add_subplot(gs[:, 1])
    ypos = np.arange(C)
    axb.barh(ypos, attribution, color=["tab:red" if a >= 0 else "tab:blue" for a in attribution])
    axb.set_ylim(C - 0.5, -0.5)
    axb.set_yticks(ypos, channel_names, fontsize=8)
    axb.yaxis.tick_right()
    axb.axvline(0, color="k", lw=0.5)
    axb.set_xlabel("channel attribution\n(Shapley, logit units)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.93, top=1 - 0.55 / (0.75 * C + 1.4), bottom=0.7 / (0.75 * C + 1.4))
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return Path(path)


def page_title(name: str, epoch: int, target: int, probs_row: np.ndarray | None, position: int, start: int,
               length: int = 20, demo: bool = False) -> str:
    """Title of an explanation page: recording, epoch and clock offset, stage and probability."""
    sec = epoch * 30
    clock = f"{sec // 3600:d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"
    stage = STAGES[target]
    p = f"  p({stage}) = {probs_row[target]:.2f}" if probs_row is not None else ""
    staged = f"  (staged {STAGES[int(np.argmax(probs_row))]})" if probs_row is not None else ""
    return (f"{name}  epoch {epoch} (+{clock})  explaining {stage}{p}{staged}  "
            f"[window {start}-{start + length - 1}, position {position}]" + ("  DEMO weights, simulated" if demo else ""))


def write_explanation(out: Path, name: str, model: nn.Module, signals: np.ndarray, channel_names: Sequence[str],
                      probs: np.ndarray, spec: str = "all", stage: str | None = None, position: str | int = "centre",
                      batch_size: int = 8, device: str = "cpu", max_pages: int | None = 50, demo: bool = False,
                      info: dict | None = None, map_name: str = "gradcam") -> dict:
    """Explain the epochs named by ``spec`` and write ``NAME.explain.npz`` plus PNG pages.

    Pages go to ``out/NAME.explain/epoch_00123.png`` (at most ``max_pages``, the first ones in
    epoch order; ``None`` = all). Returns a summary dict (paths, counts, seconds per epoch).
    """
    import time

    from staging.predict import channel_indices

    t0, c0 = time.perf_counter(), time.process_time()
    epochs = select_epochs(spec, probs)
    target = None if stage is None else STAGES.index(stage.upper() if stage.upper() != "R" else "REM")
    if target is None:
        target = probs.argmax(1)[epochs]  # the stage the hypnogram shows
    exp = explain_recording(model, signals, channel_indices(channel_names), epochs, target, position,
                            batch_size, device)
    t_explain, c_explain = time.perf_counter() - t0, time.process_time() - c0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    npz = save_npz(out / f"{name}.explain.npz", exp, channel_names, probs,
                   {**(info or {}), "position_policy": position, "spec": spec})
    pages = []
    if len(epochs) and (max_pages is None or max_pages > 0):
        folder = out / f"{name}.explain"
        folder.mkdir(exist_ok=True)
        sal = getattr(exp, map_name)
        for i, e in enumerate(epochs[: max_pages]):
            sig = epoch_signals(signals, [e])[0]
            title = page_title(name, int(e), int(exp.target[i]), probs[e], int(exp.meta["position"][i]),
                               int(exp.meta["window_start"][i]), min(model.cfg.seq_len, len(probs)), demo)
            pages.append(render_page(folder / f"epoch_{e:05d}.png", sig, sal[i], exp.channel_attribution[i],
                                     channel_names, title))
    n = max(len(epochs), 1)
    return {"npz": npz, "pages": pages, "n_epochs": len(epochs), "seconds_per_epoch": t_explain / n,
            "cpu_seconds_per_epoch": c_explain / n, "explanation": exp}


def explain_hook(spec: str, out):
    """The per-recording callback of ``inference.py --explain``: writes ``NAME.explain.npz`` and pages
    from the preprocessed signals the batch hands over (``on_signals`` of :func:`staging.batch.stage_file`).

    Parameters
    ----------
    spec : str
        Epochs to explain (:func:`select_epochs`).
    out : path
        Output folder.
    """

    def hook(stager, name: str, montaged, probs) -> str:
        info = stager.info
        ex = write_explanation(Path(out), name, stager.model, montaged.signals, list(montaged.channels), probs,
                               spec, device=stager.run.device, demo=bool(info.get("demo_weights")),
                               info={"weights": info.get("weights"), "demo_weights": info.get("demo_weights")})
        return (f"explained {ex['n_epochs']} epochs -> {ex['npz'].name}, {len(ex['pages'])} pages "
                f"({ex['seconds_per_epoch']:.2f} s per epoch)")

    return hook



__all__ = ["explain_hook", "page_title", "render_page", "save_npz", "write_explanation"]
