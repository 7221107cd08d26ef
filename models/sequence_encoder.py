"""Sequence encoder: a pre-LN transformer over all (epoch, channel) tokens of a window.

Each token is one channel of one 30-s epoch. The published variant (``cat_cls``) concatenates
a learned channel embedding and a learned position embedding (position of the epoch within the
window) to the 512 CNN features, prepends one learned CLS token per epoch and reads the
per-epoch prediction from the CLS outputs. Missing channels are padding tokens masked as
attention keys, so a window's output does not depend on how much padding its batch needed.

Attribute names (``spatial_embedding``, ``temporal_embedding``, ``cls_token``,
``transformer_blocks.i.{ln_1,self_attention,ln_2,mlp.linear_1,mlp.linear_2}``, ``ln``) match the
published checkpoint so that its weights load 1:1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import CNN_DIM, ModelConfig


class MLP(nn.Module):
    """Linear → GELU → dropout → Linear → dropout (width kept at ``dim`` as published)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.dropout_1 = nn.Dropout(dropout)
        self.linear_2 = nn.Linear(hidden, dim)
        self.dropout_2 = nn.Dropout(dropout)
        # ViT-style initialisation, as in the reference training recipe.
        for lin in (self.linear_1, self.linear_2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.normal_(lin.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout_2(self.linear_2(self.dropout_1(self.act(self.linear_1(x)))))


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + drop(MHA(LN(x)))`` then ``x + MLP(LN(x))``.

    Parameters
    ----------
    dim : int
        Token width.
    n_heads : int
        Attention heads.
    dropout : float
        Dropout on the attention output and inside the MLP.
    attn_dropout : float
        Dropout on the attention weights.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, n_heads, dropout=attn_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, dim, dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor
            (B, S, dim).
        key_padding_mask : torch.Tensor or None
            (B, S) bool, True where the token is padding and must not be attended to.
        """
        x = x + self.dropout(self.attend(self.ln_1(x), key_padding_mask))
        return x + self.mlp(self.ln_2(x))

    def attend(self, h: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Self-attention of ``self.self_attention`` through ``F.scaled_dot_product_attention``.

        Same computation as ``nn.MultiheadAttention(h, h, h, key_padding_mask=...)`` with the
        module's own weights (so checkpoint keys are unchanged), but the fused SDPA kernel runs
        instead of the unfused bmm + masked softmax of the module's CPU fast path, and no mask
        at all is built when no key is padding (the whole-night inference case).
        """
        mha = self.self_attention
        B, S, E = h.shape
        H = mha.num_heads
        int8 = getattr(self, "qkv_int8", None)  # set by models.quantize (--int8) only
        qkv = int8(h) if int8 is not None else F.linear(h, mha.in_proj_weight, mha.in_proj_bias)
        qkv = qkv.view(B, S, 3, H, E // H).permute(2, 0, 3, 1, 4)
        mask = None
        if key_padding_mask is not None:
            mask = ~key_padding_mask[:, None, None, :]  # True = may attend; broadcast over heads, queries
        p = mha.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, dropout_p=p)
        return mha.out_proj(o.transpose(1, 2).reshape(B, S, E))


class SequenceEncoder(nn.Module):
    """Transformer over the tokens of a window of ``seq_len`` epochs.

    Parameters
    ----------
    cfg : ModelConfig
        Architecture; ``cfg.variant`` selects how embeddings and the output are formed:

        - ``cat_cls`` (published): token = [feat ‖ ch_emb ‖ pos_emb]; CLS_t = [cls_t ‖ pos_emb_t].
        - ``add_cls``: token = feat + ch_emb + pos_emb (512-d); CLS_t = cls_t + pos_emb_t.
        - ``cat_avg``: concatenated tokens, no CLS; output_t = mean over real channels of epoch t.
        - ``none_cls``: token = feat (no embeddings); CLS_t = cls_t + pos_emb_t.

    Notes
    -----
    The reference code also creates parameters its ``cat_avg`` (``cls_token``) and ``none_cls``
    (``spatial_embedding``) variants never use; they are omitted here because unused parameters
    break DDP's gradient reduction and carry no information.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.has_cls = cfg.variant != "cat_avg"
        ch_dim, pos_dim = (cfg.ch_emb, cfg.pos_emb) if cfg.concat else (d, d)
        # torch.randn initialisation (std 1) follows the reference implementation.
        if cfg.variant != "none_cls":
            self.spatial_embedding = nn.Parameter(torch.randn(cfg.n_channels, ch_dim))
        self.temporal_embedding = nn.Parameter(torch.randn(cfg.seq_len, pos_dim))
        if self.has_cls:
            # In cat_cls the CLS token is as wide as [feat ‖ ch_emb]; the position part is shared.
            cls_dim = CNN_DIM + cfg.ch_emb if cfg.concat else d
            self.cls_token = nn.Parameter(torch.randn(cfg.seq_len, cls_dim))
        self.dropout = nn.Dropout(cfg.dropout)
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(d, cfg.n_heads, cfg.dropout, cfg.attn_dropout) for _ in range(cfg.n_blocks)
        )
        self.ln = nn.LayerNorm(d)

    def forward(self, feats: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """Encode a batch of windows.

        Parameters
        ----------
        feats : torch.Tensor
            (B, L, C, 512) CNN features; values at padding channels are ignored.
        channels : torch.Tensor
            (B, C) long canonical channel index, -1 for padding.

        Returns
        -------
        torch.Tensor
            (B, L, d_model): per-epoch output after the final LayerNorm (the CLS outputs, or the
            channel average for ``cat_avg``).
        """
        cfg = self.cfg
        B, L, C, F = feats.shape
        if F != CNN_DIM:
            raise ValueError(f"expected {CNN_DIM} features per token, got {F}")
        if L > cfg.seq_len:
            raise ValueError(f"window of {L} epochs exceeds seq_len={cfg.seq_len}")
        real = channels >= 0  # (B, C)
        ch = channels.clamp(min=0)  # padding rows get channel 0; they are masked anyway
        pos = self.temporal_embedding[:L]  # position of each epoch within the window

        if cfg.concat:
            se = self.spatial_embedding[ch][:, None].expand(B, L, C, -1)
            te = pos[None, :, None].expand(B, L, C, -1)
            tok = torch.cat([feats, se, te], dim=-1)
        elif cfg.variant == "add_cls":
            tok = feats + self.spatial_embedding[ch][:, None] + pos[None, :, None]
        else:  # none_cls
            tok = feats
        # Epoch-major token order (epoch 0: all channels, epoch 1: ...). Order is irrelevant to
        # attention, but cat_avg relies on it to regroup tokens per epoch.
        tok = tok.reshape(B, L * C, tok.shape[-1])
        pad = (~real)[:, None, :].expand(B, L, C).reshape(B, L * C)

        if self.has_cls:
            cls = self.cls_token[:L]
            cls = torch.cat([cls, pos], dim=-1) if cfg.concat else cls + pos
            tok = torch.cat([cls[None].expand(B, -1, -1), tok], dim=1)
            # CLS tokens are never masked, so no attention row is ever fully masked (no NaN).
            pad = torch.cat([pad.new_zeros(B, L), pad], dim=1)

        if pad.device.type == "cpu" and bool(real.all()):
            pad = None  # nothing to mask: lets SDPA take its unmasked kernel (no host sync on CPU)
        h = self.dropout(tok)
        for block in self.transformer_blocks:
            h = block(h, pad)
        h = self.ln(h)

        if self.has_cls:
            return h[:, :L]
        # cat_avg: mean over the real channels of each epoch.
        w = real[:, None, :, None].to(h.dtype)
        h = h.reshape(B, L, C, h.shape[-1])
        return (h * w).sum(2) / w.sum(2).clamp(min=1.0)
