"""End-to-end fidelity to the published LPSGM pipeline, on SIMULATED nights generated here.

The reference (``tests/published_reference.py``) re-implements the published chain from its
description with MNE + plain scipy; these tests check our pipeline against it: the model input
to 1e-5, the staged probabilities to 1e-4 at stride 1, and the published behaviour at the edges
(trailing partial epoch, recordings shorter than a window, channel order). Nights are short
(12–15 min) to keep the tests cheap; the 1-h and 8-h figures come from ``bench/fidelity.py``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import signal as sps

from preprocess.core.channels import parse_channel_map
from preprocess.core.edf import EdfReader
from preprocess.core.pipeline import load_montage
from preprocess.core.signal import (
    SignalParams,
    fft_upsample,
    published_filter,
    stretched_linear_resample,
)
from tests.published_reference import (
    CHANNEL_MAP,
    published_channel,
    published_inputs,
    published_probabilities,
    read_with_mne,
    simulated_edf,
)

DEMO = Path(__file__).resolve().parents[1] / "weights" / "lpsgm-small-demo"
PUBLISHED = SignalParams(chain="published")
MIXED = {"C3": 256.0, "M2": 128.0, "C4-M1": 256.0, "E1-M2": 200.0, "E2-M1": 256.0, "Chin": 512.0}
LOW_MIXED = {"C3": 200.0, "M2": 128.0, "C4-M1": 256.0, "E1-M2": 200.0, "E2-M1": 100.0, "Chin": 256.0}


def ours_published(path: Path) -> tuple[np.ndarray, list[str]]:
    m = load_montage(EdfReader(path), parse_channel_map(CHANNEL_MAP), PUBLISHED, path.name)
    return m.signals.reshape(len(m.channels), -1, 3000).transpose(1, 0, 2), m.channels


@pytest.fixture(scope="module")
def official_demo(tmp_path_factory):
    """The demo weights (LPSGM-Small, trained on SIMULATED PSG) saved in the official .pth format."""
    from models import load_checkpoint, to_official_state_dict

    path = tmp_path_factory.mktemp("official") / "ched32_seqed64_ch9_seql20_block1.pth"
    torch.save({"model_state_dict": to_official_state_dict(load_checkpoint(DEMO))}, path)
    return path


# ---- the chain's steps, known answers --------------------------------------------------------------

def test_stretched_grid_lands_last_output_on_last_input():
    x = np.arange(2560, dtype=np.float64)  # a ramp: linear interpolation returns the grid itself
    y = stretched_linear_resample(x, 256.0)
    assert len(y) == 1000
    np.testing.assert_allclose(y, np.linspace(0, 2559, 1000), atol=1e-9)
    assert y[-1] == 2559  # the last output sits on the last input ...
    shift_s = y[-1] / 256 - 999 / 100  # ... so output sample 999 (9.99 s) shows the input at 9.996 s
    assert shift_s == pytest.approx(1 / 100 - 1 / 256, rel=1e-9)


def test_fft_upsampling_is_mnes():
    import mne

    x = np.random.default_rng(0).normal(size=1280)
    for n_out in (2560, 2000, 5120):
        ours = fft_upsample(x, n_out)
        np.testing.assert_allclose(ours, sps.resample(x, n_out), atol=1e-12)
        np.testing.assert_allclose(ours, mne.filter.resample(x, n_out, len(x), npad=0, verbose=False), atol=1e-12)


@pytest.mark.parametrize("fs", [128.0, 256.0, 512.0, 1000.0, 2048.0])
def test_published_filter_is_ba_filtfilt_where_stable(fs):
    x = np.random.default_rng(1).normal(size=int(fs * 120))
    y = published_filter(x, fs, 0.3, 35.0)
    if fs < 1000:
        b, a = sps.butter(N=4, Wn=[0.3 * 2 / fs, 35 * 2 / fs], btype="bandpass")
        np.testing.assert_array_equal(y, sps.filtfilt(b, a, x))
    else:  # (b, a) is unusable here; the exact filter with the same padding is used instead
        sos = sps.butter(4, [0.3, 35.0], btype="bandpass", fs=fs, output="sos")
        np.testing.assert_allclose(y, sps.sosfiltfilt(sos, x, padlen=27), atol=1e-9)
        b, a = sps.butter(N=4, Wn=[0.3 * 2 / fs, 35 * 2 / fs], btype="bandpass")
        with np.errstate(all="ignore"):
            ba = sps.filtfilt(b, a, x)
        assert not np.all(np.abs(ba - y) < 0.1 * np.std(y))  # what (b, a) would have given: far off


# ---- model input, end to end from the EDF ------------------------------------------------------------

@pytest.mark.parametrize("rates", [100.0, 128.0, 200.0, 256.0, LOW_MIXED], ids=["100", "128", "200", "256", "mixed"])
def test_model_input_equals_published(tmp_path, rates):
    path = simulated_edf(tmp_path / "night.edf", 24, rates, seed=1, extra_seconds=13)
    ref, ref_channels = published_inputs(path, CHANNEL_MAP)
    ours, channels = ours_published(path)
    assert ref.shape == ours.shape == (24, 5, 3000)  # the trailing 13 s are dropped, as published
    order = [channels.index(c) for c in ref_channels]
    assert np.max(np.abs(ours[:, order] - ref)) < 1e-5


@pytest.mark.parametrize("rates", [512.0, MIXED], ids=["512", "mixed-512"])
def test_model_input_at_512hz(tmp_path, rates):
    """At 512 Hz the published (b, a) filter amplifies rounding: inputs equal to 1e-15 (MNE's and our
    EDF decoding) give outputs 4e-4 SD apart. Our chain equals the reference to 1e-5 on the same
    samples, and to 2e-3 from the two readers."""
    path = simulated_edf(tmp_path / "night.edf", 24, rates, seed=1, extra_seconds=13)
    raw, fs = read_with_mne(path, CHANNEL_MAP)
    ours, channels = ours_published(path)
    ref, ref_channels = published_inputs(path, CHANNEL_MAP)
    order = [channels.index(c) for c in ref_channels]
    assert np.max(np.abs(ours[:, order] - ref)) < 2e-3
    from preprocess.core.signal import process_channel

    for c, x in raw.items():
        kind = "emg" if c == "Chin" else ("eog" if c.startswith("E") else "eeg")
        same_input = process_channel(x, fs, kind, PUBLISHED)[: 24 * 3000]
        assert np.max(np.abs(same_input - published_channel(x, fs, c).ravel())) < 1e-5
    # the ill-conditioning itself: a perturbation of 1e-15 relative moves the published output
    x = raw["E1"]
    wobble = x * (1 + 1e-15 * np.random.default_rng(0).choice([-1, 1], size=len(x)))
    moved = np.max(np.abs(published_channel(wobble, fs, "E1") - published_channel(x, fs, "E1")))
    assert moved > 1e-5


# ---- staged probabilities, stride 1 and the default ---------------------------------------------------

def stage_csv(tmp_path, edf: Path, weights: Path, stride: int | None = None, name: str = "out"):
    """Stage with ``inference``'s Python form; ``stride=None`` = the default stride."""
    from staging import stage

    lines: list[str] = []
    kw = {} if stride is None else {"stride": stride}
    results, code = stage([edf], out=tmp_path / name, weights=weights, channels=json.dumps(CHANNEL_MAP),
                          device="cpu", formats=["csv", "stats"], echo=lines.append, progress_bar=False, **kw)
    assert code == 0, results[0].reason
    with open(tmp_path / name / f"{edf.stem}.hypnogram.csv") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    probs = np.array([[float(r[f"p_{s}"]) for s in ("W", "N1", "N2", "N3", "REM")] for r in rows])
    return probs, lines


