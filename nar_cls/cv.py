"""Subject-wise stratified K-fold cross-validation of a disorder classifier, and its run folder.

Run folder (``--out RUN``)::

    RUN/config.json          arguments, task and classes, backbone source, subject counts, provenance
    RUN/subjects.csv         subject, dataset, label (raw), class, fold, n_recordings, n_windows
    RUN/fold_K/split.json    train / val / test subjects of fold K (val: inner split of the training folds)
    RUN/fold_K/history.csv   per epoch: train loss, val loss, val subject AUC / balanced accuracy, LR
    RUN/fold_K/metrics.json  fold K: best epoch, val and test metrics at window and subject level
    RUN/fold_K/predictions.csv  test subjects: subject, fold, true, pred, p_<class>..., n_windows
    RUN/fold_K/windows.csv   test windows: subject, recording, start, fold, true, pred, p_<class>...
    RUN/fold_K/head.json + head.safetensors (+ backbone.json/.safetensors for full/scratch)
    RUN/metrics.json         pooled over the test folds (window and subject level), per fold, mean ± std
    RUN/predictions.csv      all subjects' out-of-fold predictions (same columns as above)
    RUN/fold_K/tb/           TensorBoard scalars (with --tensorboard)
    RUN/fold_K/probe_predictions.csv  test subjects scored by the linear probe (:mod:`nar_cls.probe`)
    RUN/fold_K/explanations.csv       per test subject: decision shares by stage and part of night
    RUN/probe_predictions.csv, RUN/explanations.csv   the same, all folds
    RUN/excluded.csv         subjects left out and why (no table row, no label, label outside the task)

The pooled metrics are computed on the concatenated out-of-fold predictions (every subject is
predicted exactly once, by the fold that did not train on it).
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import math
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from engine.logger import provenance
from engine.loop import train_steps
from engine.metrics import json_safe
from models import save_checkpoint
from preprocess.core.atomic import atomic_write_csv, atomic_write_text
from preprocess.core.subject_tables import dataset_key, read_subject_table

from .cohort import Cohort, build_cohort
from .explain import subject_explanations
from .features import cohort_embeddings, extract_embeddings
from .labels import DIAGNOSIS_MAP, Task, get_task, read_labels_csv
from .metrics import aggregate_subjects, calibration, classification_metrics, summarize_folds
from .model import (
    NarModel,
    WindowHead,
    load_backbone,
    optimizer_groups,
    save_fold_model,
    set_strategy,
    train_mode,
)
from .probe import cohort_hypnogram_features, fit_probe, probe_features, probe_probabilities
from .splits import class_weights, inner_validation, stratified_subject_folds
from .train import (
    HeadOnEmbeddings,
    TrainConfig,
    embedding_batches,
    fit,
    joint_train_steps,
    predict_embeddings,
    predict_windows,
    weighted_nll,
    window_batches,
)


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, default=str) + "\n")


def _write_csv(path: Path, rows: list[dict]) -> None:
    atomic_write_csv(path, rows)


def evaluate(prob: np.ndarray, windows: np.ndarray, cohort: Cohort, y: np.ndarray, task: Task, how: str,
             weights: np.ndarray) -> dict:
    """Window- and subject-level metrics of window probabilities.

    Returns
    -------
    dict
        ``loss`` (class-weighted window NLL), ``window`` and ``subject`` metrics, and the arrays
        ``subjects`` / ``subject_prob`` (for the predictions CSV).
    """
    win_subject = cohort.win_subject[windows]
    yw = y[win_subject]
    subjects, sprob = aggregate_subjects(prob, win_subject, how)
    return {"loss": weighted_nll(prob, yw, weights),
            "window": classification_metrics(yw, prob, task.classes, task.positive),
            "subject": classification_metrics(y[subjects], sprob, task.classes, task.positive),
            "subjects": subjects, "subject_prob": sprob}


def subject_rows(ev: dict, cohort: Cohort, y: np.ndarray, task: Task, fold: int) -> list[dict]:
    """Rows of ``predictions.csv``: subject, fold, true, pred, p_<class>..., n_recordings, n_windows."""
    n_rec = np.bincount(cohort.rec_subject, minlength=len(cohort.subjects))
    n_win = np.bincount(cohort.win_subject, minlength=len(cohort.subjects))
    rows = []
    for s, p in zip(ev["subjects"], ev["subject_prob"]):
        rows.append({"subject": cohort.subjects[s], "fold": fold, "true": task.classes[y[s]],
                     "pred": task.classes[int(np.argmax(p))],
                     **{f"p_{c}": f"{v:.6f}" for c, v in zip(task.classes, p)},
                     "n_recordings": int(n_rec[s]), "n_windows": int(n_win[s]), "label": cohort.raw_labels[s]})
    return rows


def window_rows(prob: np.ndarray, windows: np.ndarray, cohort: Cohort, y: np.ndarray, task: Task, fold: int) -> list[dict]:
    """Rows of ``windows.csv``: subject, recording, start, fold, true, pred, p_<class>..."""
    names = cohort.recording_names()
    rows = []
    for w, p in zip(windows, prob):
        s = cohort.win_subject[w]
        rows.append({"subject": cohort.subjects[s], "recording": names[cohort.win_rec[w]],
                     "start": int(cohort.win_start[w]), "fold": fold, "true": task.classes[y[s]],
                     "pred": task.classes[int(np.argmax(p))],
                     **{f"p_{c}": f"{v:.6f}" for c, v in zip(task.classes, p)}})
    return rows


def run_fold(k: int, args, cohort: Cohort, y: np.ndarray, folds: np.ndarray, task: Task, backbone, backbone_source,
             emb: np.ndarray | None, cfg: TrainConfig, device: torch.device, log=print,
             stage_prob: np.ndarray | None = None, head_emb: np.ndarray | None = None) -> dict:
    """Train, select and test fold ``k``; write its folder; return its metrics.

    ``emb`` / ``stage_prob``: cached window embeddings and staging probabilities (``partial``);
    ``head_emb``: what the ``partial`` head reads per window (``emb``, or with ``--head-hypnogram``
    ``emb`` followed by the window's subject's predicted-hypnogram summary).
    """
    head_emb = emb if head_emb is None else head_emb
    out = Path(args.out) / f"fold_{k}"
    out.mkdir(parents=True, exist_ok=True)
    split, win, weights = _fold_split(k, args, cohort, y, folds, task, out, log)
    model, head, groups = _fold_model(k, args, backbone, task, cfg, device,
                                      None if head_emb is None else head_emb.shape[1])
    runner, trainable, steps, batches, predict = _fold_data_path(k, args, cohort, y, split["train"], win, head_emb,
                                                                 model, head, cfg, device)

    def validate():
        return evaluate(predict(win["val"]), win["val"], cohort, y, task, args.subject_agg, weights)

    tb = None
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        tb = SummaryWriter(str(out / "tb"))
    loop = (functools.partial(joint_train_steps, stage_weight=cfg.stage_weight) if args.strategy == "joint"
            else train_steps)
    cohort.data.with_stages = args.strategy == "joint"
    with _head_threads(emb is not None and device.type == "cpu"):
        result = fit(runner, trainable, groups, batches, steps, validate, cfg, weights, device,
                     lambda: train_mode(model, args.strategy), out / "history.csv", log, tb, steps=loop)
        cohort.data.with_stages = False
        prob = predict(win["test"])
    if tb is not None:
        tb.close()
    test_ev = evaluate(prob, win["test"], cohort, y, task, args.subject_agg, weights)
    probe_rows, probe_metrics = _linear_probe(k, args, cohort, y, split, win, emb, model, task, cfg, device,
                                              stage_prob)
    explain_rows = subject_explanations(prob, win["test"], cohort, task.classes, task.positive)
    metrics = {
        "fold": k, "task": task.name, "classes": list(task.classes), "strategy": args.strategy,
        "subject_aggregation": args.subject_agg, "simulated": cohort.simulated,
        "n_subjects": {name: len(idx) for name, idx in split.items()},
        "n_windows": {name: len(w) for name, w in win.items()},
        "class_weights": weights.tolist(), "select": cfg.select, "best_epoch": result["best_epoch"],
        "epochs_run": result["epochs_run"],
        "val": {key: result["best_val"][key] for key in ("loss", "window", "subject")},
        "test": {key: test_ev[key] for key in ("loss", "window", "subject")},
        "test_probe": probe_metrics,
    }
    if args.strategy == "joint":
        metrics["stage_weight"] = cfg.stage_weight
    _write_fold(out, k, args, metrics, test_ev, prob, win, cohort, y, task, model, backbone_source)
    _write_csv(out / "probe_predictions.csv", probe_rows)
    _write_csv(out / "explanations.csv", explain_rows)
    s = test_ev["subject"]
    log(f"fold {k}: best epoch {result['best_epoch']}; test subjects: AUC {_f(s['roc_auc'])} "
        f"bacc {_f(s['balanced_accuracy'])} acc {_f(s['accuracy'])} macro-F1 {_f(s['macro_f1'])}; "
        f"linear probe AUC {_f(probe_metrics['subject']['roc_auc'])}")
    return metrics


def _linear_probe(k: int, args, cohort: Cohort, y: np.ndarray, split: dict, win: dict, emb: np.ndarray | None,
                  model: NarModel, task: Task, cfg: TrainConfig, device: torch.device,
                  stage_prob: np.ndarray | None = None) -> tuple[list[dict], dict]:
    """Second stage: StandardScaler + balanced logistic regression on frozen subject features.

    Fitted on the fold's training and validation subjects, scored on its test subjects; the
    features are those of :func:`nar_cls.probe.probe_features` (mean window embedding + the
    summary of the staging head's predicted hypnogram; ``scratch``: the embedding only).
    """
    hypnogram = args.strategy != "scratch"  # a scratch backbone's staging classifier was never trained
    if emb is None:  # the fold's fine-tuned backbone, frozen now
        every = np.concatenate([win["train"], win["val"], win["test"]])
        feats, probs = extract_embeddings(model.backbone, cohort, every, device, cfg.eval_batch_size, cfg.workers,
                                          cfg.bf16, progress=False, stages=True)
        emb_all = np.zeros((len(cohort.win_rec), feats.shape[1]), np.float32)
        emb_all[every] = feats
        stage_prob = np.zeros((len(cohort.win_rec), *probs.shape[1:]), np.float32)
        stage_prob[every] = probs
    else:
        emb_all = emb
    x = probe_features(emb_all, cohort, stage_prob if hypnogram else None)
    fit_on = np.concatenate([split["train"], split["val"]])
    blocks = [emb_all.shape[1], x.shape[1] - emb_all.shape[1]] if x.shape[1] > emb_all.shape[1] else None
    probe = fit_probe(x[fit_on], y[fit_on], seed=args.seed + k, blocks=blocks)
    test = split["test"]
    p = probe_probabilities(probe, x[test], task.n_classes)
    rows = [{"subject": cohort.subjects[s], "fold": k, "true": task.classes[y[s]],
             "pred": task.classes[int(np.argmax(q))], **{f"p_{c}": f"{v:.6f}" for c, v in zip(task.classes, q)}}
            for s, q in zip(test, p)]
    return rows, {"subject": classification_metrics(y[test], p, task.classes, task.positive),
                  "features": "mean window embedding" + (" + predicted-hypnogram summary, "
                                                           "blocks of equal weight" if hypnogram else "")}


def _fold_split(k: int, args, cohort: Cohort, y: np.ndarray, folds: np.ndarray, task: Task, out: Path, log):
    """Subjects of fold ``k`` (train / inner val / test), their windows and the class weights."""
    test = np.flatnonzero(folds == k)
    train, val = inner_validation(np.flatnonzero(folds != k), y, args.val_fraction, args.seed + k)
    split = {"train": train, "val": val, "test": test}
    write_json(out / "split.json", {name: [cohort.subjects[i] for i in idx] for name, idx in split.items()})
    win = {name: cohort.windows_of(idx) for name, idx in split.items()}
    weights = class_weights(y[train], task.n_classes)
    if len(win["train"]) < 2:
        raise ValueError(f"fold {k}: fewer than two training windows")
    log(f"fold {k}: {len(train)} train / {len(val)} val / {len(test)} test subjects, "
        f"{len(win['train'])} train windows, class weights {np.round(weights, 3).tolist()}")
    return split, win, weights


def _fold_model(k: int, args, backbone, task: Task, cfg: TrainConfig, device: torch.device,
                in_dim: int | None = None):
    """``(model, head, optimiser groups)`` of fold ``k`` for the chosen strategy (``in_dim``: the
    head's input width when it is not the backbone's ``d_model``)."""
    torch.manual_seed(args.seed * 1000 + k)
    if args.strategy == "scratch":
        backbone, _ = load_backbone(None, args.model)
    elif args.strategy in ("full", "joint"):
        backbone = copy.deepcopy(backbone)
    head = WindowHead(in_dim or backbone.cfg.d_model, task.n_classes, args.head_hidden, args.head_dropout)
    model = NarModel(backbone, head).to(device)
    set_strategy(model, args.strategy)
    return model, head, optimizer_groups(model, args.strategy, cfg.lr, cfg.backbone_lr, cfg.weight_decay)


def _fold_data_path(k: int, args, cohort: Cohort, y: np.ndarray, train: np.ndarray, win: dict,
                    emb: np.ndarray | None, model: NarModel, head: WindowHead, cfg: TrainConfig,
                    device: torch.device):
    """``(runner, trainable, steps per epoch, batches(epoch), predict(windows))``: the head on cached
    embeddings (``partial``) or the whole model on windows read from the files."""
    yw = y[cohort.win_subject]
    if emb is not None:  # partial: the head trains on cached embeddings
        head.init_norm(torch.from_numpy(emb[win["train"]]))
        e_tr, y_tr = emb[win["train"]], yw[win["train"]]
        n_train = len(win["train"])
        steps = n_train // cfg.batch_size + int(n_train % cfg.batch_size >= 2)

        def batches(epoch):
            return embedding_batches(e_tr, y_tr, cfg.batch_size, np.random.default_rng([args.seed, k, epoch]))

        def predict(w):
            return predict_embeddings(head, emb[w], device)

        return HeadOnEmbeddings(head), head, steps, batches, predict

    def batches(epoch):  # the other data path: windows read from the files
        return window_batches(cohort, train, cfg.batch_size, np.random.default_rng([args.seed, k, epoch]),
                              cfg.workers)

    def predict(w):
        return predict_windows(model, cohort, w, device, cfg.eval_batch_size, cfg.workers, cfg.bf16)

    return model, model, max(1, len(win["train"]) // cfg.batch_size), batches, predict


def _write_fold(out: Path, k: int, args, metrics: dict, test_ev: dict, prob: np.ndarray, win: dict,
                cohort: Cohort, y: np.ndarray, task: Task, model: NarModel, backbone_source) -> None:
    """``metrics.json``, ``predictions.csv``, ``windows.csv`` and (unless ``--no-save``) the fold's weights."""
    write_json(out / "metrics.json", metrics)
    _write_csv(out / "predictions.csv", subject_rows(test_ev, cohort, y, task, k))
    _write_csv(out / "windows.csv", window_rows(prob, win["test"], cohort, y, task, k))
    if not args.no_save:
        save_fold_model(model, out, args.strategy, backbone_source,
                        {"task": task.name, "classes": list(task.classes), "fold": k,
                         "subject_aggregation": args.subject_agg, "simulated": cohort.simulated,
                         "head_hypnogram": bool(getattr(args, "head_hypnogram", False))})


@contextmanager
def _head_threads(single: bool):
    """One torch thread while training a head on cached embeddings on CPU: the tensors are tiny and
    the intra-op thread pool costs more than it gives (100x on a busy machine)."""
    n = torch.get_num_threads()
    if single:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _f(v) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def _read_probs(path: Path, classes) -> tuple[list[dict], np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[r["true"]] for r in rows], dtype=np.int64)
    p = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows]).reshape(len(rows), len(classes))
    return rows, y, p


