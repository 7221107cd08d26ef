"""The key/shape list of the published LPSGM checkpoints, and the check of a file against it.

``official_state_dict_shapes.json`` (beside this module, a copy of the project's spec) lists every
key of ``model_state_dict`` and its shape for N = 1, 4 and 6 transformer blocks. A downloaded
checkpoint is used only when its keys and shapes equal one of them exactly::

    >>> sorted(official_shapes())
    ['block1', 'block4', 'block6']
    >>> check_official_state_dict({"module.x": []}, "w.pth")
    Traceback (most recent call last):
    ...
    ValueError: w.pth: not an official LPSGM checkpoint: 1 key(s), none of the published key sets (N = 1, 4, 6 blocks)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

SPEC_FILE = Path(__file__).with_name("official_state_dict_shapes.json")


@functools.lru_cache(maxsize=1)
def official_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    """``{"block1" | "block4" | "block6": {key: shape}}`` of the published checkpoints (keys with ``module.``)."""
    spec = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return {name: {k: tuple(v) for k, v in keys.items()} for name, keys in spec.items()}


def check_official_state_dict(state: Mapping[str, Sequence[int]] | Mapping, name: str = "checkpoint") -> int:
    """The block count N of an official ``model_state_dict`` whose keys and shapes equal the published ones.

    Parameters
    ----------
    state : mapping
        Key → tensor (anything with ``.shape``) or shape.
    name : str
        How the file is named in the error.

    Returns
    -------
    int
        N, the number of transformer blocks (1, 4 or 6).

    Raises
    ------
    ValueError
        One line: the key set matches no published one, or the first key whose shape differs.
    """
    shapes = {k: tuple(getattr(v, "shape", v)) for k, v in state.items()}
    for spec_name, spec in official_shapes().items():
        if set(spec) == set(shapes):
            wrong = [k for k in spec if spec[k] != shapes[k]]
            if wrong:
                k = wrong[0]
                raise ValueError(f"{name}: not an official LPSGM checkpoint: {k} has shape {list(shapes[k])}, "
                                 f"the published {spec_name} has {list(spec[k])} ({len(wrong)} key(s) differ)")
            return int(spec_name.removeprefix("block"))
    raise ValueError(f"{name}: not an official LPSGM checkpoint: {len(shapes)} key(s), none of the published "
                     "key sets (N = 1, 4, 6 blocks)")
