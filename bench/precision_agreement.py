"""bf16 autocast and int8 against float32: stage agreement and model CPU-seconds on SIMULATED nights.

Three SIMULATED 8-h nights (``simulate.generate``, generic profile, seeds 75, 76, 77: the first is
``bench/inference_speed.py``'s night) go through the signal chain once each (untimed); then the
model part (CNN once per epoch, windows, voting) runs in float32, under ``torch.autocast`` with
bfloat16 (what ``--precision bf16`` runs) and with the int8 sequence encoder
(:func:`models.quantize.quantize_sequence_encoder`), alternated in one process. One line per night
and variant: the fraction of epochs whose stage equals float32's, the largest probability
difference, and model CPU-seconds and wall time next to float32's. bf16 is worth it only on CPUs
with native bf16 (AVX512-BF16 / AMX): ``cpu_bf16`` says whether this one has it.

These agreements are between two runs of the same weights; they say nothing about accuracy.

Usage::

    nice -n 10 python bench/precision_agreement.py                 # demo weights, stride 1, 1 thread
    python bench/precision_agreement.py --stride 10 --threads 2 --weights weights/x.pth
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cpu_has_bf16() -> bool:
    """Whether /proc/cpuinfo lists AVX512-BF16 or AMX-BF16."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="75,76,77")
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--stride", type=int, default=1, help="window stride (default 1, the default of inference.py)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--weights", default=None)
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    a = p.parse_args()

    import numpy as np
    import torch
    from inference_speed import simulated_night

    from models.quantize import quantize_sequence_encoder
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging.montage import auto_channel_map
    from staging.predict import channel_indices, predict_proba
    from staging.weights import find_weights, load_model

    torch.set_num_threads(a.threads)
    weights = find_weights(a.weights)
    params = SignalParams.from_dict(weights.preprocessing)
    fp32 = load_model(weights, "cpu")
    variants = {
        "fp32": (fp32, contextlib.nullcontext),
        "bf16": (fp32, lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
        "int8": (quantize_sequence_encoder(fp32), contextlib.nullcontext),
    }
    totals = {k: [0, 0] for k in variants}
    for seed in (int(s) for s in a.seeds.split(",")):
        edf, _ = simulated_night(Path(a.cache), a.hours, seed)
        m = load_montage(EdfReader(edf), auto_channel_map(), params, edf.name)
        idx = channel_indices(m.channels)
        probs, cost = {}, {k: [] for k in variants}
        for name in list(variants) + list(variants)[::-1]:  # alternated: load drift hits all alike
            model, ctx = variants[name]
            c, t = time.process_time(), time.perf_counter()
            with ctx():
                probs[name] = predict_proba(model, m.signals, idx, a.stride, 32, "cpu")
            cost[name].append((time.process_time() - c, time.perf_counter() - t))
        c32, t32 = min(cost["fp32"])
        for name in ("bf16", "int8"):
            c, t = min(cost[name])
            same = probs["fp32"].argmax(1) == probs[name].argmax(1)
            totals[name][0] += int(same.sum())
            totals[name][1] += len(same)
            print(f"precision_agreement {name} night={a.hours:g}h-simulated seed={seed} epochs={len(same)} "
                  f"channels={len(idx)} chain={params.chain} stride={a.stride} threads={a.threads} "
                  f"stage_agreement={same.mean():.4f} ({int((~same).sum())} epochs differ) "
                  f"max_prob_diff={np.abs(probs['fp32'] - probs[name]).max():.2e} fp32_cpu_s={c32:.2f} "
                  f"{name}_cpu_s={c:.2f} speedup_cpu={c32 / c:.2f} fp32_s={t32:.2f} {name}_s={t:.2f} "
                  f"cpu_bf16={cpu_has_bf16()} weights={weights.path.name} load1={os.getloadavg()[0]:.1f}",
                  flush=True)
    for name, (same, n) in totals.items():
        if n:
            print(f"precision_agreement {name} all_nights stage_agreement={same / n:.4f} epochs={n} "
                  f"opt_in_threshold=0.995", flush=True)


if __name__ == "__main__":
    main()