def pool(run_dir: str | Path) -> dict | None:
    """Pooled metrics of a run whose folds are all done: writes ``metrics.json`` and ``predictions.csv``.

    Returns None (and writes nothing) while some fold has no ``predictions.csv`` yet.
    """
    run = Path(run_dir)
    config = json.loads((run / "config.json").read_text())
    task = get_task(config["task"], config.get("classes") if config["task"] == "custom" else None,
                    config.get("ahi_cuts"))
    n_folds = config["folds"]
    fold_dirs = [run / f"fold_{k}" for k in range(n_folds)]
    if not all((d / "predictions.csv").exists() and (d / "metrics.json").exists() for d in fold_dirs):
        return None
    subj_rows, ys, ps, yw, pw, per_fold = [], [], [], [], [], []
    probe_rows, yp, pp, explain_rows = [], [], [], []
    for d in fold_dirs:
        if (d / "probe_predictions.csv").exists():
            rows, y, p = _read_probs(d / "probe_predictions.csv", task.classes)
            probe_rows += rows
            yp.append(y)
            pp.append(p)
        if (d / "explanations.csv").exists():
            with open(d / "explanations.csv", newline="") as fh:
                explain_rows += list(csv.DictReader(fh))
        rows, y, p = _read_probs(d / "predictions.csv", task.classes)
        subj_rows += rows
        ys.append(y)
        ps.append(p)
        _, y, p = _read_probs(d / "windows.csv", task.classes)
        yw.append(y)
        pw.append(p)
        m = json.loads((d / "metrics.json").read_text())
        per_fold.append({"fold": m["fold"], "best_epoch": m["best_epoch"], "window": m["test"]["window"],
                         "subject": m["test"]["subject"]})
    metrics = {
        "task": task.name, "classes": list(task.classes), "strategy": config["strategy"],
        "subject_aggregation": config["subject_agg"], "simulated": config["simulated"],
        "permuted_labels": config.get("permute_labels"), "n_folds": n_folds, "n_subjects": len(subj_rows),
        "pooled": {"window": classification_metrics(np.concatenate(yw), np.concatenate(pw), task.classes, task.positive),
                   "subject": classification_metrics(np.concatenate(ys), np.concatenate(ps), task.classes, task.positive)},
        "folds": per_fold,
        "mean_over_folds": {level: summarize_folds([f[level] for f in per_fold]) for level in ("window", "subject")},
    }
    metrics["subject_calibration"] = calibration(np.concatenate(ys), np.concatenate(ps), task.positive)
    if yp:
        y_probe, p_probe = np.concatenate(yp), np.concatenate(pp)
        metrics["linear_probe"] = {
            "model": ("StandardScaler + LogisticRegression(class_weight='balanced') on mean window embeddings"
                      + (" + predicted-hypnogram summary (blocks of equal weight)"
                         if config["strategy"] != "scratch" else "")),
            "subject": classification_metrics(y_probe, p_probe, task.classes, task.positive),
            "subject_calibration": calibration(y_probe, p_probe, task.positive)}
        _write_csv(run / "probe_predictions.csv", probe_rows)
    if explain_rows:
        _write_csv(run / "explanations.csv", explain_rows)
    write_json(run / "metrics.json", metrics)
    _write_csv(run / "predictions.csv", subj_rows)
    return metrics


