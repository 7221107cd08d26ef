"""Fast paths equal the reference paths: fused CNN, SDPA attention, night encoding, loader reads.

Each fast path added for speed (issue 13) is compared here with the straightforward computation
it replaces, on random inputs, to float tolerance (or exactly where no arithmetic changed).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data import WindowDataset, WindowSampler, collate_windows, load_recordings
from models import build_model
from preprocess.core.hdf5 import Recording, write_manifest, write_recording
from staging.predict import encode_recording, predict_proba


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = build_model("lpsgm-small").eval()
    for mod in m.modules():  # non-trivial BatchNorm so that a wrong fold would show
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.normal_(0, 0.2)
            mod.running_var.uniform_(0.3, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.2)
    return m


def reference_cnn(encoder, x):
    """The layer-by-layer (unfused) CNN, as in training."""
    encoder.fused = False
    try:
        with torch.no_grad():
            return encoder(x)
    finally:
        encoder.fused = True


def test_fused_cnn_equals_layer_by_layer(model):
    x = 3 * torch.randn(16, 3000)
    with torch.no_grad():
        fused = model.epoch_encoder(x)
    ref = reference_cnn(model.epoch_encoder, x)
    assert fused.shape == (16, 512)
    torch.testing.assert_close(fused, ref, atol=2e-6, rtol=1e-5)


def test_fused_cnn_follows_weight_changes(model):
    enc = model.epoch_encoder
    x = torch.randn(4, 3000)
    with torch.no_grad():
        before = enc(x)
        enc.encoder_branch2[6].running_mean.add_(0.5)  # a BN statistic of branch 2's second conv
        after = enc(x)
        enc.encoder_branch2[6].running_mean.sub_(0.5)
    assert not torch.allclose(before[:, 256:], after[:, 256:])
    enc.encoder_branch2[6].running_mean.add_(0.5)
    try:
        torch.testing.assert_close(after, reference_cnn(enc, x), atol=2e-6, rtol=1e-5)
    finally:
        enc.encoder_branch2[6].running_mean.sub_(0.5)


def test_training_and_gradients_use_the_module_path(model):
    """With autograd on the BN modules run; a hook on one makes no-grad calls run them too."""
    seen = []
    h = model.epoch_encoder.encoder_branch1[1].register_forward_hook(lambda *a: seen.append(1))
    try:
        x = torch.randn(2, 3000, requires_grad=True)
        model.epoch_encoder(x).sum().backward()
        with torch.no_grad():
            model.epoch_encoder(x)
    finally:
        h.remove()
    assert seen == [1, 1] and x.grad is not None


@pytest.mark.parametrize("padded", [False, True])
def test_sdpa_block_equals_multihead_attention(model, padded):
    block = model.seq_encoder.transformer_blocks[0]
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 30, 608, generator=g)
    mask = torch.zeros(3, 30, dtype=torch.bool)
    if padded:
        mask[0, 20:] = True
        mask[2, 5:9] = True
    with torch.no_grad():
        ours = block.attend(h, mask if padded else None)
        ref, _ = block.self_attention(h, h, h, key_padding_mask=mask, need_weights=False)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def _night(n_epochs=53, n_channels=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n_channels, n_epochs * 3000 + 123)).astype(np.float32)


def test_encode_recording_layouts_chunks_and_float16(model):
    sig = _night(n_epochs=11, n_channels=2)
    per_epoch = np.ascontiguousarray(sig[:, : 11 * 3000].reshape(2, 11, 3000).transpose(1, 0, 2))
    tokens = torch.from_numpy(per_epoch.reshape(-1, 3000)).clamp(-10, 10)
    ref = reference_cnn(model.epoch_encoder, tokens).reshape(11, 2, 512)
    for signals, chunk in ((sig, None), (sig, 4), (per_epoch, None), (per_epoch, 5)):
        feats = encode_recording(model, signals, chunk=chunk)
        assert feats.shape == (11, 2, 512)
        torch.testing.assert_close(feats, ref, atol=2e-6, rtol=1e-5)
    half = encode_recording(model, per_epoch.astype(np.float16))
    ref_half = reference_cnn(model.epoch_encoder, torch.from_numpy(
        per_epoch.astype(np.float16).astype(np.float32).reshape(-1, 3000)).clamp(-10, 10)).reshape(11, 2, 512)
    torch.testing.assert_close(half, ref_half, atol=2e-6, rtol=1e-5)


def test_whole_night_probabilities_match_the_reference_model(model):
    """predict_proba (fused CNN, SDPA, no mask) equals stride-1 voting of model.forward (reference)."""
    sig = _night(n_epochs=26, n_channels=2, seed=1)
    probs = predict_proba(model, sig, [2, 6], stride=1)
    x = torch.from_numpy(sig[:, : 26 * 3000].reshape(2, 26, 3000).transpose(1, 0, 2).copy())
    model.epoch_encoder.fused = False
    try:
        with torch.no_grad():
            windows = torch.stack([x[s:s + 20] for s in range(7)])
            p = torch.softmax(model(windows, torch.tensor([[2, 6]] * 7)), -1).double()
    finally:
        model.epoch_encoder.fused = True
    total = torch.zeros(26, 5, dtype=torch.float64)
    for s in range(7):
        total[s:s + 20] += p[s]
    ref = (total / total.sum(1, keepdim=True)).numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    assert (probs.argmax(1) == ref.argmax(1)).all()


# ---- loader ---------------------------------------------------------------------------------


@pytest.fixture()
def h5root(tmp_path):
    rng = np.random.default_rng(0)
    chans = [["F3", "C3", "C4", "E1", "Chin"], ["C4", "E2"], ["F4", "C3", "O1", "O2", "E1", "E2", "Chin"]]
    for r, names in enumerate(chans):
        n = 47 + 13 * r  # windows straddle chunk borders (chunks of 20 epochs)
        x = rng.standard_normal((n, len(names), 3000)).astype(np.float32)
        stages = rng.integers(-1, 5, n)
        write_recording(tmp_path / "ds" / f"r{r}.h5", x, names, stages, dataset="ds", subject=f"s{r}",
                        recording=f"r{r}")
    write_manifest(tmp_path / "ds")
    return tmp_path


def old_item(ds: WindowDataset, key) -> dict:
    """Today's loader item, reimplemented on Recording.read (h5py fancy channel indexing)."""
    from data.windows import choose_channels

    i, start = int(key[0]), int(key[1])
    names, idx = ds.channel_names[i], ds.channel_indices(i)
    rng = np.random.default_rng(int(key[2]))
    if ds.channel_dropout > 0 and len(names) > 1 and rng.random() < ds.channel_dropout:
        keep = choose_channels(idx, rng)
        names, idx = [n for n, k in zip(names, keep) if k], idx[keep]
    stop = min(start + ds.seq_len, ds.n_epochs(i))
    with Recording(ds.rows[i]["path"]) as rec:
        x = rec.read(start, stop, names)
    return {"x": x, "channels": idx}


