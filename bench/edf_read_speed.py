"""Read speed of a whole night: the edfio adapter (preprocess/core/edf.py) vs the hand-written reader it
replaced (bench/_edf_old.py, kept here only for this comparison), same run, same file.

Writes a SIMULATED 8-h, 9-channel night (256 Hz, 1-s records; noise, the values do not matter) to a
temp folder, then reads every channel to volts with each reader, alternating, ``--repeat`` times.
Prints one line per reader: best wall seconds and CPU seconds (process time) over the repeats, and
one line checking that both readers return identical values.

    python bench/edf_read_speed.py [--hours 8] [--repeat 3] [--dtype float64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

LABELS = ("EEG F3-M2", "EEG F4-M1", "EEG C3-M2", "EEG C4-M1", "EEG O1-M2", "EEG O2-M1", "EOG E1-M2",
          "EOG E2-M2", "EMG Chin")


def write_night(path: Path, hours: float, sfreq: float = 256.0) -> None:
    import edfio

    n = int(hours * 3600 * sfreq)
    rng = np.random.default_rng(0)
    signals = [edfio.EdfSignal(rng.normal(0, 30, n), sfreq, label=lab, physical_dimension="uV",
                               physical_range=(-500, 500)) for lab in LABELS]
    edfio.Edf(signals, data_record_duration=1.0).write(path)


def read_all(reader_cls, path: Path, dtype) -> tuple[float, float, list]:
    t0, c0 = time.perf_counter(), time.process_time()
    reader = reader_cls(path)
    kw = {} if dtype is None else {"dtype": dtype}
    out = [reader.read(lab, **kw)[0] for lab in LABELS]
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    a = ap.parse_args()
    import _edf_old

    from preprocess.core.edf import EdfReader

    dtype = np.dtype(a.dtype).type
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "night.edf"
        write_night(path, a.hours)
        size = path.stat().st_size / 1e6
        read_all(EdfReader, path, dtype)  # warm the page cache once, untimed
        best = {"new": (1e9, 1e9), "old": (1e9, 1e9)}
        for _ in range(a.repeat):
            for name, cls, dt_arg in (("new", EdfReader, dtype), ("old", _edf_old.EdfReader, None)):
                wall, cpu, out = read_all(cls, path, dt_arg)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
                if name == "new":
                    new_out = out
                else:
                    old_out = out
        same = all(np.allclose(x, y, rtol=0, atol=1e-12 if a.dtype == "float64" else 1e-9)
                   for x, y in zip(new_out, old_out))
    tag = f"{a.hours:g}-h {len(LABELS)}-ch night, 256 Hz, {size:.0f} MB (simulated)"
    print(f"edf read, edfio adapter ({a.dtype}): {best['new'][0]:.2f} s wall, {best['new'][1]:.2f} s CPU; {tag}")
    print(f"edf read, old hand-written reader (float64): {best['old'][0]:.2f} s wall, {best['old'][1]:.2f} s CPU; "
          f"{tag}")
    print(f"edf read, same values: {same}")


if __name__ == "__main__":
    main()
