"""NCCL initialisation check under torchrun (one line): backend, world size, all-reduce result.

    torchrun --standalone --nproc_per_node=1 bench/nccl_check.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402


def main() -> None:
    import os

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(local_rank)
    t0 = time.perf_counter()
    # engine.distributed only initialises a group for world_size > 1; here NCCL is the point.
    dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank))
    init_s = time.perf_counter() - t0
    x = torch.full((1024,), float(dist.get_rank() + 1), device="cuda")
    dist.all_reduce(x)
    torch.cuda.synchronize()
    want = sum(r + 1 for r in range(dist.get_world_size()))
    ok = bool((x == want).all())
    print(f"nccl_check backend={dist.get_backend()} world={dist.get_world_size()} rank={dist.get_rank()} "
          f"init_s={init_s:.2f} all_reduce_ok={int(ok)} device={torch.cuda.get_device_name()}", flush=True)
    dist.destroy_process_group()
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
