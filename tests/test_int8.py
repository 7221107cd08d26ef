"""Opt-in int8 sequence encoder (``--int8``) and the ``--threads`` option of inference.py."""

from __future__ import annotations

import json

import pytest
import torch

import inference
from models import build_model
from models.quantize import quantize_sequence_encoder
from tests.test_inference import make_night, run_cli


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(5)
    return build_model("lpsgm-small").eval()


def test_int8_copy_quantizes_every_encoder_linear_and_leaves_the_model_alone(model):
    x = torch.randn(3, 20, 4, 512)
    ch = torch.tensor([[0, 2, 5, 7]] * 3)
    with torch.no_grad():
        before = model.forward_features(x, ch)
        q = quantize_sequence_encoder(model)
        after = model.forward_features(x, ch)
        got = q.forward_features(x, ch)
    assert torch.equal(before, after)  # the float32 model is untouched (a copy is quantized)
    for block in q.seq_encoder.transformer_blocks:
        for lin in (block.qkv_int8, block.self_attention.out_proj, block.mlp.linear_1, block.mlp.linear_2):
            assert isinstance(lin, torch.ao.nn.quantized.dynamic.Linear)
    assert not hasattr(model.seq_encoder.transformer_blocks[0], "qkv_int8")
    # int8 weights: close to float32 (a few % of the feature scale), but not bit-equal
    rel = (got - before).norm() / before.norm()
    assert 0 < rel < 0.05


def test_int8_qkv_equals_the_float_projection_to_quantization_error(model):
    block = quantize_sequence_encoder(model).seq_encoder.transformer_blocks[0]
    mha = model.seq_encoder.transformer_blocks[0].self_attention
    h = torch.randn(2, 7, mha.embed_dim)
    with torch.no_grad():
        want = torch.nn.functional.linear(h, mha.in_proj_weight, mha.in_proj_bias)
        got = block.qkv_int8(h)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_cli_int8_and_threads(tmp_path, tiny_weights, capsys):
    night = make_night(tmp_path / "n.edf", n_epochs=25)
    threads = torch.get_num_threads()
    try:
        code, lines = run_cli(capsys, night, "--out", tmp_path / "o", "--weights", tiny_weights,
                              "--int8", "--threads", "1", "--formats", "stats")
        assert code == 0, lines
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert any("--int8" in line for line in lines)
    stats = json.loads(next((tmp_path / "o").glob("*.stats.json")).read_text())
    assert '"int8_sequence_encoder": true' in json.dumps(stats)
    code, lines = run_cli(capsys, night, "--out", tmp_path / "p", "--weights", tiny_weights, "--threads", "-1")
    assert code == 2 and any("--threads" in line for line in lines)
    assert inference.build_parser().parse_args([]).int8 is False  # never the default
