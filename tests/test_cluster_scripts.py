"""The SLURM scripts of cluster/ run as written: each script's commands with the scheduler's
variables set, on loopback, without a scheduler (``srun`` and ``scontrol`` are small stand-ins
that start one copy per node and name 127.0.0.1 as the first node)."""

from __future__ import annotations

import csv
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from preprocess.core.hdf5 import is_valid, read_manifest
from simulate import raw_more
from tests import corpus

REPO = Path(__file__).resolve().parents[1]

SRUN = """#!/usr/bin/env bash
# srun stand-in: one copy of the command per node (SLURM_NODEID/PROCID set), fails if any copy fails
while [[ "$1" == -* ]]; do shift; done
n=${SLURM_JOB_NUM_NODES:-${SLURM_NNODES:-1}}
pids=()
for ((i = 0; i < n; i++)); do
  SLURM_NODEID=$i SLURM_PROCID=$i SLURM_LOCALID=0 "$@" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
"""
SCONTROL = """#!/usr/bin/env bash
# scontrol stand-in: 'scontrol show hostnames LIST' -> this machine's loopback address
[[ "$1 $2" == "show hostnames" ]] && echo 127.0.0.1
"""


@pytest.fixture
def slurm_env(tmp_path):
    """Environment of a job step: stand-ins first on PATH, the repository as submit directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755 | stat.S_IXUSR)
    python_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAW_", "SLURM_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{python_dir}{os.pathsep}{env.get('PATH', '')}", PYTHON=sys.executable,
               PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", SLURM_SUBMIT_DIR=str(REPO), SLURM_JOB_ID="4242")
    return env


def array_task(env: dict, task: int, last: int) -> dict:
    return env | {"SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": "0",
                  "SLURM_ARRAY_TASK_MAX": str(last), "SLURM_ARRAY_TASK_COUNT": str(last + 1)}


def run_array(script: str, envs: list[dict]) -> list[subprocess.CompletedProcess]:
    """Every task of an array at the same time (as a scheduler with free nodes would)."""
    procs = [subprocess.Popen(["bash", str(REPO / "cluster" / script)], env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for e in envs]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, o, "") for p, o in zip(procs, outs)]


def test_preprocess_array_then_manifest(tmp_path, slurm_env):
    src, out = tmp_path / "raw" / "boas", tmp_path / "h5"
    raw_more.write_boas(src, np.random.default_rng(5), n_recordings=3, minutes=2, physiology=False)
    env = slurm_env | {"RAW_BOAS": str(src), "OUT": str(out), "SLURM_CPUS_PER_TASK": "1"}
    tasks = run_array("preprocess.sbatch", [array_task(env, t, 1) for t in (0, 1)])
    assert [t.returncode for t in tasks] == [0, 0], tasks[0].stdout + tasks[1].stdout
    assert "boas: 2 done, 0 skipped, 0 failed" in tasks[0].stdout  # shard 1/2 of 3 recordings
    assert "boas: 1 done, 0 skipped, 0 failed" in tasks[1].stdout  # shard 2/2
    files = sorted((out / "boas").glob("*.h5"))
    assert len(files) == 3 and all(is_valid(f) for f in files) and not list((out / "boas").glob(".*.tmp"))
    assert sorted(p.name for p in (out / "boas").glob("*.log")) == ["preprocess.shard-1-of-2.log",
                                                                   "preprocess.shard-2-of-2.log"]
    manifest = subprocess.run(["bash", str(REPO / "cluster" / "manifest.sbatch")], env=env, capture_output=True,
                              text=True, timeout=300)
    assert manifest.returncode == 0, manifest.stderr
    assert len(read_manifest(out / "boas")) == 3


@pytest.mark.slow
def test_stage_array_stages_each_recording_once(tmp_path, slurm_env, tiny_weights):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(3):
        corpus.write(folder / f"night{i}.edf", corpus.PSG, seconds=90.0)
    env = slurm_env | {"INPUTS": str(folder), "OUT": str(out), "SLURM_CPUS_PER_TASK": "1",
                       "INFERENCE_ARGS": f"--weights {tiny_weights}"}
    tasks = run_array("stage.sbatch", [array_task(env, t, 1) for t in (0, 1)])
    assert [t.returncode for t in tasks] == [0, 0], tasks[0].stdout + tasks[1].stdout
    ok = [line for t in tasks for line in t.stdout.splitlines() if " ok " in line]
    assert len(ok) == 3
    with open(out / "summary.csv", newline="") as fh:
        assert sorted(r["name"] for r in csv.DictReader(fh)) == ["night0", "night1", "night2"]
    missing = subprocess.run(["bash", str(REPO / "cluster" / "stage.sbatch")], env=array_task(slurm_env, 0, 1),
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "set INPUTS" in missing.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_train_sbatch_runs_two_nodes_with_c10d_on_loopback(tmp_path, slurm_env):
    from tests.test_train import toy_root

    data = toy_root(tmp_path / "h5", {"aa": 3, "bb": 2}, seed=4)
    out = tmp_path / "run"
    env = slurm_env | {"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "node[01-02]", "SLURM_CPUS_PER_TASK": "2",
                       "GPUS_PER_NODE": "1", "RDZV_PORT": str(free_port()), "DATA": str(data), "OUT": str(out),
                       "MODEL": "lpsgm-small", "GLOBAL_BATCH_SIZE": "2", "MAX_STEPS": "2", "WORKERS": "0"}
    extra = ["--seq-len", "5", "--device", "cpu", "--precision", "fp32", "--val-fraction", "0", "--wake-margin",
             "-1", "--warmup-steps", "1", "--samples-per-epoch", "8", "--log-every", "1"]
    proc = subprocess.run(["bash", str(REPO / "cluster" / "train.sbatch"), *extra], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert (config["world_size"], config["global_batch_size"]) == (2, 2)
    args = config["args"]
    assert args["resume"] and args["ckpt_minutes"] == 10 and args["lr_scaling"] == "sqrt"
    done = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    hashes = [r for r in done if r["split"] == "done"][0]["weights_sha256"]
    assert len(hashes) == 2 and len(set(hashes)) == 1
    assert "--max-restarts" in (REPO / "train.sh").read_text()
