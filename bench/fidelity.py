"""Agreement with the published LPSGM pipeline, and CPU seconds, per window stride (SIMULATED nights).

    python bench/fidelity.py            # the 1-h 200-Hz and 8-h 256-Hz nights: one line
    python bench/fidelity.py --table    # + the table of stride candidates (agreement vs CPU s)

Nights are simulated (``tests/published_reference.simulated_edf``: C3 from its electrodes, C4, E1,
E2, chin). The weights are the demo weights (LPSGM-Small trained on SIMULATED PSG) saved in the
official ``.pth`` format, so the pipeline applies the published chain. The reference is computed
independently (``tests/published_reference.py``: MNE reader + scipy ``filtfilt`` + ``interp1d``)
and voted at stride 1 (the published voting; the stored-feature voting used here equals the plain
per-window model to 1e-5, ``tests/test_fidelity.py``). CPU seconds (``time.process_time``, all
threads) are those of staging with the released model size (N=6, random weights: the cost does not
depend on the values): EDF → chain → CNN once per epoch → sequence encoder per window.
Figures are on simulated data: agreement of two pipelines, not accuracy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STRIDES = (1, 2, 4, 5, 10, 20)
NIGHTS = {"1h-200Hz": (120, 200.0), "8h-256Hz": (960, 256.0),
          "8h-mixed": (960, {"C3": 256.0, "M2": 128.0, "C4-M1": 256.0, "E1-M2": 200.0, "E2-M1": 256.0,
                             "Chin": 512.0})}


def official_demo(folder: Path) -> Path:
    from models import load_checkpoint, to_official_state_dict

    path = folder / "ched32_seqed64_ch9_seql20_block1.pth"
    torch.save({"model_state_dict": to_official_state_dict(load_checkpoint(ROOT / "weights" / "lpsgm-small-demo"))},
               path)
    return path


def night_figures(edf: Path, model, strides) -> dict:
    """Per stride: (max |Δp|, stage agreement) of our pipeline vs the independent reference."""
    from preprocess.core.channels import parse_channel_map
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging.predict import channel_indices, encode_recording, vote_windows
    from tests.published_reference import CHANNEL_MAP, published_inputs

    x_ref, ref_channels = published_inputs(edf, CHANNEL_MAP)
    order = sorted(range(len(ref_channels)), key=lambda i: channel_indices([ref_channels[i]])[0])
    x_ref, ref_channels = x_ref[:, order], [ref_channels[i] for i in order]
    ref = vote_windows(model, encode_recording(model, x_ref), channel_indices(ref_channels), stride=1)
    m = load_montage(EdfReader(edf), parse_channel_map(CHANNEL_MAP), SignalParams(chain="published"))
    assert m.channels == ref_channels
    feats = encode_recording(model, m.signals)
    out = {"input": float(np.max(np.abs(m.signals.reshape(len(m.channels), -1, 3000).transpose(1, 0, 2) - x_ref)))}
    for s in strides:
        p = vote_windows(model, feats, channel_indices(m.channels), stride=s)
        out[s] = (float(np.max(np.abs(p - ref))), float(np.mean(p.argmax(1) == ref.argmax(1))), len(p))
    return out


def cpu_seconds(edf: Path, strides) -> dict:
    """CPU s of staging one night with N=6 per stride: shared part (read + chain + CNN) + windows."""
    from models import build_model
    from preprocess.core.channels import parse_channel_map
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging.predict import channel_indices, encode_recording, vote_windows
    from tests.published_reference import CHANNEL_MAP

    torch.manual_seed(0)
    model = build_model("lpsgm-6").eval()
    t0 = time.process_time()
    m = load_montage(EdfReader(edf), parse_channel_map(CHANNEL_MAP), SignalParams(chain="published"))
    feats = encode_recording(model, m.signals)
    shared = time.process_time() - t0
    out = {"shared": shared}
    for s in strides:
        t0 = time.process_time()
        vote_windows(model, feats, channel_indices(m.channels), stride=s)
        out[s] = shared + time.process_time() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="also print the stride table (all nights)")
    ap.add_argument("--nights", nargs="+", default=None, choices=sorted(NIGHTS))
    args = ap.parse_args()
    from models import load_checkpoint
    from staging.defaults import DEFAULT_STRIDE
    from tests.published_reference import simulated_edf

    torch.set_grad_enabled(False)
    nights = args.nights or (sorted(NIGHTS) if args.table else ["1h-200Hz", "8h-256Hz"])
    strides = STRIDES if args.table else tuple(sorted({1, DEFAULT_STRIDE}))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = load_checkpoint(official_demo(tmp))
        figures, edfs = {}, {}
        for name in nights:
            n_epochs, rates = NIGHTS[name]
            edfs[name] = simulated_edf(tmp / f"{name}.edf", n_epochs, rates, seed=7, extra_seconds=17)
            figures[name] = night_figures(edfs[name], model, strides)
        cpu = cpu_seconds(edfs["8h-256Hz"], strides) if args.table and "8h-256Hz" in edfs else None
    if args.table:
        print(f"{'stride':>6} " + " ".join(f"{n + ' agree / max|dp|':>30}" for n in nights)
              + (f" {'CPU s N=6 8h-256Hz':>20}" if cpu else ""))
        for s in strides:
            cells = " ".join(f"{100 * figures[n][s][1]:>14.2f} % / {figures[n][s][0]:.3f}".rjust(30) for n in nights)
            print(f"{s:>6} {cells}" + (f" {cpu[s]:>20.1f}" if cpu else ""))
        if cpu:
            print(f"(shared read + chain + CNN: {cpu['shared']:.1f} CPU s)")
    parts = []
    for n in nights:
        f = figures[n]
        parts.append(f"{n} ({f[1][2]} ep, input max|d| {f['input']:.1e}): stride 1 {100 * f[1][1]:.2f}% "
                     f"max|dp| {f[1][0]:.1e}, default {DEFAULT_STRIDE} {100 * f[DEFAULT_STRIDE][1]:.2f}% "
                     f"max|dp| {f[DEFAULT_STRIDE][0]:.1e}")
    print("fidelity vs published (SIMULATED nights, demo weights as official .pth): " + "; ".join(parts))


if __name__ == "__main__":
    main()
