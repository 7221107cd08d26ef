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
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from data.windows import WindowDataset, collate_windows
from models import save_checkpoint, unwrap

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

log = logging.getLogger(__name__)


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
    # No host sync: a sum over no labelled epoch is 0 (with a graph), and the denominator is
    # computed with a mask instead of boolean indexing (which needs the count on the host).
    total = F.cross_entropy(logits, labels, weight=weight, ignore_index=-1, reduction="sum")
    valid = labels >= 0
    denom = (weight[labels.clamp_min(0)] * valid).sum() if weight is not None else valid.sum()
    return total / denom.clamp_min(1e-12)


def train_step(model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, device: torch.device,
               class_weights: torch.Tensor | None = None, grad_clip: float = 1.0,
               bf16: bool = True) -> dict[str, torch.Tensor]:
    """One optimisation step on one batch, without waiting for the device.

    Returns
    -------
    dict
        ``loss`` and ``grad_norm`` (before clipping; NaN when clipping is off) as 0-d tensors on
        the device: reading them (``float(...)``) synchronises, so callers read them only when
        they log (:class:`LossMeter`).
    """
    x = batch["x"].to(device, non_blocking=True)
    channels = batch["channels"].to(device, non_blocking=True)
    labels = batch["labels"].to(device, non_blocking=True)
    with autocast(device, bf16):
        logits = model(x, channels)
    loss = weighted_cross_entropy(logits, labels, class_weights)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip and grad_clip > 0:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip).detach()
    else:
        grad_norm = torch.full((), float("nan"), device=loss.device)
    optimizer.step()
    return {"loss": loss.detach(), "grad_norm": grad_norm}


def train_steps(model: nn.Module, batches: Iterable[dict], optimizer: torch.optim.Optimizer, scheduler: Any,
                device: torch.device, class_weights: torch.Tensor | None = None, grad_clip: float = 1.0,
                bf16: bool = True) -> Iterator[tuple[dict, dict[str, torch.Tensor]]]:
    """The optimisation loop shared by every trainer (:func:`fit`, ``nar_cls.train.fit``).

    For each batch: :func:`train_step`, then ``scheduler.step()``; yields ``(batch, stats)`` so
    the caller logs, evaluates or stops between steps. Nothing here waits for the device.
    """
    for batch in batches:
        stats = train_step(model, batch, optimizer, device, class_weights, grad_clip, bf16)
        scheduler.step()
        yield batch, stats


class LossMeter:
    """Step losses kept on the device; :meth:`mean` reads them with one host sync and resets.

    >>> m = LossMeter(); m.add(torch.tensor(1.0)); m.add(torch.tensor(2.0)); m.mean(), m.mean()
    (1.5, nan)
    """

    def __init__(self) -> None:
        self._losses: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor) -> None:
        self._losses.append(loss)

    def mean(self) -> float:
        if not self._losses:
            return math.nan
        values = torch.stack(self._losses).tolist()  # the one host sync
        self._losses = []
        return float(np.mean(values))


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
    the windows that contain it with :func:`models.windows.add_window_votes`, the voting used at
    inference, so a checkpoint is selected under the rule that stages with it.

    Returns
    -------
    dict
        Recording index → (n_epochs, K) float64 vote totals (summed probabilities: each row sums
        to the number of windows covering the epoch); rows never covered are NaN.
    """
    from models.windows import add_window_votes

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


class _Position:
    """Where the data stream is: ``epoch`` and this rank's keys consumed in it."""

    def __init__(self, epoch: int, consumed: int) -> None:
        self.epoch, self.consumed = epoch, consumed


def _batches(loader: DataLoader, sampler, pos: _Position, batch_size: int) -> Iterator[dict]:
    """Endless batches from ``pos`` on; ``pos`` is updated as each batch is drawn."""
    while True:
        sampler.set_epoch(pos.epoch, start=pos.consumed)
        for batch in loader:
            pos.consumed += batch_size
            yield batch
        pos.epoch, pos.consumed = pos.epoch + 1, 0


@dataclass
class _Run:
    """Progress of :func:`fit` (what a checkpoint must remember)."""

    step: int = 0
    best: float = -math.inf
    best_step: int | None = None
    last_val: dict | None = None
    resumed: bool = False
    pos: _Position = field(default_factory=lambda: _Position(0, 0))


def _restore(raw: nn.Module, optimizer, scheduler, state_path: Path, cfg: FitConfig, dist: DistInfo) -> _Run:
    """Progress of a new run, or of the one saved in ``state_path`` when resuming."""
    run = _Run()
    if not (cfg.resume and state_path.exists()):
        return run
    st = load_state(state_path)
    raw.load_state_dict(st["model"])
    optimizer.load_state_dict(st["optimizer"])
    scheduler.load_state_dict(st["scheduler"])
    run.step, run.resumed = st["step"], True
    run.pos = _Position(st["sampler"]["epoch"], st["sampler"]["consumed"])
    run.best = st["extra"].get("best", -math.inf)
    run.best_step = st["extra"].get("best_step")
    if len(st["rng"]) != dist.world_size and dist.is_main:
        log.warning("state saved with %d ranks, resuming with %d: data order and RNG streams will differ "
                    "from an uninterrupted run", len(st["rng"]), dist.world_size)
    set_rng_state(st["rng"][dist.rank % len(st["rng"])])
    return run


