"""ONNX export of LPSGM for deployers, and an ONNX Runtime stand-in for CPU inference.

Two graphs, the two halves :func:`staging.predict.predict_proba` calls:

- ``cnn.onnx``: :meth:`LPSGM.encode_epochs`, ``x`` (N, 3000) float32 → ``features`` (N, 512);
- ``head.onnx``: :meth:`LPSGM.forward_features` for windows without channel padding,
  ``feats`` (B, L, C, 512) float32 and ``channels`` (B, C) int64 → ``logits`` (B, L, 5).

Export traces a deep copy (tracing the original would touch its cached folded weights). The head
is traced without padding (whole-night inference never pads channels), so :class:`OnnxLPSGM`
refuses padded channel rows instead of computing them wrongly.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from preprocess.core.extras import ONNX_EXPORT, ONNXRUNTIME, check, require
from preprocess.core.version import add_version_argument

OPSET = 17


class _Cnn(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_epochs(x)


class _Head(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        return self.model._head(feats, channels, False)


def export_onnx(model: nn.Module, folder: str | Path) -> tuple[Path, Path]:
    """Write ``cnn.onnx`` and ``head.onnx`` of an eval-mode LPSGM into ``folder``.

    Returns
    -------
    tuple of Path
        ``(cnn, head)`` file paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    m = copy.deepcopy(model).cpu().eval()
    L, C = m.cfg.seq_len, 3
    cnn, head = folder / "cnn.onnx", folder / "head.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side shape checks
        torch.onnx.export(_Cnn(m), (torch.zeros(4, 3000),), str(cnn), input_names=["x"],
                          output_names=["features"], dynamic_axes={"x": {0: "n"}, "features": {0: "n"}},
                          opset_version=OPSET, dynamo=False)
        torch.onnx.export(_Head(m), (torch.zeros(2, L, C, 512), torch.arange(C)[None].repeat(2, 1)),
                          str(head), input_names=["feats", "channels"], output_names=["logits"],
                          dynamic_axes={"feats": {0: "b", 1: "l", 2: "c"}, "channels": {0: "b", 1: "c"},
                                        "logits": {0: "b", 1: "l"}},
                          opset_version=OPSET, dynamo=False)
    return cnn, head


class OnnxLPSGM:
    """The two methods :func:`staging.predict.predict_proba` uses, run by ONNX Runtime on the CPU.

    Parameters
    ----------
    model : LPSGM
        Eval-mode model to export (its ``cfg`` is kept).
    folder : path
        Where the two graphs are written.
    threads : int
        ONNX Runtime intra-op threads (0 = its default, one per core).
    """

    def __init__(self, model: nn.Module, folder: str | Path, threads: int = 0) -> None:
        check(ONNXRUNTIME)  # onnxruntime runs the graphs, onnx writes them: one line when either is missing
        import onnxruntime as ort
        self.cfg = model.cfg
        cnn, head = export_onnx(model, folder)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self._cnn = ort.InferenceSession(str(cnn), opts, providers=["CPUExecutionProvider"])
        self._head = ort.InferenceSession(str(head), opts, providers=["CPUExecutionProvider"])

    def encode_epochs(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3000) → (N, 512) float32 CNN features."""
        x = np.ascontiguousarray(x.detach().cpu().reshape(x.shape[0], -1).float().numpy())
        return torch.from_numpy(self._cnn.run(None, {"x": x})[0])

    def forward_features(self, feats: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        """(B, L, C, 512) features, (B, C) channels without padding → (B, L, n_classes) logits."""
        ch = channels.detach().cpu().long()
        if ch.numel() and (int(ch.min()) < 0 or int(ch.max()) >= self.cfg.n_channels):
            raise ValueError("the ONNX head takes unpadded channel indices in [0, n_channels) only")
        f = np.ascontiguousarray(feats.detach().cpu().float().numpy())
        return torch.from_numpy(self._head.run(None, {"feats": f, "channels": ch.numpy()})[0])


def main(argv: list[str] | None = None) -> None:
    """``python -m models.onnx_export [WEIGHTS] OUT_DIR``: write the two graphs for deployment."""
    import argparse

    from .weights import find_weights, load_model

    p = argparse.ArgumentParser(description="Export LPSGM weights to cnn.onnx + head.onnx")
    add_version_argument(p)
    p.add_argument("out", help="output folder")
    p.add_argument("--weights", help="weights file or folder (default: the weights/ search)")
    a = p.parse_args(argv)
    require(ONNX_EXPORT)
    cnn, head = export_onnx(load_model(find_weights(a.weights), "cpu"), a.out)
    print(f"wrote {cnn} and {head}")


if __name__ == "__main__":
    main()
