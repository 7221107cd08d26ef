"""DDP vs one process at the same global batch: 2 torchrun "nodes" (c10d, Gloo, loopback) x batch B
against one process x batch 2B, on the same SIMULATED toy data and initial weights (dropout 0).

Prints one line per step (loss of each run and their relative difference) and one final line
with the relative L2 difference of the final weights, over all parameters and over those with a
non-zero gradient in exact arithmetic (biases of convolutions followed by BatchNorm and the
attention key bias have none: Adam turns their float-noise gradients into full-size steps).

``--repo`` runs another checkout (e.g. the code before a change) on the same data::

    python bench/ddp_equal.py                      # this checkout
    python bench/ddp_equal.py --repo /tmp/old      # another one (same flags must exist there)
    python bench/ddp_equal.py --train-args=--no-sync-bn   # per-rank BatchNorm statistics
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def toy_data(root: Path, seed: int = 2) -> Path:
    """7 small recordings over 2 datasets, stage-dependent sines in noise (SIMULATED): the tests' toy data."""
    from tests.test_train import toy_root

    return toy_root(root, {"aa": 4, "bb": 3}, n_epochs=48, seed=seed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def zero_gradient(name: str) -> bool:
    """Parameters whose exact gradient is 0: conv biases before a BatchNorm, the attention key bias."""
    conv_before_bn = ("encoder_branch" in name and name.endswith(".bias")
                      and name.split(".")[-2] in {"0", "5", "8", "11"})
    return conv_before_bn or name.endswith("in_proj_bias")


def weight_difference(a: Path, b: Path, keep=lambda k: True) -> float:
    wa, wb = load_file(a / "last.safetensors"), load_file(b / "last.safetensors")
    keys = [k for k in wa if wa[k].is_floating_point() and keep(k)]
    num = sum(float((wa[k].double() - wb[k].double()).pow(2).sum()) for k in keys)
    den = sum(float(wa[k].double().pow(2).sum()) for k in keys)
    return (num / den) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, default=REPO, help="checkout whose train.py runs")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=2, help="per-rank batch of the 2-rank run")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--train-args", default="", help="extra train.py options for both runs, e.g. --no-sync-bn")
    args = p.parse_args()
    from models import build_model, save_checkpoint

    work = Path(tempfile.mkdtemp(prefix="ddp_equal_"))
    data = toy_data(work / "h5")
    torch.manual_seed(0)
    init = work / "init"
    save_checkpoint(build_model("lpsgm-small", seq_len=5, dropout=0.0, attn_dropout=0.0, cnn_dropout=0.0),
                    init, meta={})
    common = ["--data", str(data), "--init", str(init), "--model", "lpsgm-small", "--seq-len", "5",
              "--workers", "0", "--lr", str(args.lr), "--warmup-steps", "2", "--log-every", "1",
              "--val-fraction", "0", "--wake-margin", "-1", "--channel-dropout", "0.5", "--precision", "fp32",
              "--device", "cpu", "--samples-per-epoch", str(8 * args.batch), "--max-steps", str(args.steps),
              "--ckpt-every", str(args.steps), "--seed", "4", *args.train_args.split()]
    env = dict(os.environ, PYTHONPATH=str(args.repo), OMP_NUM_THREADS="1")
    train = str(args.repo / "train.py")
    one = subprocess.run([sys.executable, train, *common, "--batch-size", str(2 * args.batch),
                          "--out", str(work / "one")], cwd=args.repo, env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    port = free_port()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node",
                               "1", "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
                               "--rdzv_id", "ddp-equal", train, *common, "--batch-size", str(args.batch),
                               "--out", str(work / "two")], cwd=args.repo, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [n.communicate()[0] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), outs[0][-3000:] + outs[1][-3000:]
    a, b = losses(work / "one"), losses(work / "two")
    for step, (x, y) in enumerate(zip(a, b), start=1):
        print(f"step={step} loss_1proc_x{2 * args.batch}={x:.6f} loss_2nodes_x{args.batch}={y:.6f} "
              f"rel_diff={abs(x - y) / abs(x):.2e}")
    print(f"repo={args.repo} train_args={args.train_args!r} steps={args.steps} max_loss_rel_diff={max(abs(x - y) / abs(x) for x, y in zip(a, b)):.2e} "
          f"weights_rel_diff={weight_difference(work / 'one', work / 'two'):.2e} "
          f"weights_rel_diff_nonzero_grad={weight_difference(work / 'one', work / 'two', lambda k: not zero_gradient(k)):.2e}")


if __name__ == "__main__":
    main()
