"""Elastic training: one rank SIGKILLed mid-run under torchrun --max-restarts, every rank restarted
from the last checkpoint (--resume), final weights bit-equal to the uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.test_train import REPO, env, toy_root

ARGS = ["--model", "lpsgm-small", "--seq-len", "5", "--workers", "0", "--lr", "1e-3", "--warmup-steps", "2",
        "--log-every", "1", "--val-fraction", "0", "--wake-margin", "-1", "--precision", "fp32", "--device", "cpu",
        "--samples-per-epoch", "8", "--max-steps", "4", "--ckpt-every", "2", "--global-batch-size", "2",
        "--seed", "7", "--deterministic", "--resume"]


def torchrun(out, data, kill_at: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--max-restarts", "3", str(REPO / "tests" / "elastic_worker.py"), "--data", str(data),
           "--out", str(out), *ARGS]
    return subprocess.run(cmd, cwd=REPO, env=env() | {"KILL_AT": str(kill_at)}, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_sigkill_of_one_rank_restarts_and_ends_bit_equal(tmp_path):
    data = toy_root(tmp_path / "h5", {"aa": 3, "bb": 2}, seed=3)
    full = torchrun(tmp_path / "full", data, kill_at=0)  # a fresh run folder with --resume simply starts
    assert full.returncode == 0, full.stderr[-4000:]
    killed = torchrun(tmp_path / "killed", data, kill_at=3)  # after the checkpoint of step 2
    assert killed.returncode == 0, killed.stderr[-4000:]
    log = killed.stdout + killed.stderr
    assert "(exitcode: -9)" in log, log[-3000:]                        # torchrun saw the SIGKILL ...
    assert "resuming at step 2/4" in log, log[-3000:]                  # ... and every rank resumed
    a, b = (load_file(tmp_path / d / "last.safetensors") for d in ("full", "killed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    done = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in done if r["split"] == "train"] == list(range(1, 5))
