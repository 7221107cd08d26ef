"""One-line answers to input problems in the training entry points (``train.py``, ``finetune.py``).

An ordinary mistake (a data root that does not exist, an ``--init`` file that is not there, a
batch larger than the windows each process gets, more folds than subjects) ends in one line
``error: ...`` and exit code 2, not a traceback; what can be checked before the data is loaded
(:func:`check_weights_path`) is checked first. Bugs still raise: only :class:`InputError` and
``FileNotFoundError`` are turned into a line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

OFFICIAL_SUFFIXES = (".pth", ".pt")


class InputError(ValueError):
    """A problem with the command's input (one line, exit code 2)."""


def check_weights_path(path: str, flag: str = "--init") -> None:
    """Raise :class:`InputError` unless ``path`` names a loadable weights file.

    Ours: ``NAME``, ``NAME.safetensors`` or ``NAME.json`` with both files present; official:
    an existing ``.pth``/``.pt``.
    """
    p = Path(path)
    if p.suffix in OFFICIAL_SUFFIXES:
        if not p.is_file():
            raise InputError(f"{flag} {path}: no such file")
        return
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    weights, meta = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    if not weights.is_file():
        raise InputError(f"{flag} {path}: no such weights file ({weights.name} not found in "
                         f"{weights.parent if str(weights.parent) else '.'})")
    if not meta.is_file():
        raise InputError(f"{flag} {path}: {meta.name} (the architecture JSON beside {weights.name}) is missing")


def check_batch(batch_size: int, per_rank: int, world_size: int) -> None:
    """Raise :class:`InputError` when one batch needs more windows than a process gets per epoch."""
    if batch_size > per_rank:
        raise InputError(f"--batch-size {batch_size} is larger than the {per_rank} training windows each of the "
                         f"{world_size} process(es) gets per epoch: lower --batch-size (or add data)")


def run_main(main: Callable, argv: list[str] | None = None, prog: str = "") -> int:
    """Run ``main(argv)``; an input problem becomes one line on stderr and exit code 2."""
    try:
        main(argv)
    except (InputError, FileNotFoundError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{prog + ': ' if prog else ''}error: {text}", file=sys.stderr)
        return 2
    return 0


__all__ = ["InputError", "check_batch", "check_weights_path", "run_main"]
