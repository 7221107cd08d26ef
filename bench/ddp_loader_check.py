"""DDP training with the real HDF5 loader, one line per rank (run under ``torchrun``; GPU or CPU).

Two (or more) processes train LPSGM for ``--steps`` steps with DistributedDataParallel on windows
read from harmonized HDF5 files through the training DataLoader (``WindowDataset`` with channel
dropout, ``collate_windows``, ``--workers`` workers per process; the SIMULATED files of
``bench/loader_throughput.py``), bf16 autocast on CUDA. Each rank prints its windows per second,
the share of the step spent waiting for the loader, and whether the parameters of every rank are
identical after the steps (the DDP all-reduce worked).

Backend: NCCL when every rank has its own GPU; on a machine with fewer GPUs than ranks the ranks
share GPU 0 through gloo (NCCL refuses two ranks on one device), still exercising the
all-reduce and the loader. ``--device cpu`` runs the whole check on CPUs with gloo.

    torchrun --standalone --nproc_per_node=2 bench/ddp_loader_check.py --steps 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--model", default="lpsgm")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lpsgm_bench" / "loader"))
    a = p.parse_args()

    import torch
    import torch.distributed as dist
    from loader_throughput import make_files
    from torch.nn.parallel import DistributedDataParallel as DDP

    from data import WindowDataset, load_recordings
    from engine.loop import make_loader
    from models import build_model

    rank, local, world = (int(os.environ.get(k, d)) for k, d in (("RANK", 0), ("LOCAL_RANK", 0), ("WORLD_SIZE", 1)))
    cuda = a.device == "cuda" and torch.cuda.is_available()
    if a.device == "cuda" and not cuda:
        raise SystemExit("ddp_loader_check: no CUDA device visible (use --device cpu)")
    n_gpu = torch.cuda.device_count() if cuda else 0
    own_gpu = cuda and n_gpu >= world
    device = torch.device("cuda", local if own_gpu else 0) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = "nccl" if own_gpu else "gloo"
    dist.init_process_group(backend=backend)
    files = Path(a.cache) / "r6_e960"
    if rank == 0:
        make_files(files, 6, 960)
    dist.barrier()

    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts them)
    model = build_model(a.model).to(device).train()
    ddp = DDP(model, device_ids=[device.index] if cuda else None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ds = WindowDataset(load_recordings([str(files)]), 20, wake_margin=30, channel_dropout=0.5, dtype="stored")
    keys = [(i, s, 1000 * rank + j) for j, (i, s) in enumerate(ds.train_windows())]
    keys = keys[rank::world]  # each rank its own share, as a distributed sampler gives
    need = (a.steps + a.warmup) * a.batch_size
    keys = (keys * (-(-need // len(keys))))[:need]
    loader = make_loader(ds, a.batch_size, keys, a.workers, drop_last=True, pin_memory=cuda)
    wait = busy = 0.0
    windows = 0
    t_prev = time.perf_counter()
    for step, batch in enumerate(loader):
        t_got = time.perf_counter()
        x = batch["x"].to(device, non_blocking=True)
        ch, y = batch["channels"].to(device, non_blocking=True), batch["labels"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = ddp(x.float(), ch)
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                     ignore_index=-1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        t_done = time.perf_counter()
        if step >= a.warmup:
            wait += t_got - t_prev
            busy += t_done - t_got
            windows += x.shape[0]
        t_prev = t_done
    with torch.no_grad():  # identical parameters on every rank after the steps
        flat = torch.cat([q.detach().float().reshape(-1) for q in model.parameters()])
        low, high = flat.clone(), flat.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        same = bool(torch.equal(low, high))
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    print(f"ddp_loader_check rank={rank} world={world} backend={backend} device={name} steps={a.steps} "
          f"batch={a.batch_size} workers={a.workers} windows_per_s={windows / (wait + busy):.0f} "
          f"loader_wait_share={wait / (wait + busy):.2f} params_identical_across_ranks={int(same)} "
          f"final_loss={float(loss.detach()):.3f} data=simulated-hdf5", flush=True)
    dist.destroy_process_group()
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
