"""Whole-night inference speed and peak memory, per window stride, next to YASA.

One SIMULATED 8-h night (``simulate.generate``, generic profile, 8 channels: 6 EEG referenced to
the mastoids, one differential EOG, chin EMG, all at 256 Hz) is staged end to end, from the EDF
to the output files, once per stride, each in its own subprocess so that its peak RSS
(``getrusage``) is its own. YASA's ``SleepStaging`` runs on the same night (C4-M1, the EOG and
the chin) when ``yasa`` is installed; its warm time is the second call in the same process.

Usage::

    python bench/inference_speed.py                      # CPU, strides 1 5 10 20, + YASA
    python bench/inference_speed.py --strides 5,10 --no-yasa --weights weights/demo.safetensors
    python bench/inference_speed.py --device cuda --from-preprocessed [night.h5]

``--from-preprocessed`` times the model alone on signals already through the signal chain (the
harmonized HDF5 ``signals`` of a recording, or the simulated night preprocessed in memory first,
untimed): transfer to the device, CNN once per epoch, windows, voting.

Each configuration prints one line; ``agree_s1`` is the fraction of epochs whose stage equals the
stride-1 (reference voting) stage and ``acc_sim`` the accuracy against the simulated hypnogram —
meaningful only with trained weights (random-init weights are labelled as such).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- inputs


def simulated_night(cache: Path, hours: float, seed: int | None = None) -> tuple[Path, Path]:
    """Simulated EDF (8 channels at 256 Hz) + its stages (``.npy``), generated once into ``cache``."""
    import numpy as np

    import simulate
    from simulate.formats import get_profile

    if seed is None:  # first seed whose generic-profile plan is the 8-channel, 256 Hz, no-ECG montage
        profile = get_profile("generic")
        for seed in range(5000):
            plan = profile.plan(0, np.random.default_rng([seed, 0]))
            if (plan.extra.get("label_style") == "diff-eog" and {c.sfreq for c in plan.channels} == {256.0}
                    and not any(c.site == "ECG" for c in plan.channels)):
                break
    folder = cache / f"night_{hours:g}h_seed{seed}"
    edf, truth = folder / "SIM0001.edf", folder / "stages.npy"
    if not (edf.exists() and truth.exists()):
        print(f"# generating a simulated {hours:g}-h night (seed {seed}) in {folder} ...", flush=True)
        rec = simulate.generate(folder, 1, seed, dataset="generic", hours=hours)[0]
        np.save(truth, rec["stages"])
    return edf, truth


def bench_weights(arg: str | None, cache: Path) -> tuple[Path, str]:
    """Weights to time: ``--weights``, else the repository's, else a random-init N=6 LPSGM."""
    from staging.weights import WeightsError, find_weights

    try:
        w = find_weights(arg)
        return w.path, f"{w.path.name}{'(demo)' if w.demo else ''}"
    except WeightsError:
        if arg:
            raise
    from models import build_model, save_checkpoint

    path = cache / "random_lpsgm6.safetensors"
    if not path.exists():
        save_checkpoint(build_model("lpsgm-6").eval(), path, {"note": "random init, speed benchmark only"})
    return path, "random-init-N6(speed-only)"


# --------------------------------------------------------------------------- children


def child_lpsgm(a) -> dict:
    """Stage the night once (read → montage/signal chain → model → outputs), timing each part."""
    import numpy as np
    import torch

    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from staging.montage import auto_channel_map
    from staging.outputs import output_paths, write_outputs
    from staging.predict import channel_indices, predict_proba
    from staging.stats import sleep_statistics
    from staging.weights import find_weights, load_model

    if a.threads:
        torch.set_num_threads(a.threads)
    model = load_model(find_weights(a.weights), a.device)
    predict_proba(model, np.zeros((1, 3000 * 25), np.float32), [2], 5, device=a.device)  # warm-up, untimed
    rss_ready = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    reader = EdfReader(a.edf)
    cmap = auto_channel_map()
    if a.channels:  # restrict the montage, e.g. to YASA's three channels
        cmap = {c: cmap[c] for c in a.channels.split(",")}
    m = load_montage(reader, cmap, name=Path(a.edf).name)
    reader.close()
    t1, c1 = time.perf_counter(), time.process_time()
    probs = predict_proba(model, m.signals, channel_indices(m.channels), a.stride, a.batch_size, a.device)
    t2, c2 = time.perf_counter(), time.process_time()
    stats = sleep_statistics(probs.argmax(1))
    paths = output_paths(Path(a.out), f"stride{a.stride}", ("csv", "stats", "png"))
    write_outputs(paths, probs, stats, {"bench": True}, m.start_time, "bench")
    t3, c3 = time.perf_counter(), time.process_time()
    np.save(Path(a.out) / f"stages_stride{a.stride}.npy", probs.argmax(1))
    return {"epochs": len(probs), "channels": len(m.channels), "preprocess_s": t1 - t0, "model_s": t2 - t1,
            "outputs_s": t3 - t2, "total_s": t3 - t0, "preprocess_cpu_s": c1 - c0, "model_cpu_s": c2 - c1,
            "total_cpu_s": c3 - c0, "threads": torch.get_num_threads(), "peak_rss_mb": peak_rss_mb(),
            "rss_ready_mb": rss_ready}


