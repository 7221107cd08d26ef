"""SIMULATED cohorts → subject AUC per strategy for the osa and depression tasks (docs/diagnosis.md table).

Writes the simulated APPLES-layout cohorts (:mod:`simulate.disorders`: osa, depression, null),
then runs ``python -m nar_cls`` on each with labels joined from the NSRR-layout tables, for the
strategies partial, full and joint (each run also reports the linear probe), and prints one line
per (task, cohort, strategy): pooled subject AUC of the fine-tuned head and of the linear probe,
plus CPU and wall seconds. Backbone: the shipped demo LPSGM-Small (trained to stage simulated
PSG; no real weights are used: these numbers show that the pipeline learns a known simulated
effect, nothing about real patients). Effect scales as in tests/test_diagnosis.py.

    nice -n 10 python bench/diagnosis_sim.py --out /tmp/diag_bench --per-class 16 16 --hours 2
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
from simulate.disorders import HARMONIZED, SOURCE, write_disorder_cohort  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--per-class", type=int, nargs=2, default=[16, 16])
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--effect-scale", type=float, nargs=2, default=[1.5, 2.5], metavar=("OSA", "DEPRESSION"))
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
        tables = f"apples={root / 'apples' / HARMONIZED},{root / 'apples' / SOURCE}"
        run = out / "runs" / f"{task}_{cohort}_{strategy}"
        if not (run / "metrics.json").exists():
            t0, c0 = time.time(), _cpu()
            argv = ["--data", str(root), "--task", task, "--subject-table", tables, "--init", str(init),
                    "--strategy", strategy, "--folds", str(args.folds), "--epochs", str(args.epochs),
                    "--out", str(run), "--no-progress", "--no-save", "--feature-cache", str(root / "feat.npz")]
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

if __name__ == "__main__":
    main()
