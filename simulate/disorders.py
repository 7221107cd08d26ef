"""Simulated OSA and depression cohorts with a known effect, and a null cohort, in the APPLES layout.

Each subject gets one simulated night (harmonized HDF5 with its hypnogram as ``stages``, so the
``joint`` strategy has staging targets) and rows in two NSRR-layout subject tables written beside
the files: ``apples-harmonized-dataset-0.1.0.csv`` (``nsrrid``, ``visitn``, ``fileid``,
``nsrr_ahi_chicago1999``) and ``apples-dataset-0.1.0.csv`` (``appleid``, ``visitn``,
``depressionmedhxhp``, ``hamdtotalscore``, ``bditotalscore``). The files carry **no** diagnosis:
``nar_cls`` must join the tables by subject id (``--subject-table apples=...``). One subject
(``drop_from_table``) is left out of the tables on purpose: it must be reported, never labelled.

Effects (``strength`` s ≥ 0 per subject; multipliers of the control Markov transition table of
:mod:`simulate.hypnogram`, rows renormalised; directions from the meta-analyses cited in
docs/simulator.md):

* ``osa`` — fragmentation, s = ``effect_scale`` × min(AHI, 60) / 30: sleep → W × (1 + 2s),
  N2/N3/REM → N1 × (1 + 1.5s), N2 → N3 × 1 / (1 + s); and brief arousals: one-epoch W intrusions
  into sleep at 6s per hour of sleep. AHI is drawn U(0, 15) for non-severe and U(40, 80) for
  severe subjects (events/h).
* ``depression`` — REM pressure, s = ``effect_scale`` for depressed subjects, 0 for controls:
  REM latency N(75 − 35s, 12) min (controls 75 ± 12), N2 → REM × (1 + 0.8s) (more REM) and the
  subject's REM phasic density × (1 + 0.8s) (more rapid eye movements in REM).
* ``null`` — labels (both tables filled as for ``osa`` and ``depression``) but no effect at all:
  every night is a control night. A classifier must stay at chance.

Every number obtained from these files is a result on SIMULATED data.

Command line::

    python -m simulate.disorders --task osa --dst /tmp/sim_osa --per-class 30 30 --hours 2
"""

from __future__ import annotations

import argparse
import csv
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from preprocess.core.atomic import atomic_write_csv
from preprocess.core.hdf5 import recording_path, write_manifest, write_recording
from preprocess.core.signal import SignalParams
from preprocess.core.version import add_version_argument

from .cohorts import EPOCHS_PER_MIN, SITES, _scaled, simulate_recording, sleep_onset
from .hypnogram import MARKOV_TRANSITIONS, N1, N2, N3, REM, W, markov_hypnogram
from .physiology import draw_subject_params

TASKS = ("osa", "depression", "null")
DATASET = "apples"
HARMONIZED = "apples-harmonized-dataset-0.1.0.csv"
SOURCE = "apples-dataset-0.1.0.csv"
SLEEP = (N1, N2, N3, REM)


def osa_transitions(s: float) -> np.ndarray:
    """Control transitions with OSA fragmentation of strength ``s`` (0 = control)."""
    return _scaled(MARKOV_TRANSITIONS, {**{(a, W): 1 + 2 * s for a in SLEEP},
                                        **{(a, N1): 1 + 1.5 * s for a in (N2, N3, REM)},
                                        (N2, N3): 1 / (1 + s)})


def disorder_hypnogram(task: str, strength: float, n_epochs: int, rng: np.random.Generator) -> np.ndarray:
    """One night (stage codes per 30-s epoch) with the effect of ``task`` at ``strength``.

    Examples
    --------
    >>> h = disorder_hypnogram("osa", 0.0, 240, np.random.default_rng(0)); h.shape, h.dtype
    ((240,), dtype('int8'))
    """
    s = float(strength)
    if task == "osa":
        P = osa_transitions(s)
    elif task == "depression":
        P = _scaled(MARKOV_TRANSITIONS, {(N2, REM): 1 + 0.8 * s})
    else:
        raise ValueError(f"unknown task {task!r}")
    stages = markov_hypnogram(n_epochs, rng, P).stages.copy()
    onset = sleep_onset(stages)
    if onset is not None:  # REM latency: no REM before it; the first REM period starts there
        mean = 75.0 - (35.0 * s if task == "depression" else 0.0)
        latency = int(max(10.0, rng.normal(mean, 12.0)) * EPOCHS_PER_MIN)
        early = stages[onset : onset + latency]
        early[early == REM] = N2
        start = onset + latency
        if task == "depression" and start < n_epochs and s > 0:
            stages[start : min(start + int(rng.integers(10, 21)), n_epochs)] = REM
    if task == "osa" and s > 0:  # brief arousals scored as one W epoch inside sleep
        asleep = np.flatnonzero(np.isin(stages, SLEEP))
        n = rng.poisson(6.0 * s * len(asleep) / (60 * EPOCHS_PER_MIN))
        stages[rng.choice(asleep, size=min(n, len(asleep)), replace=False)] = W
    return stages.astype(np.int8)


