"""Opt-in reduced-precision inference (``inference.py --precision``); float32 stays the default.

``bf16``: the model's two inference calls (:meth:`LPSGM.encode_epochs`, :meth:`LPSGM.forward_features`)
run under ``torch.autocast`` with bfloat16 (convolutions, Linears and attention in bf16 on CPUs with
AVX512-BF16/AMX and on CUDA; LayerNorm and softmax stay float32) and return float32, so voting is
unchanged. ``tf32`` (CUDA only): float32 matmuls and convolutions on TF32 tensor cores. Stages can
differ from float32 on some epochs: the measured agreement is in docs/benchmarks.md
(``bench/precision_agreement.py``), and every output of such a run says so.
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "bf16", "tf32")


class AutocastModel:
    """The inference methods of an LPSGM run under bf16 autocast on ``device``; outputs float32.

    Parameters
    ----------
    model : LPSGM
        Eval-mode model (kept; its ``cfg`` is exposed).
    device : str or torch.device
    """

    def __init__(self, model, device: str | torch.device = "cpu") -> None:
        self.model, self.cfg = model, model.cfg
        self.device_type = torch.device(device).type

    def _autocast(self):
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def encode_epochs(self, x: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.encode_epochs(x).float()

    def forward_features(self, feats: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.forward_features(feats, channels).float()

    def parameters(self):
        return self.model.parameters()


def apply_precision(model, precision: str, device: str | torch.device):
    """The model to stage with at ``precision`` (``fp32`` returns ``model`` itself).

    Raises
    ------
    ValueError
        Unknown precision, or ``tf32`` off CUDA.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "tf32":
        if torch.device(device).type != "cuda":
            raise ValueError("--precision tf32 needs --device cuda (TF32 is a tensor-core format)")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return model
    return AutocastModel(model, device) if precision == "bf16" else model
