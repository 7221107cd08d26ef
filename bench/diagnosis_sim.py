"""SIMULATED cohorts → subject AUC per strategy for the osa and depression tasks (docs/diagnosis.md table).

Writes the simulated APPLES-layout cohorts (:mod:`simulate.disorders`: osa, depression, null),
then runs ``python -m nar_cls`` on each with labels joined from the NSRR-layout tables, for the
strategies partial, full and joint (each run also reports the linear probe), and prints one line
per (task, cohort, strategy): pooled subject AUC of the fine-tuned head and of the linear probe,
plus CPU and wall seconds (partial runs with ``--head-hypnogram``); after each partial run one more
line gives the probe on each part of its subject features alone (mean window embedding; summary of
the predicted hypnogram), same folds. Backbone: the shipped demo LPSGM-Small (trained to stage
simulated PSG; no real weights are used: these numbers show that the pipeline learns a known simulated
effect, nothing about real patients). Effect scales: osa 1.5 (its own magnitudes), depression 1 (the g of
``simulate.disorders.DEPRESSION_G``); for the depression cohort one more line gives the realised
Hedges' g per variable and the Bayes subject-AUC ceiling Φ(‖g‖/√2) those effects allow.

    nice -n 10 python bench/diagnosis_sim.py --out /tmp/diag_bench --per-class 12 12 --hours 2 --folds 3
    # amplified depression cohort (3 x the published g: a capacity check)
    nice -n 10 python bench/diagnosis_sim.py --out /tmp/diag_amp --per-class 12 12 --hours 2 --folds 3 \
        --tasks depression --strategies partial --effect-scale 1.5 3
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as `python bench/diagnosis_sim.py`

from nar_cls.__main__ import main as nar_main  # noqa: E402
from simulate.disorders import (  # noqa: E402
    DEPRESSION_G,
    HARMONIZED,
    SOURCE,
    bayes_auc_ceiling,
    hedges_g,
    write_disorder_cohort,
)


def _depression_effects(root: Path, scale: float, folds: int) -> str:
    """Realised Hedges' g of the cohort (cohort.csv: the simulation's true variables) vs the cited g."""
    import csv

    with open(root / "apples" / "cohort.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for k, g in DEPRESSION_G.items():
        v = [[float(r[k]) if r[k] != "" else float("nan") for r in rows if (float(r["strength"]) > 0) == d]
             for d in (False, True)]
        out.append(f"{k} {hedges_g(*v):+.2f} (target {scale * g:+.2f})")
    ceiling = bayes_auc_ceiling({k: scale * g for k, g in DEPRESSION_G.items()})
    return (f"realised g: {', '.join(out)}; Bayes subject-AUC ceiling of the target g {ceiling:.3f}; "
            f"oracle (logistic regression on the true variables, same fold count) {_oracle(rows, folds):.3f}")


def _oracle(rows: list[dict], folds: int) -> float:
    """Pooled out-of-fold subject AUC of a logistic regression on the cohort's TRUE night variables
    (the labelled subjects only: the last one is absent from the tables)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = rows[:-1]
    x = np.array([[float(r[k]) if r[k] != "" else np.nan for k in DEPRESSION_G] for r in rows])
    x[np.isnan(x)] = np.nanmax(x[:, list(DEPRESSION_G).index("rem_latency_min")])  # no REM: latest seen
    y = np.array([float(r["strength"]) > 0 for r in rows], dtype=int)
    p = np.zeros(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        m = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced")).fit(x[tr], y[tr])
        p[te] = m.predict_proba(x[te])[:, 1]
    return float(roc_auc_score(y, p))


def _probe_parts(root: Path, run: Path) -> str:
    """Pooled subject AUC of the linear probe on each part of its features alone (mean window
    embedding; predicted-hypnogram summary), same folds as ``run`` (fit on the other folds),
    from the partial run's feature cache: what the hypnogram summary adds."""
    import csv

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from nar_cls.hypnogram import subject_hypnogram_features
    from nar_cls.probe import fit_probe, subject_features

    with np.load(root / "feat.npz") as f:
        emb, prob, recording, start = f["emb"], f["stage_prob"], f["recording"], f["start"]
    with open(run / "subjects.csv", newline="") as fh:
        subjects = {r["subject"]: r for r in csv.DictReader(fh)}
    with open(root / "apples" / "manifest.csv", newline="") as fh:
        manifest = {f"apples/{r['recording']}": r for r in csv.DictReader(fh)}
    names = sorted(subjects)
    recs = list(dict.fromkeys(recording.tolist()))
    win_rec = np.array([recs.index(r) for r in recording])
    rec_subject = np.array([names.index(f"apples/{manifest[r]['subject']}") for r in recs])
    n_epochs = np.array([int(manifest[r]["n_epochs"]) for r in recs])
    classes = json.loads((run / "config.json").read_text())["classes"]  # binary tasks: class 1 is positive
    y = np.array([classes.index(subjects[s]["class"]) for s in names])
    fold = np.array([int(subjects[s]["fold"]) for s in names])
    parts = {"mean embedding": subject_features(emb, rec_subject[win_rec], len(names)),
             "hypnogram summary": subject_hypnogram_features(prob, win_rec, start, n_epochs, rec_subject, len(names))}
    out = []
    for name, x in parts.items():
        p = np.zeros(len(y))
        for k in np.unique(fold):
            p[fold == k] = fit_probe(x[fold != k], y[fold != k], seed=k).predict_proba(x[fold == k])[:, 1]
        out.append(f"{name} alone {roc_auc_score(y, p):.3f}")
    return "linear probe on " + ", ".join(out)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, nargs=2, default=[16, 16])
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--effect-scale", type=float, nargs=2, default=[1.5, 1.0], metavar=("OSA", "DEPRESSION"))
    p.add_argument("--init", default="weights/lpsgm-small-demo.safetensors")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--strategies", nargs="+", default=["partial", "full", "joint"])
    p.add_argument("--tasks", nargs="+", default=["osa", "depression"])
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    init = Path(args.init)
    scale = dict(zip(("osa", "depression"), args.effect_scale))
    # cheapest first: every partial and null run, then the fine-tuning strategies
    jobs = [(t, t, st) for st in args.strategies if st == "partial" for t in args.tasks]
    jobs += [(t, "null", "partial") for t in args.tasks]
    jobs += [(t, t, st) for st in args.strategies if st != "partial" for t in args.tasks]
    for task, cohort, strategy in jobs:
        root = out / f"{task}_{cohort}"
        if not (root / "apples" / "manifest.csv").exists():
            write_disorder_cohort(root, cohort, args.per_class, args.hours, seed=1 if cohort == "null" else 0,
                                  effect_scale=scale[task], workers=2)
            if cohort == "depression":
                print(f"SIMULATED depression cohort: {_depression_effects(root, scale[task], args.folds)}", flush=True)
        tables = f"apples={root / 'apples' / HARMONIZED},{root / 'apples' / SOURCE}"
        run = out / "runs" / f"{task}_{cohort}_{strategy}"
        if not (run / "metrics.json").exists():
            t0, c0 = time.time(), _cpu()
            argv = ["--data", str(root), "--task", task, "--subject-table", tables, "--init", str(init),
                    "--strategy", strategy, "--folds", str(args.folds), "--epochs", str(args.epochs),
                    "--out", str(run), "--no-progress", "--no-save", "--feature-cache", str(root / "feat.npz")]
            if strategy == "partial":  # the head also reads the predicted-hypnogram summary
                argv += ["--head-hypnogram"]
            if strategy != "partial":  # CPU budget: 2 epochs of at most 6 steps of 8 windows per fold
                argv += ["--epochs", "2", "--steps-per-epoch", "6", "--batch-size", "8", "--lr-backbone", "1e-4"]
            nar_main(argv)
            cost = f"cpu {_cpu() - c0:.0f} s wall {time.time() - t0:.0f} s"
        else:
            cost = "(earlier run)"
        m = json.loads((run / "metrics.json").read_text())
        print(f"SIMULATED {task:10s} cohort={cohort:10s} strategy={strategy:8s} "
              f"subject AUC head {m['pooled']['subject']['roc_auc']:.3f} "
              f"linear probe {m['linear_probe']['subject']['roc_auc']:.3f} n={m['n_subjects']} {cost}", flush=True)
        if strategy == "partial":
            print(f"SIMULATED {task:10s} cohort={cohort:10s} {_probe_parts(root, run)}", flush=True)

if __name__ == "__main__":
    main()