def _log_train(logger: RunLogger, pbar, run: _Run, meter: LossMeter, stats: dict, rate: float,
               optimizer, dist: DistInfo) -> None:
    """One train log line: the mean loss since the last one (all ranks), LR, gradient norm, speed."""
    loss = all_reduce_mean(meter.mean(), dist.device)
    grad_norm = float(stats["grad_norm"])
    lr = optimizer.param_groups[0]["lr"]
    epoch = run.pos.epoch
    pbar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", win_s=f"{rate:.1f}")
    logger.scalars({"train/loss": loss, "train/lr": lr, "train/grad_norm": grad_norm,
                    "train/windows_per_s": rate, "train/epoch": epoch}, run.step)
    logger.record({"step": run.step, "split": "train", "epoch": epoch, "loss": loss, "lr": lr,
                   "grad_norm": grad_norm, "windows_per_s": rate})


def _validate(model: nn.Module, raw: nn.Module, val_set: WindowDataset, cfg: FitConfig, dist: DistInfo,
              logger: RunLogger, run: _Run, train_mode: Callable[[nn.Module], None],
              meta: Callable[[str, dict | None], dict]) -> None:
    """Evaluate on the validation recordings, log, and save ``best`` when the selected metric improves."""
    broadcast_buffers(raw)  # BatchNorm statistics of rank 0 everywhere (as saved)
    metrics, _ = evaluate(raw, val_set, dist.device, cfg.eval_batch_size or cfg.batch_size,
                          cfg.eval_stride, cfg.workers, cfg.bf16)
    train_mode(model)
    value = metrics[cfg.select]
    run.last_val = {k: metrics[k] for k in ("n_epochs", "accuracy", "macro_f1", "kappa", "f1",
                                            "confusion", "mean_recording")}
    logger.scalars(scalar_metrics(metrics, "val/"), run.step)
    logger.record({"step": run.step, "split": "val", **run.last_val})
    if dist.is_main:
        tqdm.write(f"step {run.step}: val acc {metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.4f} "
                   f"kappa {metrics['kappa']:.4f}")
    if not math.isnan(value) and value > run.best:
        run.best, run.best_step = value, run.step
        if dist.is_main:
            save_checkpoint(raw, Path(cfg.out_dir) / "best", meta=json_safe(meta("best", run.last_val)))
        barrier()


def _check_replicas(model: nn.Module, raw: nn.Module, logger: RunLogger, step: int) -> None:
    """At the end of a run: every DDP rank must hold the same weights."""
    broadcast_buffers(raw)
    hashes = all_gather_object(params_sha256(model))
    logger.record({"step": step, "split": "done", "weights_sha256": hashes})
    if len(set(hashes)) != 1:
        raise RuntimeError(f"DDP ranks ended with different weights: {hashes}")


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
    run = _restore(raw, optimizer, scheduler, state_path, cfg, dist)
    logger = RunLogger(out, enabled=dist.is_main, resume_step=run.step if run.resumed else None)
    if dist.is_main:
        log.info("%s step %d/%d (epoch %d, %d windows into it); %d windows/epoch/rank",
                 "resuming at" if run.resumed else "starting at", run.step, cfg.max_steps,
                 run.pos.epoch, run.pos.consumed, len(sampler))

    loader = make_loader(train_set, cfg.batch_size, sampler, cfg.workers, drop_last=True,
                         pin_memory=dist.device.type == "cuda")
    if sampler.per_rank < cfg.batch_size:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {sampler.per_rank} windows per rank per epoch")

    def checkpoint_meta(kind: str, metrics: dict | None) -> dict:
        return {**cfg.meta, "checkpoint": kind, "step": run.step, "epoch": run.pos.epoch,
                "selected_on": f"val/{cfg.select}", "metrics": metrics}

    def save(metrics: dict | None) -> None:
        rng = all_gather_object(get_rng_state())  # every rank's RNG, for exact resume
        if dist.is_main:
            save_checkpoint(raw, out / "last", meta=json_safe(checkpoint_meta("last", metrics)))
            save_state(state_path, model=raw, optimizer=optimizer, scheduler=scheduler, step=run.step,
                       sampler={"epoch": run.pos.epoch, "consumed": run.pos.consumed}, rng=rng,
                       extra={"best": run.best, "best_step": run.best_step})
        barrier()

    # ---- loop -------------------------------------------------------------------------------
    train_mode(model)
    start_step = run.step
    pbar = tqdm(total=cfg.max_steps, initial=run.step, disable=not dist.is_main, dynamic_ncols=True, desc="train")
    t0, seen, meter = time.time(), 0, LossMeter()
    stop = cfg.max_steps if cfg.stop_at is None else min(cfg.max_steps, cfg.stop_at)
    batches = islice(_batches(loader, sampler, run.pos, cfg.batch_size), max(0, stop - run.step))
    for batch, stats in train_steps(model, batches, optimizer, scheduler, dist.device, weights,
                                    cfg.grad_clip, cfg.bf16):
        run.step += 1
        seen += batch["x"].shape[0]
        meter.add(stats["loss"])
        pbar.update(1)
        if run.step % cfg.log_every == 0 or run.step == stop:
            rate = seen * dist.world_size / max(time.time() - t0, 1e-9)
            _log_train(logger, pbar, run, meter, stats, rate, optimizer, dist)
            t0, seen = time.time(), 0
        if val_set is not None and (run.step % cfg.eval_every == 0 or run.step == cfg.max_steps):
            _validate(model, raw, val_set, cfg, dist, logger, run, train_mode, checkpoint_meta)
        if run.step % cfg.ckpt_every == 0 or run.step == stop:
            save(run.last_val)
    pbar.close()

    if run.step >= cfg.max_steps and run.step > start_step:  # finished here
        _check_replicas(model, raw, logger, run.step)
    logger.close()
    return {"step": run.step, "best": None if run.best_step is None else run.best, "best_step": run.best_step,
            "val": run.last_val}
