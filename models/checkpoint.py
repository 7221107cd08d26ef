"""Checkpoint I/O: our ``NAME.safetensors`` + ``NAME.json`` format and the official ``.pth`` files.

Our format keeps weights (safetensors: no pickle, memory-mappable) apart from a human-readable
JSON holding the architecture under ``"model"`` plus free-form metadata (channels, preprocessing,
provenance, metrics). Official LPSGM files are ``torch.save`` dicts with ``model_state_dict``
whose keys carry DDP's ``module.`` prefix; apart from that prefix our parameter names are the
official ones, so conversion is a rename plus architecture detection from the tensor shapes.
Pickles are always opened with ``weights_only=True`` so a checkpoint cannot execute code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from preprocess.core.atomic import atomic_write
from preprocess.core.version import software_info, software_version

from .config import CNN_DIM, ModelConfig
from .lpsgm import LPSGM

OFFICIAL_SUFFIXES = (".pth", ".pt")
OFFICIAL_CHAIN = "published"
"""Signal chain the official LPSGM weights were trained on (see :mod:`preprocess.core.signal`)."""
DEFAULT_CHAIN = "antialiased"
"""Chain of our checkpoints whose JSON does not name one (written before the chain was recorded)."""
_BLOCK_RE = re.compile(r"^seq_encoder\.transformer_blocks\.(\d+)\.")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP / DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        else:
            return model


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """Return (weights, json) paths for ``NAME``, ``NAME.safetensors`` or ``NAME.json``."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, meta: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``NAME.safetensors`` (weights) and ``NAME.json`` (``{"model": config, **meta, "software": ...}``).

    ``"software"`` is the code that wrote the file (:mod:`preprocess.core.version`: version, git
    commit); it is always the current one, never a value carried over in ``meta``.

    Parameters
    ----------
    model : nn.Module
        An :class:`LPSGM` (possibly wrapped in DDP or ``torch.compile``).
    path : str or PathLike
        ``NAME`` or ``NAME.safetensors``; parent folders are created.
    meta : mapping, optional
        JSON-serialisable metadata stored beside the config (must not contain ``"model"``).

    Returns
    -------
    tuple of Path
        The weights and JSON paths.
    """
    model = unwrap(model)
    if not isinstance(model, LPSGM):
        raise TypeError(f"expected an LPSGM model, got {type(model).__name__}")
    meta = dict(meta or {})
    if "model" in meta:
        raise ValueError('meta must not contain the key "model" (reserved for the architecture)')
    w_path, j_path = _paths(path)
    w_path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses non-contiguous or memory-sharing tensors; copies to CPU avoid both.
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    software = {"software_version": software_version(), **software_info()}
    text = json.dumps({"model": model.cfg.to_dict(), **meta, "software": software}, indent=2, sort_keys=False) + "\n"
    atomic_write(w_path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    atomic_write(j_path, lambda tmp: Path(tmp).write_text(text))
    return w_path, j_path


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def config_from_official_state_dict(
    state: Mapping[str, torch.Tensor], variant: str | None = None, **overrides: Any
) -> ModelConfig:
    """Infer the architecture of an official state dict from its keys and shapes.

    Parameters
    ----------
    state : mapping
        Official state dict, with or without the ``module.`` prefix.
    variant : str, optional
        Force the sequence-encoder variant. Only needed for 512-d ablation checkpoints, where
        ``add_cls`` and ``none_cls`` have identical keys (default then: ``add_cls``).
    **overrides
        Extra :class:`ModelConfig` fields (e.g. ``n_heads``, which shapes cannot reveal).
    """
    s = _strip_prefix(state)
    blocks = {int(m.group(1)) for k in s if (m := _BLOCK_RE.match(k))}
    if not blocks:
        raise ValueError("no seq_encoder.transformer_blocks.* keys: not an LPSGM state dict")
    if blocks != set(range(max(blocks) + 1)):
        raise ValueError(f"non-contiguous transformer block indices: {sorted(blocks)}")
    d_model = s["seq_encoder.ln.weight"].shape[0]
    seq_len, pos_dim = s["seq_encoder.temporal_embedding"].shape
    concat = d_model != CNN_DIM
    if variant is None:
        if concat:
            variant = "cat_cls" if "seq_encoder.cls_token" in s else "cat_avg"
        else:
            variant = "add_cls"
    kw: dict[str, Any] = {"n_blocks": max(blocks) + 1, "seq_len": seq_len, "variant": variant}
    if "seq_encoder.spatial_embedding" in s:
        kw["n_channels"] = s["seq_encoder.spatial_embedding"].shape[0]
    if concat:
        kw["ch_emb"] = s["seq_encoder.spatial_embedding"].shape[1]
        kw["pos_emb"] = pos_dim
    kw["n_classes"] = s["classifier.ln.weight"].shape[0]
    kw.update(overrides)
    return ModelConfig(**kw)


def load_official_state_dict(
    obj: Mapping[str, Any], variant: str | None = None, **overrides: Any
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Convert an official LPSGM checkpoint into (config, state dict in our naming).

    Parameters
    ----------
    obj : mapping
        The object stored in an official ``.pth`` (a dict with ``model_state_dict``) or the
        state dict itself; keys may carry the DDP ``module.`` prefix.
    variant, **overrides
        See :func:`config_from_official_state_dict`.

    Returns
    -------
    tuple
        ``(ModelConfig, state_dict)``; the state dict matches ``LPSGM(config).state_dict()`` key
        for key and shape for shape (checked here, with a readable error otherwise).
    """
    state = obj.get("model_state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping):
        raise TypeError("expected a state dict or a dict with 'model_state_dict'")
    state = _strip_prefix(state)
    cfg = config_from_official_state_dict(state, variant=variant, **overrides)
    # The reference code allocates parameters its cat_avg / none_cls variants never use; we
    # do not have them, so they are dropped (they cannot influence the output).
    if cfg.variant == "cat_avg":
        state.pop("seq_encoder.cls_token", None)
    if cfg.variant == "none_cls":
        state.pop("seq_encoder.spatial_embedding", None)
    expected = {k: tuple(v.shape) for k, v in LPSGM(cfg).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        raise ValueError(
            f"official state dict does not match {cfg}: missing={missing[:5]} "
            f"unexpected={unexpected[:5]} wrong_shape={wrong[:5]}"
        )
    return cfg, dict(state)


def to_official_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Return the state dict in the published naming (``module.`` prefix, as saved under DDP)."""
    return {f"module.{k}": v for k, v in unwrap(model).state_dict().items()}


def checkpoint_preprocessing(meta: Mapping[str, Any]) -> dict:
    """Signal-chain parameters the weights were trained with (``preprocessing`` of the JSON).

    Official files carry no metadata: they were trained on the published chain. Ours record the
    parameters of their training files; a JSON without ``chain`` means the antialiased chain.
    """
    if meta.get("format") == "official":
        return {"chain": OFFICIAL_CHAIN}
    params = dict(meta.get("preprocessing") or {})
    params.setdefault("chain", DEFAULT_CHAIN)
    return params


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", variant: str | None = None
) -> LPSGM:
    """Load a model from our format or an official ``.pth``.

    Parameters
    ----------
    path : str or PathLike
        ``NAME.safetensors`` / ``NAME.json`` / ``NAME`` (ours, JSON beside the weights), or an
        official ``*.pth`` / ``*.pt`` (dict with ``model_state_dict``; block count detected).
    map_location : str or torch.device
        Device for the weights.
    variant : str, optional
        Sequence-encoder variant for ambiguous official ablation checkpoints.

    Returns
    -------
    LPSGM
        Model in eval mode. The JSON content (ours) or a description (official: its format and
        ``"preprocessing": {"chain": "published"}``) is attached as ``model.checkpoint_meta``;
        :func:`checkpoint_preprocessing` reads the signal chain from it.
    """
    p = Path(path)
    if p.suffix in OFFICIAL_SUFFIXES:
        obj = torch.load(p, map_location="cpu", weights_only=True)
        cfg, state = load_official_state_dict(obj, variant=variant)
        meta: dict[str, Any] = {"model": cfg.to_dict(), "source": str(p), "format": "official",
                                "preprocessing": {"chain": OFFICIAL_CHAIN}}
    else:
        w_path, j_path = _paths(p)
        if not w_path.exists():
            raise FileNotFoundError(w_path)
        if not j_path.exists():
            raise FileNotFoundError(f"{j_path} (architecture JSON beside {w_path.name})")
        meta = json.loads(j_path.read_text())
        cfg = ModelConfig.from_dict(meta["model"])
        state = load_file(w_path, device="cpu")
    model = LPSGM(cfg)
    model.load_state_dict(state, strict=True)
    model.checkpoint_meta = meta
    return model.to(map_location).eval()
