"""Command line: ``python -m nar_cls --data ROOT --out RUN [options]``.

Subject-wise stratified K-fold cross-validation of a disorder classifier (narcolepsy, sleep
apnoea, depression, any labelled group) fine-tuned from LPSGM. See ``nar_cls/cv.py`` for the
run-folder layout, ``nar_cls/run_nar.sh`` and docs/diagnosis.md.

Examples
--------
# MNC, type 1 narcolepsy vs all others, full fine-tuning from the shipped demo weights
python -m nar_cls --data /data/h5 --datasets mnc-cnc mnc-dhc --init weights/lpsgm-small-demo.safetensors \\
    --merge-nt1 --strategy full --out runs/nar/nt1_full
# APPLES, severe OSA (AHI >= 30) vs not, labels joined from the NSRR subject tables
python -m nar_cls --data /data/h5 --datasets apples --task osa \\
    --subject-table apples=apples-harmonized-dataset-0.1.0.csv,apples-dataset-0.1.0.csv \\
    --init weights/lpsgm-small-demo.safetensors --out runs/osa
# any dataset with a subject label column in a CSV
python -m nar_cls --data /data/h5 --datasets mydata --labels-csv labels.csv --task custom --classes control insomnia \\
    --init weights/lpsgm-small-demo.safetensors --out runs/insomnia
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from preprocess.core.version import add_version_argument

from .cv import run
from .labels import TASKS
from .metrics import AGGREGATIONS
from .model import STRATEGIES
from .train import SELECT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nar_cls", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    g = p.add_argument_group("data and labels")
    g.add_argument("--data", nargs="+", help="harmonized root(s) or dataset folder(s) (read via manifest.csv)")
    g.add_argument("--datasets", nargs="+", help="dataset folders to use under the roots (default: all)")
    g.add_argument("--label-key",
                   help="key of the HDF5 'labels' attribute (or CSV column / table value) holding the subject "
                        "label (default: diagnosis; osa: ahi; depression: depression)")
    g.add_argument("--subject-table", action="append", metavar="DATASET=FILE[,FILE2]",
                   help="NSRR subject table(s) of a dataset, joined by subject id (apples: harmonized,source; "
                        "shhs, cfs, ccshs, mesa, mros: one CSV); repeatable")
    g.add_argument("--ahi-column", help="AHI variable of the subject tables (default: per dataset, see "
                                         "preprocess/core/subject_tables.py)")
    g.add_argument("--labels-csv", help="CSV with columns subject,<label-key> (or subject,label); overrides the files")
    g.add_argument("--channels", nargs="+", help="canonical channels to use (default: all in each recording)")
    g.add_argument("--stride", type=int, default=20, help="evaluation window stride in epochs (20 = no overlap)")
    g = p.add_argument_group("task")
    g.add_argument("--task", default="3class", choices=sorted(TASKS) + ["custom"],
                   help="3class: control / NT1 / other hypersomnia; merge_NT1: NT1 vs all others; "
                        "normal_vs_abnormal: controls vs both patient groups; osa: AHI classes (--ahi-cuts); "
                        "depression: control vs depressed; custom: see --classes")
    g.add_argument("--ahi-cuts", type=float, nargs="+", metavar="AHI",
                   help="osa: AHI thresholds in events/h (default 30: severe vs not; 5 15 30: none/mild/"
                        "moderate/severe)")
    g.add_argument("--merge-nt1", "--merge_NT1", "--merge-NT1", dest="merge_nt1", action="store_true",
                   help="same as --task merge_NT1 (type 1 narcolepsy vs all others)")
    g.add_argument("--classes", nargs="+", help="--task custom: label values, one class each (last = positive)")
    g = p.add_argument_group("model")
    g.add_argument("--strategy", default="partial", choices=STRATEGIES,
                   help="partial: frozen backbone + new head; full: all weights (backbone LR << head LR); "
                        "joint: full + the staging loss on epochs with a hypnogram (--stage-weight); "
                        "scratch: random backbone. Every run also reports a linear probe on frozen subject "
                        "features")
    g.add_argument("--stage-weight", type=float, default=0.5,
                   help="joint: weight of the staging cross-entropy next to the diagnosis loss")
    g.add_argument("--init", help="backbone checkpoint: ours (NAME.safetensors + NAME.json) or official .pth")
    g.add_argument("--model", default="lpsgm", help="preset for scratch / no --init (lpsgm, lpsgm-small, lpsgm-6)")
    g.add_argument("--head-hidden", type=int, default=0, help="hidden width of an MLP head (0 = linear)")
    g.add_argument("--head-dropout", type=float, default=0.1)
    g.add_argument("--head-hypnogram", action="store_true",
                   help="partial only: the head also reads the subject's predicted-hypnogram summary "
                        "(nar_cls.hypnogram) next to each window embedding")
    g = p.add_argument_group("cross-validation")
    g.add_argument("--out", help="run folder")
    g.add_argument("--folds", type=int, default=5)
    g.add_argument("--fold", type=int, nargs="+", help="run only these folds (pooled metrics once all exist)")
    g.add_argument("--val-fraction", type=float, default=0.2, help="inner validation share of training subjects")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--subject-agg", default="mean", choices=AGGREGATIONS,
                   help="subject prediction: mean of window probabilities, or majority vote of windows")
    g.add_argument("--select", default="loss", choices=SELECT,
                   help="validation criterion for the best epoch: window loss, subject AUC or balanced accuracy")
    g.add_argument("--permute-labels", type=int, metavar="SEED",
                   help="shuffle subject labels (chance-level control; results must be near chance)")
    g.add_argument("--pool-only", action="store_true", help="only (re)compute RUN/metrics.json from finished folds")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--eval-batch-size", type=int, default=64)
    g.add_argument("--lr", "--lr-head", dest="lr", type=float, default=1e-3,
                   help="head learning rate (and the backbone's for scratch)")
    g.add_argument("--lr-backbone", "--backbone-lr", dest="lr_backbone", type=float, default=1e-5,
                   help="backbone learning rate for full / joint")
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--warmup-epochs", type=float, default=1.0)
    g.add_argument("--grad-clip", type=float, default=1.0)
    g.add_argument("--patience", type=int, default=0, help="early stop after N epochs without improvement (0 = off)")
    g.add_argument("--steps-per-epoch", type=int, help="cap on optimiser steps per epoch")
    g.add_argument("--channel-dropout", type=float, default=0.0,
                   help="full/scratch: probability that a training window keeps a random channel subset")
    g = p.add_argument_group("runtime")
    g.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    g.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on GPU")
    g.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    g.add_argument("--feature-cache", help="partial: .npz file caching the frozen window embeddings")
    g.add_argument("--tensorboard", action="store_true", help="TensorBoard scalars in RUN/fold_K/tb")
    g.add_argument("--no-save", action="store_true", help="do not save the fold models")
    g.add_argument("--no-progress", action="store_true")
    return p


def check_args(args) -> str | None:
    """The first problem with the arguments that can be seen before any data is read, or None."""
    if args.merge_nt1:
        if args.task not in ("3class", "merge_NT1"):
            return "--merge-nt1 conflicts with --task " + args.task
        args.task = "merge_NT1"
    if not args.out:
        return "--out RUN is required"
    if args.pool_only:
        return None
    if not args.data:
        return "--data ROOT is required"
    if args.folds < 2:
        return f"--folds must be at least 2, got {args.folds}"
    if args.fold is not None and any(not 0 <= k < args.folds for k in args.fold):
        return f"--fold values must be in [0, {args.folds})"
    for root in args.data:
        if not Path(root).exists():
            return f"{root}: --data folder not found"
    if args.init and not Path(args.init).exists():
        alt = Path(args.init).with_suffix(".safetensors")
        if not alt.exists():
            return (f"{args.init}: --init checkpoint not found (shipped: weights/lpsgm-small-demo.safetensors; "
                    "official .pth: python -m staging.weights or docs/published-weights.md)")
    if args.strategy == "scratch" and args.init:
        return "--strategy scratch trains a new backbone: do not pass --init"
    for path in (args.labels_csv, *[f for spec in args.subject_table or [] for f in spec.partition("=")[2].split(",")]):
        if path and not Path(path).is_file():
            return f"{path}: file not found"
    if args.ahi_cuts and args.task != "osa":
        return "--ahi-cuts applies to --task osa only"
    if args.head_hypnogram and args.strategy != "partial":
        return "--head-hypnogram needs --strategy partial (the frozen backbone's predicted hypnogram)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    problem = check_args(args)
    if problem:
        print(f"nar_cls: {problem}", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:  # input problems: one line, no traceback
        print(f"nar_cls: {exc}", file=sys.stderr)
        return 2
    if args.pool_only:
        if result is None:
            print("not every fold has finished: nothing pooled")
            return 1
        print(f"pooled metrics of {result['n_folds']} folds written to {args.out}/metrics.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
