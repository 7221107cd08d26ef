"""Preprocessing speed on simulated nights: nights/s on one core and output bytes per night.

    python bench/preprocess_speed.py [--nights 2] [--hours 8] [--keep DIR]

Writes simulated 8-h, 9-channel, 256 Hz EDF nights with edfio (noise + alpha-band sine: the
content does not change the cost of the signal chain), then runs the shared pipeline
(``process_record``: EDF read → montage → filter → resample → z-score → HDF5 write) on one pinned
core, once with float16 and once with float32 output. Prints ONE line: nights/s/core, wall and CPU
seconds per night, CPU seconds split by stage (EDF read, the whole per-channel chain, and inside
it filter / resample / normalise; HDF5 write), peak RSS (``VmHWM``) and bytes per night for
float16 vs float32. Labelled *simulated*.

Threads are limited to one (BLAS/OpenMP variables are set before numpy is imported) and the
process is pinned to one CPU where the OS allows, so the number is per core; run it on an idle
machine for comparable figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from _measure import peak_rss_mb  # noqa: E402  (bench/ is sys.path[0])

from preprocess.core import pipeline, signal  # noqa: E402
from preprocess.core.dataset import DatasetSpec, Record  # noqa: E402
from preprocess.core.edf import EdfReader  # noqa: E402

LABELS = {"F3": "F3-M2", "F4": "F4-M1", "C3": "C3-M2", "C4": "C4-M1", "O1": "O1-M2", "O2": "O2-M1",
          "E1": "E1-M2", "E2": "E2-M1", "Chin": "Chin1-Chin2"}
SFREQ = 256


def write_night(path: Path, hours: float, seed: int) -> Path:
    import edfio

    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * SFREQ)
    t = np.arange(n) / SFREQ
    signals = []
    for label in LABELS.values():
        x = 30.0 * rng.standard_normal(n) + 20.0 * np.sin(2 * np.pi * rng.uniform(8, 12) * t)
        signals.append(edfio.EdfSignal(x, SFREQ, label=label, physical_dimension="uV", physical_range=(-400, 400)))
    edfio.Edf(signals, starttime=dt.time(22, 0, 0), recording=edfio.Recording(startdate=dt.date(2020, 1, 1))).write(path)
    return path


class Timer:
    """Accumulates wall and CPU time of the pipeline's stages by wrapping the functions it calls.

    A function is wrapped where it is looked up at call time: ``signal.butter_filter`` in the
    ``signal`` module (``process_channel`` calls it through the module's globals),
    ``pipeline.process_channel`` in ``pipeline`` (imported there by name). Only the outermost
    wrapped call of a key counts, so nested wrappers never count twice.
    """

    def __init__(self):
        self.total = defaultdict(float)
        self.cpu = defaultdict(float)
        self._depth = defaultdict(int)

    def wrap(self, owner, name: str, key: str):
        fn = getattr(owner, name, None)
        if fn is None:  # this checkout's chain has no such function
            return

        def timed(*args, **kwargs):
            self._depth[key] += 1
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth[key] -= 1
                if self._depth[key] == 0:
                    self.total[key] += time.perf_counter() - t0
                    self.cpu[key] += time.process_time() - c0
        setattr(owner, name, timed)



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nights", type=int, default=2)
    p.add_argument("--hours", type=float, default=8.0)
    p.add_argument("--keep", help="folder for the EDFs and outputs (default: a temporary folder)")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    work = Path(args.keep or tempfile.mkdtemp(prefix="lpsgm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    nights = [work / f"night{i}.edf" for i in range(args.nights)]
    for i, path in enumerate(nights):
        if not path.exists():
            write_night(path, args.hours, seed=i)

    spec = DatasetSpec(name="bench", description="simulated", layout="", url="",
                       channel_map={c: [lab] for c, lab in LABELS.items()}, find=lambda src: [])
    timer = Timer()
    timer.wrap(EdfReader, "read", "read")
    for name in ("butter_filter", "published_filter"):
        timer.wrap(signal, name, "filter")
    for name in ("resample", "stretched_linear_resample", "fft_upsample"):
        timer.wrap(signal, name, "resample")
    timer.wrap(signal, "normalize", "normalise")
    timer.wrap(pipeline, "process_channel", "chain")
    timer.wrap(pipeline, "write_recording", "write")

    sizes, elapsed, cpu = {}, 0.0, 0.0
    for dtype in ("float16", "float32"):
        for path in nights:
            rec = Record(path.stem, path.stem, path)
            t0, c0 = time.perf_counter(), time.process_time()
            res = pipeline.process_record(spec, rec, work / dtype, dtype=dtype, overwrite=True)
            if res.status != "done":
                raise SystemExit(f"{path.name}: {res.reason}")
            if dtype == "float16":
                elapsed += time.perf_counter() - t0
                cpu += time.process_time() - c0
        sizes[dtype] = np.mean([(work / dtype / "bench" / f"{p.stem}.h5").stat().st_size for p in nights])
        if dtype == "float16":
            stages = {k: v / len(nights) for k, v in timer.cpu.items()}
    per_night = elapsed / len(nights)
    keys = ("read", "chain", "filter", "resample", "normalise", "write")
    split = ", ".join(f"{k} {stages.get(k, 0.0):.2f}" for k in keys)
    print(f"preprocess_speed [simulated {args.hours:g}-h 9-ch {SFREQ} Hz EDF, 1 core, {len(nights)} nights]: "
          f"{1 / per_night:.3f} nights/s/core ({per_night:.2f} s/night, cpu_s/night {cpu / len(nights):.2f}: "
          f"CPU s {split}; chain = filter + resample + normalise + the rest of process_channel); "
          f"peak_rss_mb={peak_rss_mb():.0f}; "
          f"bytes/night float16 {sizes['float16'] / 1e6:.1f} MB, float32 {sizes['float32'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
