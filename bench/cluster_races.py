"""Races on shared storage, reproduced on loopback; one line per scenario (SIMULATED nights).

* ``preprocess``: ``python -m preprocess sleepedf --shard 1/2``, paused (SIGSTOP) as soon as its temp
  file appears, ``--shard 2/2`` run meanwhile into the same ``--dst``, then shard 1 resumed (SIGCONT):
  exit codes, valid files, and the failure line if any.
* ``inference``: two ``inference.py`` processes on the same 6 files into one ``--out``, 3 s apart:
  "ok" lines of both logs together, rows of ``summary.csv``.
* ``inference_kill``: three processes (1 s apart); the third is SIGKILLed while it stages a file
  (as soon as it holds a claim): every recording staged? was the dead claim taken over?

``--repo`` runs another checkout (e.g. the code before a change; ``inference_kill`` needs claims)::

    python bench/cluster_races.py [--repo /tmp/old] [--scenarios preprocess,inference,inference_kill]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env(repo: Path) -> dict:
    return dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1")


def _wait_for(cond, timeout: float = 300.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.01)


def preprocess(repo: Path, work: Path) -> str:
    from preprocess.core.hdf5 import is_valid

    raw = work / "raw"
    if not raw.exists():
        subprocess.run([sys.executable, "-m", "simulate", "--out", str(raw), "--recordings", "4", "--seed", "0",
                        "--hours", "8"], cwd=REPO, env=_env(REPO), check=True, capture_output=True)
    dst = work / f"h5-{abs(hash(str(repo)))}"
    cmd = [sys.executable, "-m", "preprocess", "sleepedf", "--src", str(raw), "--dst", str(dst), "--no-progress"]
    first = subprocess.Popen(cmd + ["--shard", "1/2"], cwd=repo, env=_env(repo), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: list((dst / "sleepedf").glob(".*.tmp")) if (dst / "sleepedf").exists() else False,
              what="no temp file from shard 1")
    first.send_signal(signal.SIGSTOP)  # hold shard 1 in the middle of its write (a slow disk) ...
    try:
        second = subprocess.Popen(cmd + ["--shard", "2/2"], cwd=repo, env=_env(repo), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        out2 = second.communicate()[0]  # ... while shard 2 starts, cleans up and runs
    finally:
        first.send_signal(signal.SIGCONT)
    outs = [first.communicate()[0], out2]
    files = sorted((dst / "sleepedf").glob("*.h5"))
    failed = [ln.strip() for o in outs for ln in o.splitlines() if ln.strip().startswith("failed ")]
    return (f"scenario=preprocess repo={repo} exit_codes={first.returncode},{second.returncode} "
            f"valid_files={sum(is_valid(f) for f in files)}/4 failures={failed[:1]}")


def _nights(work: Path) -> Path:
    folder = work / "edf"
    if not folder.exists():
        subprocess.run([sys.executable, "-m", "simulate", "--out", str(folder), "--recordings", "6", "--seed", "1",
                        "--dataset", "generic", "--hours", "1"], cwd=REPO, env=_env(REPO), check=True,
                       capture_output=True)
    return folder


def _stage(repo: Path, folder: Path, out: Path) -> subprocess.Popen:
    weights = REPO / "weights" / "lpsgm-small-demo.safetensors"
    nights = sorted(str(f) for f in folder.glob("SIM*.edf") if not f.stem.endswith("-Hypnogram"))
    return subprocess.Popen([sys.executable, str(repo / "inference.py"), *nights, "--out", str(out), "--weights",
                             str(weights), "--no-progress", "--threads", "1", "--formats", "csv,stats"],
                            cwd=repo, env=_env(repo), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _rows(out: Path) -> list[dict]:
    with open(out / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def inference(repo: Path, work: Path) -> str:
    folder, out = _nights(work), work / f"out-{abs(hash(str(repo)))}"
    first = _stage(repo, folder, out)
    time.sleep(3)
    second = _stage(repo, folder, out)
    outs = [p.communicate()[0] for p in (first, second)]
    ok = [sum(" ok " in ln for ln in o.splitlines()) for o in outs]
    rows = _rows(out)
    return (f"scenario=inference repo={repo} exit_codes={first.returncode},{second.returncode} ok_lines={ok[0]}+{ok[1]}"
            f"={sum(ok)} summary_rows={len(rows)} distinct_names={len({r['name'] for r in rows})}")


def inference_kill(repo: Path, work: Path) -> str:
    folder, out = _nights(work), work / f"kill-{abs(hash(str(repo)))}"
    procs = []
    for _ in range(3):
        procs.append(_stage(repo, folder, out))
        time.sleep(1)
    victim = procs[2]

    def victim_holds_a_claim() -> bool:
        return any(f'"pid": {victim.pid},' in p.read_text() for p in (out / "summary.d").glob("*.claim")
                   if p.is_file())

    _wait_for(victim_holds_a_claim, what="the third process never claimed a recording")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    outs = [p.communicate()[0] for p in procs]
    ok = [sum(" ok " in ln for ln in o.splitlines()) for o in outs]
    staged = sorted(p.name.split(".")[0] for p in out.glob("*.hypnogram.csv"))
    took_over = sum("took over the claim" in o for o in outs[:2])
    return (f"scenario=inference_kill repo={repo} exit_codes={','.join(str(p.returncode) for p in procs)} "
            f"ok_lines={'+'.join(map(str, ok))} recordings_staged={len(staged)}/6 summary_rows={len(_rows(out))} "
            f"claims_taken_over={took_over} claims_left={len(list((out / 'summary.d').glob('*.claim')))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, default=REPO)
    p.add_argument("--scenarios", default="preprocess,inference,inference_kill")
    p.add_argument("--work", type=Path, help="folder for the simulated inputs (default: a new temp folder)")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cluster_races_"))
    work.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios.split(","):
        print({"preprocess": preprocess, "inference": inference, "inference_kill": inference_kill}[name](
            args.repo.resolve(), work), flush=True)


if __name__ == "__main__":
    main()
