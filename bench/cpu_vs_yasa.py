"""Whole-process CPU-seconds of ``inference.py`` next to YASA's on the same SIMULATED 8-h night.

Every configuration runs as its own process, from interpreter start to exit (imports, weights,
EDF read, quality gate, signal chain, model, CSV + stats + PNG), and its CPU-seconds (user +
system, all threads: ``os.wait4``) are what is compared; YASA's process reads the night with MNE
(C4-M1, the EOG, the chin) and runs ``SleepStaging(...).predict()`` once. In the same run: this
machine's float32 sgemm rate per CPU-second (``bench/inference_speed.py``'s), which turns the
model FLOPs of each configuration (``torch.utils.flop_counter``) into a floor of CPU-seconds.

One line per configuration and code tree: ``cpu_s``, ``wall_s``, ``x_yasa`` (cpu_s ÷ YASA's
whole-process cpu_s), ``x_floor`` (cpu_s ÷ the model's FLOP floor) and the peak RSS.
``--ab OLD`` runs every configuration on another checkout too (before/after); options the old
code lacks are reported as not run.

Usage::

    nice -n 10 python bench/cpu_vs_yasa.py --ab /tmp/lean-before
    python bench/cpu_vs_yasa.py --configs default,stride10 --no-yasa
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

CONFIGS = {
    "default": [],
    "stride10": ["--stride", "10"],
    "bf16": ["--precision", "bf16"],
    "bf16_stride10": ["--precision", "bf16", "--stride", "10"],
    "onnxruntime": ["--backend", "onnxruntime"],
    "onnxruntime_stride10_t1": ["--backend", "onnxruntime", "--stride", "10", "--threads", "1"],
}

YASA_SCRIPT = r"""
import sys, warnings
warnings.simplefilter("ignore")
import mne, yasa
mne.set_log_level("ERROR")
edf, eeg, eeg_ref, eog, emg = sys.argv[1:6]
raw = mne.io.read_raw_edf(edf, include=[eeg, eog, emg], preload=True, verbose="ERROR")
hyp = yasa.SleepStaging(raw, eeg_name=eeg, eog_name=eog, emg_name=emg).predict()
print(len(hyp))
"""


def timed_process(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` to completion; its CPU-seconds (user + system, all threads), wall and peak RSS."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": time.perf_counter() - t,
            "peak_rss_mb": usage.ru_maxrss / 1024.0, "out": out, "err": err}


def supports(root: Path, flag: str) -> bool:
    """Whether the checkout's command line knows ``flag`` (inference.py or its shared options)."""
    return any(flag in f.read_text() for f in (root / "inference.py", root / "staging" / "cli.py") if f.exists())


def model_floor_s(weights: str, edf: Path, stride: int, gflops: float) -> float:
    """CPU-seconds of the model's FLOPs for this night at ``gflops`` per CPU-second."""
    from inference_speed import model_flops

    from preprocess.core.edf import read_header
    from staging.weights import find_weights, load_model

    h = read_header(edf)
    n_epochs = int(h.duration // 30)
    model = load_model(find_weights(weights), "cpu")
    return model_flops(model, n_epochs, len(h.signal_labels), stride) / (gflops * 1e9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--ab", help="another checkout: every configuration also runs on its code")
    p.add_argument("--weights", default=None, help="weights (default: the weights/ search)")
    p.add_argument("--no-yasa", action="store_true")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    a = p.parse_args()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import argparse as _ap

    from inference_speed import child_gemm, simulated_night

    from staging.weights import find_weights

    cache = Path(a.cache)
    edf, _ = simulated_night(cache, 8.0)
    weights = str(find_weights(a.weights).path)
    gemm = child_gemm(_ap.Namespace(threads=1))["gflops_per_cpu_s"]
    print(f"cpu_vs_yasa sgemm fp32 1 thread: {gemm:.1f} GFLOP per CPU-s load1={os.getloadavg()[0]:.1f}", flush=True)
    yasa_cpu = None
    if not a.no_yasa:
        r = timed_process([sys.executable, "-c", YASA_SCRIPT, str(edf), "EEG C4-M1", "", "EOG LOC-ROC", "EMG Chin"],
                          ROOT)
        if r["rc"] == 0:
            yasa_cpu = r["cpu_s"]
            print(f"cpu_vs_yasa yasa night=8h-simulated channels=3 cpu_s={r['cpu_s']:.1f} wall_s={r['wall_s']:.1f} "
                  f"peak_rss_mb={r['peak_rss_mb']:.0f} load1={os.getloadavg()[0]:.1f}", flush=True)
        else:
            print(f"cpu_vs_yasa yasa FAILED: {r['err'].strip().splitlines()[-1:]}", flush=True)
    roots = [("now", ROOT)] + ([("before", Path(a.ab).resolve())] if a.ab else [])
    for name in a.configs.split(","):
        args = CONFIGS[name]
        stride = int(args[args.index("--stride") + 1]) if "--stride" in args else 1
        floor = model_floor_s(weights, edf, stride, gemm)
        for tag, root in roots:
            missing = [f for f in args if f.startswith("--") and not supports(root, f)]
            if missing:
                print(f"cpu_vs_yasa {name} code={tag} not run: {' '.join(missing)} unknown to that code", flush=True)
                continue
            with tempfile.TemporaryDirectory(prefix="bench_cpu_", dir=cache) as out:
                cmd = [sys.executable, "inference.py", str(edf), "--out", out, "--weights", weights,
                       "--device", "cpu", "--no-progress", *args]
                env_load = os.getloadavg()[0]
                r = timed_process(cmd, root)
            if r["rc"] != 0:
                print(f"cpu_vs_yasa {name} code={tag} FAILED rc={r['rc']}: {r['err'].strip().splitlines()[-1:]}")
                continue
            x_yasa = f"x_yasa={r['cpu_s'] / yasa_cpu:.2f} " if yasa_cpu else ""
            print(f"cpu_vs_yasa {name} code={tag} night=8h-simulated args='{' '.join(args)}' cpu_s={r['cpu_s']:.1f} "
                  f"wall_s={r['wall_s']:.1f} {x_yasa}floor_cpu_s={floor:.2f} x_floor={r['cpu_s'] / floor:.1f} "
                  f"peak_rss_mb={r['peak_rss_mb']:.0f} weights={Path(weights).name} load1={env_load:.1f}",
                  flush=True)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
