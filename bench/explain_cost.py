"""Cost of explaining epochs (Grad-CAM both branches, guided backprop, channel Shapley values).

The bundled SIMULATED example night is read and staged once (untimed); then ``--epochs`` epochs
are explained in batches of ``--batch-size`` and the time is divided by the number of epochs.
Pages and the npz are not written (their cost is matplotlib/zlib, reported separately by the CLI).

Usage::

    python bench/explain_cost.py                         # CPU, 16 epochs, demo weights
    python bench/explain_cost.py --device cuda --epochs 64 --batch-size 32 --compare-cpu 4

Prints one line: device, weights, epochs, channels, wall and CPU seconds per explained epoch, peak
RSS; with ``--compare-cpu N`` also the largest relative difference of the maps between the device
and the CPU on N epochs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--compare-cpu", type=int, default=0, metavar="N")
    args = ap.parse_args()

    from explain import explain_recording
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging import EXAMPLE
    from staging.montage import channel_map_from_arg
    from staging.predict import channel_indices
    from staging.weights import find_weights, load_model

    chosen = find_weights(args.weights)
    model = load_model(chosen, args.device)
    params = SignalParams.from_dict(chosen.meta.get("preprocessing", {}) or {})
    reader = EdfReader(EXAMPLE)
    montaged = load_montage(reader, channel_map_from_arg("auto")[0], params, EXAMPLE.name)
    reader.close()
    ch = channel_indices(montaged.channels)
    epochs = np.linspace(0, montaged.n_epochs - 1, args.epochs).astype(int)
    explain_recording(model, montaged.signals, ch, epochs[:1], device=args.device)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    exp = explain_recording(model, montaged.signals, ch, epochs, batch_size=args.batch_size, device=args.device)
    if args.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = (f"explain device={args.device} weights={Path(str(chosen.path)).name}{' (demo)' if chosen.demo else ''} "
            f"epochs={len(epochs)} channels={len(ch)} batch={args.batch_size} "
            f"wall_s_per_epoch={wall / len(epochs):.3f} cpu_s_per_epoch={cpu / len(epochs):.3f} peak_rss_MB={rss:.0f}")
    if args.compare_cpu:
        ref = explain_recording(load_model(chosen, "cpu"), montaged.signals, ch, epochs[:args.compare_cpu])
        worst = max(float(np.abs(getattr(exp, n)[:args.compare_cpu] - getattr(ref, n)).max()
                          / max(np.abs(getattr(ref, n)).max(), 1e-12))
                    for n in ("gradcam", "guided_gradcam", "channel_attribution"))
        line += f" max_rel_diff_vs_cpu={worst:.2e}"
    print(line)


if __name__ == "__main__":
    main()
