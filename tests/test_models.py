"""Tests of models/: architecture vs the published checkpoint format, reference forward, I/O.

"Same logits as the published implementation" is checked with (a) the key/shape list of the
official checkpoint (``shared/spec/official_state_dict_shapes.json``) and (b) an independent
forward pass written below with functional ops straight from an official-format state dict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import (
    ModelConfig,
    build_model,
    load_checkpoint,
    load_official_state_dict,
    save_checkpoint,
    to_official_state_dict,
)

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "official_state_dict_shapes.json"
PRESET_BLOCKS = {"lpsgm-small": 1, "lpsgm": 4, "lpsgm-6": 6}
EXPECTED_PARAMS = {"lpsgm": 9_862_661, "lpsgm-small": 3_190_469, "lpsgm-6": 14_310_789}
ATOL = 1e-5


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC_PATH.exists():
        pytest.skip(f"spec file absent: {SPEC_PATH}")
    return json.loads(SPEC_PATH.read_text())


def random_official_state(shapes: dict[str, list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the official keys/shapes, scaled so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(123, dtype=torch.int64)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        elif k.endswith("running_mean"):
            out[k] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) >= 2 and "embedding" not in k and "cls_token" not in k:
            fan_in = math.prod(shape[1:])
            out[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif ("ln" in k.split(".")[-2] or k.split(".")[-2].isdigit()) and k.endswith("weight"):
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)  # LayerNorm / BatchNorm scale
        else:
            out[k] = (0.1 if len(shape) == 1 else 1.0) * torch.randn(shape, generator=g)
    return out


# --------------------------------------------------------------------------------------------
# Independent functional reference (published architecture, written from the design text)
# --------------------------------------------------------------------------------------------
BRANCH1 = [(0, 1, 6, 24), "pool8", (5, 6, 1, 4), (8, 9, 1, 4), (11, 12, 1, 4), "pool4"]
BRANCH2 = [(0, 1, 50, 0), "pool4", (5, 6, 1, 3), (8, 9, 1, 3), (11, 12, 1, 3), "pool2"]
POOLS = {"pool8": (8, 8, 4), "pool4": (4, 4, 2), "pool2": (2, 2, 0)}


def ref_branch(sd: dict, name: str, layers: list, x: torch.Tensor) -> torch.Tensor:
    p = f"module.epoch_encoder.{name}."
    for layer in layers:
        if isinstance(layer, str):
            if name == "encoder_branch2" and layer == "pool4":
                x = F.max_pool1d(x, 4, 4)  # branch 2's first pool has no padding
            else:
                k, s, pad = POOLS[layer]
                x = F.max_pool1d(x, k, s, pad)
            continue
        conv, bn, stride, pad = layer
        x = F.conv1d(x, sd[f"{p}{conv}.weight"], sd[f"{p}{conv}.bias"], stride=stride, padding=pad)
        x = F.batch_norm(
            x, sd[f"{p}{bn}.running_mean"], sd[f"{p}{bn}.running_var"], sd[f"{p}{bn}.weight"],
            sd[f"{p}{bn}.bias"], training=False, eps=1e-5,
        )
        x = F.relu(x)
    return x.mean(-1)


def ref_forward_one(sd: dict, x: torch.Tensor, chans: list[int], n_heads: int = 8) -> torch.Tensor:
    """Published cat_cls forward for ONE window with only its real channels (no padding).

    x: (L, C, 3000), chans: the C canonical indices. Returns (L, 5).
    """
    L, C, T = x.shape
    t = x.clamp(-10, 10).reshape(L * C, 1, T)
    feat = torch.cat([ref_branch(sd, "encoder_branch1", BRANCH1, t),
                      ref_branch(sd, "encoder_branch2", BRANCH2, t)], dim=1)  # (L*C, 512)
    s = "module.seq_encoder."
    se = sd[s + "spatial_embedding"][torch.tensor(chans)].repeat(L, 1)  # epoch-major order
    te = sd[s + "temporal_embedding"][:L].repeat_interleave(C, dim=0)
    tokens = torch.cat([feat, se, te], dim=1)
    cls = torch.cat([sd[s + "cls_token"][:L], sd[s + "temporal_embedding"][:L]], dim=1)
    h = torch.cat([cls, tokens], dim=0)  # (S, 608)
    S, D = h.shape
    dh = D // n_heads
    n_blocks = 1 + max(int(k.split(".")[3]) for k in sd if ".transformer_blocks." in k)
    for i in range(n_blocks):
        b = f"{s}transformer_blocks.{i}."
        y = F.layer_norm(h, (D,), sd[b + "ln_1.weight"], sd[b + "ln_1.bias"], eps=1e-5)
        qkv = y @ sd[b + "self_attention.in_proj_weight"].T + sd[b + "self_attention.in_proj_bias"]
        q, k, v = (m.reshape(S, n_heads, dh).transpose(0, 1) for m in qkv.split(D, dim=1))
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)
        a = (att @ v).transpose(0, 1).reshape(S, D)
        h = h + a @ sd[b + "self_attention.out_proj.weight"].T + sd[b + "self_attention.out_proj.bias"]
        y = F.layer_norm(h, (D,), sd[b + "ln_2.weight"], sd[b + "ln_2.bias"], eps=1e-5)
        y = F.gelu(y @ sd[b + "mlp.linear_1.weight"].T + sd[b + "mlp.linear_1.bias"])
        h = h + y @ sd[b + "mlp.linear_2.weight"].T + sd[b + "mlp.linear_2.bias"]
    h = F.layer_norm(h, (D,), sd[s + "ln.weight"], sd[s + "ln.bias"], eps=1e-5)
    return h[:L] @ sd["module.classifier.ln.weight"].T + sd["module.classifier.ln.bias"]


def make_batch(L: int = 20, seed: int = 0):
    """Two windows: sample 0 has 2 channels (padding in the middle), sample 1 has 4."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, L, 4, 3000, generator=g)
    ch = torch.tensor([[2, -1, 6, -1], [0, 3, 7, 8]])
    x[0, :, [1, 3]] = 0.0
    return x, ch


