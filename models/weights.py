"""Finding and loading the model weights (for inference, explanations, online staging and ONNX export).

Search order:

1. ``--weights PATH``: a file (official ``.pth``/``.pt``, or ours ``NAME.safetensors`` /
   ``NAME.json``) or a folder searched as in 2–3;
2. the official LPSGM files in ``weights/``: ``ched32_seqed64_ch9_seql20_block6.pth`` (the
   released inference model), then ``..._block4.pth``;
3. our shipped ``weights/*.safetensors`` with their ``.json`` (weights trained on real data before
   demo weights, then by name).

Demo weights (trained on simulated PSG) are usable but flagged: their JSON says so
(``"trained_on": "simulated"`` or ``"demo": true``) and a warning is printed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO_ROOT / "weights"
OFFICIAL_NAMES = ("ched32_seqed64_ch9_seql20_block6.pth", "ched32_seqed64_ch9_seql20_block4.pth",
                  "ched32_seqed64_ch9_seql20_block1.pth")
"""Official files in the order they are preferred: the released inference model (N = 6), N = 4, N = 1."""


class WeightsError(FileNotFoundError):
    """No usable weights; the message says where to put them."""


@dataclass
class Weights:
    """The weights chosen for inference.

    Attributes
    ----------
    path : Path
    kind : {"official", "ours"}
    demo : bool
        True when the JSON marks them as trained on simulated data.
    meta : dict
        JSON beside our safetensors (empty for official files).
    """

    path: Path
    kind: str
    demo: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def preprocessing(self) -> dict:
        """Signal-chain parameters these weights were trained with (official: the published chain)."""
        from .checkpoint import checkpoint_preprocessing

        return checkpoint_preprocessing({"format": "official"} if self.kind == "official" else self.meta)

    def describe(self) -> str:
        tag = " (DEMO: trained on simulated data)" if self.demo else ""
        return f"{self.path} [{self.kind}]{tag}"


def is_demo(meta: dict) -> bool:
    """Whether checkpoint metadata says the weights were trained on simulated data.

    Looks for ``"demo": true`` or a ``trained_on`` value mentioning "simulat", at the top level
    or one level down (e.g. under ``"training"`` or ``"provenance"``).
    """
    levels = [meta] + [v for v in meta.values() if isinstance(v, dict)]
    for d in levels:
        if d.get("demo") is True:
            return True
        value = d.get("trained_on")
        if value is not None and "simulat" in json.dumps(value).lower():
            return True
    return False


def _ours(weights_file: Path) -> Weights:
    json_path = weights_file.with_suffix(".json")
    if not json_path.exists():
        raise WeightsError(f"{weights_file}: architecture JSON {json_path.name} is missing beside it")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{json_path}: unreadable JSON ({exc})") from None
    return Weights(weights_file, "ours", is_demo(meta), meta)


def _search_folder(folder: Path) -> Weights | None:
    for name in OFFICIAL_NAMES:
        if (folder / name).is_file():
            return Weights(folder / name, "official")
    candidates = []
    for f in sorted(folder.glob("*.safetensors")):
        if f.with_suffix(".json").exists():
            candidates.append(_ours(f))
    candidates.sort(key=lambda w: w.demo)  # real-data weights first; stable → by name
    return candidates[0] if candidates else None


def find_weights(weights: str | Path | None = None, folder: str | Path = WEIGHTS_DIR) -> Weights:
    """Choose the weights (see the module docstring for the order).

    Raises
    ------
    WeightsError
        Nothing usable found; the message names the expected official file and folder.
    """
    if weights is not None:
        p = Path(weights)
        if p.is_dir():
            found = _search_folder(p)
            if found is None:
                raise WeightsError(f"{p}: no LPSGM weights in this folder ({OFFICIAL_NAMES[0]} or "
                                   "NAME.safetensors + NAME.json)")
            return found
        if p.suffix in (".pth", ".pt"):
            if not p.is_file():
                raise WeightsError(f"{p}: weights file not found")
            return Weights(p, "official")
        if p.is_file() and p.suffix not in (".safetensors", ".json"):
            raise WeightsError(f"{p}: not a weights file (expected an official .pth/.pt, or NAME.safetensors "
                               "with NAME.json beside it)")
        base = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
        st = base.with_name(base.name + ".safetensors")
        if not st.is_file():
            raise WeightsError(f"{p}: weights file not found")
        return _ours(st)
    folder = Path(folder)
    found = _search_folder(folder) if folder.is_dir() else None
    if found is None:
        raise WeightsError(
            f"no model weights found: put the official LPSGM file {OFFICIAL_NAMES[0]} (or "
            f"{OFFICIAL_NAMES[1]}) in {folder}/ (python -m staging.weights fetch official), or pass --weights PATH"
        )
    return found


def load_model(weights: Weights, device: str = "cpu"):
    """Load the chosen weights with :func:`models.load_checkpoint` (eval mode, on ``device``)."""
    import models  # looked up at call time: a test counts the loads by replacing it

    try:
        return models.load_checkpoint(weights.path, map_location=device)
    except Exception as exc:  # corrupt file, foreign state dict, unknown architecture keys
        raise WeightsError(f"{weights.path}: cannot load weights ({_load_reason(exc)})") from None


def _load_reason(exc: BaseException) -> str:
    """One line for a failed load; never torch's advice to retry with ``weights_only=False``.

    That advice would execute whatever code the file carries; a file that is not a plain tensor
    checkpoint is simply not usable here.
    """
    import pickle
    import zipfile

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    unreadable = ("weights_only", "pickle", "PytorchStreamReader", "zip archive", "invalid load key")
    if isinstance(exc, (pickle.UnpicklingError, zipfile.BadZipFile, EOFError)) or any(
            u.lower() in str(exc).lower() for u in unreadable):
        return ("not a readable PyTorch checkpoint (corrupt, truncated, or holding objects other than "
                "tensors, which are never loaded)")
    return f"{type(exc).__name__}: {text}"


__all__ = ["OFFICIAL_NAMES", "REPO_ROOT", "WEIGHTS_DIR", "Weights", "WeightsError", "find_weights", "is_demo",
           "load_model"]