def child_yasa(a) -> dict:
    """YASA SleepStaging on C4 (or C3), the first EOG and the chin; second call = warm."""
    import mne
    import numpy as np
    import yasa

    from preprocess.core.channels import resolve_montage
    from preprocess.core.edf import read_header
    from staging.montage import auto_channel_map

    mne.set_log_level("ERROR")
    src = {s.canonical: s for s in resolve_montage(read_header(a.edf).signal_labels, auto_channel_map())}
    pick = [src[c] for c in ("C4", "C3", "E1", "E2", "Chin") if c in src]
    eeg = next(s for s in pick if s.canonical in ("C4", "C3"))
    eog = next(s for s in pick if s.canonical in ("E1", "E2"))
    emg = src.get("Chin")
    labels = sorted({x for s in (eeg, eog, emg) if s for x in (s.positive, s.negative) if x})
    t0 = time.perf_counter()
    raw = mne.io.read_raw_edf(a.edf, include=labels, preload=True, verbose="ERROR")
    names = {}
    for s in (eeg, eog, emg):
        if s is None:
            continue
        if s.negative:
            raw = mne.set_bipolar_reference(raw, s.positive, s.negative, ch_name=s.canonical, drop_refs=False)
            names[s.canonical] = s.canonical
        else:
            names[s.canonical] = s.positive
    t1 = time.perf_counter()
    times, cpu = [], []
    for _ in range(2):
        t, c = time.perf_counter(), time.process_time()
        sls = yasa.SleepStaging(raw, eeg_name=names[eeg.canonical], eog_name=names[eog.canonical],
                                emg_name=names.get("Chin"))
        hyp = sls.predict()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    if hasattr(hyp, "as_int"):  # yasa >= 0.7 returns a Hypnogram (W=0 N1=1 N2=2 N3=3 REM=4)
        stages = np.asarray(hyp.as_int(), dtype=int)
    else:  # older yasa: an array of "W", "N1", "N2", "N3", "R"
        order = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4}
        stages = np.array([order[str(s)] for s in np.asarray(hyp)])
    np.save(Path(a.out) / "stages_yasa.npy", stages)
    return {"epochs": len(stages), "channels": 3, "read_s": t1 - t0, "first_s": times[0], "warm_s": times[1],
            "warm_cpu_s": cpu[1], "peak_rss_mb": peak_rss_mb()}


