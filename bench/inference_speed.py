"""Whole-night inference speed next to the FLOP floor and YASA, per model size and stride.

One SIMULATED 8-h night (``simulate.generate``, generic profile, 8 channels: 6 EEG referenced to
the mastoids, one differential EOG, chin EMG, all at 256 Hz) is staged end to end, from the EDF
to the output files, once per configuration ``N:stride`` (default ``6:10,6:1,1:10``; N = blocks
of a random-init LPSGM, seeded, speed only), each in its own subprocess so that its CPU time and
peak RSS (``VmHWM``) are its own. In the same run: YASA's ``SleepStaging`` on the same night
(C4-M1, the EOG, the chin; warm = second call in its process) and an sgemm measuring this
machine's float32 GEMM rate now (the load-dependent floor).

Usage::

    python bench/inference_speed.py --quick                   # ONE line: 6:10 on a 1-h night, ~1 min
    python bench/inference_speed.py                           # 6:10, 6:1, 1:10 + YASA + floors
    python bench/inference_speed.py --ab /tmp/old_checkout    # same, each config also on old code
    python bench/inference_speed.py --configs 6:10 --no-yasa --weights weights/x.safetensors
    python bench/inference_speed.py --device cuda --from-preprocessed [night.h5]

Each configuration prints one line: ``cpu_s`` (process CPU seconds, all threads: the
load-independent figure on shared machines) next to wall ``total_s``; ``flops`` of the model part
(counted with ``torch.utils.flop_counter``); ``x_floor`` = cpu_s ÷ (flops ÷ 83 GFLOP/s per core,
AVX2-FMA sgemm peak) and ``x_floor_meas`` = cpu_s ÷ (flops ÷ the sgemm rate measured in this
run); ``x_yasa`` = cpu_s ÷ YASA's warm CPU s; ``launches`` / ``syncs`` = ATen kernels and host
syncs of the model part per night (torch profiler on CPU, ``bench/launches.py``), as run on CPU
and GPU-shaped (all tokens in one CNN call, all windows in one batch). ``agree_s1`` is the
fraction of epochs whose stage equals the stride-1 stage of the same model and code.

``--from-preprocessed`` times the model alone on signals already through the signal chain (the
harmonized HDF5 ``signals`` of a recording, or the simulated night preprocessed in memory first,
untimed): transfer to the device, CNN once per epoch, windows, voting.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb  # bench/ is sys.path[0] when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


NOMINAL_GFLOPS_PER_CORE = 83.0
"""float32 FMA peak of one AVX2 core at ~2.6 GHz (2 FMA units × 8 lanes × 2 FLOP), as in issue 13."""



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
        print(f"# generating a simulated {hours:g}-h night (seed {seed}) in {folder} ...", flush=True,
              file=sys.stderr)  # progress, not a result: stdout keeps one line per measurement
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


def random_weights(cache: Path, n_blocks: int) -> Path:
    """A seeded random-init LPSGM with ``n_blocks`` blocks (same weights in every run)."""
    import torch

    from models import build_model, save_checkpoint

    path = cache / f"random_lpsgm_n{n_blocks}_seed0.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        save_checkpoint(build_model("lpsgm", n_blocks=n_blocks).eval(), path,
                        {"note": "random init, speed benchmark only"})
    return path


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

    if int(a.threads or 0):
        torch.set_num_threads(int(a.threads))
    model = load_model(find_weights(a.weights), a.device)
    predict_proba(model, np.zeros((1, 3000 * 25), np.float32), [2], 5, device=a.device)  # warm-up, untimed
    n_blocks = len(model.seq_encoder.transformer_blocks)
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
    tag = f"n{n_blocks}_stride{a.stride}_{a.code_tag}"
    np.save(Path(a.out) / f"stages_{tag}.npy", probs.argmax(1))
    extra = {"n_blocks": n_blocks, "flops": model_flops(model, len(probs), len(m.channels), a.stride)}
    if a.child_launches and a.stride != 1:  # stride 1 would double the longest run; the target is per default stride
        extra.update(model_launches(model, m.signals, channel_indices(m.channels), a.stride, a.batch_size))
    return {**extra, "tag": tag, "epochs": len(probs), "channels": len(m.channels), "preprocess_s": t1 - t0, "model_s": t2 - t1,
            "outputs_s": t3 - t2, "total_s": t3 - t0, "preprocess_cpu_s": c1 - c0, "model_cpu_s": c2 - c1,
            "total_cpu_s": c3 - c0, "threads": torch.get_num_threads(), "peak_rss_mb": peak_rss_mb(),
            "rss_ready_mb": rss_ready}


def model_flops(model, n_epochs: int, n_channels: int, stride: int) -> float:
    """FLOPs of the model part for one night: CNN once per token + every window's encoder."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from staging.predict import window_starts

    L = min(model.cfg.seq_len, n_epochs)
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            model.encode_epochs(torch.zeros(1, 3000))
        cnn = fc.get_total_flops()
        ch = torch.arange(n_channels)[None]
        with FlopCounterMode(display=False) as fc:
            model.forward_features(torch.zeros(1, L, n_channels, 512), ch)
        window = fc.get_total_flops()
    return float(cnn * n_epochs * n_channels + window * len(window_starts(n_epochs, L, stride)))


