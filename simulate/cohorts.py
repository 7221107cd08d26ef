"""Simulated diagnostic cohorts (MNC-like) written directly as harmonized HDF5 files.

Three groups, each with its own hypnogram model (30-s epochs, W=0 N1=1 N2=2 N3=3 REM=4):

* ``control``: the normal-architecture Markov night of :func:`simulate.hypnogram.markov_hypnogram`
  with a normal REM latency (first REM 45-110 min after sleep onset, about 75 min on average).
* ``type 1 narcolepsy``: fast sleep onset, a sleep-onset REM period (SOREMP: REM starting within
  15 min of sleep onset) in most nights, hence a short REM latency, and fragmented sleep (many
  awakenings and N1 transitions, less N3, more REM).
* ``other hypersomnia`` (type 2 narcolepsy / idiopathic hypersomnia): fast sleep onset, very few
  awakenings and no final awakening, i.e. long total sleep and high sleep efficiency; normal
  REM latency as in controls.

Signals come from :mod:`simulate.physiology` (stage-dependent EEG, EOG and chin EMG in volts,
simulated at the output rate of 100 Hz) and go through the same signal chain as real data
(:func:`preprocess.core.signal.process_channel`: filter, z-score). Each recording is written with
:func:`preprocess.core.hdf5.write_recording` with ``labels = {"diagnosis": ..., "cohort": ...,
"simulated": true}`` (the diagnosis strings are MNC's), and ``manifest.csv`` is rebuilt at the
end. Like MNC, files carry no ``stages`` by default. ``cohort.csv`` beside the files lists the
simulated sleep statistics of every recording. Every number obtained from these files is a
result on SIMULATED data.

Command line::

    python -m simulate.cohorts --dst /tmp/sim_h5 --per-group 20 20 20 --hours 8 --workers 4
"""

from __future__ import annotations

import argparse
import csv
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from preprocess.core.channels import CHANNEL_KIND
from preprocess.core.hdf5 import recording_path, write_manifest, write_recording
from preprocess.core.signal import SignalParams, process_channel, to_epochs
from preprocess.core.version import add_version_argument

from .hypnogram import MARKOV_TRANSITIONS, N1, N2, N3, REM, W, markov_hypnogram
from .physiology import draw_subject_params, simulate_sites

GROUPS = ("control", "type 1 narcolepsy", "other hypersomnia")
EPOCHS_PER_MIN = 2
SFREQ = 100.0

#: Canonical channel → simulated site (AASM derivations, chin EMG bipolar).
SITES = {"F3": "F3-M2", "F4": "F4-M1", "C3": "C3-M2", "C4": "C4-M1", "O1": "O1-M2", "O2": "O2-M1",
         "E1": "E1-M2", "E2": "E2-M1", "Chin": "CHIN"}


def _scaled(P: np.ndarray, scale: dict[tuple[int, int], float]) -> np.ndarray:
    """Copy of transition tables with some (from, to) entries multiplied, rows renormalised."""
    P = P.copy()
    for (a, b), f in scale.items():
        P[:, a, b] *= f
    return P / P.sum(axis=2, keepdims=True)


SLEEP = (N1, N2, N3, REM)
#: Group → multipliers of the control transition probabilities (all phases of the night).
TRANSITION_SCALES = {
    "control": {},
    "type 1 narcolepsy": {
        **{(s, W): 5.0 for s in SLEEP},  # frequent awakenings
        **{(s, N1): 2.5 for s in (N2, N3, REM)},  # frequent shifts to N1
        (W, N1): 3.0,  # falls asleep fast
        (N2, N3): 0.5,  # less slow-wave sleep
        (N2, REM): 2.0,  # more REM
        (N1, REM): 3.0,
    },
    "other hypersomnia": {
        **{(s, W): 0.2 for s in SLEEP},  # consolidated sleep
        (W, N1): 4.0,  # short sleep latency
        (N1, W): 0.2,
    },
}


def sleep_onset(stages: np.ndarray) -> int | None:
    """Index of the first sleep epoch (N1..REM), or None for a night without sleep."""
    sleep = np.flatnonzero((stages >= N1) & (stages <= REM))
    return int(sleep[0]) if len(sleep) else None


