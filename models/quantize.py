"""Opt-in int8 sequence encoder for CPU inference (``inference.py --int8``); never the default.

Dynamic quantization (torch ``quantize_dynamic``): every Linear of the sequence encoder — the
attention's QKV and output projections and both MLP Linears of every block — runs with int8
weights (per-tensor scale) and activations quantized per call; the CNN, LayerNorms, softmax and
the classifier stay float32. Stages can differ from float32 on some epochs: the measured agreement
on a simulated night is in docs/benchmarks.md, and every output of an int8 run says so.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn


def _int8_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """A dynamically quantized Linear holding ``weight`` (out, in) and ``bias``."""
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        lin.weight.copy_(weight)
        if bias is not None:
            lin.bias.copy_(bias)
    with warnings.catch_warnings():  # torch deprecates the quantized tensor API; it still runs in 2.13
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(lin), {nn.Linear}, dtype=torch.qint8)[0]


def quantize_sequence_encoder(model: nn.Module) -> nn.Module:
    """An int8 copy of an LPSGM in eval mode (the input model is left unchanged).

    Parameters
    ----------
    model : LPSGM
        Float32 model on the CPU (quantized kernels are CPU only).

    Returns
    -------
    LPSGM
        A deep copy whose sequence-encoder blocks carry ``qkv_int8`` (used by
        :meth:`models.sequence_encoder.TransformerBlock.attend`) and int8 ``out_proj`` / MLP Linears.
    """
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("--int8 runs on the CPU only (torch dynamic quantization has no CUDA kernels)")
    q = copy.deepcopy(model).eval()
    for block in q.seq_encoder.transformer_blocks:
        mha = block.self_attention
        block.qkv_int8 = _int8_linear(mha.in_proj_weight, mha.in_proj_bias)
        mha.out_proj = _int8_linear(mha.out_proj.weight, mha.out_proj.bias)
        for name in ("linear_1", "linear_2"):
            lin = getattr(block.mlp, name)
            setattr(block.mlp, name, _int8_linear(lin.weight, lin.bias))
    return q
