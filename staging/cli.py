"""The model options every entry point shares, defined once: ``inference.py``, ``python -m web``,
``python -m explain`` and ``python -m online`` add them with :func:`add_model_options` and build
their :class:`staging.Stager` from :func:`stager_kwargs`, so the same flag means the same thing
everywhere. Import-light (no torch) so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse

from .defaults import BACKENDS, DEFAULT_BATCH_SIZE, DEFAULT_STRIDE, PRECISIONS

MODEL_OPTIONS = ("weights", "device", "stride", "batch_size", "threads", "backend", "int8", "precision")
"""Attributes :func:`add_model_options` adds to the parsed arguments (the :class:`staging.Stager` keywords)."""


def add_model_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, threads: int = 0,
                      stride: int | None = DEFAULT_STRIDE, device: str = "auto") -> None:
    """Add ``--weights --device --stride --batch-size --threads --backend --int8 --precision``.

    Parameters
    ----------
    parser : ArgumentParser or argument group
    threads : int
        Default of ``--threads`` (0 = torch's choice; online staging uses 1).
    stride : int or None
        Default of ``--stride`` (None: the library default, shown as such).
    device : str
        Default of ``--device``.
    """
    parser.add_argument("--weights", metavar="PATH",
                        help="weights file (official .pth, or NAME.safetensors with NAME.json beside it) or a "
                             "folder holding them. Default: weights/ched32_seqed64_ch9_seql20_block6.pth, then "
                             "..._block4.pth, then weights/*.safetensors (demo weights are flagged)")
    parser.add_argument("--device", default=device, choices=["auto", "cpu", "cuda"],
                        help=f"auto = cuda when a GPU is visible, else cpu (default: {device})")
    parser.add_argument("--stride", type=int, default=stride, metavar="K",
                        help="step in epochs between consecutive 20-epoch windows; probabilities are summed "
                             "over overlapping windows. 1 = reference voting over every window (slowest); "
                             f"default {stride if stride is not None else DEFAULT_STRIDE}")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="B",
                        help=f"windows per forward pass (memory vs speed; default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--threads", type=int, default=threads, metavar="T",
                        help=f"CPU threads for torch (default {threads}; 0 = one per core, the fastest per night); "
                             "1 costs 10-30%% fewer CPU-seconds: use it when staging many nights in parallel "
                             "processes")
    parser.add_argument("--backend", default="torch", choices=list(BACKENDS),
                        help="torch (default) or onnxruntime: the model exported to ONNX and run by ONNX Runtime "
                             "on the CPU (same probabilities to ~1e-6; needs the onnxruntime package)")
    parser.add_argument("--int8", action="store_true",
                        help="opt-in int8 sequence encoder on the CPU: faster, stages may differ from float32 on "
                             "a few epochs (measured agreement in docs/benchmarks.md); noted in every stats.json")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="fp32 (default; on a GPU TensorFloat-32 is off while the model runs), bf16: the model "
                             "runs under bfloat16 autocast (CPU or CUDA), or tf32: TensorFloat-32 matmuls and "
                             "convolutions (CUDA only); votes summed in float64; noted in every stats.json")


def stager_kwargs(args: argparse.Namespace) -> dict:
    """The :class:`staging.Stager` keywords (``weights`` included) from parsed :func:`add_model_options`."""
    kw = {k: getattr(args, k) for k in MODEL_OPTIONS}
    if kw["stride"] is None:
        del kw["stride"]
    return kw


__all__ = ["MODEL_OPTIONS", "add_model_options", "stager_kwargs"]
