"""Train LPSGM on harmonized HDF5 datasets (single process, or DDP under ``torchrun``).

Examples
--------
Single GPU / CPU::

    python train.py --data /data/h5 --model lpsgm --out runs/lpsgm

Eight GPUs on one node, then four nodes (run the same command on every node; elastic: a failed
worker restarts every rank from the last checkpoint)::

    torchrun --standalone --nproc_per_node 8 --max-restarts 3 train.py --data /data/h5 \\
        --global-batch-size 32 --resume --out runs/lpsgm
    torchrun --nnodes 4 --nproc_per_node 8 --max-restarts 3 --rdzv_backend c10d \\
        --rdzv_endpoint $MASTER_ADDR:29500 --rdzv_id lpsgm train.py --data /data/h5 \\
        --global-batch-size 256 --lr-scaling sqrt --resume --out /shared/runs/lpsgm

N processes at global batch G train as one process at batch G (global BatchNorm statistics and
global weighted loss; see docs/cluster.md). ``--resume`` on a fresh run folder simply starts.

The run folder receives ``best.safetensors/.json`` (selected on validation macro-F1 or κ),
``last.*``, ``state.pt`` (for ``--resume``), ``metrics.jsonl``, ``config.json``,
``splits.json`` and TensorBoard logs in ``tb/``. See ``train.sh`` for the paper's settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from data import MIXING_MODES, WindowDataset, WindowSampler, class_weights, load_recordings, split_by_subject
from engine.cli_errors import InputError, check_batch, check_weights_path, run_main
from engine.distributed import cleanup, global_batchnorm, setup_distributed
from engine.logger import provenance
from engine.loop import FitConfig, evaluate, fit
from engine.metrics import json_safe
from engine.optim import WarmupCosine, build_optimizer, param_groups
from models import PRESETS, build_model, load_checkpoint
from preprocess.core.channels import CANONICAL
from preprocess.core.hdf5 import training_preprocessing
from preprocess.core.stages import STAGE_NAMES
from preprocess.core.version import add_version_argument

log = logging.getLogger("train")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_version_argument(p)
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", required=True, metavar="ROOT",
                   help="harmonized roots (each holds one folder per dataset)")
    g.add_argument("--datasets", nargs="+", metavar="NAME", help="use only these dataset folders")
    g.add_argument("--val-fraction", type=float, default=0.1, help="validation subjects per dataset")
    g.add_argument("--test-fraction", type=float, default=0.0,
                   help="test subjects per dataset (held out, evaluated once at the end with best)")
    g.add_argument("--mixing", choices=MIXING_MODES, default="proportional", help="dataset mixing weights")
    g.add_argument("--temperature", type=float, default=2.0, help="T of --mixing temperature")
    g.add_argument("--samples-per-epoch", type=int, help="windows per epoch (default: one pass over the data)")
    g.add_argument("--channels", nargs="+", choices=CANONICAL, metavar="CH",
                   help="use only these canonical channels (default: every channel of each recording)")
    g.add_argument("--channel-dropout", type=float, default=0.5,
                   help="probability that a window keeps only a random channel subset (>= 1 EEG)")
    g.add_argument("--gain-range", type=float, default=1.0, metavar="R",
                   help="multiply each channel of a training window by a gain log-uniform in [1/R, R] "
                        "(amplitude relative to the file's SD varies between real files; 1 = off)")
    g.add_argument("--wake-margin", type=float, default=30.0,
                   help="minutes of wake kept before/after sleep (lights-off policy); < 0 = whole night")
    g.add_argument("--class-weights", choices=["inverse", "sqrt", "none"], default="inverse",
                   help="cross-entropy class weights from the training manifests")
    g.add_argument("--workers", type=int, default=4, help="DataLoader workers per process")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=sorted(PRESETS), default="lpsgm", help="architecture preset")
    g.add_argument("--n-blocks", type=int, help="override the number of transformer blocks")
    g.add_argument("--seq-len", type=int, default=20, help="epochs per window")
    g.add_argument("--dropout", type=float, help="override sequence-encoder dropout")
    g.add_argument("--init", help="start from these weights (ours or an official .pth)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, help="windows per step per process (default 32; or give "
                   "--global-batch-size)")
    g.add_argument("--global-batch-size", type=int, metavar="G",
                   help="windows per step over all processes; each process takes G / world size (G must divide)")
    g.add_argument("--lr", type=float, default=1e-4,
                   help="peak learning rate (AdamW) at the reference global batch of 32 windows")
    g.add_argument("--lr-scaling", choices=["none", "sqrt", "linear"], default="none",
                   help="peak LR = --lr x (global batch / 32)^p with p = 0, 1/2 (AdamW rule, docs/cluster.md) or 1")
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True,
                   help="BatchNorm statistics of the global batch when several processes train, so DDP equals "
                        "one process at the same global batch (one small all-reduce per BN layer)")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--min-lr-ratio", type=float, default=1e-2, help="LR floor as a fraction of --lr (> 0)")
    g.add_argument("--max-steps", type=int, help="optimizer steps (default: --epochs x steps per epoch)")
    g.add_argument("--epochs", type=float, default=25, help="used when --max-steps is not given")
    g.add_argument("--warmup-steps", type=int, help="default: --warmup-epochs x steps per epoch")
    g.add_argument("--warmup-epochs", type=float, default=1.0)
    g.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0 = off)")
    g.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="autocast on CUDA")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    g.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/state.pt if present (a fresh folder simply starts; implied after "
                        "an elastic restart by torchrun)")
    g.add_argument("--stop-at", type=int, help="stop (with a checkpoint) at this step; resume later")
    g.add_argument("--eval-every", type=int, default=1000, help="steps between validations")
    g.add_argument("--ckpt-every", type=int, default=0, help="steps between checkpoints (0 = by time only)")
    g.add_argument("--ckpt-minutes", type=float, default=10.0,
                   help="also checkpoint after this many minutes since the last one: the most work a failure "
                        "loses (0 = steps only)")
    g.add_argument("--log-every", type=int, default=10, help="steps between log lines")
    g.add_argument("--select", choices=["macro_f1", "kappa", "accuracy"], default="macro_f1",
                   help="validation metric that picks best")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on GPU)")
    g.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda when available")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:  # before joining the process group: every rank stops here with the same one line (exit 2)
        args.batch_size, args.peak_lr = batch_and_lr(args, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.init:
        check_weights_path(args.init)  # before ~minutes of data loading
    dist = setup_distributed(args.device)
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if restarts and not args.resume:  # a restarted worker starting from step 0 would overwrite state.pt
        log.warning("elastic restart %d: resuming from the last checkpoint (--resume implied)", restarts)
        args.resume = True
    out = Path(args.out)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    _set_backends(args.deterministic, dist.device)
    data = _data(args, dist)
    model, raw = _model(args, dist)
    optimizer = build_optimizer(param_groups(raw.named_parameters(), args.peak_lr, args.weight_decay))
    scheduler = WarmupCosine(optimizer, data.warmup, data.max_steps, args.min_lr_ratio)
    meta = _provenance(args, dist, data, out)
    cfg = FitConfig(out_dir=out, max_steps=data.max_steps, batch_size=args.batch_size, eval_every=args.eval_every,
                    ckpt_every=args.ckpt_every, ckpt_minutes=args.ckpt_minutes or None, log_every=args.log_every, grad_clip=args.grad_clip,
                    select=args.select, bf16=args.precision == "bf16", workers=args.workers,
                    resume=args.resume, stop_at=args.stop_at, meta=meta)
    summary = fit(model, optimizer, scheduler, data.train_set, data.sampler, data.val_set, data.weights, cfg, dist)
    if data.split["test"] and summary["step"] >= data.max_steps:
        summary["test"] = _test(args, dist, data, out, cfg.bf16)
    cleanup()
    return summary


REFERENCE_BATCH = 32
"""The paper's global batch (windows per step), at which ``--lr`` is the peak LR."""


