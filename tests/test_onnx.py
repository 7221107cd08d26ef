"""ONNX export (models/onnx_export.py) and ``inference.py --backend onnxruntime``, equal to torch."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from models import build_model
from tests.test_inference import make_night, run_cli

ort = pytest.importorskip("onnxruntime")


def test_onnx_graphs_equal_torch_for_any_batch_length_and_channels(tmp_path):
    from models.onnx_export import OnnxLPSGM

    torch.manual_seed(2)
    model = build_model("lpsgm-small").eval()
    onnx = OnnxLPSGM(model, tmp_path, threads=1)
    assert (tmp_path / "cnn.onnx").exists() and (tmp_path / "head.onnx").exists()
    x = torch.randn(11, 3000)
    with torch.inference_mode():
        assert torch.allclose(onnx.encode_epochs(x), model.encode_epochs(x), atol=1e-5)
        for B, L, C in [(3, 20, 8), (1, 7, 2), (2, 20, 1)]:  # shapes other than the traced (2, 20, 3)
            f = torch.randn(B, L, C, 512)
            ch = torch.randperm(model.cfg.n_channels)[:C][None].repeat(B, 1)
            assert torch.allclose(onnx.forward_features(f, ch), model.forward_features(f, ch), atol=1e-5)
    with pytest.raises(ValueError, match="unpadded"):
        onnx.forward_features(torch.zeros(1, 20, 2, 512), torch.tensor([[0, -1]]))


def test_cli_onnxruntime_backend_same_probabilities_and_stages(tmp_path, tiny_weights, capsys):
    night = make_night(tmp_path / "n.edf", n_epochs=45)
    rows = {}
    for backend in ("torch", "onnxruntime"):
        code, lines = run_cli(capsys, night, "--out", tmp_path / backend, "--weights", tiny_weights,
                              "--backend", backend, "--formats", "csv,stats,npz", "--stride", 1)
        assert code == 0, lines
        npz = np.load(next((tmp_path / backend).glob("*.npz")))
        rows[backend] = npz[[k for k in npz.files if "prob" in k][0]]
        with open(next((tmp_path / backend).glob("*.hypnogram.csv"))) as fh:
            rows[backend + "_stages"] = [r[2] for r in csv.reader(ln for ln in fh if not ln.startswith("#"))]
    np.testing.assert_allclose(rows["onnxruntime"], rows["torch"], atol=1e-5)
    assert rows["torch_stages"][0] == "stage"  # the CSV's stage column
    assert rows["onnxruntime_stages"] == rows["torch_stages"]  # identical stages
    stats = json.loads(next((tmp_path / "onnxruntime").glob("*.stats.json")).read_text())
    assert '"backend": "onnxruntime"' in json.dumps(stats)
    code, lines = run_cli(capsys, night, "--out", tmp_path / "x", "--weights", tiny_weights,
                          "--backend", "onnxruntime", "--int8")
    assert code == 2 and any("onnxruntime" in line for line in lines)


def test_graphs_exported_once_and_keyed_by_the_weights(tmp_path):
    from models import save_checkpoint
    from models.onnx_export import cache_folder, cached_graphs

    torch.manual_seed(3)
    model = build_model("lpsgm-small").eval()
    weights = tmp_path / "w.safetensors"
    save_checkpoint(model, weights, {"note": "test"})
    cnn, head, exported = cached_graphs(model, weights)
    assert exported and cnn.parent == cache_folder(weights) and cnn.parent.parent.name == "w.safetensors.onnx"
    stamp = cnn.stat().st_mtime_ns
    assert cached_graphs(model, weights) == (cnn, head, False)  # second run: nothing exported
    assert cnn.stat().st_mtime_ns == stamp
    torch.manual_seed(4)
    other = build_model("lpsgm-small").eval()
    save_checkpoint(other, weights, {"note": "test"})  # new weights under the same name: a new key
    cnn2, _, exported2 = cached_graphs(other, weights)
    assert exported2 and cnn2.parent != cnn.parent
    assert not list(cnn.parent.parent.glob(".export-*"))  # no half-written folder left
