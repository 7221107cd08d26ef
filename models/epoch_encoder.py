"""Epoch encoder: a dual-branch 1-D CNN turning one 30-s channel epoch into 512 features.

Branch 1 has a small first kernel (fine temporal detail), branch 2 a large one (frequency
content); each ends with global average pooling, and the two 256-d outputs are concatenated.

The layers live in ``nn.Sequential`` containers whose positions reproduce the published
checkpoint keys (``encoder_branch1.0`` conv, ``.1`` BN, ``.5`` conv, ...), so official weights
load without renaming. Parameter-free layers (ReLU, pooling, dropout) occupy positions too and
must therefore stay exactly where they are.

Inference (eval mode, no autograd) runs a *fused* form of the same network: each BatchNorm is
folded into the convolution before it (``w' = w·γ/σ``, ``b' = (b − μ)·γ/σ + β``, exact algebra,
float rounding only), ReLU runs in place and the convolutions run as ``Conv2d(1×k)`` on
channels-last tensors, which oneDNN executes faster on CPU than ``Conv1d`` (measured in
``bench/inference_speed.py``; docs/benchmarks.md). The folded weights are cached and rebuilt
whenever a parameter or BN statistic changes (tracked by tensor version counters). Training,
and any call that needs gradients (Grad-CAM, attribution), uses the layer-by-layer path so hooks
and BatchNorm statistics behave as usual, as does any call while a hook watches an inner layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CNN_DIM


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int | None = None) -> list:
    """Conv1d → BatchNorm1d → ReLU; ``padding=None`` means 'same' for an odd kernel and stride 1."""
    if padding is None:
        padding = kernel // 2
    return [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding), nn.BatchNorm1d(c_out), nn.ReLU()]


class EpochEncoder(nn.Module):
    """Dual-branch CNN, (N, 1, 3000) → (N, 512).

    Parameters
    ----------
    dropout : float
        Dropout after the first pooling of each branch.

    Notes
    -----
    Sequential positions (both branches): 0 conv, 1 BN, 2 ReLU, 3 max-pool, 4 dropout,
    5/6/7, 8/9/10, 11/12/13 conv-BN-ReLU, 14 max-pool, 15 global average pool.
    """

    out_dim = CNN_DIM

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.fused = True  # set False to force the layer-by-layer path at inference
        self._fused_cache: tuple | None = None
        # 3000 → 500 (conv) → 63 (pool) → 63 ×3 (same convs) → 16 (pool) → 1
        self.encoder_branch1 = nn.Sequential(
            *_conv_bn_relu(1, 64, 49, stride=6, padding=24),
            nn.MaxPool1d(kernel_size=8, stride=8, padding=4),
            nn.Dropout(dropout),
            *_conv_bn_relu(64, 128, 9),
            *_conv_bn_relu(128, 128, 9),
            *_conv_bn_relu(128, 256, 9),
            nn.MaxPool1d(kernel_size=4, stride=4, padding=2),
            nn.AdaptiveAvgPool1d(1),
        )
        # 3000 → 53 (conv, no padding) → 13 (pool) → 13 ×3 (same convs) → 6 (pool) → 1
        self.encoder_branch2 = nn.Sequential(
            *_conv_bn_relu(1, 64, 400, stride=50, padding=0),
            nn.MaxPool1d(kernel_size=4, stride=4),
            nn.Dropout(dropout),
            *_conv_bn_relu(64, 128, 7),
            *_conv_bn_relu(128, 128, 7),
            *_conv_bn_relu(128, 256, 7),
            nn.MaxPool1d(kernel_size=2, stride=2),
            nn.AdaptiveAvgPool1d(1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode epochs.

        Parameters
        ----------
        x : torch.Tensor
            (N, 1, 3000) or (N, 3000) float.

        Returns
        -------
        torch.Tensor
            (N, 512): branch-1 features followed by branch-2 features.
        """
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if self.fused and not self.training and not torch.is_grad_enabled() and not self._hooked():
            return self._forward_fused(x)
        # flatten(1), not squeeze(): squeeze would also drop the batch axis when N == 1.
        f1 = self.encoder_branch1(x).flatten(1)
        f2 = self.encoder_branch2(x).flatten(1)
        return torch.cat([f1, f2], dim=1)

    # ---- fused inference path ------------------------------------------------------------------

    def _hooked(self) -> bool:
        """Whether a hook watches an inner layer (then the layers must really run, e.g. Grad-CAM)."""
        from torch.nn.modules import module as _m

        if _m._global_forward_hooks or _m._global_forward_pre_hooks:
            return True
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.modules() if m is not self)

    def _state_key(self) -> tuple:
        """Identity + version of every tensor the folded weights depend on."""
        return tuple((t.data_ptr(), _version(t), t.device, t.dtype)
                     for t in list(self.parameters()) + list(self.buffers()))

    def _folded(self) -> tuple:
        """Per branch: [(weight (Cout, Cin, 1, k) channels-last, bias, stride, padding)] × 4."""
        key = self._state_key()
        if self._fused_cache is None or self._fused_cache[0] != key:
            with torch.no_grad():
                branches = tuple(_fold_branch(seq) for seq in (self.encoder_branch1, self.encoder_branch2))
            self._fused_cache = (key, branches)
        return self._fused_cache[1]

    def _forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        b1, b2 = self._folded()
        x2 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (N, 1, 1, 3000)
        f1 = _run_branch(x2, b1, self.encoder_branch1[3], self.encoder_branch1[14])
        f2 = _run_branch(x2, b2, self.encoder_branch2[3], self.encoder_branch2[14])
        return torch.cat([f1, f2], dim=1)


def _version(t: torch.Tensor) -> int:
    """In-place version counter; tensors made under ``torch.inference_mode`` have none (-1)."""
    try:
        return t._version
    except RuntimeError:
        return -1


_CONV_POSITIONS = (0, 5, 8, 11)
"""Sequential positions of the four convolutions of a branch (their BatchNorm follows each)."""


def _fold_branch(seq: nn.Sequential) -> list:
    """Fold each BatchNorm of a branch into the preceding convolution (eval-mode statistics)."""
    layers = []
    for i in _CONV_POSITIONS:
        conv, bn = seq[i], seq[i + 1]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = (conv.weight * scale[:, None, None]).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        b = (conv.bias - bn.running_mean) * scale + bn.bias
        layers.append((w, b, conv.stride[0], conv.padding[0]))
    return layers


def _pool2d(x: torch.Tensor, pool: nn.MaxPool1d) -> torch.Tensor:
    """A ``MaxPool1d`` applied along the last axis of a (N, C, 1, T) tensor."""
    return F.max_pool2d(x, (1, pool.kernel_size), (1, pool.stride), (0, pool.padding))


def _run_branch(x: torch.Tensor, layers: list, pool1: nn.MaxPool1d, pool2: nn.MaxPool1d) -> torch.Tensor:
    """Folded conv+ReLU ×4 with the two poolings, then global average; (N, 256)."""
    h = x
    for j, (w, b, stride, padding) in enumerate(layers):
        h = F.conv2d(h, w, b, (1, stride), (0, padding)).relu_()
        if j == 0:
            h = _pool2d(h, pool1)  # dropout (position 4) is the identity in eval mode
    return _pool2d(h, pool2).mean((2, 3))
