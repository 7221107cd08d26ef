"""Process-group setup for ``torchrun`` (DDP) that also works as a plain single process.

``torchrun`` exports ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; when they are present we join
the process group (NCCL when CUDA is available, Gloo otherwise, so DDP can be tested on CPU),
otherwise everything below degrades to rank 0 of a world of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, ``local_rank`` on its node, ``device``."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None, backend: str | None = None) -> DistInfo:
    """Initialise the process group from the ``torchrun`` environment (if any).

    Parameters
    ----------
    device : {"cuda", "cpu"}, optional
        Force a device type; default CUDA when available.
    backend : str, optional
        Force a backend; default ``nccl`` on CUDA and ``gloo`` on CPU.

    Returns
    -------
    DistInfo
        On CUDA the device is ``cuda:LOCAL_RANK`` (and made current).
    """
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = backend or ("nccl" if use_cuda else "gloo")
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
        if restart is None:
            dist.init_process_group(backend=backend)
        else:  # under torchrun: a key space of our own per restart (see _attempt_store)
            dist.init_process_group(backend=backend, store=_attempt_store(restart), rank=rank, world_size=world_size)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def _attempt_store(restart: str) -> dist.Store:
    """The ``env://`` store of this torchrun attempt, its keys prefixed by the restart count.

    After an elastic restart the agent's store still holds the previous attempt's process-group
    keys (each rank's address): without a prefix a restarted rank reads a dead peer's address and
    the group never forms (measured: Gloo ``connectFullMesh`` refused/hung on every restart).
    """
    store, _, _ = next(dist.rendezvous("env://"))
    return dist.PrefixStore(f"lpsgm/attempt_{restart}", store)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (a list of length world size; ``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: float, device: torch.device | str = "cpu") -> float:
    """Mean of a scalar over ranks."""
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (a new tensor, no gradient; ``t`` itself when not distributed)."""
    if not is_distributed() or dist.get_world_size() == 1:
        return t
    t = t.detach().clone()
    dist.all_reduce(t)
    return t


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is True on any rank (a collective: call it on all ranks)."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is the sum over ranks of the gradients (every rank's
    output depends on every rank's input)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are those of the global batch (all ranks).

    Each rank computes its per-channel mean and variance in one pass (``torch.var_mean``); one
    all-reduce per layer combines ``n·mean``, ``n·(var + mean²)`` and ``n`` in float64 (so the
    subtraction ``E[x²] − E[x]²`` keeps float32 precision), and its backward all-reduces the
    gradients, so the gradient is that of the global batch too. Works on Gloo (CPU) and NCCL:
    ``torch.nn.SyncBatchNorm`` accepts only GPU inputs. Outside distributed training, and in eval
    mode, it is exactly ``BatchNorm1d`` (same parameters, buffers and state-dict keys).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x if x.dtype == torch.float32 else x.float()  # as BatchNorm under autocast: float32
        var, mean = torch.var_mean(xf, dims, correction=0)
        n = torch.full((1,), xf.numel() / c, dtype=torch.float64, device=x.device)
        m64, v64 = mean.double(), var.double()
        total = _AllReduceSum.apply(torch.cat([n * m64, n * (v64 + m64 * m64), n]))
        count = total[-1]
        g_mean = total[:c] / count
        g_var = (total[c:2 * c] / count - g_mean * g_mean).clamp_min(0)
        scale = torch.rsqrt(g_var.float() + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = (self.bias if self.affine else 0) - g_mean.float() * scale
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = torch.addcmul(shift.view(shape), xf, scale.view(shape))
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = g_var * (count / (count - 1).clamp_min(1))
                self.running_mean.mul_(1 - m).add_(m * g_mean.float())
                self.running_var.mul_(1 - m).add_(m * unbiased.float())
        return y


def global_batchnorm(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """BatchNorm statistics of the global batch for every ``BatchNorm1d`` of ``model``, in place.

    On CUDA the layers become ``torch.nn.SyncBatchNorm`` (fused kernels); elsewhere (Gloo on CPU)
    :class:`GlobalBatchNorm1d`, the same computation. Parameters, buffers and state-dict keys
    are unchanged, so checkpoints are too. Use it before wrapping the model in DDP.

    Returns
    -------
    nn.Module
        ``model`` (its BatchNorm children replaced).
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if type(m) is nn.BatchNorm1d:
            m.__class__ = GlobalBatchNorm1d
    return model


def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last training forward
    every rank holds statistics updated from its own batch; this makes them identical again.
    """
    if is_distributed():
        for b in model.buffers():
            dist.broadcast(b.data, src=src)


def cleanup() -> None:
    """Leave the process group (no-op when not distributed)."""
    if is_distributed():
        dist.destroy_process_group()
