"""Disorder classifier: LPSGM backbone → window representation → head; strategies and saving.

Window representation: the backbone's 20 per-epoch outputs after its final LayerNorm (the CLS
outputs, 608-d each) averaged over the window. Head: a BatchNorm without affine parameters (it
standardises each feature with training statistics, as in MAE-style linear probing), dropout,
then a Linear layer or a small MLP (Linear → GELU → dropout → Linear). The standardisation
matters for a frozen backbone: after the final LayerNorm the window-to-window variation of the
embedding is small next to its constant part (learned CLS and position embeddings), and an
unscaled linear head barely sees it.

Strategies:

``partial``  backbone frozen (eval mode, no gradients); only the new head is trained. Window
             embeddings are computed once and reused by every fold (:mod:`nar_cls.features`).
``full``     backbone initialised from a checkpoint and trained with the head; backbone LR
             (``--lr-backbone``) ≪ head LR (``--lr``).
``scratch``  randomly initialised backbone (``--model`` preset) trained with the head at ``--lr``.
``joint``    as ``full``, and the backbone's own sleep-staging classifier keeps training on the
             epochs that have a hypnogram: loss = diagnosis CE + ``stage_weight`` × staging CE
             (default 0.5; the paper's joint paradigm; epochs without a stage, −1, add nothing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from engine.optim import param_groups
from models import LPSGM, build_model, load_checkpoint, save_checkpoint

STRATEGIES = ("full", "joint", "partial", "scratch")


class WindowHead(nn.Module):
    """Classifier on window embeddings.

    Parameters
    ----------
    in_dim : int
        Embedding width (608 for the published models).
    n_classes : int
    hidden : int
        0: linear head; > 0: MLP with one hidden layer of this width.
    dropout : float
        Dropout on the (standardised) input and, for the MLP, on the hidden layer.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.n_classes, self.hidden, self.dropout = in_dim, n_classes, hidden, dropout
        self.norm = nn.BatchNorm1d(in_dim, affine=False)
        self.drop = nn.Dropout(dropout)
        if hidden > 0:
            self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_classes))
        else:
            self.mlp = nn.Linear(in_dim, n_classes)

    def config(self) -> dict:
        return {"in_dim": self.in_dim, "n_classes": self.n_classes, "hidden": self.hidden, "dropout": self.dropout}

    @torch.no_grad()
    def init_norm(self, z: torch.Tensor) -> None:
        """Set the standardisation statistics from training embeddings ``z`` (N, in_dim)."""
        self.norm.running_mean.copy_(z.mean(0))
        self.norm.running_var.copy_(z.var(0, unbiased=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) of window embeddings ``z`` (B, in_dim)."""
        return self.mlp(self.drop(self.norm(z)))


def window_embedding(backbone: LPSGM, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
    """Mean over the window of the per-epoch outputs after the final LayerNorm: (B, d_model)."""
    return _pool(backbone.cls_features(x, channels))


def window_embedding_and_stages(backbone: LPSGM, x: torch.Tensor,
                                channels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(window embedding (B, d_model) as :func:`window_embedding`, staging logits (B, L, 5))`` from one
    backbone pass."""
    stage_logits, cls = backbone(x, channels, return_cls=True)
    return _pool(cls), stage_logits


def _pool(cls: torch.Tensor) -> torch.Tensor:
    """(B, L, d_model) per-epoch outputs → (B, d_model): their mean over the window, in float32."""
    return cls.float().mean(dim=1)


class NarModel(nn.Module):
    """Backbone + head: windows (B, L, C, 3000) and channels (B, C) → class logits (B, K)."""

    def __init__(self, backbone: LPSGM, head: WindowHead):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        return self.head(window_embedding(self.backbone, x, channels))

    def joint_forward(self, x: torch.Tensor, channels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(diagnosis logits (B, K), staging logits (B, L, 5))`` from one backbone pass."""
        z, stage_logits = window_embedding_and_stages(self.backbone, x, channels)
        return self.head(z), stage_logits


def load_backbone(init: str | os.PathLike | None, model: str = "lpsgm") -> tuple[LPSGM, dict]:
    """Backbone from a checkpoint (ours or official ``.pth``) or freshly initialised.

    Parameters
    ----------
    init : path or None
        Checkpoint passed to :func:`models.load_checkpoint`; None builds ``model``.
    model : str
        Preset used when ``init`` is None (``lpsgm``, ``lpsgm-small``, ``lpsgm-6``).

    Returns
    -------
    tuple
        ``(backbone, info)``; ``info`` records the source (``init``, ``format``, ``model``) for the
        run's ``config.json``.
    """
    if init is not None:
        backbone = load_checkpoint(init)
        fmt = backbone.checkpoint_meta.get("format", "ours")
        return backbone, {"init": str(init), "format": fmt, "model": backbone.cfg.to_dict()}
    backbone = build_model(model)
    return backbone, {"init": None, "format": "random", "preset": model, "model": backbone.cfg.to_dict()}


def set_strategy(model: NarModel, strategy: str) -> None:
    """Freeze the backbone for ``partial``; make everything trainable otherwise."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    for p in model.backbone.parameters():
        p.requires_grad_(strategy != "partial")


def optimizer_groups(model: NarModel, strategy: str, lr: float, backbone_lr: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: head at ``lr``; backbone at ``backbone_lr`` (full, joint), ``lr`` (scratch) or none."""
    groups = param_groups(model.head.named_parameters(), lr, weight_decay, "head")
    if strategy != "partial":
        blr = backbone_lr if strategy in ("full", "joint") else lr
        groups += param_groups(model.backbone.named_parameters(), blr, weight_decay, "backbone")
    return groups


def train_mode(model: NarModel, strategy: str) -> None:
    """``model.train()``, but a frozen backbone stays in eval mode (no dropout, fixed BatchNorm)."""
    model.train()
    if strategy == "partial":
        model.backbone.eval()


def save_fold_model(model: NarModel, out_dir: str | os.PathLike, strategy: str, backbone_source: str | None,
                    meta: dict) -> None:
    """Write ``head.safetensors`` + ``head.json`` (and ``backbone.*`` when the backbone was trained).

    ``head.json`` holds the head architecture, ``meta`` (task, classes, ...) and ``backbone``:
    the path of the backbone checkpoint (``backbone`` in the same folder, or the frozen initial
    checkpoint for ``partial``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if strategy == "partial":
        backbone = backbone_source
    else:
        save_checkpoint(model.backbone, out / "backbone", meta={"nar_cls": meta})
        backbone = "backbone"
    state = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(state, str(out / "head.safetensors"))
    info = {"head": model.head.config(), "backbone": backbone, "strategy": strategy, **meta}
    (out / "head.json").write_text(json.dumps(info, indent=2) + "\n")


def load_fold_model(fold_dir: str | os.PathLike, backbone: str | os.PathLike | None = None) -> NarModel:
    """Rebuild the classifier saved by :func:`save_fold_model` (eval mode).

    Parameters
    ----------
    fold_dir : path
        Folder with ``head.json`` / ``head.safetensors``.
    backbone : path, optional
        Backbone checkpoint overriding the one recorded (e.g. after moving the files).
    """
    fold_dir = Path(fold_dir)
    info = json.loads((fold_dir / "head.json").read_text())
    if info.get("head_hypnogram"):
        raise ValueError(f"{fold_dir}: this head also reads the subject's predicted-hypnogram summary "
                         "(--head-hypnogram); it scores whole subjects through python -m nar_cls, not windows")
    src = backbone or info["backbone"]
    if src is None:
        raise ValueError("the run used a random frozen backbone that was not saved; pass backbone=")
    src = Path(src) if Path(src).is_absolute() or Path(src).exists() else fold_dir / src
    head = WindowHead(**info["head"])
    head.load_state_dict(load_file(str(fold_dir / "head.safetensors")))
    return NarModel(load_checkpoint(src), head).eval()
