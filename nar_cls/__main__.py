"""Command line: ``python -m nar_cls --data ROOT --out RUN [options]``.

Subject-wise stratified K-fold cross-validation of a narcolepsy / disorder classifier fine-tuned
from LPSGM. See ``nar_cls/cv.py`` for the run-folder layout and ``nar_cls/run_nar.sh``.

Examples
--------
# MNC, 3 classes, frozen official backbone (partial), 5 folds
python -m nar_cls --data /data/h5 --datasets mnc-cnc mnc-dhc --init weights/ched32_seqed64_ch9_seql20_block4.pth \\
    --task 3class --strategy partial --out runs/nar/3class_partial
# type 1 narcolepsy vs all others, full fine-tuning
python -m nar_cls --data /data/h5 --init weights/lpsgm.safetensors --merge_NT1 --strategy full --out runs/nar/nt1_full
# any dataset with a subject label column in a CSV
python -m nar_cls --data /data/h5 --datasets mydata --labels-csv labels.csv --task custom --classes control insomnia \\
    --init weights/lpsgm.safetensors --out runs/insomnia
"""

from __future__ import annotations

import argparse

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
    g.add_argument("--label-key", default="diagnosis",
                   help="key of the HDF5 'labels' attribute (or CSV column) holding the subject label")
    g.add_argument("--labels-csv", help="CSV with columns subject,<label-key> (or subject,label); overrides the files")
    g.add_argument("--channels", nargs="+", help="canonical channels to use (default: all in each recording)")
    g.add_argument("--stride", type=int, default=20, help="evaluation window stride in epochs (20 = no overlap)")
    g = p.add_argument_group("task")
    g.add_argument("--task", default="3class", choices=sorted(TASKS) + ["custom"],
                   help="3class: control / NT1 / other hypersomnia; merge_NT1: NT1 vs all others; "
                        "normal_vs_abnormal: controls vs both patient groups; custom: see --classes")
    g.add_argument("--merge_NT1", "--merge-NT1", dest="merge_nt1", action="store_true",
                   help="same as --task merge_NT1 (type 1 narcolepsy vs all others)")
    g.add_argument("--classes", nargs="+", help="--task custom: label values, one class each (last = positive)")
    g = p.add_argument_group("model")
    g.add_argument("--strategy", default="partial", choices=STRATEGIES,
                   help="partial: frozen backbone + new head; full: all weights (backbone LR << head LR); "
                        "scratch: random backbone")
    g.add_argument("--init", help="backbone checkpoint: ours (NAME.safetensors + NAME.json) or official .pth")
    g.add_argument("--model", default="lpsgm", help="preset for scratch / no --init (lpsgm, lpsgm-small, lpsgm-6)")
    g.add_argument("--head-hidden", type=int, default=0, help="hidden width of an MLP head (0 = linear)")
    g.add_argument("--head-dropout", type=float, default=0.1)
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
    g.add_argument("--lr", type=float, default=1e-3, help="head learning rate (and backbone's for scratch)")
    g.add_argument("--backbone-lr", type=float, default=1e-5, help="backbone learning rate for full")
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


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.merge_nt1:
        if args.task not in ("3class", "merge_NT1"):
            p.error("--merge_NT1 conflicts with --task " + args.task)
        args.task = "merge_NT1"
    if not args.out:
        p.error("--out RUN is required")
    if not args.pool_only and not args.data:
        p.error("--data ROOT is required")
    if args.fold is not None and any(not 0 <= k < args.folds for k in args.fold):
        p.error(f"--fold values must be in [0, {args.folds})")
    result = run(args)
    if args.pool_only:
        if result is None:
            print("not every fold has finished: nothing pooled")
            return 1
        print(f"pooled metrics of {result['n_folds']} folds written to {args.out}/metrics.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
