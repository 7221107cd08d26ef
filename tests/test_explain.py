"""explain: unit tests with known answers (tiny random models) and, marked slow, the
known-answer tests (a)-(c) on a held-out simulated night with the shipped demo weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explain import (
    branch_last_convs,
    explain_recording,
    explain_windows,
    explainable_model,
    select_epochs,
    step_centres,
    upsample_steps,
    window_for,
)
from models import build_model, load_checkpoint, to_official_state_dict
from simulate.formats import aasm_generic_seed


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    m = build_model("lpsgm-small", seq_len=5).eval()
    # non-trivial BatchNorm statistics, so eval-mode BN is not the identity
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
    return m


def _windows(seed: int, B: int, L: int, C: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, L, C, 3000, generator=g)


def test_step_centres_known_answer(tiny):
    enc = tiny.epoch_encoder
    b1, b2 = branch_last_convs(tiny)
    assert b1 is enc.encoder_branch1[11] and b2 is enc.encoder_branch2[11]
    c1, c2 = step_centres(enc.encoder_branch1, b1), step_centres(enc.encoder_branch2, b2)
    np.testing.assert_allclose(c1, 48 * np.arange(63) - 3)
    np.testing.assert_allclose(c2, 200 * np.arange(13) + 274.5)
    with torch.no_grad():  # the step counts match the real activations
        x = torch.zeros(1, 1, 3000)
        assert enc.encoder_branch1[:12](x).shape[-1] == 63 and enc.encoder_branch2[:12](x).shape[-1] == 13


def test_upsample_steps_interpolates_at_centres():
    centres = np.array([100.0, 1100.0, 2100.0])
    up = upsample_steps(np.array([[0.0, 1.0, 3.0]]), centres)
    assert up.shape == (1, 3000)
    np.testing.assert_allclose(up[0, [0, 100, 600, 1100, 1600, 2100, 2999]], [0, 0, 0.5, 1, 2, 3, 3])


def test_window_for():
    start, pos = window_for(np.array([0, 3, 10, 50, 99]), 100, 20, "centre")
    assert start.tolist() == [0, 0, 0, 40, 80] and pos.tolist() == [0, 3, 10, 10, 19]
    start, pos = window_for(np.array([0, 85, 99]), 100, 20, "first")
    assert start.tolist() == [0, 80, 80] and pos.tolist() == [0, 5, 19]
    start, pos = window_for(np.array([0, 6]), 7, 20, "centre")  # short recording: one window of 7
    assert start.tolist() == [0, 0] and pos.tolist() == [0, 6]
    with pytest.raises(ValueError):
        window_for(np.array([0]), 100, 20, 25)


def test_within_epoch_ratio_ignores_the_scale_of_event_free_epochs():
    from explain import mass_ratio, within_epoch_ratio

    sal = np.ones((3, 10))
    sal[0, :2] = 2.0  # row 0: saliency twice as dense on its event (samples 0-1)
    sal[1] *= 50.0  # row 1: no event, a much larger map (another epoch's gradient scale)
    sal[2, :5] = 3.0  # row 2: event on samples 5-9, saliency 3x denser *outside* it
    mask = np.zeros((3, 10), bool)
    mask[0, :2] = True
    mask[2, 5:] = True
    # rows scaled to unit mean: row 0 inside 2/1.2, outside 1/1.2; row 2 inside 1/2, outside 3/2
    inside, outside = (2 / 1.2 * 2 + 0.5 * 5) / 7, (1 / 1.2 * 8 + 1.5 * 5) / 13
    assert within_epoch_ratio(sal, mask) == pytest.approx(inside / outside)
    assert within_epoch_ratio(sal[[0, 1]], mask[[0, 1]]) == pytest.approx(2.0)  # row 1 not used
    assert mass_ratio(sal[[0, 1]], mask[[0, 1]]) < 0.1  # pooled raw maps: row 1 swamps it
    assert np.isnan(within_epoch_ratio(sal[[1]], mask[[1]]))


def test_select_epochs():
    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.5, 0.4, 0.1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]])
    assert select_epochs("all", probs).tolist() == [0, 1, 2, 3]
    assert select_epochs("1-2", probs).tolist() == [1, 2]
    assert select_epochs("3,0", probs).tolist() == [0, 3]
    assert select_epochs("low-confidence", probs).tolist() == [1]
    assert select_epochs("low-confidence:0.95", probs).tolist() == [0, 1]
    assert select_epochs("REM,N2", probs).tolist() == [2, 3]
    with pytest.raises(ValueError):
        select_epochs("7-9", probs)
    with pytest.raises(ValueError):
        select_epochs("tomorrow", probs)


def test_explained_logits_are_the_models(tiny):
    x = _windows(1, 2, 5, 3)
    ch = torch.tensor([[0, 4, 6], [2, 3, -1]])
    e = explain_windows(tiny, x, ch, position=torch.tensor([0, 3]))
    with torch.no_grad():
        ref = tiny(x, ch)
    np.testing.assert_allclose(e.window_logits, ref[[0, 1], [0, 3]].numpy(), rtol=1e-5, atol=1e-5)
    assert e.target.tolist() == ref[[0, 1], [0, 3]].argmax(1).tolist()
    assert e.gradcam.shape == (2, 3, 3000) and e.gradcam_branch1.shape == (2, 3, 63)
    assert e.gradcam_branch2.shape == (2, 3, 13) and e.channel_attribution.shape == (2, 3)
    assert (e.gradcam >= 0).all() and (e.guided_gradcam >= 0).all()
    assert e.gradcam[0].max() > 0 and np.abs(e.guided_backprop[0]).max() > 0


def test_padded_channel_has_zero_saliency(tiny):
    x = _windows(2, 1, 5, 3)
    ch = torch.tensor([[0, 6, -1]])
    e = explain_windows(tiny, x, ch, position=2)
    for name in ("gradcam", "guided_gradcam", "guided_backprop", "gradcam_branch1", "gradcam_branch2"):
        arr = getattr(e, name)
        assert np.all(arr[0, 2] == 0), name
        assert np.abs(arr[0, :2]).max() > 0, name
    assert e.channel_attribution[0, 2] == 0 and np.abs(e.channel_attribution[0, :2]).max() > 0
    # whatever the padding holds, the real channels' explanation is unchanged
    x2 = x.clone()
    x2[:, :, 2] = 100.0
    e2 = explain_windows(tiny, x2, ch, position=2)
    np.testing.assert_allclose(e2.gradcam, e.gradcam, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(e2.channel_attribution, e.channel_attribution, rtol=1e-5, atol=1e-6)
    # and equals the explanation of the window without the padding column
    e3 = explain_windows(tiny, x[:, :, :2], ch[:, :2], position=2)
    np.testing.assert_allclose(e3.gradcam, e.gradcam[:, :2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(e3.channel_attribution, e.channel_attribution[:, :2], rtol=1e-4, atol=1e-5)


def test_results_do_not_depend_on_batch_composition(tiny):
    x = _windows(3, 3, 5, 4)
    ch = torch.tensor([[0, 2, 6, 8], [1, 4, -1, -1], [3, 5, 7, -1]])
    pos = torch.tensor([1, 4, 0])
    target = torch.tensor([2, 0, 4])
    together = explain_windows(tiny, x, ch, pos, target)
    for b in range(3):
        alone = explain_windows(tiny, x[b:b + 1], ch[b:b + 1], pos[b:b + 1], target[b:b + 1])
        for name in ("gradcam", "guided_gradcam", "guided_backprop", "channel_attribution", "window_logits"):
            a, t = getattr(alone, name)[0], getattr(together, name)[b]
            np.testing.assert_allclose(a, t, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(t).max()), err_msg=name)


def test_channel_shapley_efficiency(tiny):
    """Channel Shapley values sum to logit(all channels) − logit(no channel), padding gets 0."""
    x = _windows(4, 1, 5, 4)
    ch = torch.tensor([[0, 4, 6, -1]])
    e = explain_windows(tiny, x, ch, position=2, target=torch.tensor([1]))
    with torch.no_grad():
        full = tiny(x, ch)[0, 2, 1].item()
        none = tiny.forward_features(torch.zeros(1, 5, 4, 512), torch.full((1, 4), -1))[0, 2, 1].item()
    assert e.channel_attribution[0].sum() == pytest.approx(full - none, rel=1e-4, abs=1e-4)
    assert e.channel_attribution[0, 3] == 0


def test_recording_level_matches_explicit_windows(tiny):
    g = np.random.default_rng(5)
    signals = g.standard_normal((2, 12 * 3000)).astype(np.float32)
    channels = [2, 7]
    exp = explain_recording(tiny, signals, channels, [0, 6, 11], batch_size=2)
    assert exp.meta["window_start"].tolist() == [0, 4, 7] and exp.meta["position"].tolist() == [0, 2, 4]
    epochs = signals.reshape(2, 12, 3000).transpose(1, 0, 2)
    for i, (s, p) in enumerate(zip(exp.meta["window_start"], exp.meta["position"])):
        x = torch.as_tensor(epochs[s:s + 5])[None]
        ref = explain_windows(tiny, x, torch.tensor([channels]), int(p), torch.tensor([exp.target[i]]))
        np.testing.assert_allclose(exp.gradcam[i], ref.gradcam[0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(exp.channel_attribution[i], ref.channel_attribution[0], rtol=1e-4, atol=1e-5)


def test_model_is_not_modified(tiny):
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    explain_windows(tiny, _windows(6, 1, 5, 2), torch.tensor([[0, 1]]), 0)
    assert not tiny.training
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    assert all(p.requires_grad for p in tiny.parameters())
    m = explainable_model(tiny)
    assert m is not tiny and not any(p.requires_grad for p in m.parameters())


def test_official_format_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = build_model("lpsgm-small").eval()  # official files are seq_len 20, N blocks
    path = tmp_path / "ched32_seqed64_ch9_seql20_block1.pth"
    torch.save({"model_state_dict": to_official_state_dict(model)}, path)
    official = load_checkpoint(path)
    x = _windows(7, 1, 20, 2)
    ch = torch.tensor([[4, 6]])
    a = explain_windows(official, x, ch, 0)
    b = explain_windows(model, x, ch, 0)
    np.testing.assert_allclose(a.gradcam, b.gradcam, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.channel_attribution, b.channel_attribution, rtol=1e-5, atol=1e-6)
    assert a.gradcam.max() > 0


def test_cli_on_the_bundled_example(tmp_path):
    """The CLI renders pages and writes the npz for the bundled simulated night."""
    from explain import main
    from staging import EXAMPLE

    assert main([str(EXAMPLE), "--epochs", "40,60", "--out", str(tmp_path), "--max-pages", "1",
                 "--device", "cpu"]) == 0
    z = np.load(tmp_path / "simulated_night.explain.npz")
    assert z["epochs"].tolist() == [40, 60]
    C = len(z["channels"])
    assert z["gradcam"].shape == (2, C, 3000) and z["channel_attribution"].shape == (2, C)
    assert z["probs"].shape == (2, 5) and z["target"].tolist() == z["probs"].argmax(1).tolist()
    assert json.loads(str(z["info"]))["demo_weights"] is True
    pages = sorted((tmp_path / "simulated_night.explain").glob("*.png"))
    assert [p.name for p in pages] == ["epoch_00040.png"]
    assert pages[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



def test_inference_explain_flag(tmp_path):
    """``inference.py --explain`` stages and explains in one run (epochs of the written hypnogram)."""
    import inference
    from staging import EXAMPLE

    assert inference.main([str(EXAMPLE), "--out", str(tmp_path), "--explain", "70", "--formats", "csv",
                           "--no-progress", "--device", "cpu"]) == 0
    z = np.load(tmp_path / "simulated_night.explain.npz")
    import csv

    lines = (tmp_path / "simulated_night.hypnogram.csv").read_text().splitlines()
    rows = list(csv.DictReader(ln for ln in lines if not ln.startswith("#")))
    assert z["epochs"].tolist() == [70]
    assert z["target_stage"][0] == next(r["stage"] for r in rows if int(r["epoch"]) == 70)
    assert (tmp_path / "simulated_night.explain" / "epoch_00070.png").is_file()

# ------------------------------------------------------------------------------------------------
# Known answers on a held-out SIMULATED night with the shipped demo weights (trained on simulated
# PSG from simulator seeds 100/200/300; this night uses seed >= 2000, so subject and night are new).
# Thresholds sit well below what a reasonably trained model gives (measured values in
# docs/explain.md), so a retrained demo model should still pass; a model that ignores the events
# fails.
# ------------------------------------------------------------------------------------------------

SPINDLE_KC_RATIO_MIN = 1.5
"""(a) N2: guided Grad-CAM density inside spindle/K-complex intervals ÷ outside, F3/F4/C3/C4, within
epoch (``within_epoch_ratio``: each epoch-channel scaled to unit mean, so epochs of larger gradient
do not decide it)."""
EYE_OVER_EEG_MIN = 0.1
"""(b) REM: mean channel Shapley value of E1/E2 minus that of the six EEG channels (logit) must
exceed this (shipped demo weights: 0.26, 0.62, 0.21 on three held-out nights, docs/explain.md)."""
OCCIPITAL_ALPHA_RATIO_MIN = 1.1
"""(c) W with alpha: 8–12 Hz power of the guided-backprop map, O1/O2 ÷ F3/F4/C3/C4 (shipped demo
weights: 5.2, 10.4, 13.6 on three held-out nights)."""
MIN_STAGING_ACCURACY = 0.7
"""Known answers need a model that stages the held-out night. The shipped demo weights stage it
at 0.96 (simulated; 0.93 and 0.97 on the two other held-out nights of the bench); below this the weights or the simulator regressed, which the fixture
reports as a failure (not a skip: it must not hide the known-answer checks)."""
HYPNOGRAM = [(0, 12), (1, 3), (2, 20), (3, 4), (2, 6), (4, 16), (0, 6)]
EEG = ("F3", "F4", "C3", "C4", "O1", "O2")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    import simulate
    from explain import event_mask
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging.montage import channel_map_from_arg
    from staging.predict import channel_indices, predict_proba
    from staging.weights import WEIGHTS_DIR

    stages = np.concatenate([np.full(n, s, np.int8) for s, n in HYPNOGRAM])
    seed = aasm_generic_seed(2000)
    rec = simulate.generate(tmp_path_factory.mktemp("sim"), 1, seed, dataset="generic", stages=[stages])[0]
    events = simulate.read_events(rec["events"])
    model = load_checkpoint(WEIGHTS_DIR / "lpsgm-small-demo")
    params = SignalParams.from_dict(model.checkpoint_meta.get("preprocessing", {}) or {})
    reader = EdfReader(rec["files"][0])
    montaged = load_montage(reader, channel_map_from_arg("auto")[0], params, "sim")
    reader.close()
    names = list(montaged.channels)
    assert names == ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"]
    probs = predict_proba(model, montaged.signals, channel_indices(names))
    pred = probs.argmax(1)
    acc = float((pred == stages[:len(pred)]).mean())
    print(f"demo weights on the held-out simulated night (seed {seed}): accuracy {acc:.2f}")
    assert acc >= MIN_STAGING_ACCURACY, (
        f"the shipped demo weights stage the held-out simulated night (seed {seed}) with accuracy {acc:.2f} "
        f"< {MIN_STAGING_ACCURACY}: weights or simulator regressed (or the two no longer match; retrain)")
    alpha = event_mask(events, np.arange(len(pred)), {"alpha"}).mean(1)
    chosen = {}
    for k in (0, 2, 4):
        ok = np.flatnonzero((pred == k) & (stages[:len(pred)] == k) & ((alpha > 0.5) if k == 0 else True))
        chosen[k] = ok[np.linspace(0, len(ok) - 1, min(6, len(ok))).astype(int)] if len(ok) else ok
    assert all(len(v) >= 2 for v in chosen.values()), "demo model stages too few held-out epochs right"
    epochs = np.concatenate([chosen[0], chosen[2], chosen[4]])
    exp = explain_recording(model, montaged.signals, channel_indices(names), epochs, target=pred[epochs])
    return {"exp": exp, "epochs": epochs, "stages": stages[epochs], "events": events, "names": names}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="demo weights (step 48): (a) fails on all 3 held-out nights, within-epoch "
                   "ratio 0.59, 0.74, 0.68 (this night, 6 epochs: 0.82); their N2 Grad-CAM avoids K-complexes "
                   "(0.17-0.47) and spindles (0.64-0.84), docs/explain.md; remove this marker when weights pass")
def test_known_answer_n2_saliency_on_spindles_and_k_complexes(simulated):
    from explain import event_mask, within_epoch_ratio

    s, exp = simulated, simulated["exp"]
    n2 = s["stages"] == 2
    sal, inside = [], []
    for c in range(4):  # F3 F4 C3 C4: where spindles and K-complexes are largest
        sal.append(exp.guided_gradcam[n2, c])
        inside.append(event_mask(s["events"], s["epochs"][n2], {"spindle", "kcomplex"}, s["names"][c]))
    ratio = within_epoch_ratio(np.concatenate(sal), np.concatenate(inside))
    print(f"(a) N2 guided Grad-CAM inside/outside spindle+K-complex intervals: {ratio:.2f} (simulated)")
    assert ratio > SPINDLE_KC_RATIO_MIN


@pytest.mark.slow
def test_known_answer_rem_rests_on_the_eye_channels(simulated):
    s, exp = simulated, simulated["exp"]
    att = exp.channel_attribution[s["stages"] == 4]
    names = s["names"]
    eye = att[:, [names.index("E1"), names.index("E2")]].mean()
    eeg = att[:, [names.index(c) for c in EEG]].mean()
    print(f"(b) REM channel Shapley: eyes {eye:.2f}, EEG {eeg:.2f} logit (simulated)")
    assert eye - eeg > EYE_OVER_EEG_MIN


@pytest.mark.slow
def test_known_answer_wake_alpha_saliency_is_occipital(simulated):
    from explain import band_power

    s, exp = simulated, simulated["exp"]
    names = s["names"]
    p = band_power(exp.guided_backprop[s["stages"] == 0], 8.0, 12.0).mean(0)
    occ = p[[names.index("O1"), names.index("O2")]].mean()
    ant = p[[names.index(c) for c in ("F3", "F4", "C3", "C4")]].mean()
    print(f"(c) W alpha-band guided-backprop power O1/O2 ÷ F3/F4/C3/C4: {occ / ant:.2f} (simulated)")
    assert occ / ant > OCCIPITAL_ALPHA_RATIO_MIN