def test_default_staging_equals_published(tmp_path, official_demo):
    """With official weights and every default, staging gives the published probabilities (1e-4)
    and stages: the default stride is 1 (the published voting), chosen from the table of
    docs/published-weights.md (bench/fidelity.py --table: stride 2 already falls below 99.5 %)."""
    from models import load_checkpoint

    edf = simulated_edf(tmp_path / "night.edf", 30, 200.0, seed=2, extra_seconds=13)
    probs, lines = stage_csv(tmp_path, edf, official_demo)
    assert any("signal chain: published" in line for line in lines)  # official weights -> published chain
    x, channels = published_inputs(edf, CHANNEL_MAP)
    ref = published_probabilities(load_checkpoint(official_demo), x, channels)
    assert probs.shape == ref.shape == (30, 5)
    assert np.max(np.abs(probs - ref)) < 1e-4
    assert (probs.argmax(1) == ref.argmax(1)).all()
    stats = json.loads((tmp_path / "out" / "night.stats.json").read_text())
    assert stats["preprocessing"]["chain"] == "published" and stats["stride"] == 1


def test_recording_shorter_than_a_window(tmp_path, official_demo):
    """The published code makes no window below 20 epochs (it fails); we run one window of the
    recording's own length (positions 0..n-1), which the reference computes the same way."""
    from models import load_checkpoint

    edf = simulated_edf(tmp_path / "short.edf", 12, 256.0, seed=3)
    probs, _ = stage_csv(tmp_path, edf, official_demo, stride=1)
    x, channels = published_inputs(edf, CHANNEL_MAP)
    ref = published_probabilities(load_checkpoint(official_demo), x, channels)
    assert probs.shape == (12, 5) and np.max(np.abs(probs - ref)) < 1e-4


