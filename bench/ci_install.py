"""Time the install part of ``.ci/run``: a fresh venv, the CPU torch wheel, requirements-dev.txt.

    python bench/ci_install.py [--requirements-dir DIR] [--keep DIR]

Prints one line: wall seconds and CPU seconds (user + system of every child process). The pip cache
is used as CI uses it (warm after the first run on a machine). ``--requirements-dir`` times another
set of requirement files (e.g. an older commit's, exported with ``git show REV:requirements.txt``).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_of_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requirements-dir", type=Path, default=ROOT, help="folder holding requirements*.txt")
    p.add_argument("--keep", type=Path, help="create the venv here and keep it (default: a temp folder)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        venv = a.keep or Path(tmp) / "venv"
        py = venv / "bin" / "python3"
        steps = [["python3", "-m", "venv", "--clear", str(venv)],
                 [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "torch==2.13.0"],
                 [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", "requirements-dev.txt"]]
        t0, c0 = time.perf_counter(), cpu_of_children()
        for cmd in steps:
            subprocess.run(cmd, cwd=a.requirements_dir, check=True, env={**os.environ, "PIP_NO_INPUT": "1"},
                           stdout=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t0, cpu_of_children() - c0
        size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 2**30
    print(f"ci install (venv + torch==2.13.0 + {a.requirements_dir.name}/requirements-dev.txt): {wall:.0f} s wall, "
          f"{cpu:.0f} s CPU, venv {size:.1f} GiB, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
