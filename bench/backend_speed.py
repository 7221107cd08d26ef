"""Opt-in int8 (``--int8``) and ONNX Runtime (``--backend onnxruntime``) against torch float32.

On one SIMULATED 8-h night.

The night is the one ``bench/inference_speed.py`` generates (cached in its ``--cache``); it goes
through the signal chain once (untimed), then the model part (CNN + windows + voting) runs in
float32, with :func:`models.quantize.quantize_sequence_encoder` and through ONNX Runtime
(:class:`models.onnx_export.OnnxLPSGM`), in the same process and order-alternated, for each
weights file. One line per weights and variant: model ``cpu_s`` and wall of float32 and of the
variant, the speed-up, the fraction of epochs with the same stage and the largest probability
difference.

Usage::

    nice -n 10 python bench/backend_speed.py                       # demo weights + random-init N=6
    python bench/backend_speed.py --threads 1 --stride 10
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

    from models.onnx_export import OnnxLPSGM
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
        tmp = tempfile.TemporaryDirectory()
        models = {"fp32": fp32, "int8": quantize_sequence_encoder(fp32),
                  "onnxruntime": OnnxLPSGM(fp32, tmp.name, threads=a.threads)}
        runs = {k: [] for k in models}
        probs = {}
        order = list(models) + list(models)[::-1]  # alternated: load drift hits every variant alike
        for name in order:
            model = models[name]
            probs[name], c, t = timed(lambda model=model: predict_proba(model, m.signals, idx, a.stride, 32, "cpu"))
            runs[name].append((c, t))
        c32, t32 = min(runs["fp32"])
        for name in ("int8", "onnxruntime"):
            c, t = min(runs[name])
            same = float(np.mean(probs["fp32"].argmax(1) == probs[name].argmax(1)))
            diff = float(np.abs(probs["fp32"] - probs[name]).max())
            n = len(probs["fp32"])
            print(f"backend_speed {name} weights={Path(weights).name} night={a.hours:g}h-simulated epochs={n} "
                  f"channels={len(idx)} stride={a.stride} threads={a.threads} fp32_cpu_s={c32:.2f} "
                  f"{name}_cpu_s={c:.2f} speedup_cpu={c32 / c:.2f} fp32_s={t32:.2f} {name}_s={t:.2f} "
                  f"stage_agreement={same:.4f} ({int(round((1 - same) * n))} epochs differ) "
                  f"max_prob_diff={diff:.2e}", flush=True)


if __name__ == "__main__":
    main()
