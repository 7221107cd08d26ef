"""Real-time staging on a simulated 8-h night: online-vs-offline agreement, per-epoch latency, peak RSS.

    python bench/online_latency.py [--edf NIGHT.edf] [--hours 8]

Prints one line. Agreement: the shipped (demo) weights staged online (causal chain, running z-score,
:mod:`online`) against offline ``inference.py`` staging of the same file (stride 1).
Latency: the released model size (N=6, seeded random weights: latency does not depend on the
weights) fed the same night chunk by chunk; per epoch, the time from the push that completed the
epoch to its immediate stage being published, i.e. what a live stream at real-time pace waits
(no backlog). One torch thread, as ``python -m online`` uses. SIMULATED data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _measure import peak_rss_mb  # noqa: E402  (bench/ is sys.path[0])

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import build_model  # noqa: E402
from online import OnlineStager, read_for_replay  # noqa: E402
from preprocess.core.channels import resolve_montage  # noqa: E402
from staging.montage import auto_channel_map  # noqa: E402
from staging.weights import find_weights, load_model  # noqa: E402


def run_online(model, params, data, labels, fs, chunk_s=1.0):
    stager = OnlineStager(model, resolve_montage(labels, auto_channel_map()), labels, fs, params)
    ts = 1000.0 + np.arange(data.shape[1]) / fs
    step = int(chunk_s * fs)
    cpu = time.process_time()
    for i in range(0, data.shape[1], step):
        stager.push(data[:, i:i + step].T, ts[i:i + step])
    stager.finish()
    return stager, time.process_time() - cpu


def stages_of(stager, kind):
    rows = sorted((r for r in stager.results if r.kind == kind), key=lambda r: r.epoch)
    return np.array([r.stage for r in rows]), np.array([r.latency_s for r in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--edf", type=Path, default=None, help="a night to replay (default: simulate one)")
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    edf = args.edf
    if edf is None:
        from simulate import generate

        tmp = Path(tempfile.mkdtemp(prefix="online-bench-"))
        rec = generate(tmp, 1, seed=args.seed, dataset="generic", hours=args.hours)[0]
        edf = [Path(f) for f in rec["files"] if str(f).endswith(".edf") and "Hypnogram" not in str(f)][0]
    from staging import stage

    out = Path(tempfile.mkdtemp(prefix="online-bench-out-"))
    stage([edf], out=out, stride=1, formats=["csv"], echo=lambda s: None, progress_bar=False)
    import csv

    with open(out / f"{edf.stem}.hypnogram.csv") as fh:
        offline = np.array([r["stage"] for r in csv.DictReader(line for line in fh if not line.startswith("#"))])
    weights = find_weights(None)
    from preprocess.core.signal import SignalParams

    params = SignalParams.from_dict(weights.preprocessing)
    data, labels, fs = read_for_replay(edf)
    demo, _ = run_online(load_model(weights, "cpu"), params, data, labels, fs)
    imm, _ = stages_of(demo, "immediate")
    ref, _ = stages_of(demo, "refined")
    n = len(offline)
    torch.manual_seed(0)
    big = build_model("lpsgm-6").eval()
    six, cpu6 = run_online(big, params, data, labels, fs)
    _, lat = stages_of(six, "immediate")
    print(f"online_latency: night {n} epochs (SIMULATED); online vs offline agreement immediate "
          f"{np.mean(imm[:n] == offline):.3f} refined {np.mean(ref[:n] == offline):.3f} (demo weights); "
          f"N=6 latency median {np.median(lat) * 1e3:.0f} ms max {lat.max() * 1e3:.0f} ms, "
          f"cpu_s/epoch {cpu6 / six.n_epochs:.3f}; peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
