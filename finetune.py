"""Fine-tune LPSGM on one dataset with subject-wise k-fold cross-validation.

Fold ``k`` of ``K`` holds out a subject-disjoint test set; the remaining subjects are split again
(by subject) into training and an inner validation set that picks the checkpoint. The held-out
fold is evaluated once, with the selected checkpoint.

Strategies: ``full`` (all weights, backbone at ``--lr-backbone``, head at ``--lr-head``),
``partial`` (classifier head only: the backbone is frozen, BatchNorm statistics and dropout
included) and ``scratch`` (same architecture, random initialisation, no ``--init`` needed).

Examples
--------
::

    python finetune.py --data /data/h5 --dataset hmc --init weights/lpsgm.safetensors \\
        --strategy full --folds 5 --fold 0 --out runs/ft/hmc/full/fold0

The run folder receives ``config.json``, ``metrics.json`` (held-out fold: pooled and per
recording), ``predictions.csv`` (dataset, recording, subject, epoch, true, pred), ``best.*``,
``last.*``, ``state.pt`` (``--resume``), ``metrics.jsonl`` and TensorBoard logs.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from data import (
    WindowDataset,
    WindowSampler,
    class_weights,
    kfold_by_subject,
    load_recordings,
    split_by_subject,
)
from engine.cli_errors import InputError, check_batch, check_weights_path, run_main
from engine.distributed import cleanup, setup_distributed
from engine.logger import provenance
from engine.loop import FitConfig, evaluate, fit
from engine.metrics import json_safe
from engine.optim import WarmupCosine, build_optimizer, param_groups
from models import PRESETS, build_model, checkpoint_preprocessing, load_checkpoint, unwrap
from preprocess.core.channels import CANONICAL
from preprocess.core.hdf5 import training_preprocessing
from preprocess.core.signal import CHAINS
from preprocess.core.stages import STAGE_NAMES
from preprocess.core.version import add_version_argument

STRATEGIES = ("full", "partial", "scratch")
HEAD = "classifier"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_version_argument(p)
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", required=True, metavar="ROOT", help="harmonized root(s)")
    g.add_argument("--dataset", required=True, help="the dataset folder to fine-tune on")
    g.add_argument("--folds", type=int, default=5, help="K of the subject-wise k-fold")
    g.add_argument("--fold", type=int, default=0, help="held-out fold, 0..K-1")
    g.add_argument("--val-fraction", type=float, default=0.2,
                   help="inner validation subjects (from the training folds) for model selection")
    g.add_argument("--channels", nargs="+", choices=CANONICAL, metavar="CH",
                   help="use only these canonical channels (default: every channel of each recording)")
    g.add_argument("--channel-dropout", type=float, default=0.0)
    g.add_argument("--wake-margin", type=float, default=30.0, help="minutes; < 0 = whole night")
    g.add_argument("--class-weights", choices=["inverse", "sqrt", "none"], default="inverse")
    g.add_argument("--workers", type=int, default=4)
    g = p.add_argument_group("model")
    g.add_argument("--init", help="pretrained weights: ours (.safetensors/.json) or official .pth")
    g.add_argument("--strategy", choices=STRATEGIES, default="full")
    g.add_argument("--model", choices=sorted(PRESETS),
                   help="architecture for scratch (default: that of --init, else lpsgm)")
    g.add_argument("--dropout", type=float, help="override sequence-encoder dropout")
    g.add_argument("--chain", choices=("auto", *CHAINS), default="auto",
                   help="signal chain the fine-tuning files must have been preprocessed with; auto (default) = "
                        "the chain of --init (published for the official .pth), else that of the files")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--lr-backbone", type=float, default=1e-4, help="epoch + sequence encoder LR")
    g.add_argument("--lr-head", type=float, default=1e-4, help="classifier LR")
    g.add_argument("--weight-decay", type=float, default=1e-4)
    g.add_argument("--min-lr-ratio", type=float, default=1e-2)
    g.add_argument("--max-steps", type=int, help="default: --epochs x steps per epoch")
    g.add_argument("--epochs", type=float, default=100)
    g.add_argument("--warmup-steps", type=int, help="default: --warmup-epochs x steps per epoch")
    g.add_argument("--warmup-epochs", type=float, default=15)
    g.add_argument("--grad-clip", type=float, default=1.0)
    g.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="RUN_DIR")
    g.add_argument("--resume", action="store_true")
    g.add_argument("--stop-at", type=int)
    g.add_argument("--eval-every", type=int, help="steps between validations (default: one epoch)")
    g.add_argument("--ckpt-every", type=int, help="default: --eval-every")
    g.add_argument("--log-every", type=int, default=10)
    g.add_argument("--select", choices=["macro_f1", "kappa", "accuracy"], default="macro_f1")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", choices=["cuda", "cpu"])
    args = p.parse_args(argv)
    if args.strategy != "scratch" and not args.init:
        p.error(f"--strategy {args.strategy} needs --init (pretrained weights)")
    return args


def check_chain(data: dict, wanted: str, init_chain: str | None, dataset: str) -> dict:
    """The files' chain parameters, after checking the chain is the one asked for.

    ``wanted="auto"`` asks for the chain of the initial weights (fine-tuning official weights on
    files preprocessed otherwise would shift every input), or accepts the files' chain from scratch.

    Raises
    ------
    ValueError
        The files went through another chain; the message says how to preprocess them.
    """
    chain = init_chain if wanted == "auto" else wanted
    if chain is not None and data["chain"] != chain:
        origin = "the --init weights were trained on" if wanted == "auto" else "--chain asks for"
        raise ValueError(f"{dataset}: files were preprocessed with the {data['chain']} chain but {origin} "
                         f"the {chain} chain; re-run `python -m preprocess ... --chain {chain}` "
                         f"(or pass --chain {data['chain']} to fine-tune on these files anyway)")
    return data


def partial_train_mode(model: nn.Module) -> None:
    """Training mode for the head only: every other module stays in eval mode (frozen BN, no dropout)."""
    model.train()
    for name, child in unwrap(model).named_children():
        if name != HEAD:
            child.eval()


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.init:
        check_weights_path(args.init)  # before the data is loaded
    dist = setup_distributed(args.device)
    out = Path(args.out)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
    model, init_chain = _initial_model(args)
    data = _folds(args, model.cfg.seq_len, init_chain, dist)
    groups = _trainable_groups(model, args)
    model.to(dist.device)
    torch.manual_seed(args.seed + dist.rank)
    raw = model
    if dist.distributed:
        model = DDP(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    optimizer = build_optimizer(groups)
    scheduler = WarmupCosine(optimizer, data["warmup"], data["max_steps"], args.min_lr_ratio)
    meta = _provenance(args, data, raw, dist, out)
    eval_every = data["eval_every"]
    cfg = FitConfig(out_dir=out, max_steps=data["max_steps"], batch_size=args.batch_size, eval_every=eval_every,
                    ckpt_every=args.ckpt_every or eval_every, log_every=args.log_every,
                    grad_clip=args.grad_clip, select=args.select, bf16=args.precision == "bf16",
                    workers=args.workers, resume=args.resume, stop_at=args.stop_at, meta=meta)
    summary = fit(model, optimizer, scheduler, data["train_set"], data["sampler"], data["val_set"],
                  data["weights"], cfg, dist,
                  train_mode=partial_train_mode if args.strategy == "partial" else None)
    if summary["step"] >= data["max_steps"]:  # stopped early (--stop-at): the test fold waits for the end
        summary["test"] = _test_fold(args, data["test_set"], summary, dist, out, cfg.bf16)
    cleanup()
    return summary


def _initial_model(args) -> tuple[nn.Module, str | None]:
    """The pretrained weights (``--init``), or the same architecture from random weights (``scratch``),
    and the signal chain the fine-tuning files must have (None: any)."""
    torch.manual_seed(args.seed)
    overrides = {} if args.dropout is None else {"dropout": args.dropout}
    init = load_checkpoint(args.init) if args.init else None
    if args.strategy == "scratch":
        model = build_model(args.model or (init.cfg if init is not None else "lpsgm"), **overrides)
    else:
        model = build_model(init.cfg, **overrides)
        model.load_state_dict(init.state_dict())
    # scratch keeps only the architecture of --init, so the files' chain is accepted then
    init_chain = (checkpoint_preprocessing(init.checkpoint_meta)["chain"]
                  if init is not None and args.strategy != "scratch" else None)
    return model, init_chain


def _folds(args, seq_len: int, init_chain: str | None, dist) -> dict:
    """Outer k-fold and inner validation, both by subject; windows, sampler and step budget."""
    rows = load_recordings(args.data, [args.dataset])
    try:
        preprocessing = check_chain(training_preprocessing(rows), args.chain, init_chain, args.dataset)
        train_rows, test_rows = kfold_by_subject(rows, args.folds, args.fold, seed=args.seed)
    except ValueError as exc:  # chain mismatch, more folds than subjects: the input, not a bug
        raise InputError(f"{args.dataset}: {exc}" if not str(exc).startswith(args.dataset) else str(exc)) from None
    inner = split_by_subject(train_rows, val_fraction=args.val_fraction, seed=args.seed)
    margin = args.wake_margin if args.wake_margin >= 0 else None
    train_set = WindowDataset(inner["train"], seq_len, margin, args.channel_dropout, args.channels,
                              dtype="stored")
    val_set = WindowDataset(inner["val"], seq_len, margin, channels=args.channels,
                            dtype="stored") if inner["val"] else None
    test_set = WindowDataset(test_rows, seq_len, margin, channels=args.channels, dtype="stored")
    sampler = WindowSampler(train_set, seed=args.seed, rank=dist.rank, world_size=dist.world_size)
    check_batch(args.batch_size, sampler.per_rank, dist.world_size)
    steps_per_epoch = max(1, len(sampler) // args.batch_size)
    max_steps = args.max_steps or max(1, round(args.epochs * steps_per_epoch))
    warmup = args.warmup_steps if args.warmup_steps is not None else round(args.warmup_epochs * steps_per_epoch)
    return {"inner": inner, "test_rows": test_rows, "train_set": train_set, "val_set": val_set,
            "test_set": test_set, "sampler": sampler, "max_steps": max_steps, "warmup": warmup,
            "eval_every": args.eval_every or steps_per_epoch,
            "weights": torch.from_numpy(class_weights(inner["train"], args.class_weights)),
            "preprocessing": preprocessing}


def _trainable_groups(model: nn.Module, args) -> list[dict]:
    """What trains, at which learning rate: the head only (``partial``, backbone frozen) or everything."""
    head = [(n, p) for n, p in model.named_parameters() if n.startswith(f"{HEAD}.")]
    backbone = [(n, p) for n, p in model.named_parameters() if not n.startswith(f"{HEAD}.")]
    if args.strategy == "partial":
        for _, p in backbone:
            p.requires_grad_(False)
        return param_groups(head, args.lr_head, args.weight_decay, "head")
    return (param_groups(backbone, args.lr_backbone, args.weight_decay, "backbone")
            + param_groups(head, args.lr_head, args.weight_decay, "head"))


def _provenance(args, data: dict, raw: nn.Module, dist, out: Path) -> dict:
    """The JSON stored with every checkpoint; ``config.json`` on rank 0."""
    inner = data["inner"]
    subjects = {"train": sorted({r["subject"] for r in inner["train"]}),
                "val": sorted({r["subject"] for r in inner["val"]}),
                "test": sorted({r["subject"] for r in data["test_rows"]})}
    meta = {"task": "staging-finetune", "channels": list(CANONICAL), "stages": list(STAGE_NAMES),
            "args": vars(args), "provenance": provenance(), "dataset": args.dataset, "fold": args.fold,
            "folds": args.folds, "strategy": args.strategy, "init": args.init, "max_steps": data["max_steps"],
            "warmup_steps": data["warmup"], "class_weights": data["weights"].tolist(), "subjects": subjects,
            "trainable_parameters": sum(p.numel() for p in raw.parameters() if p.requires_grad),
            "preprocessing": data["preprocessing"]}
    if dist.is_main:
        (out / "config.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n")
        print(f"{args.dataset} fold {args.fold}/{args.folds} ({args.strategy}): "
              f"{len(subjects['train'])}/{len(subjects['val'])}/{len(subjects['test'])} subjects "
              f"train/val/test, {data['max_steps']} steps, {meta['trainable_parameters']:,} trainable parameters")
    return meta


def _test_fold(args, test_set: WindowDataset, summary: dict, dist, out: Path, bf16: bool) -> dict:
    """The held-out fold, evaluated once with the checkpoint selected on the inner validation set."""
    chosen = out / ("best" if (out / "best.safetensors").exists() else "last")
    final = load_checkpoint(chosen, map_location=dist.device)
    metrics, preds = evaluate(final, test_set, dist.device, args.batch_size, workers=args.workers, bf16=bf16)
    if dist.is_main:
        report = {"dataset": args.dataset, "fold": args.fold, "folds": args.folds, "strategy": args.strategy,
                  "checkpoint": chosen.name, "best_step": summary["best_step"],
                  "val": summary["val"], "test": metrics}
        (out / "metrics.json").write_text(json.dumps(json_safe(report), indent=2) + "\n")
        write_predictions(out / "predictions.csv", preds, test_set)
        print(f"fold {args.fold} test ({chosen.name}): acc {metrics['accuracy']:.4f} "
              f"macro-F1 {metrics['macro_f1']:.4f} kappa {metrics['kappa']:.4f}")
    return metrics


def write_predictions(path: Path, preds: dict, dataset: WindowDataset) -> None:
    """One CSV: dataset, recording, subject, epoch, true, pred (−1 = unknown / not evaluated)."""
    subject = {f"{r['dataset']}/{r['recording']}": r["subject"] for r in dataset.rows}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "recording", "subject", "epoch", "true", "pred"])
        for name in sorted(preds):
            ds, rec = name.split("/", 1)
            y_true, y_pred = preds[name]
            for e, (t, p) in enumerate(zip(np.asarray(y_true).tolist(), np.asarray(y_pred).tolist())):
                w.writerow([ds, rec, subject[name], e, t, p])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # engine.loop reports progress
    sys.exit(run_main(main, prog="finetune.py"))