def batch_and_lr(args, world_size: int) -> tuple[int, float]:
    """``(windows per step per process, peak LR)`` from the batch options and the world size.

    ``--global-batch-size G`` gives each of the ``world_size`` processes ``G / world_size``
    windows; the peak LR is ``--lr × (G / 32)^p`` with ``p`` from ``--lr-scaling``.

    Raises
    ------
    ValueError
        Both batch options, or a global batch that does not divide over the processes.
    """
    if args.global_batch_size is not None and args.batch_size is not None:
        raise ValueError("give --batch-size (per process) or --global-batch-size, not both")
    if args.global_batch_size is None:
        per_rank = 32 if args.batch_size is None else args.batch_size
    else:
        g = args.global_batch_size
        if g < 1 or g % world_size:
            raise ValueError(f"--global-batch-size {g} does not divide over {world_size} processes "
                             f"(world size): use a multiple of {world_size}")
        per_rank = g // world_size
    if per_rank < 1:
        raise ValueError(f"--batch-size must be >= 1, got {per_rank}")
    power = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}[args.lr_scaling]
    return per_rank, args.lr * (per_rank * world_size / REFERENCE_BATCH) ** power


def _set_backends(deterministic: bool, device: torch.device) -> None:
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@dataclass
class _Data:
    rows: list
    split: dict
    margin: float | None
    train_set: WindowDataset
    val_set: WindowDataset | None
    sampler: WindowSampler
    steps_per_epoch: int
    max_steps: int
    warmup: int
    weights: torch.Tensor