def train_config(args) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, backbone_lr=args.lr_backbone,
                       stage_weight=args.stage_weight,
                       weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, grad_clip=args.grad_clip,
                       select=args.select, patience=args.patience, steps_per_epoch=args.steps_per_epoch,
                       bf16=not args.no_bf16, workers=args.workers, eval_batch_size=args.eval_batch_size,
                       seed=args.seed)


def read_tables(specs, ahi_column: str | None = None) -> dict:
    """``--subject-table DATASET=FILE[,FILE2]`` values → dataset → SubjectTable."""
    tables = {}
    for spec in specs or []:
        dataset, _, files = spec.partition("=")
        if not files:
            raise ValueError(f"--subject-table {spec!r}: expected DATASET=FILE[,FILE2]")
        tables[dataset] = read_subject_table(dataset_key(dataset) or dataset.lower(), files.split(","), ahi_column)
    return tables


def run(args, log=print) -> dict | None:
    """Run the cross-validation described by the parsed CLI ``args``; returns the pooled metrics."""
    out = Path(args.out)
    if args.pool_only:
        return pool(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    task = get_task(args.task, args.classes, args.ahi_cuts)
    label_key = args.label_key or task.label_key
    labels_csv = read_labels_csv(args.labels_csv, label_key) if args.labels_csv else None
    tables = read_tables(args.subject_table, args.ahi_column)
    cohort = build_cohort(args.data, task, args.datasets, label_key, labels_csv, args.channels,
                          args.stride, args.channel_dropout, tables=tables)
    if cohort.excluded:
        _write_csv(out / "excluded.csv", cohort.excluded)
        log(f"{len(cohort.excluded)} subjects left out (reasons in {out / 'excluded.csv'}), e.g. "
            f"{cohort.excluded[0]['subject']}: {cohort.excluded[0]['reason']}")
    if len(cohort.subjects) < args.folds:
        raise ValueError(f"{len(cohort.subjects)} labelled subjects are fewer than --folds {args.folds}")
    if args.strategy == "joint" and all((st < 0).all() for st in cohort.data.windows.stages):
        raise ValueError("--strategy joint needs hypnograms ('stages' in the files); none of the recordings has one")
    y = cohort.y.copy()
    if args.permute_labels is not None:  # chance-level control: labels shuffled across subjects
        y = np.random.default_rng(args.permute_labels).permutation(y)
        cohort.data.rec_class = y[cohort.rec_subject]
    folds = stratified_subject_folds(y, args.folds, args.seed)
    counts = {c: int((y == i).sum()) for i, c in enumerate(task.classes)}
    sim = " (SIMULATED DATA)" if cohort.simulated else ""
    log(f"{task.name}: {len(cohort.subjects)} subjects {counts}, {len(cohort.rows)} recordings, "
        f"{len(cohort.win_rec)} windows{sim}")

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.strategy == "scratch" and args.init:
        raise ValueError("--strategy scratch trains a new backbone: do not pass --init")
    torch.manual_seed(args.seed)
    backbone, source = load_backbone(args.init, args.model)
    backbone_source = str(Path(args.init).resolve()) if args.init else None
    if args.strategy == "partial" and not args.init:
        log("warning: partial with a random frozen backbone (no --init): a random-features baseline")
        save_checkpoint(backbone, out / "backbone_random", meta={"note": "random frozen backbone of nar_cls"})
        backbone_source = str((out / "backbone_random").resolve())
    backbone.to(device)

    config = {"task": task.name, "classes": list(task.classes), "strategy": args.strategy,
              "folds": args.folds, "subject_agg": args.subject_agg, "simulated": cohort.simulated,
              "permute_labels": args.permute_labels, "backbone": source, "subject_counts": counts,
              "n_recordings": len(cohort.rows), "n_windows": int(len(cohort.win_rec)),
              "label_key": label_key, "ahi_cuts": list(task.ahi_cuts) if task.ahi_cuts else None,
              "subject_tables": {ds: t.source for ds, t in tables.items()},
              "n_excluded": len(cohort.excluded),
              "diagnosis_map": DIAGNOSIS_MAP if task.name not in ("custom", "osa", "depression") else None,
              "args": {k: v for k, v in vars(args).items()}, "provenance": provenance()}
    write_json(out / "config.json", config)
    n_rec = np.bincount(cohort.rec_subject, minlength=len(cohort.subjects))
    n_win = np.bincount(cohort.win_subject, minlength=len(cohort.subjects))
    _write_csv(out / "subjects.csv", [
        {"subject": s, "dataset": s.split("/", 1)[0], "label": cohort.raw_labels[i], "class": task.classes[y[i]],
         "fold": int(folds[i]), "n_recordings": int(n_rec[i]), "n_windows": int(n_win[i])}
        for i, s in enumerate(cohort.subjects)])

    cfg = train_config(args)
    emb = stage_prob = None
    if args.strategy == "partial":
        emb, stage_prob = cohort_embeddings(backbone, cohort, device, args.feature_cache, args.channels,
                                batch_size=cfg.eval_batch_size, workers=cfg.workers, bf16=cfg.bf16,
                                progress=not args.no_progress)
        log(f"window embeddings: {emb.shape} ({time.time() - t0:.0f} s)")
    head_emb = emb
    if getattr(args, "head_hypnogram", False):
        hyp = cohort_hypnogram_features(cohort, stage_prob)[cohort.win_subject]
        head_emb = np.hstack([emb, hyp]).astype(np.float32)
    for k in (args.fold if args.fold is not None else range(args.folds)):
        run_fold(k, args, cohort, y, folds, task, backbone, backbone_source, emb, cfg, device, log, stage_prob,
                 head_emb)
    pooled = pool(out)
    if pooled is None:
        log(f"pooled metrics are written once every fold of {out} has finished (or use --pool-only)")
    else:
        s = pooled["pooled"]["subject"]
        log(f"pooled over {args.folds} folds, {pooled['n_subjects']} subjects{sim}: AUC {_f(s['roc_auc'])} "
            f"bacc {_f(s['balanced_accuracy'])} acc {_f(s['accuracy'])} kappa {_f(s['kappa'])} "
            f"macro-F1 {_f(s['macro_f1'])} -> {out / 'metrics.json'} ({time.time() - t0:.0f} s)")
        if "linear_probe" in pooled:
            log(f"linear probe on frozen subject features{sim}: AUC {_f(pooled['linear_probe']['subject']['roc_auc'])} "
                f"bacc {_f(pooled['linear_probe']['subject']['balanced_accuracy'])}")
    return pooled
