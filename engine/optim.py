"""AdamW with parameter groups and a warmup-cosine learning-rate schedule that never reaches 0."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn


def param_groups(named_params: Iterable[tuple[str, nn.Parameter]], lr: float, weight_decay: float,
                 name: str = "params") -> list[dict]:
    """Two AdamW groups: weight decay on matrices/kernels (ndim >= 2), none on biases and norms.

    Only parameters with ``requires_grad`` are included. Each group remembers its peak LR as
    ``peak_lr`` (the schedule scales it) and a ``name`` for logging.
    """
    decay, no_decay = [], []
    for _, p in named_params:
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "lr": lr, "peak_lr": lr, "name": name},
              {"params": no_decay, "weight_decay": 0.0, "lr": lr, "peak_lr": lr, "name": f"{name}_no_decay"}]
    return [g for g in groups if g["params"]]


def build_optimizer(groups: list[dict], betas: tuple[float, float] = (0.9, 0.999),
                    eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW over groups from :func:`param_groups` (several calls may be concatenated, e.g. a
    backbone group and a head group with different LRs)."""
    if not groups:
        raise ValueError("no trainable parameters")
    return torch.optim.AdamW(groups, betas=betas, eps=eps)


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.01) -> float:
    """Multiplier of the peak LR at ``step`` (0-based): linear warmup, then cosine to ``min_ratio``.

    Warmup (steps ``0 .. warmup_steps-1``): from ``min_ratio`` up, reaching 1 at the last warmup
    step, ``min_ratio + (1 - min_ratio) * (step + 1) / warmup_steps``, so step 0 already trains.
    Cosine: from 1 at ``warmup_steps`` down to ``min_ratio`` at ``total_steps``; stays there after.
    The factor is always in ``[min_ratio, 1]`` with ``min_ratio > 0``: no step has LR 0 (the
    reference implementation's warmup started at exactly 0). A warmup longer than the run is
    cut to the run.

    Examples
    --------
    >>> [round(lr_factor(s, 2, 6, 0.1), 3) for s in range(7)]
    [0.55, 1.0, 1.0, 0.868, 0.55, 0.232, 0.1]
    """
    if not 0 < min_ratio <= 1:
        raise ValueError("min_ratio must be in (0, 1]")
    warmup_steps = min(warmup_steps, total_steps)
    if step < warmup_steps:
        return min_ratio + (1.0 - min_ratio) * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """Sets ``lr = peak_lr * lr_factor(step)`` on every group of an optimizer.

    Call :meth:`step` after each optimizer step; the LR for step 0 is set at construction.
    ``state_dict`` holds plain ints/floats (loadable with ``torch.load(weights_only=True)``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                 min_ratio: float = 0.01):
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.min_ratio = int(warmup_steps), int(total_steps), float(min_ratio)
        for g in optimizer.param_groups:
            g.setdefault("peak_lr", g["lr"])
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        f = lr_factor(self.last_step, self.warmup_steps, self.total_steps, self.min_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = g["peak_lr"] * f

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "min_ratio": self.min_ratio}

    def load_state_dict(self, state: dict) -> None:
        """Restore the position (``last_step``); the shape (warmup, total, floor) stays the one
        this scheduler was built with, so a resumed run may extend ``total_steps``."""
        self.last_step = int(state["last_step"])
        self._apply()