def hypnogram_stats(stages: np.ndarray) -> dict:
    """Summary of a simulated night: TST, sleep efficiency, REM latency, SOREMP, awakenings.

    Parameters
    ----------
    stages : ndarray of int
        One code per 30-s epoch.

    Returns
    -------
    dict
        ``tst_min``, ``sleep_efficiency`` (TST / recording time), ``rem_latency_min`` (from sleep
        onset; NaN without REM), ``soremp`` (REM within 15 min of sleep onset),
        ``n_awakenings`` (sleep → W transitions) and ``n1_transitions`` (N2/N3/REM → N1).
    """
    s = np.asarray(stages)
    asleep = (s >= N1) & (s <= REM)
    onset = sleep_onset(s)
    rem = np.flatnonzero(s == REM)
    latency = (rem[0] - onset) / EPOCHS_PER_MIN if onset is not None and len(rem) else float("nan")
    prev, nxt = s[:-1], s[1:]
    return {
        "tst_min": float(asleep.sum() / EPOCHS_PER_MIN),
        "sleep_efficiency": float(asleep.mean()) if len(s) else float("nan"),
        "rem_latency_min": float(latency),
        "soremp": bool(latency <= 15.0),
        "n_awakenings": int(np.sum(((prev >= N1) & (prev <= REM)) & (nxt == W))),
        "n1_transitions": int(np.sum(np.isin(prev, (N2, N3, REM)) & (nxt == N1))),
    }


def group_hypnogram(group: str, n_epochs: int, rng: np.random.Generator, soremp_prob: float = 0.85) -> np.ndarray:
    """Draw one night of ``n_epochs`` epochs for a diagnostic group.

    Parameters
    ----------
    group : str
        One of :data:`GROUPS`.
    n_epochs : int
        Night length in 30-s epochs.
    rng : numpy Generator
    soremp_prob : float
        Probability that a type 1 narcolepsy night has a sleep-onset REM period (REM starting
        1-10 min after sleep onset, lasting 5-15 min).

    Returns
    -------
    ndarray of int8
        Stage codes (may contain a few -1 movement epochs inside sleep).
    """
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; expected one of {GROUPS}")
    stages = markov_hypnogram(n_epochs, rng, _scaled(MARKOV_TRANSITIONS, TRANSITION_SCALES[group])).stages.copy()
    onset = sleep_onset(stages)
    if group != "type 1 narcolepsy" and onset is not None:
        # normal REM latency (about 60-90 min): REM drawn earlier by the chain stays NREM (N2)
        latency = int(max(45.0, rng.normal(75.0, 12.0)) * EPOCHS_PER_MIN)
        early = stages[onset : onset + latency]
        early[early == REM] = N2
    if group == "other hypersomnia":
        # sleeps to the end of the recording: the generic final awakening is replaced by sleep
        tail = np.flatnonzero(stages != W)
        if len(tail):
            stages[tail[-1] + 1 :] = N2
    if group == "type 1 narcolepsy" and onset is not None and rng.random() < soremp_prob:
        start = onset + int(rng.integers(2, 21))  # 1-10 min after sleep onset
        length = int(rng.integers(10, 31))  # 5-15 min of REM
        stop = min(start + length, n_epochs)
        stages[start:stop] = REM
        stages[onset:start] = np.where(stages[onset:start] == W, W, N1)  # no N2/N3 before the SOREMP
    return stages.astype(np.int8)


def simulate_recording(stages: np.ndarray, channels: Sequence[str], subject_params: dict,
                       rng: np.random.Generator, params: SignalParams = SignalParams()) -> np.ndarray:
    """Harmonized signals of one simulated night.

    Parameters
    ----------
    stages : ndarray of int
        Hypnogram (one code per 30 s).
    channels : sequence of str
        Canonical channel names, in canonical order.
    subject_params : dict
        From :func:`simulate.physiology.draw_subject_params`.
    rng : numpy Generator
        Channel-local noise.
    params : SignalParams
        Signal chain (simulated directly at ``params.sfreq``, so no resampling happens).

    Returns
    -------
    ndarray of float32, shape (n_epochs, n_channels, 3000)
        Filtered, z-scored signals.
    """
    spec = {c: (SITES[c], params.sfreq) for c in channels}
    volts = simulate_sites(stages, spec, rng, subject_params)
    x = np.stack([process_channel(volts[c], params.sfreq, CHANNEL_KIND[c], params) for c in channels])
    return to_epochs(x, params.epoch_samples)


