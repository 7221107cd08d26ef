"""Cost of global BatchNorm statistics (:class:`engine.distributed.GlobalBatchNorm1d`) in DDP.

Two Gloo ranks on loopback each run forward + backward of the LPSGM epoch encoder (8 BatchNorm
layers) on a batch of tokens, alternating per-rank ``BatchNorm1d`` and ``GlobalBatchNorm1d``
(same weights), and time the two. Also counts the collectives one step adds (one all-reduce per
BN layer forward, one in its backward). Prints one line: CPU and wall seconds per step of each,
and the extra all-reduces per step::

    python bench/sync_bn_cost.py [--tokens 180] [--reps 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _worker(rank: int, port: int, tokens: int, reps: int, queue) -> None:
    from engine.distributed import global_batchnorm
    from models.epoch_encoder import EpochEncoder

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    plain = EpochEncoder(0.0).train()
    synced = global_batchnorm(EpochEncoder(0.0).train())
    synced.load_state_dict(plain.state_dict())
    x = torch.randn(tokens, 1, 3000, generator=torch.Generator().manual_seed(rank))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm1d) for m in synced.modules())
    times = {"plain": [0.0, 0.0], "global": [0.0, 0.0]}
    for r in range(reps + 1):
        for name, model in (("plain", plain), ("global", synced)):
            dist.barrier()
            c0, w0 = time.process_time(), time.perf_counter()
            model(x).sum().backward()
            dist.barrier()
            if r:  # the first round warms up
                times[name][0] += time.process_time() - c0
                times[name][1] += time.perf_counter() - w0
    if rank == 0:
        queue.put((times, n_bn))
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=180, help="(epoch, channel) tokens per rank (20 x 9 = one window)")
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_worker, args=(port, args.tokens, args.reps, queue), nprocs=2, start_method="spawn")
    times, n_bn = queue.get()
    per = {k: (c / args.reps, w / args.reps) for k, (c, w) in times.items()}
    print(f"tokens_per_rank={args.tokens} bn_layers={n_bn} extra_allreduces_per_step={2 * n_bn} "
          f"plain_cpu_s={per['plain'][0]:.3f} plain_wall_s={per['plain'][1]:.3f} "
          f"global_cpu_s={per['global'][0]:.3f} global_wall_s={per['global'][1]:.3f} "
          f"overhead_cpu={per['global'][0] / per['plain'][0] - 1:+.1%} "
          f"overhead_wall={per['global'][1] / per['plain'][1] - 1:+.1%}")


if __name__ == "__main__":
    main()
