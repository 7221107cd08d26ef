"""Training input pipeline throughput: windows per CPU-second per worker (one line per code tree).

Writes SIMULATED harmonized HDF5 recordings (random float16 signals, 9 channels, chunked
``(20, 9, 3000)`` as the preprocessing writes them; content does not change the cost) once into a
cache folder, then iterates the training loader exactly as ``train.py`` builds it
(``WindowDataset`` with lights-off margin 30 min and channel dropout 0.5, ``WindowSampler``, the
DataLoader's fetch — ``__getitems__`` when the dataset has it — and ``collate_windows``) in this process (``workers=0``: one worker's work), timing CPU seconds.

Usage::

    python bench/loader_throughput.py                          # this checkout
    python bench/loader_throughput.py --ab /tmp/old_checkout   # and the same on another checkout
    python bench/loader_throughput.py --batches 40 --batch-size 32

Prints per code tree: ``windows_per_cpu_s`` (the per-worker figure), wall windows/s, the share
of padding tokens in the batches, the cores needed per GPU to feed 2,000 and 5,000 windows/s,
and a content fingerprint of the batches (equal fingerprints = identical batches).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_files(folder: Path, n_recordings: int, n_epochs: int) -> Path:
    """Simulated harmonized recordings (random signals, random stages) plus their manifest."""
    import numpy as np

    from preprocess.core.hdf5 import write_manifest, write_recording

    ds = folder / "SIMLOADER"
    if (ds / "manifest.csv").exists():
        return folder
    rng = np.random.default_rng(0)
    channels = ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"]
    for r in range(n_recordings):
        x = rng.standard_normal((n_epochs, len(channels), 3000), dtype=np.float32)
        stages = rng.integers(0, 5, n_epochs)
        stages[:60] = 0  # wake before sleep onset, so the lights-off range is exercised
        write_recording(ds / f"rec{r:02d}.h5", x, channels, stages, dataset="SIMLOADER",
                        subject=f"s{r:02d}", recording=f"rec{r:02d}")
    write_manifest(ds)
    return folder


def fetch(ds, keys) -> list:
    """What torch's DataLoader fetcher does for one batch: ``__getitems__`` when the dataset has it."""
    many = getattr(ds, "__getitems__", None)
    return many(keys) if many else [ds[k] for k in keys]


def child(args) -> dict:
    """Iterate ``args.batches`` batches of the training loader; CPU and wall time."""
    sys.path.insert(0, args.code_root)
    import numpy as np
    import torch

    from data import WindowDataset, WindowSampler, collate_windows, load_recordings

    torch.set_num_threads(1)
    kw = {"dtype": args.dtype} if args.dtype != "float32" else {}  # older checkouts lack the option
    ds = WindowDataset(load_recordings([args.files]), 20, wake_margin=30, channel_dropout=0.5, **kw)
    sampler = WindowSampler(ds, seed=0)
    keys = list(iter(sampler))
    need = args.batches * args.batch_size
    keys = (keys * (-(-need // len(keys))))[:need]
    h = hashlib.sha256()
    windows = real = slots = 0
    cpu = wall = 0.0
    for rep in range(2):  # first pass untimed: opens the files, warms the page cache
        for b in range(0, need, args.batch_size):
            c, t = time.process_time(), time.perf_counter()
            batch = collate_windows(fetch(ds, keys[b:b + args.batch_size]))
            if rep == 1:  # only the loader's work is timed, not the fingerprint below
                cpu, wall = cpu + time.process_time() - c, wall + time.perf_counter() - t
                x = batch["x"].float()
                h.update(x.numpy().tobytes())
                h.update(batch["channels"].numpy().tobytes())
                h.update(batch["labels"].numpy().tobytes())
                windows += x.shape[0]
                real += int((batch["channels"] >= 0).sum())
                slots += batch["channels"].numel()
    del np
    return {"windows": windows, "cpu_s": cpu, "wall_s": wall, "padding": 1 - real / slots,
            "fingerprint": h.hexdigest()[:16], "x_dtype": str(batch["x"].dtype)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recordings", type=int, default=6)
    p.add_argument("--epochs", type=int, default=960, help="epochs per recording (960 = 8 h)")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--ab", help="another checkout of the repository: run its loader too")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench" / "loader"))
    p.add_argument("--dtypes", default="float32,stored",
                   help="WindowDataset dtype(s) to time on this checkout (the --ab one: float32)")
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--files", help=argparse.SUPPRESS)
    p.add_argument("--code-root", default=str(ROOT), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(a)))
        return
    sys.path.insert(0, str(ROOT))
    files = make_files(Path(a.cache) / f"r{a.recordings}_e{a.epochs}", a.recordings, a.epochs)
    runs = [("now", ROOT, d) for d in a.dtypes.split(",")]
    runs += [("ab", Path(a.ab).resolve(), "float32")] if a.ab else []
    for tag, root, dtype in runs:
        cmd = [sys.executable, __file__, "--child", "--files", str(files), "--code-root", str(root),
               "--batches", str(a.batches), "--batch-size", str(a.batch_size), "--dtype", dtype]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
        if res.returncode != 0:
            raise SystemExit(f"loader child ({tag}) failed:\n{res.stderr[-2000:]}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        per_cpu = r["windows"] / r["cpu_s"]
        print(f"loader_throughput code={tag} dtype={dtype} windows={r['windows']} batch={a.batch_size} "
              f"windows_per_cpu_s={per_cpu:.0f} windows_per_wall_s={r['windows'] / r['wall_s']:.0f} "
              f"target>=200 padding_tokens={r['padding']:.1%} cores_for_2000/s={2000 / per_cpu:.1f} "
              f"cores_for_5000/s={5000 / per_cpu:.1f} x_dtype={r['x_dtype']} batches_sha={r['fingerprint']} "
              f"data=simulated-{a.recordings}x{a.epochs}ep-9ch-float16", flush=True)


if __name__ == "__main__":
    main()