def _write_one(job: dict) -> dict:
    """Simulate and write one recording (runs in a worker process); returns its cohort row."""
    rng = np.random.default_rng(job["seed"])
    n_epochs = int(round(job["hours"] * 60 * EPOCHS_PER_MIN))
    stages = group_hypnogram(job["group"], n_epochs, rng, job["soremp_prob"])
    subject_params = draw_subject_params(np.random.default_rng(job["subject_seed"]))
    signals = simulate_recording(stages, job["channels"], subject_params, rng)
    labels = {"diagnosis": job["group"], "cohort": job["dataset"], "simulated": True,
              "age": subject_params["age"], "sex": subject_params["sex"]}
    write_recording(job["path"], signals, list(job["channels"]), stages if job["with_stages"] else None,
                    dataset=job["dataset"], subject=job["subject"], recording=job["recording"],
                    montage={c: SITES[c] for c in job["channels"]}, preprocessing=SignalParams().to_dict(),
                    labels=labels, extra_attrs={"simulated": True})
    return {"recording": job["recording"], "subject": job["subject"], "group": job["group"],
            **hypnogram_stats(stages)}


def write_cohort(dst: str | os.PathLike, per_group: Sequence[int] = (12, 12, 12), hours: float = 8.0,
                 channels: Sequence[str] = ("C4", "E1", "Chin"), seed: int = 0, dataset: str = "SIM-MNC",
                 second_visit: float = 0.0, soremp_prob: float = 0.85, with_stages: bool = False,
                 workers: int = 1) -> Path:
    """Write a simulated cohort as harmonized files plus ``manifest.csv`` and ``cohort.csv``.

    Parameters
    ----------
    dst : path-like
        Harmonized root; files go to ``dst/<dataset>/<recording>.h5``.
    per_group : sequence of 3 int
        Subjects per group, in the order of :data:`GROUPS`.
    hours : float
        Recording length.
    channels : sequence of str
        Canonical channels to simulate (any of :data:`SITES`).
    seed : int
        Everything is a deterministic function of the seed.
    dataset : str
        Dataset folder name (also the ``cohort`` label).
    second_visit : float
        Fraction of subjects with a second recording (same physiology, new night): exercises
        subject-level aggregation over several recordings.
    soremp_prob : float
        See :func:`group_hypnogram`.
    with_stages : bool
        Also store the simulated hypnogram as ``stages`` (MNC files have none).
    workers : int
        Parallel processes.

    Returns
    -------
    Path
        The dataset folder.
    """
    if len(per_group) != len(GROUPS):
        raise ValueError(f"per_group needs {len(GROUPS)} counts ({GROUPS})")
    order = [c for c in SITES if c in channels]
    if len(order) != len(set(channels)):
        raise ValueError(f"unknown channels {sorted(set(channels) - set(SITES))}")
    root = Path(dst) / dataset
    ss = np.random.SeedSequence(seed)
    jobs, n = [], 0
    for group, count in zip(GROUPS, per_group):
        for _ in range(int(count)):
            subj_ss, visit_ss = ss.spawn(1)[0].spawn(2)
            subject = f"sim{n:04d}"
            n_visits = 2 if np.random.default_rng(visit_ss).random() < second_visit else 1
            for v, rec_ss in enumerate(subj_ss.spawn(n_visits)):
                rec = f"{subject}_v{v + 1}"
                jobs.append({"group": group, "subject": subject, "recording": rec, "hours": hours,
                             "channels": order, "dataset": dataset, "soremp_prob": soremp_prob,
                             "with_stages": with_stages, "path": str(recording_path(dst, dataset, rec)),
                             "seed": rec_ss, "subject_seed": subj_ss.generate_state(1)[0]})
            n += 1
    root.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_write_one, jobs))
    else:
        rows = [_write_one(j) for j in jobs]
    with open(root / "cohort.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_manifest(root)
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulate.cohorts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("--dst", required=True, help="harmonized root (files go to DST/DATASET/)")
    p.add_argument("--per-group", type=int, nargs=3, default=[20, 20, 20], metavar=("CONTROL", "NT1", "OTHER"))
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--channels", nargs="+", default=["C3", "C4", "E1", "E2", "Chin"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="SIM-MNC")
    p.add_argument("--second-visit", type=float, default=0.0, help="fraction of subjects with two recordings")
    p.add_argument("--with-stages", action="store_true", help="store the simulated hypnogram too")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    root = write_cohort(args.dst, args.per_group, args.hours, args.channels, args.seed, args.dataset,
                        args.second_visit, with_stages=args.with_stages, workers=args.workers)
    print(f"simulated cohort (SIMULATED DATA): {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