def _data(args, dist) -> _Data:
    """Subject-wise split per dataset, windows straight from the HDF5 files, the step budget."""
    rows = load_recordings(args.data, args.datasets)
    split = split_by_subject(rows, args.val_fraction, args.test_fraction, seed=args.seed)
    margin = args.wake_margin if args.wake_margin >= 0 else None
    train_set = WindowDataset(split["train"], args.seq_len, margin, args.channel_dropout, args.channels,
                              dtype="stored", gain_range=args.gain_range)
    val_set = WindowDataset(split["val"], args.seq_len, margin, channels=args.channels,
                            dtype="stored") if split["val"] else None
    val_set = val_set if val_set is not None and len(val_set) else None
    sampler = WindowSampler(train_set, args.mixing, args.temperature, args.samples_per_epoch,
                            seed=args.seed, rank=dist.rank, world_size=dist.world_size)
    check_batch(args.batch_size, sampler.per_rank, dist.world_size)
    steps_per_epoch = max(1, len(sampler) // args.batch_size)
    max_steps = args.max_steps or max(1, round(args.epochs * steps_per_epoch))
    warmup = args.warmup_steps if args.warmup_steps is not None else round(args.warmup_epochs * steps_per_epoch)
    weights = torch.from_numpy(class_weights(split["train"], args.class_weights))
    return _Data(rows, split, margin, train_set, val_set, sampler, steps_per_epoch, max_steps, warmup, weights)


def _model(args, dist) -> tuple[torch.nn.Module, torch.nn.Module]:
    """``(model, raw)``: the model on the device (DDP-wrapped when distributed) and the plain one."""
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)  # same initial weights on every rank
    overrides = {"seq_len": args.seq_len}
    if args.n_blocks is not None:
        overrides["n_blocks"] = args.n_blocks
    if args.dropout is not None:
        overrides["dropout"] = args.dropout
    if args.init:
        init = load_checkpoint(args.init)
        model = build_model(init.cfg, **overrides)
        model.load_state_dict(init.state_dict())
    else:
        model = build_model(args.model, **overrides)
    model.to(dist.device)
    # Dropout: each rank draws its own masks (seed + rank), as independent as one process's masks
    # over a larger batch, though not the same numbers; with dropout 0 DDP equals one process.
    torch.manual_seed(args.seed + dist.rank)
    raw = model
    if dist.distributed and args.sync_bn:
        model = global_batchnorm(model, dist.device)
    if dist.distributed:
        model = DDP(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    return model, raw


def _provenance(args, dist, data: _Data, out: Path) -> dict:
    """The JSON stored with every checkpoint; ``config.json`` and ``splits.json`` on rank 0."""
    split = data.split
    subjects = {side: sorted({f"{r['dataset']}/{r['subject']}" for r in split[side]}) for side in split}
    meta = {"task": "staging", "channels": list(CANONICAL), "stages": list(STAGE_NAMES),
            "args": vars(args), "provenance": provenance(), "world_size": dist.world_size,
            "global_batch_size": args.batch_size * dist.world_size, "peak_lr": args.peak_lr,
            "max_steps": data.max_steps, "warmup_steps": data.warmup, "steps_per_epoch": data.steps_per_epoch,
            "class_weights": data.weights.tolist(), "mixing_weights": data.sampler.weights,
            "n_subjects": {side: len(s) for side, s in subjects.items()},
            "n_recordings": {side: len(split[side]) for side in split},
            "preprocessing": training_preprocessing(data.rows)}  # the chain travels with the weights
    if dist.is_main:
        print(f"{len(data.rows)} recordings: {meta['n_recordings']}; {data.sampler.total} windows/epoch, "
              f"{data.max_steps} steps, world size {dist.world_size} x batch {args.batch_size} = global batch "
              f"{args.batch_size * dist.world_size}, peak LR {args.peak_lr:.3g}, device {dist.device}")
        (out / "config.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n")
        (out / "splits.json").write_text(json.dumps(
            {side: [f"{r['dataset']}/{r['recording']}" for r in split[side]] for side in split}, indent=2) + "\n")
    return meta


def _test(args, dist, data: _Data, out: Path, bf16: bool) -> dict:
    """Held-out test subjects: evaluated once, with the checkpoint selected on validation."""
    chosen = out / ("best" if (out / "best.safetensors").exists() else "last")
    test_model = load_checkpoint(chosen, map_location=dist.device)
    test_set = WindowDataset(data.split["test"], args.seq_len, data.margin, channels=args.channels,
                             dtype="stored")
    metrics, _ = evaluate(test_model, test_set, dist.device, args.batch_size, workers=args.workers, bf16=bf16)
    if dist.is_main:
        (out / "test_metrics.json").write_text(json.dumps(json_safe({"checkpoint": chosen.name, **metrics}),
                                                          indent=2) + "\n")
        print(f"test ({chosen.name}): acc {metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.4f} "
              f"kappa {metrics['kappa']:.4f}")
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # engine.loop reports progress
    sys.exit(run_main(main, prog="train.py"))
