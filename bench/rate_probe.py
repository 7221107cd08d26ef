"""Probes: one simulated night staged as it is, resampled to 50 Hz, with movement epochs, and from C3 alone.

    python bench/rate_probe.py [--weights A.safetensors [B.safetensors ...]] [--seed 900] [--hours 3]
                               [--movement-epochs 6] [--spread 1]

A recording sampled at 50 Hz (like DREAMS excerpt 3) carries nothing above 25 Hz, so the signal chain
limits every band to 0.3-25 Hz. The chain also z-scores each channel over its whole file, so a few
large movement epochs (DREAMS excerpt 1 has one of 108 uV that sets a quarter of its file SD) lower
every stage's amplitude as the model sees it. This bench writes one simulated night (generic
profile, the 9-channel AASM montage at 100 Hz, a seed found by
:func:`simulate.formats.aasm_generic_seed` from ``--seed``), then the same signals resampled to
50 Hz (polyphase, anti-aliased), and the same signals with ``--movement-epochs`` epochs (evenly
spread) overlaid with 0.5-8 Hz noise of 6x the channel's SD; those epochs are left out of the
scoring; and the native night with its C3-M2 channel alone (like DREAMS excerpt 1, which has
only C3-A1). It stages each with ``inference.py`` for each weights file and prints κ and per-stage
recall against the simulated truth, one line per weights file and condition. **Simulated data**: a
check that a weights file copes with band-limited input, a shifted file SD and a lone EEG channel,
not an accuracy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _measure import hypnogram_codes  # noqa: E402

from preprocess.core.stages import STAGE_NAMES  # noqa: E402


def resample_edf(src: Path, dst: Path, fs_out: float) -> Path:
    """Copy of an EDF with every signal resampled to ``fs_out`` (polyphase, anti-aliased)."""
    from fractions import Fraction

    import edfio
    from scipy.signal import resample_poly

    from simulate.formats import nice_physical_max

    edf = edfio.read_edf(src)
    sigs = []
    for s in edf.signals:
        r = Fraction(fs_out / s.sampling_frequency).limit_denominator(1000)
        x = resample_poly(s.data, r.numerator, r.denominator)
        lim = nice_physical_max(float(np.max(np.abs(x))) * 1.1)
        sigs.append(edfio.EdfSignal(x, fs_out, label=s.label, physical_dimension=s.physical_dimension,
                                    physical_range=(-lim, lim)))
    edfio.Edf(sigs).write(dst)
    return dst


def add_movement_epochs(src: Path, dst: Path, epochs: np.ndarray, seed: int = 0) -> tuple[Path, float]:
    """Copy of an EDF with 0.5-8 Hz noise of 6x each signal's SD over the 30-s ``epochs``.

    Returns the copy and the median over signals of the new file SD / the old one.
    """
    import edfio
    from scipy.signal import butter, sosfiltfilt

    from simulate.formats import nice_physical_max

    rng = np.random.default_rng(seed)
    edf = edfio.read_edf(src)
    sigs, ratios = [], []
    for s in edf.signals:
        x, fs = np.array(s.data, dtype=float), s.sampling_frequency
        n = int(round(30 * fs))
        sos = butter(4, [0.5, min(8.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
        for e in epochs:
            burst = sosfiltfilt(sos, rng.standard_normal(n))
            x[e * n:(e + 1) * n] += burst / burst.std() * 6 * np.std(s.data)
        ratios.append(np.std(x) / np.std(s.data))
        lim = nice_physical_max(float(np.max(np.abs(x))) * 1.1)
        sigs.append(edfio.EdfSignal(x, fs, label=s.label, physical_dimension=s.physical_dimension,
                                    physical_range=(-lim, lim)))
    edfio.Edf(sigs).write(dst)
    return dst, float(np.median(ratios))


def stage(edf: Path, weights: Path, out: Path, channels: dict | None = None) -> np.ndarray:
    cmd = [sys.executable, str(ROOT / "inference.py"), str(edf), "--out", str(out), "--weights", str(weights),
           "--formats", "csv", "--no-progress", "--device", "cpu"]
    if channels is not None:
        cmd += ["--channels", json.dumps(channels)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return hypnogram_codes(next(out.glob("*.hypnogram.csv")))


def score(truth: np.ndarray, pred: np.ndarray) -> str:
    from sklearn.metrics import cohen_kappa_score

    m = min(len(truth), len(pred))
    t, p = truth[:m], pred[:m]
    ok = t >= 0
    t, p = t[ok], p[ok]
    rec = " ".join(f"{n} {int(((t == k) & (p == k)).sum())}/{int((t == k).sum())}" for k, n in enumerate(STAGE_NAMES))
    return f"kappa={cohen_kappa_score(t, p):.2f} right={int((t == p).sum())}/{len(t)} recall {rec}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", nargs="+", default=[str(ROOT / "weights" / "lpsgm-small-demo.safetensors")])
    ap.add_argument("--seed", type=int, default=900, help="search for the AASM generic seed from here")
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--spread", type=float, default=1.0,
                    help="the simulator's domain randomisation (2 = the demo weights' training data)")
    ap.add_argument("--movement-epochs", type=int, default=6, help="movement epochs of the third condition")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import simulate
    from simulate.formats import aasm_generic_seed

    t0, c0 = time.time(), time.process_time()
    seed = aasm_generic_seed(a.seed)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        rec = simulate.generate(tmp / "sim", 1, seed=seed, dataset="generic", hours=a.hours, spread=a.spread)[0]
        native = next(f for f in rec["files"] if "Hypnogram" not in f.name)
        low = resample_edf(native, tmp / "night50.edf", 50.0)
        truth = rec["stages"].astype(int)
        moved = np.linspace(0, len(truth) - 1, a.movement_epochs + 2).round().astype(int)[1:-1]
        moving, sd_ratio = add_movement_epochs(native, tmp / "moved.edf", moved)
        truth_moved = truth.copy()
        truth_moved[moved] = -1  # the movement epochs themselves are not scored
        print(f"simulated night (generic seed {seed}, spread {a.spread:g}, {len(truth)} epochs, 100 Hz): truth "
              + " ".join(f"{n}={int((truth == k).sum())}" for k, n in enumerate(STAGE_NAMES))
              + f"; movement epochs raise the file SD x{sd_ratio:.2f} (median over signals)")
        for i, w in enumerate(Path(w) for w in a.weights):
            conditions = (("native 100 Hz", native, truth, None), ("resampled 50 Hz", low, truth, None),
                          (f"{a.movement_epochs} movement ep.", moving, truth_moved, None),
                          ("C3-M2 alone", native, truth, {"C3": ["EEG C3-M2"]}))
            for name, edf, t, channels in conditions:
                pred = stage(edf, w, tmp / f"out{i}-{name[:3]}", channels)
                print(f"  {w.parent.name}/{w.stem:<22} {name:<16} {score(t, pred)}")
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ch.ru_utime + ch.ru_stime
    print(f"rate_probe: wall={time.time() - t0:.0f}s cpu={cpu:.0f}s incl. inference subprocesses (simulated data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