def run_child(kind: str, a, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--edf", str(a.edf), "--weights", str(a.weights),
           "--out", str(a.out), "--device", a.device, "--batch-size", str(a.batch_size)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.channels:
        cmd += ["--channels", a.channels]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- GPU / preprocessed


def from_preprocessed(a) -> None:
    import numpy as np
    import torch

    from staging.defaults import DEFAULT_STRIDE
    from staging.predict import channel_indices, predict_proba
    from staging.weights import find_weights, load_model

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("inference_speed from-preprocessed device=cuda skipped: no CUDA device visible")
        return
    if a.h5:
        from preprocess.core.hdf5 import Recording

        rec = Recording(a.h5)
        signals = rec._h5()["signals"][:]  # (n_epochs, n_channels, 3000), float16 by default
        channels, source = rec.channels, Path(a.h5).name
    else:
        from preprocess.core.edf import EdfReader
        from preprocess.core.pipeline import load_montage
        from staging.montage import auto_channel_map

        m = load_montage(EdfReader(a.edf), auto_channel_map(), name=Path(a.edf).name)
        signals, channels, source = m.signals, m.channels, f"{Path(a.edf).name}(simulated)"
    model = load_model(find_weights(a.weights), a.device)
    idx = channel_indices(channels)
    device_name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    for stride in sorted({DEFAULT_STRIDE, 1}):
        predict_proba(model, signals[..., : 40 * 3000] if signals.ndim == 2 else signals[:40], idx, stride,
                      a.batch_size, a.device)  # warm-up (kernels, allocator)
        times = []
        for _ in range(3):
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            probs = predict_proba(model, signals, idx, stride, a.batch_size, a.device)
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        print(f"inference_speed from-preprocessed device={device_name} stride={stride} epochs={len(probs)} "
              f"channels={len(idx)} dtype_in={np.asarray(signals).dtype} best_s={min(times):.3f} "
              f"median_s={sorted(times)[1]:.3f} source={source} weights={a.weights_label}"
              + (" target_s<=0.3" if a.device.startswith("cuda") else ""),
              flush=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strides", default="1,5,10,20")
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=None, help="simulator seed (default: an 8-channel montage)")
    p.add_argument("--edf", help="stage this EDF instead of the simulated night")
    p.add_argument("--weights", help="weights (default: weights/ search, else random-init N=6)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--channels", default="", help="canonical channels to use, e.g. C4,E1,Chin (default: all)")
    p.add_argument("--no-yasa", action="store_true")
    p.add_argument("--from-preprocessed", nargs="?", const="", default=None, metavar="H5")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    p.add_argument("--out", default=None)
    p.add_argument("--child", choices=["lpsgm", "yasa"], help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, default=5, help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.child:  # inside a measuring subprocess
        result = child_lpsgm(a) if a.child == "lpsgm" else child_yasa(a)
        print(json.dumps(result))
        return

    import numpy as np

    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    a.out = Path(a.out or tempfile.mkdtemp(prefix="bench_out_", dir=cache))
    a.out.mkdir(parents=True, exist_ok=True)
    truth_path = None
    if not a.edf and (a.from_preprocessed is None or a.from_preprocessed == ""):
        edf, truth_path = simulated_night(cache, a.hours, a.seed)
        a.edf = str(edf)
    weights, a.weights_label = bench_weights(a.weights, cache)
    a.weights = str(weights)
    if a.from_preprocessed is not None:
        a.h5 = a.from_preprocessed or None
        from_preprocessed(a)
        return

    truth = np.load(truth_path) if truth_path else None
    what = f"{a.hours:g}h-simulated" if truth_path else Path(a.edf).name
    strides = [int(s) for s in a.strides.split(",")]
    stages = {}
    for stride in sorted(strides):
        r = run_child("lpsgm", a, stride=stride)
        stages[stride] = np.load(a.out / f"stages_stride{stride}.npy")
        agree = float(np.mean(stages[stride] == stages[1])) if 1 in stages else float("nan")
        acc = float(np.mean(stages[stride] == truth[: len(stages[stride])])) if truth is not None else float("nan")
        print(f"inference_speed lpsgm stride={stride} device={a.device} night={what} epochs={r['epochs']} "
              f"channels={r['channels']} preprocess_s={r['preprocess_s']:.1f} model_s={r['model_s']:.1f} "
              f"outputs_s={r['outputs_s']:.1f} total_s={r['total_s']:.1f} cpu_s={r['total_cpu_s']:.1f} "
              f"threads={r['threads']} peak_rss_mb={r['peak_rss_mb']:.0f} "
              f"(model loaded: {r['rss_ready_mb']:.0f}) agree_s1={agree:.3f} acc_sim={acc:.3f} "
              f"weights={a.weights_label}", flush=True)
    if a.no_yasa:
        return
    try:
        import yasa  # noqa: F401
    except ImportError:
        print("inference_speed yasa skipped: yasa is not installed")
        return
    r = run_child("yasa", a)
    ys = np.load(a.out / "stages_yasa.npy")
    acc = float(np.mean(ys == truth[: len(ys)])) if truth is not None else float("nan")
    print(f"inference_speed yasa device=cpu night={what} epochs={r['epochs']} channels=3 read_s={r['read_s']:.1f} "
          f"first_s={r['first_s']:.1f} warm_s={r['warm_s']:.1f} warm_cpu_s={r['warm_cpu_s']:.1f} "
          f"read+warm_s={r['read_s'] + r['warm_s']:.1f} "
          f"peak_rss_mb={r['peak_rss_mb']:.0f} acc_sim={acc:.3f}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
