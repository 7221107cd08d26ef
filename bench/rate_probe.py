"""The 50-Hz probe: one simulated night staged at its native rate and again resampled to 50 Hz.

    python bench/rate_probe.py [--weights A.safetensors [B.safetensors ...]] [--seed 900] [--hours 3]

A recording sampled at 50 Hz (like DREAMS excerpt 3) carries nothing above 25 Hz, so the signal chain
limits every band to 0.3-25 Hz. This bench writes one simulated night (generic profile, the 9-channel
AASM montage at 100 Hz, a seed found by :func:`simulate.formats.aasm_generic_seed` from ``--seed``),
then the same signals resampled to 50 Hz (polyphase, anti-aliased), stages both with
``inference.py`` for each weights file and prints κ and per-stage recall against the simulated
truth, one line per weights file and rate. **Simulated data**: a check that a weights file copes
with band-limited input, not an accuracy.
"""

from __future__ import annotations

import argparse
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

from preprocess.core.stages import STAGE_NAMES  # noqa: E402

STAGE = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4, "R": 4}


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


def stage(edf: Path, weights: Path, out: Path) -> np.ndarray:
    cmd = [sys.executable, str(ROOT / "inference.py"), str(edf), "--out", str(out), "--weights", str(weights),
           "--formats", "csv", "--no-progress", "--device", "cpu"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    csv = next(out.glob("*.hypnogram.csv"))
    rows = [ln.split(",") for ln in csv.read_text().splitlines()[1:] if ln and not ln.startswith("#")]
    return np.array([STAGE.get(r[2], -1) for r in rows if len(r) > 2], dtype=int)


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
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import simulate
    from simulate.formats import aasm_generic_seed

    t0, c0 = time.time(), time.process_time()
    seed = aasm_generic_seed(a.seed)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        rec = simulate.generate(tmp / "sim", 1, seed=seed, dataset="generic", hours=a.hours)[0]
        native = next(f for f in rec["files"] if "Hypnogram" not in f.name)
        low = resample_edf(native, tmp / "night50.edf", 50.0)
        truth = rec["stages"].astype(int)
        print(f"simulated night (generic seed {seed}, {len(truth)} epochs, 100 Hz): truth "
              + " ".join(f"{n}={int((truth == k).sum())}" for k, n in enumerate(STAGE_NAMES)))
        for i, w in enumerate(Path(w) for w in a.weights):
            for name, edf in (("native 100 Hz", native), ("resampled 50 Hz", low)):
                pred = stage(edf, w, tmp / f"out{i}-{name[:3]}")
                print(f"  {w.parent.name}/{w.stem:<22} {name:<16} {score(truth, pred)}")
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ch.ru_utime + ch.ru_stime
    print(f"rate_probe: wall={time.time() - t0:.0f}s cpu={cpu:.0f}s incl. inference subprocesses (simulated data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