# --------------------------------------------------------------------------------------------
# Architecture vs spec
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name):
    model = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name]
    assert model.cfg.n_blocks == PRESET_BLOCKS[name]


@pytest.mark.parametrize("name", sorted(PRESET_BLOCKS))
def test_state_dict_matches_spec(spec, name):
    ours = {k: list(v.shape) for k, v in to_official_state_dict(build_model(name)).items()}
    assert ours == spec[f"block{PRESET_BLOCKS[name]}"]


def test_config_json_roundtrip():
    cfg = ModelConfig(n_blocks=2, variant="add_cls", dropout=0.0)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(ValueError):
        ModelConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError):
        ModelConfig(variant="nope")


# --------------------------------------------------------------------------------------------
# Official checkpoint loading and reference forward
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_blocks", [1, 4, 6])
def test_official_pth_loads(spec, tmp_path, n_blocks):
    sd = random_official_state(spec[f"block{n_blocks}"], seed=n_blocks)
    path = tmp_path / f"ched32_seqed64_ch9_seql20_block{n_blocks}.pth"
    torch.save({"model_state_dict": sd}, path)
    model = load_checkpoint(path)
    assert not model.training
    assert model.cfg.n_blocks == n_blocks and model.cfg.variant == "cat_cls"
    ours = model.state_dict()
    assert len(ours) == len(sd)
    for k, v in sd.items():
        assert torch.equal(ours[k[len("module."):]], v), k


def test_reference_forward_matches(spec, tmp_path):
    sd = random_official_state(spec["block4"], seed=7)
    path = tmp_path / "official.pth"
    torch.save({"model_state_dict": sd}, path)
    model = load_checkpoint(path)
    x, ch = make_batch()
    with torch.no_grad():
        got = model(x, ch)
        for b in range(2):
            keep = [i for i, c in enumerate(ch[b].tolist()) if c >= 0]
            want = ref_forward_one(sd, x[b][:, keep], [ch[b, i].item() for i in keep])
            assert (want - got[b]).abs().max().item() < ATOL, b
    # Logits are not degenerate (the comparison would be vacuous otherwise).
    assert got.std() > 0.1


