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


def _global_bn_rank(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    from engine.distributed import global_batchnorm

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    x = (torch.randn(7, 3, 11, dtype=torch.float64) * 3 + 5).float()  # both ranks draw the same 7 rows
    mine = x[:3] if rank == 0 else x[3:]  # unequal shares: 3 and 4 samples
    bn = global_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm1d(3)))
    with torch.no_grad():
        bn[0].weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn[0].bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    mine.requires_grad_(True)
    y = bn(mine)
    (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
    # numpy arrays travel by value (a shared tensor would need this process alive to be read)
    queue.put((rank, *(t.detach().numpy().copy() for t in (y, mine.grad, bn[0].running_mean, bn[0].running_var,
                                                           bn[0].weight.grad))))
    dist.barrier()
    dist.destroy_process_group()


def test_global_batchnorm_of_two_ranks_equals_batchnorm_of_the_union():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(_global_bn_rank, args=(port, queue), nprocs=2, start_method="spawn")
    got = {r[0]: [torch.from_numpy(a) for a in r[1:]] for r in (queue.get(), queue.get())}
    torch.manual_seed(0)
    x = (torch.randn(7, 3, 11, dtype=torch.float64) * 3 + 5).float().requires_grad_(True)
    bn = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    y = bn(x)
    (torch.cat([y[:3].flatten(), y[3:].flatten()]) * torch.cat([
        torch.arange(y[:3].numel()).sin(), torch.arange(y[3:].numel()).sin()])).sum().backward()
    torch.testing.assert_close(torch.cat([got[0][0], got[1][0]]), y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([got[0][1], got[1][1]]), x.grad, rtol=1e-5, atol=1e-6)
    for rank in (0, 1):  # running statistics (unbiased variance) and parameter gradients of the global batch
        torch.testing.assert_close(got[rank][2], bn.running_mean, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got[rank][3], bn.running_var, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got[0][4] + got[1][4], bn.weight.grad, rtol=1e-5, atol=1e-5)