def _write_one(job: dict) -> dict:
    rng = np.random.default_rng(job["seed"])
    n_epochs = int(round(job["hours"] * 60 * EPOCHS_PER_MIN))
    effect = "osa" if job["task"] in ("osa", "null") else "depression"
    stages = disorder_hypnogram(effect, job["strength"], n_epochs, rng)
    params = draw_subject_params(np.random.default_rng(job["subject_seed"]))
    if effect == "depression":
        params["rem_density"] *= 1 + 0.8 * job["strength"]
    signals = simulate_recording(stages, job["channels"], params, rng)
    write_recording(job["path"], signals, list(job["channels"]), stages, dataset=DATASET, subject=job["subject"],
                    recording=job["recording"], montage={c: SITES[c] for c in job["channels"]},
                    preprocessing=SignalParams().to_dict(), labels={"simulated": True, "cohort": job["task"]},
                    extra_attrs={"simulated": True})
    rem = np.flatnonzero(stages == REM)
    onset = sleep_onset(stages)
    return {"subject": job["subject"], "strength": job["strength"],
            "rem_latency_min": (rem[0] - onset) / EPOCHS_PER_MIN if len(rem) and onset is not None else "",
            "n1_share": float(np.mean(stages == N1)), "n3_share": float(np.mean(stages == N3)),
            "rem_share": float(np.mean(stages == REM)), "stage_shifts": int(np.sum(stages[1:] != stages[:-1]))}


def write_disorder_cohort(dst: str | os.PathLike, task: str, per_class: Sequence[int] = (20, 20), hours: float = 2.0,
                          channels: Sequence[str] = ("C4", "E1", "Chin"), seed: int = 0, effect_scale: float = 1.0,
                          drop_from_table: int = 1, workers: int = 1) -> Path:
    """Write a simulated cohort (files + NSRR-layout tables) under ``dst/apples``.

    Parameters
    ----------
    dst : path-like
        Harmonized root.
    task : {"osa", "depression", "null"}
    per_class : (int, int)
        Subjects without / with the condition (non-severe / severe OSA; control / depressed).
    hours : float
        Night length.
    channels : sequence of str
        Canonical channels (any of :data:`simulate.cohorts.SITES`).
    seed : int
        Everything is a deterministic function of it.
    effect_scale : float
        Multiplies every effect (1 = the documented strengths; 0 = no effect).
    drop_from_table : int
        Number of subjects (the last ones) written as files but left out of the tables.
    workers : int
        Parallel processes.

    Returns
    -------
    Path
        The dataset folder ``dst/apples`` (tables inside).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    root = Path(dst) / DATASET
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = [c for c in SITES if c in channels]
    jobs, harmonized, source = [], [], []
    n = 0
    for affected, count in enumerate(per_class):
        for _ in range(int(count)):
            fileid, nsrrid = f"apples-{900001 + n}", str(700001 + n)
            ahi = float(rng.uniform(40, 80) if affected else rng.uniform(0, 15))
            if task == "osa":
                strength = effect_scale * min(ahi, 60.0) / 30.0
            elif task == "depression":
                strength = effect_scale * affected
            else:
                strength = 0.0
            if affected:
                hamd, bdi = rng.integers(8, 26), rng.integers(14, 36)
            else:
                hamd, bdi = rng.integers(0, 8), rng.integers(0, 14)
            depressed = affected if task in ("depression", "null") else int(rng.random() < 0.3)
            if task == "osa":  # depression items independent of the OSA class
                hamd, bdi = (rng.integers(8, 26), rng.integers(14, 36)) if depressed else (rng.integers(0, 8),
                                                                                          rng.integers(0, 14))
            jobs.append({"task": task, "strength": strength, "subject": fileid.split("-")[1], "recording": fileid,
                         "hours": hours, "channels": order, "path": str(recording_path(dst, DATASET, fileid)),
                         "seed": int(rng.integers(2**31)), "subject_seed": int(rng.integers(2**31))})
            harmonized += [{"nsrrid": nsrrid, "visitn": 1, "fileid": "", "nsrr_ahi_chicago1999": ""},
                           {"nsrrid": nsrrid, "visitn": 3, "fileid": fileid, "nsrr_ahi_chicago1999": f"{ahi:.2f}"}]
            source.append({"appleid": nsrrid, "visitn": 1, "depressionmedhxhp": depressed,
                           "hamdtotalscore": int(hamd), "bditotalscore": int(bdi)})
            n += 1
    if drop_from_table:
        kept = {r["appleid"] for r in source[:-drop_from_table]}
        harmonized = [r for r in harmonized if r["nsrrid"] in kept]
        source = source[:-drop_from_table]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            stats = list(pool.map(_write_one, jobs))
    else:
        stats = [_write_one(j) for j in jobs]
    atomic_write_csv(root / HARMONIZED, harmonized)
    atomic_write_csv(root / SOURCE, source)
    with open(root / "cohort.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(stats[0]))
        writer.writeheader()
        writer.writerows(stats)
    write_manifest(root)
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulate.disorders", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--dst", required=True, help="harmonized root (files and tables go to DST/apples/)")
    p.add_argument("--per-class", type=int, nargs=2, default=[20, 20], metavar=("WITHOUT", "WITH"))
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--channels", nargs="+", default=["C4", "E1", "Chin"])
    p.add_argument("--effect-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    root = write_disorder_cohort(args.dst, args.task, args.per_class, args.hours, args.channels, args.seed,
                                 args.effect_scale, workers=args.workers)
    print(f"simulated {args.task} cohort (SIMULATED DATA): {root} (tables {HARMONIZED}, {SOURCE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