def test_load_official_state_dict_rejects_mismatch(spec):
    sd = random_official_state(spec["block1"])
    sd.pop("module.seq_encoder.ln.bias")
    with pytest.raises(ValueError, match="missing"):
        load_official_state_dict({"model_state_dict": sd})


# --------------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = build_model("lpsgm-small").eval()
    # Non-trivial BatchNorm statistics so eval-mode differences would show.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("variant", ["cat_cls", "add_cls", "cat_avg", "none_cls"])
def test_padding_invariance(variant):
    torch.manual_seed(1)
    model = build_model("lpsgm-small", variant=variant).eval()
    x, ch = make_batch(L=6)
    with torch.no_grad():
        batched = model(x, ch)
        alone = model(x[:1, :, [0, 2]], ch[:1, [0, 2]])
    assert batched.shape == (2, 6, 5)
    torch.testing.assert_close(batched[:1], alone, atol=ATOL, rtol=0)


def test_only_real_tokens_reach_cnn(small_model):
    sizes = []
    handle = small_model.epoch_encoder.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    try:
        x, ch = make_batch(L=5)
        with torch.no_grad():
            small_model(x, ch)
    finally:
        handle.remove()
    assert sizes == [5 * (2 + 4)]


def test_forward_features_and_cls(small_model):
    x, ch = make_batch(L=4)
    with torch.no_grad():
        logits, cls = small_model(x, ch, return_cls=True)
        real = ch >= 0
        feats = torch.zeros(2, 4, 4, 512)
        # Encode each real (epoch, channel) once, in a different grouping than forward() uses.
        for b in range(2):
            tokens = x[b][:, real[b]].reshape(-1, 3000)
            feats[b][:, real[b]] = small_model.encode_epochs(tokens, chunk_size=3).reshape(4, -1, 512)
        again = small_model.forward_features(feats, ch)
    assert cls.shape == (2, 4, 608)
    torch.testing.assert_close(again, logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(small_model.classifier(cls), logits)


def test_clamp(small_model):
    x, ch = make_batch(L=3)
    big = torch.rand(x.shape) < 0.05
    sign = torch.where(torch.rand(x.shape) < 0.5, -1.0, 1.0)
    with torch.no_grad():
        a = small_model(torch.where(big, 1e3 * sign, x), ch)
        b = small_model(torch.where(big, 10.0 * sign, x), ch)
    assert torch.equal(a, b)


def test_safetensors_roundtrip(small_model, tmp_path):
    meta = {"channels": ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"], "fs": 100}
    w, j = save_checkpoint(small_model, tmp_path / "sub" / "demo.safetensors", meta)
    assert w.name == "demo.safetensors" and j.name == "demo.json"
    stored = json.loads(j.read_text())
    assert stored["model"] == small_model.cfg.to_dict() and stored["fs"] == 100
    x, ch = make_batch(L=3)
    with torch.no_grad():
        want = small_model(x, ch)
        for p in (w, tmp_path / "sub" / "demo", j):
            model = load_checkpoint(p)
            assert not model.training and model.checkpoint_meta["channels"] == meta["channels"]
            assert torch.equal(model(x, ch), want)
    with pytest.raises(ValueError):
        save_checkpoint(small_model, tmp_path / "bad", {"model": 1})


@pytest.mark.parametrize("variant", ["cat_cls", "add_cls", "cat_avg", "none_cls"])
def test_variants_train_step(variant):
    """Every variant gives (B, L, 5) and every parameter gets a gradient (DDP needs this)."""
    torch.manual_seed(2)
    model = build_model("lpsgm-small", variant=variant).train()
    x, ch = make_batch(L=2)
    logits = model(x, ch)
    assert logits.shape == (2, 2, 5)
    logits.logsumexp(-1).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused


def test_rejects_bad_channels(small_model):
    x, ch = make_batch(L=2)
    with pytest.raises(ValueError):
        small_model(x, torch.tensor([[9, 0, 1, 2], [0, 1, 2, 3]]))
    with pytest.raises(ValueError):
        small_model(x, ch[:, :3])
