"""Peak resident memory of staging one SIMULATED night, by night length (and before/after).

The 8-h night of ``bench/inference_speed.py`` (8 channels at 256 Hz, 1-s records) is tiled into
1-, 8-, 24- and 36-h EDFs (the data records repeated; memory does not depend on what they hold).
Each configuration ``HOURS:CHANNELS`` runs ``staging.stage`` (``inference.py``'s Python form:
quality gate, signal chain, model, CSV + stats + PNG) in its own subprocess and prints one line
with the process's peak RSS (``VmHWM``), its CPU seconds and wall time. ``CHANNELS`` is ``all``
(the 8 channels, auto montage) or canonical names joined by ``+`` (an explicit map of those).

Usage::

    nice -n 10 python bench/memory_night.py                          # 1:all, 8:all, 24:all, 36:C4+E1+Chin
    nice -n 10 python bench/memory_night.py --ab /tmp/old_checkout   # the same configs on old code too
    python bench/memory_night.py --configs 8:all --stride 0            # the default stride (1)
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

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

LABELS = {"F3": "EEG F3-M2", "F4": "EEG F4-M1", "C3": "EEG C3-M2", "C4": "EEG C4-M1", "O1": "EEG O1-M2",
          "O2": "EEG O2-M1", "E1": "EOG LOC-ROC", "Chin": "EMG Chin"}
"""Canonical channel → label in the simulated night (``simulate`` generic profile, seed of inference_speed)."""


def tiled_edf(src: Path, hours: float, dst: Path) -> Path:
    """An EDF of ``hours`` made of ``src``'s data records repeated (header record count patched)."""
    if dst.exists():
        return dst
    head = src.read_bytes()[:256]
    n_signals = int(head[252:256])
    header_bytes = 256 * (1 + n_signals)
    with open(src, "rb") as fh:
        header = bytearray(fh.read(header_bytes))
        n_src = int(header[236:244])
        record_s = float(header[244:252])
        record_bytes = (src.stat().st_size - header_bytes) // n_src
        n_out = int(round(hours * 3600 / record_s))
        header[236:244] = f"{n_out:<8d}".encode()
        tmp = dst.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(header)
            left = n_out
            while left > 0:
                fh.seek(header_bytes)
                take = min(left, n_src)
                for s in range(0, take, 3600):  # an hour of records at a time
                    k = min(3600, take - s)
                    out.write(fh.read(k * record_bytes))
                left -= take
    tmp.replace(dst)
    return dst


def child(a) -> None:
    """Stage the night once in this process and print one JSON line (peak RSS, CPU, wall)."""
    sys.path.insert(0, a.code_root)
    os.chdir(a.code_root)
    c0, t0 = time.process_time(), time.perf_counter()
    from staging import stage

    channels = "auto" if a.channels == "all" else json.dumps({c: LABELS[c] for c in a.channels.split("+")})
    kw = {"stride": a.stride} if a.stride else {}
    if a.weights:
        kw["weights"] = a.weights
    results, code = stage([a.edf], out=a.out, channels=channels, device="cpu", overwrite=True,
                          echo=lambda s: None, progress_bar=False, **kw)
    sys.path.insert(0, str(HERE))
    from _measure import peak_rss_mb

    print(json.dumps({"status": results[0].status, "reason": results[0].reason, "epochs": results[0].n_epochs,
                      "peak_rss_mb": peak_rss_mb(), "cpu_s": time.process_time() - c0,
                      "wall_s": time.perf_counter() - t0}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="1:all,8:all,24:all,36:C4+E1+Chin")
    p.add_argument("--ab", help="another checkout: every config also runs on its code (before/after)")
    p.add_argument("--stride", type=int, default=10, help="window stride (memory does not depend on it; "
                   "10 keeps the 36-h run short); 0 = the default stride")
    p.add_argument("--weights", default="", help="weights (default: the weights/ search)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--edf", help=argparse.SUPPRESS)
    p.add_argument("--channels", default="all", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--code-root", default=str(ROOT), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a)
        return
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    from inference_speed import simulated_night

    cache = Path(a.cache)
    base, _ = simulated_night(cache, 8.0)
    roots = [("now", ROOT)] + ([("before", Path(a.ab).resolve())] if a.ab else [])
    load = os.getloadavg()[0]
    for config in a.configs.split(","):
        hours, channels = config.split(":")
        edf = tiled_edf(base, float(hours), cache / f"tiled_{float(hours):g}h.edf")
        for tag, root in roots:
            with tempfile.TemporaryDirectory(prefix="bench_mem_", dir=cache) as out:
                cmd = [sys.executable, __file__, "--child", "--edf", str(edf), "--channels", channels,
                       "--out", out, "--code-root", str(root), "--stride", str(a.stride)]
                if a.weights:
                    cmd += ["--weights", a.weights]
                res = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
            if res.returncode != 0:
                print(f"memory_night hours={hours} channels={channels} code={tag} FAILED: "
                      f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"memory_night night={float(hours):g}h-simulated channels={channels} code={tag} "
                  f"status={r['status']} epochs={r['epochs']} peak_rss_mb={r['peak_rss_mb']:.0f} "
                  f"cpu_s={r['cpu_s']:.1f} wall_s={r['wall_s']:.1f} stride={a.stride or 'default'} "
                  f"load1={load:.1f}", flush=True)
            load = os.getloadavg()[0]


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