def model_launches(model, signals, idx, stride: int, batch_size: int) -> dict:
    """Kernel launches and host syncs of the model part, as run on CPU and GPU-shaped."""
    import torch
    from launches import count_launches

    from staging.predict import encode_recording, predict_proba, vote_windows

    def gpu_shaped():
        with torch.inference_mode():
            feats = encode_recording(model, signals, "cpu", chunk=1 << 30)  # one call per channel or night
            vote_windows(model, feats, idx, stride, batch_size=1 << 20)

    cpu_l, cpu_s = count_launches(lambda: predict_proba(model, signals, idx, stride, batch_size))
    gpu_l, gpu_s = count_launches(gpu_shaped)
    return {"launches": cpu_l, "syncs": cpu_s, "launches_gpu_shape": gpu_l, "syncs_gpu_shape": gpu_s}


def child_gemm(a) -> dict:
    """This machine's float32 GEMM rate now, per CPU second (the shape of the encoder's QKV)."""
    import torch

    if int(a.threads or 0):
        torch.set_num_threads(int(a.threads))
    x, w = torch.randn(5760, 608), torch.randn(608, 1824)
    x @ w
    c, t = time.process_time(), time.perf_counter()
    reps = 20
    for _ in range(reps):
        x @ w
    flops = 2.0 * 5760 * 608 * 1824 * reps
    return {"gflops_per_cpu_s": flops / (time.process_time() - c) / 1e9,
            "gflops_per_wall_s": flops / (time.perf_counter() - t) / 1e9, "threads": torch.get_num_threads()}


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


