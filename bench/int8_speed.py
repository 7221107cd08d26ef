"""Opt-in int8 sequence encoder (``--int8``) against float32 on one SIMULATED 8-h night.

The night is the one ``bench/inference_speed.py`` generates (cached in its ``--cache``); it goes
through the signal chain once (untimed), then the model part (CNN + windows + voting) runs in
float32 and with :func:`models.quantize.quantize_sequence_encoder`, in the same process and
order-alternated, for each weights file. One line per weights: model ``cpu_s`` and wall of each,
the speed-up, the fraction of epochs with the same stage and the largest probability difference.

Usage::

    nice -n 10 python bench/int8_speed.py                       # demo weights + random-init N=6
    python bench/int8_speed.py --threads 1 --stride 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def timed(fn) -> tuple[object, float, float]:
    """``fn()`` with its process CPU seconds and wall seconds."""
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stride", type=int, default=10)
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    a = p.parse_args()

    import numpy as np
    import torch

    from inference_speed import random_weights, simulated_night
    from models.quantize import quantize_sequence_encoder
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from staging.montage import auto_channel_map
    from staging.predict import channel_indices, predict_proba
    from staging.weights import find_weights, load_model

    torch.set_num_threads(a.threads)
    cache = Path(a.cache)
    edf, _ = simulated_night(cache, a.hours)
    m = load_montage(EdfReader(edf), auto_channel_map(), name=edf.name)
    idx = channel_indices(m.channels)
    for weights in (find_weights(None).path, random_weights(cache, 6)):
        fp32 = load_model(find_weights(str(weights)), "cpu")
        int8 = quantize_sequence_encoder(fp32)
        runs = {"fp32": [], "int8": []}
        probs = {}
        for name in ("fp32", "int8", "int8", "fp32"):  # alternated: load drift hits both alike
            model = fp32 if name == "fp32" else int8
            probs[name], c, t = timed(lambda: predict_proba(model, m.signals, idx, a.stride, 32, "cpu"))
            runs[name].append((c, t))
        (c32, t32), (c8, t8) = (min(runs[k]) for k in ("fp32", "int8"))
        same = float(np.mean(probs["fp32"].argmax(1) == probs["int8"].argmax(1)))
        diff = float(np.abs(probs["fp32"] - probs["int8"]).max())
        print(f"int8_speed weights={Path(weights).name} night={a.hours:g}h-simulated epochs={len(probs['fp32'])} "
              f"channels={len(idx)} stride={a.stride} threads={a.threads} fp32_cpu_s={c32:.2f} int8_cpu_s={c8:.2f} "
              f"speedup_cpu={c32 / c8:.2f} fp32_s={t32:.2f} int8_s={t8:.2f} "
              f"stage_agreement={same:.4f} ({int(round((1 - same) * len(probs['fp32'])))} epochs differ) "
              f"max_prob_diff={diff:.4f}", flush=True)


if __name__ == "__main__":
    main()
