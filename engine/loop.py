"""The training loop shared by ``train.py`` and ``finetune.py``: steps, evaluation, checkpoints.

Read :func:`fit` top to bottom: it restores the state (``--resume``), then repeats
*batch → train step → log → evaluate → checkpoint* until ``max_steps``. Everything that makes a
resumed run identical to an uninterrupted one is in the state file: weights, optimizer,
scheduler, step, data position (epoch + windows consumed on this rank) and the RNG states of
every rank. The data plan itself is a function of ``(seed, epoch)`` (:mod:`data.sampler`), and
DataLoaders get their own generator so creating one never consumes the global torch RNG (which
drives dropout).
"""

from __future__ import annotations

import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.windows import WindowDataset, collate_windows
from models import save_checkpoint

from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    barrier,
    broadcast_buffers,
    get_rank,
    get_world_size,
)
from .logger import RunLogger
from .metrics import evaluate_predictions, json_safe, scalar_metrics
from .state import get_rng_state, load_state, save_state, set_rng_state


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when asked; a no-op context on CPU (CPU runs stay float32)."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                           weight: torch.Tensor | None = None) -> torch.Tensor:
    """Class-weighted cross-entropy over every epoch of a batch, ignoring labels −1.

    Same value as ``F.cross_entropy(..., weight, ignore_index=-1, reduction="mean")`` (sum of
    weighted losses / sum of weights of the counted epochs), but a batch without any labelled
    epoch gives a zero loss that still has a graph (so DDP's gradient all-reduce still runs).

    Parameters
    ----------
    logits : Tensor
        (B, L, K).
    labels : Tensor
        (B, L) long, −1 = ignore.
    weight : Tensor, optional
        (K,) class weights.
    """
    logits = logits.float().reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    valid = labels >= 0
    if not bool(valid.any()):
        return logits.sum() * 0.0
    total = F.cross_entropy(logits, labels, weight=weight, ignore_index=-1, reduction="sum")
    denom = weight[labels[valid]].sum() if weight is not None else valid.sum()
    return total / denom.clamp_min(1e-12)


def train_step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, device: torch.device,
               class_weights: torch.Tensor | None = None, grad_clip: float = 1.0,
               bf16: bool = True) -> dict[str, float]:
    """One optimisation step on one batch.

    Returns
    -------
    dict
        ``loss`` and ``grad_norm`` (before clipping; NaN when clipping is off).
    """
    x = batch["x"].to(device, non_blocking=True)
    channels = batch["channels"].to(device, non_blocking=True)
    labels = batch["labels"].to(device, non_blocking=True)
    with autocast(device, bf16):
        logits = model(x, channels)
    loss = weighted_cross_entropy(logits, labels, class_weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = float("nan")
    if grad_clip and grad_clip > 0:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, grad_clip))
    optimizer.step()
    return {"loss": float(loss.detach()), "grad_norm": grad_norm}