def test_channel_order_does_not_change_probabilities(official_demo):
    """The published code orders channels as its map; ours canonically. The model is equivariant
    to the token order, so both give the same probabilities."""
    from models import load_checkpoint
    from staging.predict import predict_proba

    model = load_checkpoint(official_demo)
    x = np.random.default_rng(4).normal(size=(25, 4, 3000)).astype(np.float32)
    names = ["C4", "E1", "E2", "Chin"]
    p = predict_proba(model, x, names, stride=1)
    perm = [3, 1, 0, 2]
    q = predict_proba(model, x[:, perm], [names[i] for i in perm], stride=1)
    np.testing.assert_allclose(p, q, atol=1e-5)


# ---- the chain travels with the weights and the files -------------------------------------------------

def test_chain_recorded_in_files_and_checkpoints(tmp_path, official_demo):
    from models import checkpoint_preprocessing, load_checkpoint
    from preprocess.core.hdf5 import read_preprocessing, training_preprocessing, write_recording
    from staging.weights import find_weights

    assert checkpoint_preprocessing(load_checkpoint(official_demo).checkpoint_meta)["chain"] == "published"
    assert find_weights(official_demo).preprocessing["chain"] == "published"
    assert find_weights(DEMO.with_suffix(".safetensors")).preprocessing["chain"] == "antialiased"
    x = np.zeros((2, 1, 3000), np.float32)
    paths = []
    for i, chain in enumerate(["published", "antialiased"]):
        paths.append(write_recording(tmp_path / f"r{i}.h5", x, ["C3"], None, dataset="d", subject="s",
                                     recording=f"r{i}", preprocessing=SignalParams(chain=chain).to_dict()))
    import h5py

    with h5py.File(paths[0]) as f:
        assert f.attrs["chain"] == "published"
    assert read_preprocessing(paths[0])["chain"] == "published"
    assert training_preprocessing([{"path": paths[0]}])["chain"] == "published"
    with pytest.raises(ValueError, match="different signal chains"):
        training_preprocessing([{"path": p} for p in paths])


def test_finetune_from_official_weights_needs_published_files():
    from finetune import check_chain

    data = SignalParams().to_dict()
    with pytest.raises(ValueError, match="--chain published"):
        check_chain(data, "auto", "published", "mycentre")
    assert check_chain(data, "antialiased", "published", "mycentre") is data  # explicit override
    assert check_chain(data, "auto", None, "mycentre") is data  # scratch: the files' chain


def test_unknown_preprocessing_keys_are_refused_like_model_config():
    from models.config import ModelConfig

    with pytest.raises(ValueError, match="unknown SignalParams keys"):
        SignalParams.from_dict({"chain": "published", "notch": 50})
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({"n_blocks": 1, "notch": 50})
    with pytest.raises(ValueError, match="only 100"):
        SignalParams.from_dict({"sfreq": 128})
    legacy = {"sfreq": 100.0, "epoch_seconds": 30.0, "normalization": "zscore"}  # files before the chain
    assert SignalParams.from_dict(legacy) == SignalParams()


def test_validation_votes_like_inference(tmp_path):
    """engine.loop.predict (validation) and staging.predict (inference) give the same probabilities."""
    from data import WindowDataset, load_recordings
    from engine.loop import predict
    from models import build_model
    from preprocess.core.hdf5 import write_manifest, write_recording
    from staging.predict import predict_proba

    torch.manual_seed(0)
    model = build_model("lpsgm-small").eval()
    x = np.random.default_rng(5).normal(size=(33, 2, 3000)).astype(np.float32)
    write_recording(tmp_path / "d" / "r.h5", x, ["C3", "E1"], np.zeros(33, np.int8), dataset="d", subject="s",
                    recording="r", dtype="float32")
    write_manifest(tmp_path / "d")
    ds = WindowDataset(load_recordings(tmp_path), seq_len=20)
    for stride in (1, 4):
        votes = predict(model, ds, [0], torch.device("cpu"), batch_size=8, stride=stride, bf16=False)[0]
        ours = predict_proba(model, x, ["C3", "E1"], stride=stride)
        np.testing.assert_allclose(votes / votes.sum(1, keepdims=True), ours, atol=1e-5)


def test_channels_published_reproduces_the_published_map(tmp_path):
    """``--channels published`` = the published inference.py map: F3…E2 against the mastoid or raw,
    no chin (the auto default adds the chin); on the fixture only C3 (from C3 − M2) matches it."""
    from staging.montage import PUBLISHED_CHANNELS, channel_map_from_arg

    cmap, origin = channel_map_from_arg("published")
    assert origin == str(PUBLISHED_CHANNELS) and "Chin" not in cmap and len(cmap) == 8
    assert json.loads(PUBLISHED_CHANNELS.read_text())["C3"] == [["C3", "M2"], "C3"]
    edf = simulated_edf(tmp_path / "night.edf", 2, 100.0, seed=6)
    m = load_montage(EdfReader(edf), cmap, PUBLISHED, edf.name)
    assert m.channels == ["C3"] and m.sources[0].negative == "M2"
    auto = load_montage(EdfReader(edf), channel_map_from_arg("auto")[0], PUBLISHED, edf.name)
    assert "Chin" in auto.channels
