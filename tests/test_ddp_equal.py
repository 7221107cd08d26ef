"""DDP equals one process at the same global batch: 2 Gloo ranks x batch 2 == 1 process x batch 4."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.test_train import REPO, env, toy_root

STEPS = 8
COMMON = ["--model", "lpsgm-small", "--seq-len", "5", "--workers", "0", "--lr", "1e-4", "--warmup-steps", "2",
          "--log-every", "1", "--val-fraction", "0", "--wake-margin", "-1", "--channel-dropout", "0.5",
          "--precision", "fp32", "--device", "cpu", "--samples-per-epoch", "16", "--max-steps", str(STEPS),
          "--ckpt-every", "3", "--seed", "4", "--global-batch-size", "4"]


def no_dropout_init(path: Path) -> Path:
    """Initial weights whose config has every dropout at 0 (so the two runs can be bit-comparable)."""
    from models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("lpsgm-small", seq_len=5, dropout=0.0, attn_dropout=0.0, cnn_dropout=0.0)
    save_checkpoint(model, path, meta={})
    return path


def losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def relative_difference(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "last.safetensors"), load_file(b / "last.safetensors")
    num = sum(float((wa[k].double() - wb[k].double()).pow(2).sum()) for k in wa if wa[k].is_floating_point())
    den = sum(float(wa[k].double().pow(2).sum()) for k in wa if wa[k].is_floating_point())
    return (num / den) ** 0.5


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process_at_the_same_global_batch(tmp_path):
    import train

    root = toy_root(tmp_path / "h5", {"aa": 4, "bb": 3}, seed=2)
    init = no_dropout_init(tmp_path / "init")
    args = ["--data", str(root), "--init", str(init), *COMMON]
    single = train.main(args + ["--out", str(tmp_path / "one")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "train.py"), *args, "--out", str(tmp_path / "two")]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert single["step"] == STEPS
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == STEPS
    for a, b in zip(one, two):
        assert abs(a - b) <= 1e-5 * abs(a), (one, two)
    assert relative_difference(tmp_path / "one", tmp_path / "two") <= 1e-5
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert (config["world_size"], config["global_batch_size"]) == (2, 4)
