"""Epoch encoder: a dual-branch 1-D CNN turning one 30-s channel epoch into 512 features.

Branch 1 has a small first kernel (fine temporal detail), branch 2 a large one (frequency
content); each ends with global average pooling, and the two 256-d outputs are concatenated.

The layers live in ``nn.Sequential`` containers whose positions reproduce the published
checkpoint keys (``encoder_branch1.0`` conv, ``.1`` BN, ``.5`` conv, ...), so official weights
load without renaming. Parameter-free layers (ReLU, pooling, dropout) occupy positions too and
must therefore stay exactly where they are.
"""

from __future__ import annotations

import torch
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
        # flatten(1), not squeeze(): squeeze would also drop the batch axis when N == 1.
        f1 = self.encoder_branch1(x).flatten(1)
        f2 = self.encoder_branch2(x).flatten(1)
        return torch.cat([f1, f2], dim=1)
