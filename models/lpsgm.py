"""LPSGM: epoch encoder (CNN per token) + sequence encoder (transformer) + linear classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import CNN_DIM, ModelConfig, get_config
from .epoch_encoder import EpochEncoder
from .sequence_encoder import SequenceEncoder


class Classifier(nn.Module):
    """Linear head applied to every per-epoch output.

    The single layer is called ``ln`` (although it is a Linear, not a LayerNorm) because that is
    its key in the published checkpoint (``classifier.ln.weight``).
    """

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.ln = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x)


class LPSGM(nn.Module):
    """Sleep-staging model over windows of multi-channel 30-s epochs.

    Parameters
    ----------
    cfg : ModelConfig
        Architecture.

    Notes
    -----
    ``forward(x, channels)`` takes x (B, L, C, 3000) and channels (B, C) (canonical index,
    -1 = padding) and returns logits (B, L, n_classes). Only real (non-padding) tokens are run
    through the CNN; padding tokens get zero features and are masked as attention keys, so the
    logits of a window do not depend on the padding its batch needed.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.epoch_encoder = EpochEncoder(cfg.cnn_dropout)
        self.seq_encoder = SequenceEncoder(cfg)
        self.classifier = Classifier(cfg.d_model, cfg.n_classes)

    @property
    def config(self) -> ModelConfig:
        """The architecture this model was built with."""
        return self.cfg

    def encode_epochs(self, x: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """Clamp and encode single-channel epochs with the CNN.

        Parameters
        ----------
        x : torch.Tensor
            (N, 3000) or (N, 1, 3000) float (any floating type: cast to the weights' type here),
            z-scored signal.
        chunk_size : int, optional
            Encode at most this many epochs at a time (bounds activation memory at inference).

        Returns
        -------
        torch.Tensor
            (N, 512) features.
        """
        # The clamp lives here (not in forward) so that precomputed features used by the
        # inference pipeline go through exactly the same operations as forward().
        weight = self.epoch_encoder.encoder_branch1[0].weight
        if x.dtype != weight.dtype and x.is_floating_point():
            # float16 batches (WindowDataset(dtype="stored")) are cast here, on the model's device,
            # after padding tokens were dropped; autocast then casts as it would a float32 input.
            x = x.to(weight.dtype)
        x = x.clamp(-self.cfg.clamp, self.cfg.clamp)
        if chunk_size is None or x.shape[0] <= chunk_size:
            return self.epoch_encoder(x)
        return torch.cat([self.epoch_encoder(c) for c in x.split(chunk_size)], dim=0)

    def encode_tokens(self, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """Run the CNN on the real tokens of a batch and scatter them into a padded tensor.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, C, 3000) float.
        channels : torch.Tensor
            (B, C) long, -1 = padding.

        Returns
        -------
        torch.Tensor
            (B, L, C, 512); zeros at padding channels.
        """
        B, L, C, T = x.shape
        if channels.shape != (B, C):
            raise ValueError(f"channels must have shape {(B, C)}, got {tuple(channels.shape)}")
        real = (channels >= 0)[:, None, :].expand(B, L, C).reshape(-1)
        idx = real.nonzero().squeeze(1)
        # Padding tokens never reach the CNN: saves compute and keeps BatchNorm statistics
        # (in training) free of the artificial zero epochs.
        f = self.encode_epochs(x.reshape(B * L * C, T).index_select(0, idx))
        out = f.new_zeros(B * L * C, CNN_DIM).index_copy(0, idx, f)
        return out.reshape(B, L, C, CNN_DIM)

    def _check_channels(self, channels: torch.Tensor) -> None:
        if channels.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"channels must be an integer tensor, got {channels.dtype}")
        # The range check reads a value on the host; on a GPU that is a pipeline stall per step,
        # so there the embedding lookup's own device-side bounds check guards instead.
        if channels.device.type == "cpu" and channels.numel() and int(channels.max()) >= self.cfg.n_channels:
            raise ValueError(f"channel index out of range (n_channels={self.cfg.n_channels})")

    def forward_features(
        self, feats: torch.Tensor, channels: torch.Tensor, return_cls: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Sequence encoder + classifier on precomputed CNN features.

        Parameters
        ----------
        feats : torch.Tensor
            (B, L, C, 512) output of :meth:`encode_epochs` per token (padding values ignored).
        channels : torch.Tensor
            (B, C) long, -1 = padding.
        return_cls : bool
            Also return the per-epoch outputs after the final LayerNorm, (B, L, d_model).

        Returns
        -------
        torch.Tensor or tuple
            Logits (B, L, n_classes), or ``(logits, cls)`` when ``return_cls``.
        """
        self._check_channels(channels)
        return self._head(feats, channels, return_cls)

    def _head(self, feats: torch.Tensor, channels: torch.Tensor, return_cls: bool):
        cls = self.seq_encoder(feats, channels.long())
        logits = self.classifier(cls)
        return (logits, cls) if return_cls else logits

    def forward(
        self, x: torch.Tensor, channels: torch.Tensor, return_cls: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits for a batch of windows.

        Parameters
        ----------
        x : torch.Tensor
            (B, L, C, 3000) float; L <= seq_len (20 for published weights).
        channels : torch.Tensor
            (B, C) long canonical channel index, -1 = padding.
        return_cls : bool
            Also return the per-epoch outputs after the final LayerNorm, (B, L, d_model)
            (mean over L gives the window embedding used by disorder classification).

        Returns
        -------
        torch.Tensor or tuple
            Logits (B, L, n_classes), or ``(logits, cls)`` when ``return_cls``.
        """
        self._check_channels(channels)
        feats = self.encode_tokens(x, channels)
        return self._head(feats, channels, return_cls)

    def cls_features(self, x: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """Per-epoch outputs after the final LayerNorm, (B, L, d_model); see :meth:`forward`."""
        return self.forward(x, channels, return_cls=True)[1]


def build_model(config: ModelConfig | str | dict[str, Any] = "lpsgm", **overrides: Any) -> LPSGM:
    """Build a freshly initialised LPSGM.

    Parameters
    ----------
    config : ModelConfig, str or dict
        A config, a preset name (``lpsgm``, ``lpsgm-small``, ``lpsgm-6``) or a config dict.
    **overrides
        Field values replacing those of ``config``.

    Returns
    -------
    LPSGM
        Model in training mode (as any new ``nn.Module``).
    """
    if isinstance(config, str):
        cfg = get_config(config, **overrides)
    else:
        base = config.to_dict() if isinstance(config, ModelConfig) else dict(config)
        cfg = ModelConfig.from_dict({**base, **overrides})
    return LPSGM(cfg)