def make_loader(dataset, batch_size: int, sampler, workers: int = 0, drop_last: bool = False,
                pin_memory: bool = False) -> DataLoader:
    """DataLoader over window keys, with a private generator (no draw from the global torch RNG)."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_windows,
                      num_workers=workers, drop_last=drop_last, pin_memory=pin_memory,
                      persistent_workers=workers > 0, generator=torch.Generator(),
                      prefetch_factor=4 if workers > 0 else None)


@torch.no_grad()
def predict(model: nn.Module, dataset: WindowDataset, rec_indices, device: torch.device, batch_size: int = 32,
            stride: int | None = None, workers: int = 0, bf16: bool = True) -> dict[int, np.ndarray]:
    """Per-epoch voted probabilities of whole recordings (over the lights-off range if any).

    Windows with ``stride`` cover every epoch; each epoch's softmax probabilities are summed over
    the windows that contain it with :func:`staging.predict.add_window_votes`, the voting used at
    inference, so a checkpoint is selected under the rule that stages with it.

    Returns
    -------
    dict
        Recording index → (n_epochs, K) float64 vote totals (summed probabilities: each row sums
        to the number of windows covering the epoch); rows never covered are NaN.
    """
    from staging.predict import add_window_votes

    model.eval()
    keys = [k for i in rec_indices for k in dataset.cover_windows(i, stride)]
    votes = {i: torch.zeros(dataset.n_epochs(i), model.cfg.n_classes, dtype=torch.float64) for i in rec_indices}
    if keys:
        for batch in make_loader(dataset, batch_size, keys, workers):
            with autocast(device, bf16):
                logits = model(batch["x"].to(device), batch["channels"].to(device))
            logits = logits.float().cpu()
            for b, (i, s) in enumerate(zip(batch["rec"].tolist(), batch["start"].tolist())):
                add_window_votes(votes[i], torch.tensor([s]), logits[b:b + 1])
    out = {i: v.numpy() for i, v in votes.items()}
    for v in out.values():
        v[v.sum(1) == 0] = np.nan
    return out


def evaluate(model: nn.Module, dataset: WindowDataset, device: torch.device, batch_size: int = 32,
             stride: int | None = None, workers: int = 0, bf16: bool = True) -> tuple[dict, dict]:
    """Metrics of a model on every recording of ``dataset`` (sharded over DDP ranks).

    Each rank predicts ``recordings[rank::world]``; true and predicted stages are gathered so
    every rank returns the same result.

    Returns
    -------
    tuple
        ``(metrics, predictions)``: metrics of :func:`engine.metrics.evaluate_predictions`;
        predictions maps ``"DATASET/RECORDING"`` → ``(y_true, y_pred)`` int arrays over the
        whole recording (−1 where unknown / outside the evaluated range / not predicted).
    """
    mine = list(range(len(dataset)))[get_rank()::get_world_size()]
    probs = predict(model, dataset, mine, device, batch_size, stride, workers, bf16)
    local = {}
    for i in mine:
        lo, hi = dataset.ranges[i]
        y_true = dataset.stages[i].copy()
        y_true[:lo] = -1
        y_true[hi:] = -1
        covered = ~np.isnan(probs[i][:, 0])
        y_pred = np.where(covered, np.nan_to_num(probs[i]).argmax(1), -1)
        name = f"{dataset.rows[i].get('dataset', '')}/{dataset.rows[i]['recording']}"
        local[name] = (y_true.astype(np.int8), y_pred.astype(np.int8))
    merged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in all_gather_object(local):
        merged.update(part)
    return evaluate_predictions(merged), merged


def params_sha256(model: nn.Module) -> str:
    """Hash of all parameters and buffers (to check that DDP ranks hold identical weights)."""
    h = hashlib.sha256()
    for k, v in sorted(unwrap(model).state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class FitConfig:
    """Settings of :func:`fit`.

    Attributes
    ----------
    out_dir : Path
        Run folder (``best.*``, ``last.*``, ``state.pt``, ``metrics.jsonl``, ``tb/``).
    max_steps : int
        Optimizer steps of the whole run (the LR schedule spans them).
    batch_size : int
        Windows per step per rank.
    eval_every, ckpt_every, log_every : int
        Intervals in steps (evaluation and checkpoint also happen at the last step).
    grad_clip : float
        Max global gradient norm (0 = off).
    select : {"macro_f1", "kappa", "accuracy"}
        Validation metric that picks ``best``.
    bf16 : bool
        bf16 autocast (CUDA only).
    workers : int
        DataLoader workers per rank.
    eval_batch_size, eval_stride : int
        Evaluation batch and window stride (default: batch_size, seq_len).
    resume : bool
        Continue from ``out_dir/state.pt`` when it exists.
    stop_at : int, optional
        Stop (with a checkpoint) once this step is reached, e.g. for time-limited jobs; a later
        ``resume`` finishes the run exactly as if it had not stopped.
    meta : dict
        Extra JSON stored in every checkpoint's ``.json`` (provenance, arguments, splits...).
    """

    out_dir: Path
    max_steps: int
    batch_size: int
    eval_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 10
    grad_clip: float = 1.0
    select: str = "macro_f1"
    bf16: bool = True
    workers: int = 0
    eval_batch_size: int | None = None
    eval_stride: int | None = None
    resume: bool = False
    stop_at: int | None = None
    meta: dict = field(default_factory=dict)


def _batches(loader: DataLoader, sampler, epoch: int, consumed: int, batch_size: int) -> Iterator[tuple]:
    """Endless ``(epoch, consumed, batch)``; ``consumed`` counts this rank's keys used in ``epoch``."""
    while True:
        sampler.set_epoch(epoch, start=consumed)
        for batch in loader:
            consumed += batch_size
            yield epoch, consumed, batch
        epoch, consumed = epoch + 1, 0


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, train_set: WindowDataset,
        sampler, val_set: WindowDataset | None, class_weights: torch.Tensor | None, cfg: FitConfig,
        dist: DistInfo, train_mode: Callable[[nn.Module], None] | None = None) -> dict:
    """Train ``model`` for ``cfg.max_steps`` steps, evaluating, selecting and checkpointing.

    Parameters
    ----------
    model : nn.Module
        The model, already on ``dist.device`` and wrapped in DDP when distributed.
    optimizer, scheduler
        Built over the model's trainable parameters; ``scheduler.step()`` once per step.
    train_set, sampler
        Training windows and their :class:`data.sampler.WindowSampler` (this rank's shard).
    val_set : WindowDataset or None
        Validation recordings; ``best`` is chosen on them only (no ``best`` without them).
    class_weights : Tensor or None
        Cross-entropy class weights.
    cfg : FitConfig
        Run settings.
    dist : DistInfo
        From :func:`engine.distributed.setup_distributed`.
    train_mode : callable, optional
        Puts the model in training mode (default ``model.train()``); fine-tuning uses it to
        keep a frozen backbone in eval mode.

    Returns
    -------
    dict
        ``step``, ``best`` (selected validation metric value or None), ``best_step`` and the last
        validation metrics.
    """
    raw = unwrap(model)
    out = Path(cfg.out_dir)
    state_path = out / "state.pt"
    train_mode = train_mode or (lambda m: m.train())
    weights = class_weights.to(dist.device) if class_weights is not None else None

    # ---- restore ----------------------------------------------------------------------------
    step, epoch, consumed, best, best_step, last_val = 0, 0, 0, -math.inf, None, None
    resumed = cfg.resume and state_path.exists()
    if resumed:
        st = load_state(state_path)
        raw.load_state_dict(st["model"])
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        step, epoch, consumed = st["step"], st["sampler"]["epoch"], st["sampler"]["consumed"]
        best = st["extra"].get("best", -math.inf)
        best_step = st["extra"].get("best_step")
        if len(st["rng"]) != dist.world_size and dist.is_main:
            print(f"warning: state saved with {len(st['rng'])} ranks, resuming with {dist.world_size}: "
                  "data order and RNG streams will differ from an uninterrupted run")
        set_rng_state(st["rng"][dist.rank % len(st["rng"])])
    logger = RunLogger(out, enabled=dist.is_main, resume_step=step if resumed else None)
    if dist.is_main:
        print(f"{'resuming at' if resumed else 'starting at'} step {step}/{cfg.max_steps} "
              f"(epoch {epoch}, {consumed} windows into it); {len(sampler)} windows/epoch/rank")

    loader = make_loader(train_set, cfg.batch_size, sampler, cfg.workers, drop_last=True,
                         pin_memory=dist.device.type == "cuda")
    if sampler.per_rank < cfg.batch_size:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {sampler.per_rank} windows per rank per epoch")
    batches = _batches(loader, sampler, epoch, consumed, cfg.batch_size)

    def checkpoint_meta(kind: str, metrics: dict | None) -> dict:
        return {**cfg.meta, "checkpoint": kind, "step": step, "epoch": epoch,
                "selected_on": f"val/{cfg.select}", "metrics": metrics}

    def save(metrics: dict | None) -> None:
        rng = all_gather_object(get_rng_state())  # every rank's RNG, for exact resume
        if dist.is_main:
            save_checkpoint(raw, out / "last", meta=json_safe(checkpoint_meta("last", metrics)))
            save_state(state_path, model=raw, optimizer=optimizer, scheduler=scheduler, step=step,
                       sampler={"epoch": epoch, "consumed": consumed}, rng=rng,
                       extra={"best": best, "best_step": best_step})
        barrier()

    # ---- loop -------------------------------------------------------------------------------
    train_mode(model)
    start_step = step
    pbar = tqdm(total=cfg.max_steps, initial=step, disable=not dist.is_main, dynamic_ncols=True, desc="train")
    t0, seen, losses = time.time(), 0, []
    stop = cfg.max_steps if cfg.stop_at is None else min(cfg.max_steps, cfg.stop_at)
    while step < stop:
        epoch, consumed, batch = next(batches)
        stats = train_step(model, batch, optimizer, dist.device, weights, cfg.grad_clip, cfg.bf16)
        scheduler.step()
        step += 1
        seen += batch["x"].shape[0]
        losses.append(stats["loss"])
        pbar.update(1)

        if step % cfg.log_every == 0 or step == stop:
            loss = all_reduce_mean(float(np.mean(losses)), dist.device)
            rate = seen * dist.world_size / max(time.time() - t0, 1e-9)
            lr = optimizer.param_groups[0]["lr"]
            pbar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", win_s=f"{rate:.1f}")
            logger.scalars({"train/loss": loss, "train/lr": lr, "train/grad_norm": stats["grad_norm"],
                            "train/windows_per_s": rate, "train/epoch": epoch}, step)
            logger.record({"step": step, "split": "train", "epoch": epoch, "loss": loss, "lr": lr,
                           "grad_norm": stats["grad_norm"], "windows_per_s": rate})
            t0, seen, losses = time.time(), 0, []

        if val_set is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            broadcast_buffers(raw)  # BatchNorm statistics of rank 0 everywhere (as saved)
            metrics, _ = evaluate(raw, val_set, dist.device, cfg.eval_batch_size or cfg.batch_size,
                                  cfg.eval_stride, cfg.workers, cfg.bf16)
            train_mode(model)
            value = metrics[cfg.select]
            last_val = {k: metrics[k] for k in ("n_epochs", "accuracy", "macro_f1", "kappa", "f1",
                                                "confusion", "mean_recording")}
            logger.scalars(scalar_metrics(metrics, "val/"), step)
            logger.record({"step": step, "split": "val", **last_val})
            if dist.is_main:
                tqdm.write(f"step {step}: val acc {metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.4f} "
                           f"kappa {metrics['kappa']:.4f}")
            if not math.isnan(value) and value > best:
                best, best_step = value, step
                if dist.is_main:
                    save_checkpoint(raw, out / "best", meta=json_safe(checkpoint_meta("best", last_val)))
                barrier()

        if step % cfg.ckpt_every == 0 or step == stop:
            save(last_val)
    pbar.close()

    if step >= cfg.max_steps and step > start_step:  # finished here: do all ranks hold the same weights?
        broadcast_buffers(raw)
        hashes = all_gather_object(params_sha256(model))
        logger.record({"step": step, "split": "done", "weights_sha256": hashes})
        if len(set(hashes)) != 1:
            raise RuntimeError(f"DDP ranks ended with different weights: {hashes}")
    logger.close()
    return {"step": step, "best": None if best_step is None else best, "best_step": best_step, "val": last_val}

