"""Training one fold: epochs of window batches, validation after each epoch, best-epoch selection.

One loop serves both data paths: batches of cached embeddings (``partial``) and batches of
windows read from the HDF5 files (``full`` / ``scratch``). The optimisation step is
:func:`engine.loop.train_steps`, the optimisation loop every trainer shares (class-weighted
cross-entropy, gradient clipping, bf16 autocast on GPU, losses kept on the device); optimiser and
schedule come from :mod:`engine.optim` (AdamW, warmup-cosine that never reaches LR 0).
``engine.loop.fit`` drives it by steps and scores sleep staging; the epochs, the validation on
subject labels and the best-epoch selection are what this module adds.

Model selection uses the inner validation subjects only: after each epoch the score named by
``select`` is computed on them and the weights of the best epoch are kept (ties: lower
validation loss); ``patience`` stops early after that many epochs without improvement.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from engine.loop import LossMeter, autocast, make_loader, train_steps, weighted_cross_entropy
from engine.optim import WarmupCosine, build_optimizer
from preprocess.core.atomic import atomic_write_csv

from .cohort import Cohort
from .model import NarModel, WindowHead, window_embedding

SELECT = ("loss", "auc", "bacc")


@dataclass
class TrainConfig:
    """Optimisation settings of one fold (see the CLI help for meanings and defaults)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    backbone_lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    select: str = "loss"
    patience: int = 0
    steps_per_epoch: int | None = None
    bf16: bool = True
    workers: int = 0
    eval_batch_size: int = 64
    seed: int = 0
    stage_weight: float = 0.5


class HeadOnEmbeddings(nn.Module):
    """Adapter giving a head the ``model(x, channels)`` signature used by :func:`engine.loop.train_step`:
    ``x`` is a batch of cached embeddings and ``channels`` is ignored."""

    def __init__(self, head: WindowHead):
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor, channels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(x)


