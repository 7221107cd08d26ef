"""LPSGM model: epoch encoder, sequence encoder, configs and checkpoint I/O.

Public API::

    from models import load_checkpoint, build_model, ModelConfig, save_checkpoint
    model = load_checkpoint(path)      # ours (.safetensors + .json) or official .pth; eval mode
    logits = model(x, channels)        # (B, L, C, 3000), (B, C) long with -1 = padding -> (B, L, 5)
"""

from .checkpoint import (
    checkpoint_preprocessing,
    config_from_official_state_dict,
    load_checkpoint,
    load_official_state_dict,
    save_checkpoint,
    to_official_state_dict,
    unwrap,
)
from .config import PRESETS, VARIANTS, ModelConfig, get_config
from .epoch_encoder import EpochEncoder
from .lpsgm import LPSGM, build_model
from .sequence_encoder import SequenceEncoder

__all__ = [
    "LPSGM",
    "PRESETS",
    "VARIANTS",
    "EpochEncoder",
    "ModelConfig",
    "SequenceEncoder",
    "build_model",
    "checkpoint_preprocessing",
    "config_from_official_state_dict",
    "get_config",
    "load_checkpoint",
    "load_official_state_dict",
    "save_checkpoint",
    "to_official_state_dict",
    "unwrap",
]