@pytest.mark.parametrize("dtype", ["float32", "stored"])
def test_loader_batches_identical_to_fancy_indexed_reads(h5root, dtype):
    ds = WindowDataset(load_recordings(h5root), 20, wake_margin=5, channel_dropout=0.5, dtype=dtype)
    sampler = WindowSampler(ds, seed=4)
    keys = list(sampler)
    assert len(keys) >= 6
    for b in range(0, len(keys), 4):
        batch = collate_windows([ds[k] for k in keys[b:b + 4]])
        assert batch["x"].dtype == (torch.float16 if dtype == "stored" else torch.float32)
        for j, key in enumerate(keys[b:b + 4]):
            want = old_item(ds, key)
            c = len(want["channels"])
            assert np.array_equal(batch["channels"][j, :c].numpy(), want["channels"])
            assert (batch["channels"][j, c:] == -1).all()
            # float16 on disk: the float16 batch holds exactly the values float32 reads give
            assert np.array_equal(batch["x"][j, :, :c].float().numpy(), want["x"])
            assert (batch["x"][j, :, c:] == 0).all()


def test_float16_batch_gives_the_float32_logits(h5root, model):
    keys = list(WindowSampler(WindowDataset(load_recordings(h5root), 20, channel_dropout=0.5), seed=1))[:3]
    batches = [collate_windows([WindowDataset(load_recordings(h5root), 20, channel_dropout=0.5, dtype=d)[k]
                                for k in keys]) for d in ("float32", "stored")]
    with torch.no_grad():
        a, b = (model(bt["x"], bt["channels"]) for bt in batches)
    assert torch.equal(a, b)


def test_hooked_layers_still_run_at_inference(model):
    """A forward hook on an inner layer (Grad-CAM style) disables the fused path, so it fires."""
    seen = []
    h = model.epoch_encoder.encoder_branch1[11].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        with torch.no_grad():
            model.epoch_encoder(torch.randn(2, 3000))
    finally:
        h.remove()
    assert seen == [torch.Size([2, 256, 63])]