def run_child(kind: str, a, code_root: Path = ROOT, code_tag: str = "now", weights=None, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--edf", str(a.edf), "--weights", str(weights or a.weights),
           "--out", str(a.out), "--device", a.device, "--batch-size", str(a.batch_size),
           "--code-root", str(code_root), "--code-tag", code_tag]
    if a.launches:
        cmd += ["--child-launches"]
    if "threads" not in extra and a.threads:
        cmd += ["--threads", str(a.threads).split(",")[0]]
    if a.channels:
        cmd += ["--channels", a.channels]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=code_root)
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
    p.add_argument("--quick", action="store_true",
                   help="one printed line in about a minute: --configs 6:10 --threads 0 --hours 1 --no-yasa "
                        "--no-launches, sgemm measured but not printed")
    p.add_argument("--configs", default="6:10,6:1,1:10", help="N:stride pairs (N = blocks)")
    p.add_argument("--ab", help="another checkout of the repository: every config also runs on its code")
    p.add_argument("--no-launches", dest="launches", action="store_false",
                   help="skip the kernel-launch count (profiler)")
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--seed", type=int, default=None, help="simulator seed (default: an 8-channel montage)")
    p.add_argument("--edf", help="stage this EDF instead of the simulated night")
    p.add_argument("--weights", help="weights (default: weights/ search, else random-init N=6)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", default="1,0",
                   help="torch thread counts to time each config with, comma-separated; 0 = torch's choice "
                        "(one per core). Default 1,0: one thread next to inference.py's default (all cores)")
    p.add_argument("--channels", default="", help="canonical channels to use, e.g. C4,E1,Chin (default: all)")
    p.add_argument("--no-yasa", action="store_true")
    p.add_argument("--from-preprocessed", nargs="?", const="", default=None, metavar="H5")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    p.add_argument("--out", default=None)
    p.add_argument("--child", choices=["lpsgm", "yasa", "gemm"], help=argparse.SUPPRESS)
    p.add_argument("--code-root", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument("--code-tag", default="now", help=argparse.SUPPRESS)
    p.add_argument("--child-launches", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, default=5, help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.quick:
        a.configs, a.threads, a.hours, a.no_yasa, a.launches = "6:10", "0", 1.0, True, False
    if a.child:  # inside a measuring subprocess: import the code under test first on the path
        sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/launches.py
        sys.path.insert(0, a.code_root)
        result = {"lpsgm": child_lpsgm, "yasa": child_yasa, "gemm": child_gemm}[a.child](a)
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
    a.weights_given = bool(a.weights)
    weights, a.weights_label = bench_weights(a.weights, cache)
    a.weights = str(weights)
    if a.from_preprocessed is not None:
        a.h5 = a.from_preprocessed or None
        from_preprocessed(a)
        return

    truth = np.load(truth_path) if truth_path else None
    what = f"{a.hours:g}h-simulated" if truth_path else Path(a.edf).name
    configs = [tuple(int(v) for v in c.split(":")) for c in a.configs.split(",")]
    roots = [("now", ROOT)] + ([("ab", Path(a.ab).resolve())] if a.ab else [])
    yasa_cpu = None
    if not a.no_yasa:
        try:
            import yasa  # noqa: F401
        except ImportError:
            print("inference_speed yasa skipped: yasa is not installed")
        else:
            r = run_child("yasa", a)
            yasa_cpu = r["warm_cpu_s"]
            ys = np.load(a.out / "stages_yasa.npy")
            acc = float(np.mean(ys == truth[: len(ys)])) if truth is not None else float("nan")
            print(f"inference_speed yasa device=cpu night={what} epochs={r['epochs']} channels=3 "
                  f"read_s={r['read_s']:.1f} first_s={r['first_s']:.1f} warm_s={r['warm_s']:.1f} "
                  f"warm_cpu_s={r['warm_cpu_s']:.1f} peak_rss_mb={r['peak_rss_mb']:.0f} acc_sim={acc:.3f}",
                  flush=True)
    gemm = run_child("gemm", a)["gflops_per_cpu_s"]
    if not a.quick:
        print(f"inference_speed sgemm 5760x608x1824 fp32 now: {gemm:.1f} GFLOP per CPU-s "
              f"(nominal {NOMINAL_GFLOPS_PER_CORE:g} per core)", flush=True)
    stages, flops_seen = {}, {}
    thread_counts = [int(t) for t in str(a.threads).split(",")]
    runs = [(n, s, t) for n, s in sorted(configs, key=lambda c: (-c[0], c[1])) for t in thread_counts]
    for n_blocks, stride, threads in runs:
        weights = a.weights if a.weights_given else random_weights(cache, n_blocks)
        for code_tag, root in roots:
            r = run_child("lpsgm", a, root, code_tag, weights, stride=stride, threads=threads)
            # FLOPs of the architecture, as counted on this checkout's code (the counter does not
            # see inside the old nn.MultiheadAttention fast path)
            if code_tag == "now":
                flops_seen[(n_blocks, stride)] = r["flops"]
            r["flops"] = flops_seen.get((n_blocks, stride), r["flops"])
            st = np.load(a.out / f"stages_{r['tag']}.npy")
            first = stages.get((n_blocks, stride, code_tag))  # stages of the first thread count
            same_t = (f"same_stages_as_threads{thread_counts[0]}={np.mean(st == first):.4f} "
                      if threads != thread_counts[0] and first is not None else "")
            stages.setdefault((r["n_blocks"], stride, code_tag), st)
            ref = stages.get((r["n_blocks"], 1, code_tag))
            agree = float(np.mean(stages[(r["n_blocks"], stride, code_tag)] == ref)) if ref is not None else float("nan")
            floor = r["flops"] / (NOMINAL_GFLOPS_PER_CORE * 1e9)
            floor_meas = r["flops"] / (gemm * 1e9)
            launches = (f"launches={r['launches']} syncs={r['syncs']} launches_gpu_shape={r['launches_gpu_shape']} "
                        f"syncs_gpu_shape={r['syncs_gpu_shape']} " if "launches" in r else "")
            x_yasa = f"x_yasa={r['total_cpu_s'] / yasa_cpu:.1f} " if yasa_cpu else ""
            print(f"inference_speed lpsgm N={r['n_blocks']} stride={stride} code={code_tag} device={a.device} "
                  f"night={what} epochs={r['epochs']} channels={r['channels']} cpu_s={r['total_cpu_s']:.1f} "
                  f"model_cpu_s={r['model_cpu_s']:.1f} preprocess_cpu_s={r['preprocess_cpu_s']:.1f} "
                  f"total_s={r['total_s']:.1f} flops={r['flops'] / 1e12:.3f}T floor_cpu_s={floor:.1f} "
                  f"x_floor={r['total_cpu_s'] / floor:.2f} floor_meas_cpu_s={floor_meas:.1f} "
                  f"x_floor_meas={r['total_cpu_s'] / floor_meas:.2f} {x_yasa}{launches}"
                  f"threads={r['threads']} {same_t}peak_rss_mb={r['peak_rss_mb']:.0f} agree_s1={agree:.3f} "
                  f"weights={Path(weights).name}", flush=True)
    if a.ab:
        for (n_blocks, stride, tag), st in sorted(stages.items()):
            if tag == "ab" and (n_blocks, stride, "now") in stages:
                same = float(np.mean(st == stages[(n_blocks, stride, "now")]))
                print(f"inference_speed stages N={n_blocks} stride={stride} now_vs_ab_identical={same:.4f}")


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
