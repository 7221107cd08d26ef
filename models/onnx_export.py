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
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from preprocess.core.digest import files_sha256
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


def weights_digest(path: str | Path) -> str:
    """SHA-256 (hex, first 16 digits) of a weights file and of the architecture JSON beside it (if
    any): the key of its cached ONNX graphs."""
    path = Path(path)
    return files_sha256([p for p in (path, path.with_suffix(".json")) if p.is_file()])[:16]


def cache_folder(weights: str | Path) -> Path:
    """Where the graphs of ``weights`` are cached: ``NAME.onnx/<weights hash>-opset<N>/`` beside it.

    Keyed by the file's content, so replaced weights under the same name get new graphs, and a
    stale folder is never used.
    """
    weights = Path(weights)
    return weights.parent / f"{weights.name}.onnx" / f"{weights_digest(weights)}-opset{OPSET}"


def cached_graphs(model: nn.Module, weights: str | Path) -> tuple[Path, Path, bool]:
    """``(cnn, head, exported)``: the graphs of ``weights``, exported once into :func:`cache_folder`.

    The export writes into a temporary folder next to the cache and renames it into place, so
    two processes exporting at once never leave a half-written graph (the second rename loses
    and its copy is removed). Where the weights' folder is not writable, the graphs go to a
    per-user cache (``$XDG_CACHE_HOME/lpsgm/onnx``, default ``~/.cache/lpsgm/onnx``) under the same key.
    """
    folder = cache_folder(weights)
    for place in (folder, _user_cache() / folder.parent.name / folder.name):
        cnn, head = place / "cnn.onnx", place / "head.onnx"
        if cnn.exists() and head.exists():
            return cnn, head, False
        try:
            place.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=place.parent))
        except OSError:
            continue
        try:
            export_onnx(model, tmp)
            try:
                tmp.rename(place)
            except OSError:  # another process got there first: its graphs are the same
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if cnn.exists() and head.exists():
            return cnn, head, True
    raise RuntimeError(f"cannot write the ONNX graphs of {Path(weights).name} beside it or in {_user_cache()}")


def _user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lpsgm" / "onnx"


class OnnxLPSGM:
    """The two methods :func:`staging.predict.predict_proba` uses, run by ONNX Runtime on the CPU.

    Parameters
    ----------
    model : LPSGM
        Eval-mode model to export (its ``cfg`` is kept; the model itself is not, so a caller that
        drops its own reference frees the torch weights).
    folder : path
        Where the two graphs are written (ignored with ``graphs``).
    threads : int
        ONNX Runtime intra-op threads (0 = its default, one per core).
    graphs : (path, path), optional
        Existing ``(cnn.onnx, head.onnx)`` (e.g. from :func:`cached_graphs`): nothing is exported.
    """

    def __init__(self, model: nn.Module, folder: str | Path | None = None, threads: int = 0,
                 graphs: tuple[Path, Path] | None = None) -> None:
        check(ONNXRUNTIME)  # onnxruntime runs the graphs, onnx writes them: one line when either is missing
        import onnxruntime as ort
        self.cfg = model.cfg
        cnn, head = graphs if graphs is not None else export_onnx(model, folder)
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
