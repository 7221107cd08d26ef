"""Which windows a training epoch visits: dataset mixing, shuffling and sharding across ranks.

The plan of an epoch is a pure function of ``(seed, epoch)``: every rank computes the same
global plan and takes its own shard, and a resumed run recomputes the plan and skips what was
already consumed (``set_epoch(epoch, start=...)``). Each planned key carries an augmentation
seed, so channel-subset augmentation does not depend on DataLoader worker RNGs either.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Mapping

import numpy as np
from torch.utils.data import Sampler

from .windows import WindowDataset

MIXING_MODES = ("proportional", "equal", "temperature")


def mixing_weights(sizes: Mapping[str, int], mode: str = "proportional",
                   temperature: float = 2.0) -> dict[str, float]:
    """Share of each dataset in the training stream.

    Parameters
    ----------
    sizes : mapping
        Dataset name → number of training windows.
    mode : {"proportional", "equal", "temperature"}
        ``proportional``: ``w_d ∝ n_d`` (every window equally likely); ``equal``: ``w_d = 1/D``;
        ``temperature``: ``w_d ∝ n_d ** (1/T)`` (T = 1 is proportional, T → ∞ is equal).
    temperature : float
        T for the temperature mode.

    Returns
    -------
    dict
        Dataset name → weight; weights sum to 1 (datasets with no window get 0).

    Examples
    --------
    >>> mixing_weights({"a": 300, "b": 100}, "temperature", 2.0)   # sqrt(3) : 1
    {'a': 0.6339745962155614, 'b': 0.36602540378443865}
    """
    if mode not in MIXING_MODES:
        raise ValueError(f"unknown mixing mode {mode!r}; expected one of {MIXING_MODES}")
    names = list(sizes)
    n = np.array([float(sizes[k]) for k in names])
    if mode == "proportional":
        w = n.copy()
    elif mode == "equal":
        w = (n > 0).astype(np.float64)
    else:
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        w = np.where(n > 0, n, 0.0) ** (1.0 / temperature)
    if w.sum() <= 0:
        raise ValueError("no training windows in any dataset")
    w = w / w.sum()
    return {k: float(v) for k, v in zip(names, w)}


def quotas(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer numbers of windows per dataset summing to ``total`` (largest-remainder rounding)."""
    names = list(weights)
    exact = np.array([weights[k] for k in names]) * total
    q = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - q), kind="stable")[: total - int(q.sum())]:
        q[i] += 1
    return {k: int(v) for k, v in zip(names, q)}


class WindowSampler(Sampler):
    """Yields window keys ``(recording, start, aug_seed)`` for one rank, epoch by epoch.

    Each epoch: every recording is tiled into non-overlapping windows from a random offset
    (:meth:`WindowDataset.train_windows`), windows are grouped by dataset, each dataset
    contributes its quota of the epoch (its windows shuffled; repeated cyclically when the
    quota exceeds them, truncated when it is smaller), the result is shuffled, padded to a
    multiple of ``world_size`` by wrapping around and dealt to ranks (``plan[rank::world]``).

    Parameters
    ----------
    dataset : WindowDataset
        The training windows.
    mixing : {"proportional", "equal", "temperature"}
        See :func:`mixing_weights`.
    temperature : float
        T of the temperature mode.
    samples_per_epoch : int, optional
        Windows per epoch over all ranks; default: the number of windows at offset 0 (a pass
        over the data), computed once so every epoch has the same length.
    seed : int
        Plan seed (same on every rank).
    rank, world_size : int
        This process and the number of processes.
    """

    def __init__(self, dataset: WindowDataset, mixing: str = "proportional", temperature: float = 2.0,
                 samples_per_epoch: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.dataset = dataset
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        nominal = dataset.train_windows(None)
        if not nominal:
            raise ValueError("the training set has no window with a scored epoch")
        sizes: dict[str, int] = defaultdict(int)
        for i, _ in nominal:
            sizes[dataset.datasets[i]] += 1
        self.sizes = dict(sizes)
        self.weights = mixing_weights(self.sizes, mixing, temperature)
        self.total = int(samples_per_epoch or len(nominal))
        self.quotas = quotas(self.weights, self.total)
        self.per_rank = -(-self.total // self.world_size)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch to iterate and skip its first ``start`` keys of this rank (resume)."""
        self.epoch, self.start = int(epoch), int(start)

    def plan(self, epoch: int) -> list[tuple[int, int, int]]:
        """The global (all-rank) list of keys of ``epoch``."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        by_dataset: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for key in self.dataset.train_windows(rng):
            by_dataset[self.dataset.datasets[key[0]]].append(key)
        keys: list[tuple[int, int]] = []
        for name in sorted(self.quotas):
            windows, q = by_dataset.get(name, []), self.quotas[name]
            if not windows or q == 0:
                continue
            order = rng.permutation(len(windows))
            reps = np.concatenate([order] * (-(-q // len(windows))))[:q]
            keys.extend(windows[j] for j in reps)
        perm = rng.permutation(len(keys))
        aug = rng.integers(0, 2**31 - 1, size=len(keys))
        plan = [(keys[j][0], keys[j][1], int(a)) for j, a in zip(perm, aug)]
        pad = self.per_rank * self.world_size - len(plan)
        return plan + plan[:pad]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        mine = self.plan(self.epoch)[self.rank :: self.world_size]
        return iter(mine[self.start :])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)
