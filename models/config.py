"""Architecture configuration of LPSGM.

The configuration is the only thing needed (besides the weights) to rebuild a model, so it is
stored verbatim in the JSON file that accompanies every ``.safetensors`` checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Sequence-encoder variants of the published ablation. ``cat_cls`` is the published model.
VARIANTS = ("cat_cls", "add_cls", "cat_avg", "none_cls")

#: Width of the epoch-encoder output (two CNN branches of 256 features each).
CNN_DIM = 512


@dataclass
class ModelConfig:
    """Hyper-parameters of an LPSGM model.

    Parameters
    ----------
    n_blocks : int
        Number of pre-LN transformer blocks in the sequence encoder.
    seq_len : int
        Number of 30-s epochs per window (= number of CLS tokens / position-embedding rows).
    n_channels : int
        Number of canonical channels (rows of the channel embedding).
    ch_emb : int
        Channel-embedding width (concatenated variants only).
    pos_emb : int
        Position-embedding width (concatenated variants only).
    n_heads : int
        Attention heads.
    dropout : float
        Dropout of the sequence encoder (embeddings, attention output, MLP).
    attn_dropout : float
        Dropout on the attention weights.
    cnn_dropout : float
        Dropout inside the two CNN branches of the epoch encoder.
    variant : str
        One of :data:`VARIANTS`.
    n_classes : int
        Output classes per epoch (W, N1, N2, N3, REM).
    clamp : float
        Inputs are clamped to ``[-clamp, clamp]`` inside the model (z-scored signals).
    """

    n_blocks: int = 4
    seq_len: int = 20
    n_channels: int = 9
    ch_emb: int = 32
    pos_emb: int = 64
    n_heads: int = 8
    dropout: float = 0.1
    attn_dropout: float = 0.1
    cnn_dropout: float = 0.1
    variant: str = "cat_cls"
    n_classes: int = 5
    clamp: float = 10.0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        if self.n_blocks < 1:
            raise ValueError("n_blocks must be >= 1")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")

    @property
    def concat(self) -> bool:
        """Whether channel/position embeddings are concatenated (True) or added (False)."""
        return self.variant in ("cat_cls", "cat_avg")

    @property
    def d_model(self) -> int:
        """Token width seen by the transformer (608 for the published model)."""
        return CNN_DIM + self.ch_emb + self.pos_emb if self.concat else CNN_DIM

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (plain ints, floats and strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are rejected.

        Rejecting unknown keys (rather than silently dropping them) avoids loading a checkpoint
        written by a newer version with an architecture option this code does not implement.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {sorted(unknown)}")
        return cls(**d)


#: Named configurations. Parameter counts are those of the published models.
PRESETS: dict[str, ModelConfig] = {
    "lpsgm": ModelConfig(n_blocks=4),  # 9,862,661 parameters
    "lpsgm-small": ModelConfig(n_blocks=1),  # 3,190,469 parameters
    "lpsgm-6": ModelConfig(n_blocks=6),  # 14,310,789 parameters (released inference model)
}


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """Return a copy of the preset ``name`` with ``overrides`` applied.

    Parameters
    ----------
    name : str
        Key of :data:`PRESETS`.
    **overrides
        Field values replacing the preset's (e.g. ``dropout=0.0``).
    """
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; expected one of {sorted(PRESETS)}")
    return ModelConfig.from_dict({**PRESETS[name].to_dict(), **overrides})
