"""Simulated OSA and depression cohorts with a known effect, and a null cohort, in the APPLES layout.

Each subject gets one simulated night (harmonized HDF5 with its hypnogram as ``stages``, so the
``joint`` strategy has staging targets) and rows in two NSRR-layout subject tables written beside
the files: ``apples-harmonized-dataset-0.1.0.csv`` (``nsrrid``, ``visitn``, ``fileid``,
``nsrr_ahi_chicago1999``) and ``apples-dataset-0.1.0.csv`` (``appleid``, ``visitn``,
``depressionmedhxhp``, ``hamdtotalscore``, ``bditotalscore``). The files carry **no** diagnosis:
``nar_cls`` must join the tables by subject id (``--subject-table apples=...``). One subject
(``drop_from_table``) is left out of the tables on purpose: it must be reported, never labelled.

Effects:

* ``osa`` — fragmentation (multipliers of the control Markov transition table of
  :mod:`simulate.hypnogram`, rows renormalised), strength s = ``effect_scale`` × min(AHI, 60) / 30:
  sleep → W × (1 + 2s), N2/N3/REM → N1 × (1 + 1.5s), N2 → N3 × 1 / (1 + s); and brief arousals:
  one-epoch W intrusions into sleep at 6s per hour of sleep. AHI is drawn U(0, 15) for non-severe
  and U(40, 80) for severe subjects (events/h). Magnitudes are this simulator's own (no published
  standardised effect was readable; docs/simulator.md).
* ``depression`` — each variable of :data:`DEPRESSION_G` (REM latency, REM share, REM density,
  sleep onset latency, wake after sleep onset) of a depressed subject is shifted by
  ``effect_scale`` × g × the between-subject SD of that variable among simulated controls
  (:func:`control_sd`), as a constant, so the cohort's realised Hedges' g equals g up to sampling
  error. Sources of each g (and which are assumptions) in :data:`EFFECT_SOURCES` and
  docs/simulator.md; :func:`bayes_auc_ceiling` gives the subject AUC no classifier can beat.
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
from functools import lru_cache
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

#: Depressed minus control, as Hedges' g (in between-subject SDs of the simulated controls), per
#: variable of the night. Where each number comes from is in :data:`EFFECT_SOURCES` and in
#: docs/simulator.md; the simulated effect is a shift of exactly this many control SDs.
DEPRESSION_G = {
    "rem_latency_min": -0.5,  # ASSUMED magnitude (direction published; the g was not readable)
    "rem_share": 0.5,  # ASSUMED magnitude (direction published)
    "rem_density": 0.5,  # ASSUMED magnitude (direction published)
    "sol_min": 0.23,  # Ho et al. 2024, actigraphy: SMD 0.23 (95 % CI 0.12-0.33)
    "waso_min": 0.37,  # Ho et al. 2024, actigraphy: SMD 0.37 (95 % CI 0.22-0.52)
}
EFFECT_SOURCES = {
    "rem_latency_min": "assumed |g| = 0.5; shorter in MDD: Baglioni 2016 Psychol Bull 142:969, Arikan 2024 "
                       "Sleep Med Rev 73:101876, Zhang 2023 Psychol Med 53:4675 (abstracts; their g not readable here)",
    "rem_share": "assumed g = 0.5; more REM in affective disorders: Benca 1992 Arch Gen Psychiatry 49:651 (abstract)",
    "rem_density": "assumed g = 0.5; higher in MDD: Arikan 2024, Pillai 2011 Biol Psychiatry 70:912 (abstracts)",
    "sol_min": "SMD 0.23 [0.12, 0.33]: Ho et al. 2024 J Affect Disord 361:224 (actigraphy meta-analysis, abstract)",
    "waso_min": "SMD 0.37 [0.22, 0.52]: Ho et al. 2024 J Affect Disord 361:224 (actigraphy meta-analysis, abstract)",
}
#: Controls' REM latency in the simulator: N(75, 12) minutes from sleep onset (the first REM period
#: starts exactly there), floored at 10 min.
REM_LATENCY_MEAN, REM_LATENCY_SD = 75.0, 12.0
_REFERENCE_NIGHTS = 1000


def osa_transitions(s: float) -> np.ndarray:
    """Control transitions with OSA fragmentation of strength ``s`` (0 = control)."""
    return _scaled(MARKOV_TRANSITIONS, {**{(a, W): 1 + 2 * s for a in SLEEP},
                                        **{(a, N1): 1 + 1.5 * s for a in (N2, N3, REM)},
                                        (N2, N3): 1 / (1 + s)})


def night_variables(stages: np.ndarray) -> dict:
    """The variables the depression effects act on, from one hypnogram (the simulation's truth).

    ``sol_min`` recording start → first sleep epoch; ``rem_latency_min`` sleep onset → first REM
    epoch (NaN without REM); ``rem_share`` REM epochs / all epochs; ``waso_min`` wake between sleep
    onset and the last sleep epoch.

    Examples
    --------
    >>> v = night_variables(np.array([0, 0, 1, 2, 0, 2, 4, 4, 0])); v["sol_min"], v["waso_min"], v["rem_latency_min"]
    (1.0, 0.5, 2.0)
    """
    s = np.asarray(stages)
    sleep = np.flatnonzero(np.isin(s, SLEEP))
    rem = np.flatnonzero(s == REM)
    if len(sleep) == 0:
        return {"sol_min": len(s) / EPOCHS_PER_MIN, "rem_latency_min": float("nan"), "rem_share": 0.0,
                "waso_min": 0.0}
    onset, last = int(sleep[0]), int(sleep[-1])
    return {"sol_min": onset / EPOCHS_PER_MIN,
            "rem_latency_min": float(rem[0] - onset) / EPOCHS_PER_MIN if len(rem) else float("nan"),
            "rem_share": float(np.mean(s == REM)),
            "waso_min": float(np.sum(s[onset : last + 1] == W)) / EPOCHS_PER_MIN}


def _count(x: float, rng: np.random.Generator) -> int:
    """Non-negative integer with expectation ``x`` (stochastic rounding), so mean shifts stay exact."""
    x = max(0.0, float(x))
    return int(np.floor(x) + (rng.random() < x - np.floor(x)))


def depression_hypnogram(n_epochs: int, rng: np.random.Generator, shift: dict | None = None) -> np.ndarray:
    """One night of the depression cohort: a control night, then shifts in native units.

    ``shift`` (all 0 / None = a control night): ``sol_min`` minutes of wake put before the night
    (which moves right, its last epochs dropped), ``rem_latency_min`` minutes added to the drawn
    REM latency, ``rem_share`` fraction of the night turned from N2 to REM next to REM periods
    after the first, ``waso_min`` minutes of single 30-s awakenings on N2 epochs inside sleep.
    Each is applied as a constant (stochastic rounding to whole epochs), so it moves its variable
    by about that much and leaves the between-subject spread alone. The base night, the REM
    latency and the placement of the effects use separate random streams, so a control and a
    depressed night drawn from the same ``rng`` state share their base night.
    """
    shift = shift or {}
    bad = [k for k in ("sol_min", "rem_share", "waso_min") if shift.get(k, 0.0) < 0]
    if bad:
        raise ValueError(f"depression shift of {', '.join(bad)} must be >= 0 (only increases are simulated)")
    r_night, r_lat, r_fx = (np.random.default_rng(int(x)) for x in rng.integers(2**63, size=3))
    stages = markov_hypnogram(n_epochs, r_night).stages.copy()
    # sleep onset latency: k wake epochs before the night
    k = min(_count(shift.get("sol_min", 0.0) * EPOCHS_PER_MIN, r_fx), n_epochs // 4)
    if k:
        stages = np.concatenate([np.full(k, W, stages.dtype), stages[:-k]])
    onset = sleep_onset(stages)
    latency = max(10.0, r_lat.normal(REM_LATENCY_MEAN, REM_LATENCY_SD) + shift.get("rem_latency_min", 0.0))
    period = int(r_lat.integers(10, 21))
    if onset is None:
        return stages.astype(np.int8)
    # REM latency: no REM before it, the first REM period (5-10 min) starts exactly there
    start = onset + int(round(latency * EPOCHS_PER_MIN))
    early = stages[onset : min(start, n_epochs)]
    early[early == REM] = N2
    if start < n_epochs:
        stages[start : min(start + period, n_epochs)] = REM
    # REM share: N2 epochs next to REM periods (after the first REM epoch) become REM
    for _ in range(_count(shift.get("rem_share", 0.0) * n_epochs, r_fx)):
        r = np.flatnonzero(stages == REM)
        if not len(r):
            break
        nb = np.concatenate([r - 1, r + 1])
        nb = nb[(nb > r[0]) & (nb < n_epochs)]
        nb = nb[stages[nb] == N2]
        if not len(nb):
            break
        stages[r_fx.choice(nb)] = REM
    # WASO: single-epoch awakenings on N2 epochs strictly inside sleep
    sleep = np.flatnonzero(np.isin(stages, SLEEP))
    inner = np.flatnonzero(stages[sleep[0] + 1 : sleep[-1]] == N2) + sleep[0] + 1
    k = min(_count(shift.get("waso_min", 0.0) * EPOCHS_PER_MIN, r_fx), len(inner))
    stages[r_fx.choice(inner, size=k, replace=False)] = W
    return stages.astype(np.int8)


def disorder_hypnogram(task: str, strength: float, n_epochs: int, rng: np.random.Generator,
                       shift: dict | None = None) -> np.ndarray:
    """One night (stage codes per 30-s epoch) with the effect of ``task``.

    ``osa``: fragmentation of strength ``strength``; ``depression``: :func:`depression_hypnogram`
    with ``shift`` (native units; ``strength`` unused).

    Examples
    --------
    >>> h = disorder_hypnogram("osa", 0.0, 240, np.random.default_rng(0)); h.shape, h.dtype
    ((240,), dtype('int8'))
    """
    if task == "depression":
        return depression_hypnogram(n_epochs, rng, shift)
    if task != "osa":
        raise ValueError(f"unknown task {task!r}")
    s = float(strength)
    stages = markov_hypnogram(n_epochs, rng, osa_transitions(s)).stages.copy()
    onset = sleep_onset(stages)
    if onset is not None:  # REM latency: no REM before it
        latency = int(max(10.0, rng.normal(REM_LATENCY_MEAN, REM_LATENCY_SD)) * EPOCHS_PER_MIN)
        early = stages[onset : onset + latency]
        early[early == REM] = N2
    if s > 0:  # brief arousals scored as one W epoch inside sleep
        asleep = np.flatnonzero(np.isin(stages, SLEEP))
        n = rng.poisson(6.0 * s * len(asleep) / (60 * EPOCHS_PER_MIN))
        stages[rng.choice(asleep, size=min(n, len(asleep)), replace=False)] = W
    return stages.astype(np.int8)


def _reference(hours: float, shift: dict, nights: int, seed: int) -> dict:
    """Mean and SD of each variable over ``nights`` nights drawn from ``seed`` with ``shift``."""
    rng = np.random.default_rng(seed)
    n_epochs = int(round(hours * 60 * EPOCHS_PER_MIN))
    rows = [night_variables(depression_hypnogram(n_epochs, rng, shift)) for _ in range(nights)]
    out = {}
    for k in rows[0]:  # a variable never defined at this night length (no REM in 30 min): NaN
        v = np.array([r[k] for r in rows], dtype=float)
        v = v[np.isfinite(v)]
        out[k] = (float(v.mean()), float(v.std(ddof=1))) if len(v) > 1 else (float("nan"), float("nan"))
    return out


@lru_cache(maxsize=8)
def _control_reference(hours: float, nights: int, seed: int) -> dict:
    return _reference(hours, {}, nights, seed)


@lru_cache(maxsize=8)
def control_sd(hours: float, nights: int = _REFERENCE_NIGHTS, seed: int = 12345) -> dict:
    """Between-subject SD of each :data:`DEPRESSION_G` variable among simulated control nights.

    Where it comes from: every simulated control night follows the same Markov chain, so the SD of
    the stage variables is the night-to-night sampling spread of that chain at this night length,
    plus the drawn REM latency (N(75, 12) min); REM density is the subject parameter
    ``rem_density`` of :func:`simulate.physiology.draw_subject_params` (log-normal, σ = 0.3 of its
    log). Estimated on ``nights`` control nights drawn with a fixed seed (deterministic).
    """
    out = {k: sd for k, (_, sd) in _control_reference(hours, nights, seed).items()}
    rng = np.random.default_rng(seed)
    out["rem_density"] = float(np.std([draw_subject_params(rng)["rem_density"] for _ in range(nights)], ddof=1))
    return out


@lru_cache(maxsize=16)
def _calibrated(hours: float, g: tuple, nights: int = _REFERENCE_NIGHTS, seed: int = 12345) -> tuple:
    """Native shifts whose realised mean differences are g × control SD (two corrections).

    The effects interact through the night's clock (a shorter REM latency leaves more time for REM
    in a fixed-length night, wake put before the night pushes its end out), so the first guess
    g × SD is corrected twice by the measured shortfall, on nights sharing their base night with
    the control reference (common random numbers: the correction is nearly free of sampling noise).
    """
    sd = control_sd(hours, nights, seed)
    base = {k: m for k, (m, _) in _control_reference(hours, nights, seed).items()}
    # a variable the night is too short to show (REM latency of a 30-min night) gets no shift
    target = {k: v * sd[k] for k, v in g if k in base and np.isfinite(base[k]) and np.isfinite(sd[k])}
    shift = dict(target)
    for _ in range(2):
        got = _reference(hours, shift, nights, seed)
        shift = {k: shift[k] + target[k] - (got[k][0] - base[k]) if np.isfinite(got[k][0]) else shift[k]
                 for k in shift}
    shift.update({k: v * sd[k] for k, v in g if k not in base})  # rem_density: a subject parameter, exact
    return tuple(sorted(shift.items()))


def depression_shift(hours: float, g: dict | None = None, scale: float = 1.0) -> dict:
    """Native-unit shifts of a depressed subject: ``scale`` × g control SDs per variable (calibrated)."""
    g = DEPRESSION_G if g is None else g
    if scale == 0 or not any(g.values()):
        return {}
    return dict(_calibrated(float(hours), tuple(sorted((k, scale * float(v)) for k, v in g.items()))))


def bayes_auc_ceiling(g: dict | Sequence[float]) -> float:
    """Subject AUC of the Bayes-optimal rule for independent Gaussian features shifted by ``g`` SDs.

    AUC = Φ(‖g‖ / √2): the optimal score is the sum of g_i × z_i, whose class means differ by ‖g‖²
    and whose SD is ‖g‖ in both classes.

    Examples
    --------
    >>> round(bayes_auc_ceiling([1.0]), 4), round(bayes_auc_ceiling({"a": 0.6, "b": 0.8}), 4)
    (0.7602, 0.7602)
    """
    from scipy.stats import norm

    v = np.asarray(list(g.values()) if isinstance(g, dict) else g, dtype=float)
    return float(norm.cdf(np.sqrt(np.sum(v**2)) / np.sqrt(2)))


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Hedges' g of ``b`` minus ``a`` (pooled SD, small-sample correction)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n1, n2 = len(a), len(b)
    sp = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    return float((b.mean() - a.mean()) / sp * (1 - 3 / (4 * (n1 + n2) - 9)))


def simulate_depression_variables(n_per_class: int, hours: float, seed: int = 0, g: dict | None = None,
                                  scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """True night variables (no signals) of ``n_per_class`` controls and as many depressed subjects.

    Returns ``(x, y, names)``: x has one row per subject and one column per :data:`DEPRESSION_G`
    variable; y is 1 for depressed. Subjects are drawn exactly as :func:`write_disorder_cohort` draws them.
    """
    names = list(DEPRESSION_G if g is None else g)
    shift = depression_shift(hours, g, scale)
    n_epochs = int(round(hours * 60 * EPOCHS_PER_MIN))
    rng = np.random.default_rng(seed)
    x, y = [], []
    for affected in (0, 1):
        for _ in range(n_per_class):
            sh = shift if affected else {}
            v = night_variables(depression_hypnogram(n_epochs, rng, sh))
            v["rem_density"] = draw_subject_params(rng)["rem_density"] + sh.get("rem_density", 0.0)
            x.append([v[k] for k in names])
            y.append(affected)
    return np.asarray(x, float), np.asarray(y), names


def _write_one(job: dict) -> dict:
    rng = np.random.default_rng(job["seed"])
    n_epochs = int(round(job["hours"] * 60 * EPOCHS_PER_MIN))
    effect = "osa" if job["task"] in ("osa", "null") else "depression"
    shift = job.get("shift") or {}
    stages = disorder_hypnogram(effect, job["strength"], n_epochs, rng, shift)
    params = draw_subject_params(np.random.default_rng(job["subject_seed"]))
    params["rem_density"] += shift.get("rem_density", 0.0)
    signals = simulate_recording(stages, job["channels"], params, rng)
    write_recording(job["path"], signals, list(job["channels"]), stages, dataset=DATASET, subject=job["subject"],
                    recording=job["recording"], montage={c: SITES[c] for c in job["channels"]},
                    preprocessing=SignalParams().to_dict(), labels={"simulated": True, "cohort": job["task"]},
                    extra_attrs={"simulated": True})
    v = night_variables(stages)
    return {"subject": job["subject"], "strength": job["strength"],
            "rem_latency_min": v["rem_latency_min"] if np.isfinite(v["rem_latency_min"]) else "",
            "rem_share": v["rem_share"], "rem_density": params["rem_density"], "sol_min": v["sol_min"],
            "waso_min": v["waso_min"], "n1_share": float(np.mean(stages == N1)),
            "n3_share": float(np.mean(stages == N3)), "stage_shifts": int(np.sum(stages[1:] != stages[:-1]))}


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
        Multiplies every effect (1 = the documented strengths: for ``depression`` the g of
        :data:`DEPRESSION_G`; 0 = no effect).
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
    shift = depression_shift(hours, scale=effect_scale) if task == "depression" else {}
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
                         "shift": shift if task == "depression" and affected else {},
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
    if args.task == "depression":
        g = {k: args.effect_scale * v for k, v in DEPRESSION_G.items()}
        print("depression effects (Hedges' g, control SDs): " + ", ".join(f"{k} {v:+.2f}" for k, v in g.items())
              + f"; Bayes subject-AUC ceiling {bayes_auc_ceiling(g):.3f} (sources: docs/simulator.md)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
