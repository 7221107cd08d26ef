"""Training state for exact resume: model, optimizer, scheduler, step, sampler position, RNGs.

The file is written atomically (temp file + rename) with ``torch.save`` and read back with
``torch.load(weights_only=True)``: it holds only tensors, numbers, strings, lists and dicts, so
loading it can never execute code. RNG states are converted accordingly (Python's Mersenne
Twister state as a list of ints, NumPy's as a tensor plus numbers).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preprocess.core.atomic import atomic_write


def get_rng_state() -> dict[str, Any]:
    """RNG states of Python, NumPy and torch (CPU and every CUDA device) as plain objects."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": [int(v) for v in mt], "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_state(path: str | os.PathLike, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any, step: int, sampler: dict, rng: list[dict], extra: dict | None = None) -> Path:
    """Write the training state.

    Parameters
    ----------
    path : path-like
        Usually ``RUN_DIR/state.pt``.
    model : nn.Module
        The unwrapped model (no DDP ``module.`` prefix in the keys).
    optimizer, scheduler
        Objects with ``state_dict()``.
    step : int
        Optimizer steps done.
    sampler : dict
        Data position, e.g. ``{"epoch": 3, "consumed": 4096}`` (keys of this rank consumed).
    rng : list of dict
        :func:`get_rng_state` of every rank (index = rank).
    extra : dict, optional
        Anything else plain (best metric so far, ...).
    """
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "step": int(step), "sampler": dict(sampler), "rng": list(rng), "extra": dict(extra or {})}
    return atomic_torch_save(state, path)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state file written by :func:`save_state` (``weights_only=True``, on CPU)."""
    return torch.load(path, map_location="cpu", weights_only=True)
