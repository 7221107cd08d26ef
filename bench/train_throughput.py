"""Training throughput: windows per second for one model / batch size / device (one line).

Examples
--------
::

    python bench/train_throughput.py --model lpsgm --batch-size 32 --bf16 --device cuda
    python bench/train_throughput.py --model lpsgm --batch-size 32 --bf16 --device cuda --data /data/h5 --workers 8

Synthetic batches (random signals already on the device) measure the model alone; ``--data``
reads real windows from harmonized HDF5 files through the training DataLoader, so the number
includes reading, collation and host-to-device copies. On a GPU the mean utilisation over the
timed steps is reported (``torch.cuda.utilization`` when available, else ``nvidia-smi``).
``cpu_s/step`` is the process CPU time per step; ``launches/step`` and ``syncs/step`` count the
ATen kernels and host syncs of one extra step under the torch profiler (``bench/launches.py``;
on CPU a proxy for the kernels the same step launches on a GPU).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from launches import count_launches  # noqa: E402

from engine.loop import make_loader, train_step  # noqa: E402
from engine.optim import build_optimizer, param_groups  # noqa: E402
from models import PRESETS, build_model  # noqa: E402


def gpu_utilization(index: int) -> float | None:
    """Current GPU utilisation in percent, or None when it cannot be read."""
    try:
        return float(torch.cuda.utilization(index))
    except Exception:  # pynvml missing or unsupported
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                              "-i", str(index)], capture_output=True, text=True, timeout=5)
        return float(out.stdout.strip().splitlines()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


class UtilizationSampler(threading.Thread):
    """Polls GPU utilisation in the background while the timed steps run."""

    def __init__(self, index: int, period: float = 0.2):
        super().__init__(daemon=True)
        self.index, self.period, self.values = index, period, []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            v = gpu_utilization(self.index)
            if v is None:
                return
            self.values.append(v)
            self._stop_event.wait(self.period)

    def stop(self) -> float | None:
        self._stop_event.set()
        self.join(timeout=10)
        return sum(self.values) / len(self.values) if self.values else None


def synthetic_batches(batch_size: int, seq_len: int, n_channels: int, device: torch.device):
    x = torch.randn(batch_size, seq_len, n_channels, 3000, device=device)
    channels = torch.arange(n_channels, device=device).repeat(batch_size, 1)
    labels = torch.randint(0, 5, (batch_size, seq_len), device=device)
    batch = {"x": x, "channels": channels, "labels": labels}
    while True:
        yield batch


def data_batches(args, seq_len: int):
    from data import WindowDataset, WindowSampler, load_recordings

    ds = WindowDataset(load_recordings(args.data), seq_len, wake_margin=30, channel_dropout=args.channel_dropout)
    sampler = WindowSampler(ds, seed=0)
    loader = make_loader(ds, args.batch_size, sampler, args.workers, drop_last=True,
                         pin_memory=args.device.startswith("cuda"))
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def main() -> None:
    p = argparse.ArgumentParser(description="training throughput (windows/s)")
    p.add_argument("--model", choices=sorted(PRESETS), default="lpsgm")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--channels", type=int, default=9, help="channels per window (synthetic data)")
    p.add_argument("--seq-len", type=int, default=20)
    p.add_argument("--data", nargs="+", metavar="ROOT", help="harmonized HDF5 root(s): include the loader")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--channel-dropout", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = build_model(args.model, seq_len=args.seq_len).to(device).train()
    opt = build_optimizer(param_groups(model.named_parameters(), 1e-4, 1e-4))
    batches = data_batches(args, args.seq_len) if args.data else synthetic_batches(
        args.batch_size, args.seq_len, args.channels, device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        train_step(model, next(batches), opt, device, None, 1.0, args.bf16)
    sync()
    util = UtilizationSampler(device.index or 0) if device.type == "cuda" else None
    if util is not None:
        util.start()
    windows, tokens = 0, 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        batch = next(batches)
        train_step(model, batch, opt, device, None, 1.0, args.bf16)
        windows += batch["x"].shape[0]
        tokens += int((batch["channels"] >= 0).sum()) * batch["x"].shape[1]
    sync()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    gpu = util.stop() if util is not None else None
    batch = next(batches)
    launches, syncs = count_launches(lambda: (train_step(model, batch, opt, device, None, 1.0, args.bf16), sync()))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"train_throughput model={args.model} batch={args.batch_size} seq_len={args.seq_len} "
          f"device={device.type} ({name}) bf16={int(args.bf16 and device.type == 'cuda')} "
          f"data={'hdf5' if args.data else f'synthetic:{args.channels}ch'} windows/s={windows / elapsed:.1f} "
          f"epoch_tokens/s={tokens / elapsed:.0f} step_ms={1000 * elapsed / args.steps:.1f} "
          f"cpu_s/step={cpu / args.steps:.2f} launches/step={launches} syncs/step={syncs} "
          f"gpu_util={'n/a' if gpu is None else f'{gpu:.0f}%'}")


if __name__ == "__main__":
    main()