def joint_train_steps(model: NarModel, batches: Iterable[dict], optimizer, scheduler, device: torch.device,
                      class_weights: torch.Tensor | None = None, grad_clip: float = 1.0, bf16: bool = True,
                      stage_weight: float = 0.5):
    """The ``joint`` optimisation loop: diagnosis CE + ``stage_weight`` × staging CE per batch.

    Batches come from a :class:`nar_cls.cohort.LabelledWindows` with ``with_stages``: ``labels``
    (B, 1 + L) = subject class, then the stage of each epoch (−1 = none; such epochs add no
    staging loss). The staging CE is unweighted (stage classes as scored). Yields like
    :func:`engine.loop.train_steps`.
    """
    for batch in batches:
        x = batch["x"].to(device, non_blocking=True)
        channels = batch["channels"].to(device, non_blocking=True)
        labels = batch["labels"].to(device, non_blocking=True)
        with autocast(device, bf16):
            diag, stages = model.joint_forward(x, channels)
        loss = weighted_cross_entropy(diag[:, None].float(), labels[:, :1], class_weights)
        if stage_weight > 0:
            loss = loss + stage_weight * weighted_cross_entropy(stages.float(), labels[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip and grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
        optimizer.step()
        scheduler.step()
        yield batch, {"loss": loss.detach()}


def embedding_batches(emb: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterable[dict]:
    """One shuffled pass over cached embeddings as ``{"x", "channels", "labels"}`` batches.

    A final batch of one window is dropped (BatchNorm needs two samples in training mode).
    """
    order = rng.permutation(len(y))
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        if len(idx) < 2:
            continue
        yield {"x": torch.from_numpy(emb[idx]), "channels": torch.zeros(len(idx), 1, dtype=torch.long),
               "labels": torch.from_numpy(y[idx])}


def window_batches(cohort: Cohort, subjects: np.ndarray, batch_size: int, rng: np.random.Generator,
                   workers: int = 0) -> Iterable[dict]:
    """One epoch of training windows of ``subjects`` (random offsets, shuffled, full batches)."""
    keys = cohort.train_keys(subjects, rng)
    return make_loader(cohort.data, max(2, min(batch_size, len(keys))), keys, workers, drop_last=True)


@torch.no_grad()
def predict_embeddings(head: WindowHead, emb: np.ndarray, device: torch.device, batch_size: int = 4096) -> np.ndarray:
    """Class probabilities (n, K) of cached embeddings."""
    head.eval()
    out = [torch.softmax(head(torch.from_numpy(emb[i : i + batch_size]).to(device)).float(), 1).cpu()
           for i in range(0, len(emb), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.n_classes), np.float32)


@torch.no_grad()
def predict_windows(model: NarModel, cohort: Cohort, windows: np.ndarray, device: torch.device,
                    batch_size: int = 64, workers: int = 0, bf16: bool = True) -> np.ndarray:
    """Class probabilities (n, K) of evaluation windows read from the files."""
    model.eval()
    probs = []
    for batch in make_loader(cohort.data, batch_size, cohort.eval_keys(windows), workers):
        with autocast(device, bf16):
            z = window_embedding(model.backbone, batch["x"].to(device), batch["channels"].to(device))
        probs.append(torch.softmax(model.head(z.float()).float(), 1).cpu())
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.head.n_classes), np.float32)


def weighted_nll(prob: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Class-weighted mean negative log-likelihood (the training loss, from probabilities)."""
    w = weights[y]
    nll = -np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, 1.0))
    return float((w * nll).sum() / max(w.sum(), 1e-12))


def selection_score(val: dict, select: str) -> tuple[float, float]:
    """Sort key of a validation result (higher is better): (score, −loss)."""
    if select not in SELECT:
        raise ValueError(f"unknown selection metric {select!r}; expected one of {SELECT}")
    loss = val["loss"]
    if select == "loss":
        return (-loss, -loss)
    value = val["subject"]["roc_auc" if select == "auc" else "balanced_accuracy"]
    return (-math.inf if value is None or math.isnan(value) else value, -loss)


def fit(model: nn.Module, trainable: nn.Module, groups: list[dict], batches: Callable[[int], Iterable[dict]],
        steps_per_epoch: int, validate: Callable[[], dict], cfg: TrainConfig, class_weights: np.ndarray,
        device: torch.device, set_train_mode: Callable[[], None], history: str | Path | None = None,
        log: Callable[[str], None] = print, tb=None, steps: Callable = train_steps) -> dict:
    """Train for ``cfg.epochs`` epochs, keep the best epoch's weights in ``trainable``.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x, channels)`` on the batches (a :class:`NarModel` or a
        :class:`HeadOnEmbeddings`).
    trainable : nn.Module
        The part whose weights change (its state is snapshotted at the best epoch and restored
        at the end).
    groups : list of dict
        Optimiser parameter groups (:func:`nar_cls.model.optimizer_groups`).
    batches : callable
        ``batches(epoch)`` → iterable of training batches of that epoch.
    steps_per_epoch : int
        Optimiser steps per epoch (for the LR schedule; ``cfg.steps_per_epoch`` caps it).
    validate : callable
        Returns ``{"loss": float, "subject": metrics, "window": metrics}`` on the validation subjects.
    cfg : TrainConfig
    class_weights : ndarray
        Cross-entropy class weights (from training subject counts).
    device : torch.device
    set_train_mode : callable
        Puts the model in training mode (a frozen backbone stays in eval mode).
    history : path, optional
        CSV written with one row per epoch.
    log : callable
        Where progress lines go.
    tb : SummaryWriter, optional
        TensorBoard writer.
    steps : callable
        The optimisation loop (:func:`engine.loop.train_steps`, or :func:`joint_train_steps`).

    Returns
    -------
    dict
        ``best_epoch``, ``best_val`` (validation result of that epoch), ``epochs_run``.
    """
    if cfg.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.steps_per_epoch)
    steps_per_epoch = max(1, steps_per_epoch)
    optimizer = build_optimizer(groups)
    total = cfg.epochs * steps_per_epoch
    scheduler = WarmupCosine(optimizer, int(round(cfg.warmup_epochs * steps_per_epoch)), total, cfg.min_lr_ratio)
    weights = torch.as_tensor(class_weights, dtype=torch.float32, device=device)
    best_key, best_epoch, best_val, best_state, stale = None, 0, None, None, 0
    rows = []
    for epoch in range(1, cfg.epochs + 1):
        set_train_mode()
        meter = LossMeter()
        for _, stats in steps(model, islice(batches(epoch), steps_per_epoch), optimizer, scheduler,
                              device, weights, cfg.grad_clip, cfg.bf16):
            meter.add(stats["loss"])
        train_loss = meter.mean()
        val = validate()
        key = selection_score(val, cfg.select)
        improved = best_key is None or key > best_key
        if improved:
            best_key, best_epoch, best_val, stale = key, epoch, val, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in trainable.state_dict().items()})
        else:
            stale += 1
        row = {"epoch": epoch, "train_loss": train_loss,
               "val_loss": val["loss"], "val_subject_auc": val["subject"]["roc_auc"],
               "val_subject_bacc": val["subject"]["balanced_accuracy"],
               "val_window_bacc": val["window"]["balanced_accuracy"], "lr": optimizer.param_groups[0]["lr"],
               "best": int(improved)}
        rows.append(row)
        if tb is not None:
            for k, v in row.items():
                if k != "epoch" and v is not None and not (isinstance(v, float) and math.isnan(v)):
                    tb.add_scalar(k, v, epoch)
        log(f"  epoch {epoch:3d}  train loss {row['train_loss']:.4f}  val loss {val['loss']:.4f}  "
            f"val subject AUC {_fmt(row['val_subject_auc'])}  bacc {_fmt(row['val_subject_bacc'])}"
            + ("  *" if improved else ""))
        if cfg.patience and stale >= cfg.patience:
            log(f"  early stop: no improvement of val {cfg.select} for {cfg.patience} epochs")
            break
    if history is not None:
        atomic_write_csv(history, rows)
    trainable.load_state_dict(best_state)
    return {"best_epoch": best_epoch, "best_val": best_val, "epochs_run": len(rows)}


def _fmt(v) -> str:
    return "  nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
