"""Static splits of a job over independent processes: ``--shard i/n`` or ``--shard auto``.

Shard ``i`` of ``n`` (1-based) takes every ``n``-th item starting at item ``i``, so shards are
balanced and disjoint and together cover every item. ``auto`` reads the task index and count
from the scheduler's environment, so an array job needs no arithmetic:

==========  ==================================================================================
SLURM       ``SLURM_ARRAY_TASK_ID`` with ``SLURM_ARRAY_TASK_MIN`` and ``SLURM_ARRAY_TASK_MAX``
            (and ``SLURM_ARRAY_TASK_STEP`` when the array has a step), or
            ``SLURM_ARRAY_TASK_COUNT`` when the indices are contiguous from MIN
SGE / UGE   ``SGE_TASK_ID``, ``SGE_TASK_FIRST``, ``SGE_TASK_LAST``, ``SGE_TASK_STEPSIZE``
==========  ==================================================================================

``--array=0-9`` and ``--array=1-10`` both give shards 1/10 … 10/10; ``--array=0-18:2`` gives 10
shards too. A sparse list (``--array=1,4,9``) has no single step: use ``--shard i/n`` there.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence, TypeVar

__all__ = ["ShardError", "parse_shard", "select"]

T = TypeVar("T")


class ShardError(ValueError):
    """A ``--shard`` value that cannot be used (one line, names the variable at fault)."""


def _array(env: Mapping[str, str], task: str, first: str, last: str, step: str, count: str | None):
    """``(i, n)`` from one scheduler's array variables, or None when ``task`` is not set."""
    if env.get(task, "undefined") == "undefined":  # SGE sets "undefined" outside an array job
        return None
    try:
        tid = int(env[task])
        lo = int(env.get(first, "0" if count else ""))
        stride = int(env.get(step) or 1)
        if last in env:
            n = (int(env[last]) - lo) // stride + 1
        elif count and count in env:
            n = int(env[count])
        else:
            raise ShardError(f"--shard auto: {task} is set but neither {last}"
                             f"{' nor ' + count if count else ''} is")
    except ValueError as exc:
        if isinstance(exc, ShardError):
            raise
        raise ShardError(f"--shard auto: the array variables {task}/{first}/{last} are not integers") from None
    if stride < 1 or (tid - lo) % stride:
        raise ShardError(f"--shard auto: task {tid} is not on the array's grid (first {lo}, step {stride})")
    return (tid - lo) // stride + 1, n


def parse_shard(spec: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``(i, n)`` of ``"i/n"`` or ``"auto"`` (1 <= i <= n); None for no sharding.

    >>> parse_shard("3/10"), parse_shard(None)
    ((3, 10), None)
    >>> parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "9"})
    (5, 10)
    >>> parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"})
    (2, 3)

    Raises
    ------
    ShardError
        Malformed ``i/n``, or ``auto`` outside an array job.
    """
    if not spec:
        return None
    if spec == "auto":
        env = os.environ if env is None else env
        got = (_array(env, "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX",
                      "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT")
               or _array(env, "SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE", None))
        if got is None:
            raise ShardError("--shard auto: not in an array job (no SLURM_ARRAY_TASK_ID or SGE_TASK_ID); "
                             "give --shard i/n")
    else:
        try:
            got = tuple(int(v) for v in spec.split("/"))
            if len(got) != 2:
                raise ValueError
        except ValueError:
            raise ShardError(f"--shard must be i/n with 1 <= i <= n, or auto, got {spec!r}") from None
    i, n = got
    if not 1 <= i <= n:
        raise ShardError(f"--shard must be i/n with 1 <= i <= n, got {spec!r} (shard {i} of {n})")
    return i, n


def select(items: Sequence[T], spec: str | None, env: Mapping[str, str] | None = None) -> list[T]:
    """The items of shard ``spec`` (every n-th, from the i-th); all of them without sharding."""
    got = parse_shard(spec, env)
    if got is None:
        return list(items)
    i, n = got
    return list(items[i - 1::n])
