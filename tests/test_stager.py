"""staging.Stager: one model load for any number of recordings, in-memory sources (mne Raw, arrays)
equal to the files ``inference.py`` stages, clear errors, the StagedNight's writers and yasa
conversion, and one set of model options shared by ``inference.py`` and ``python -m web``."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

import inference
from staging import EXAMPLE

STRIDE = 5  # fewer windows than the default 1; the equalities below hold for any stride


@pytest.fixture(scope="module")
def raw():
    mne = pytest.importorskip("mne")
    return mne.io.read_raw_edf(EXAMPLE, preload=True, verbose="error")


@pytest.fixture(scope="module")
def stager(tiny_weights):
    from staging import Stager

    return Stager(tiny_weights, device="cpu", stride=STRIDE)


@pytest.fixture(scope="module")
def raw_night(stager, raw):
    return stager.stage(raw)


def test_raw_equals_inference_cli_on_the_same_file(tmp_path, tiny_weights, raw_night, capsys):
    out = tmp_path / "cli"
    code = inference.main([str(EXAMPLE), "--out", str(out), "--weights", str(tiny_weights), "--stride", str(STRIDE),
                           "--device", "cpu", "--formats", "csv,npz", "--no-progress"])
    capsys.readouterr()
    assert code == 0
    cli = np.load(out / "simulated_night.hypnodensity.npz")
    assert raw_night.name == "simulated_night" and raw_night.n_epochs == len(cli["probs"]) == 90
    assert np.abs(raw_night.probabilities - cli["probs"]).max() <= 1e-6
    assert (raw_night.stages == cli["stages"]).all()
    # the night written separately is the file inference.py writes (comment lines aside: same software)
    raw_night.write(tmp_path / "lib", ["csv"])
    rows = [(tmp_path / d / "simulated_night.hypnogram.csv").read_text().splitlines() for d in ("lib", "cli")]
    assert [r for r in rows[0] if not r.startswith("#")] == [r for r in rows[1] if not r.startswith("#")]


def test_five_files_one_model_load(tmp_path, tiny_weights, monkeypatch):
    import models
    from staging import Stager, stage

    loads = []
    real = models.load_checkpoint

    def counting(*args, **kwargs):
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_checkpoint", counting)
    files = []
    for i in range(5):
        files.append(tmp_path / f"night{i}.edf")
        shutil.copy(EXAMPLE, files[-1])
    stager = Stager(tiny_weights, device="cpu", stride=20)
    assert len(loads) == 1
    nights = [stager.stage(f) for f in files[:3]]
    results, code = stage(files[3:], out=tmp_path / "out", stager=stager, echo=lambda s: None, progress_bar=False)
    assert code == 0 and [r.status for r in results] == ["ok", "ok"]
    assert len(loads) == 1  # five recordings, one load
    assert len({n.name for n in nights}) == 3 and all(n.n_epochs == 90 for n in nights)
    Stager(tiny_weights, device="cpu")  # the counter sees a second model
    assert len(loads) == 2


def test_array_input_equals_raw(stager, raw, raw_night):
    night = stager.stage(raw.get_data(), sfreq=raw.info["sfreq"], ch_names=raw.ch_names, name="arr")
    assert night.name == "arr" and night.channels == raw_night.channels
    assert np.abs(night.probabilities - raw_night.probabilities).max() <= 1e-9
    assert night.stats["TST"] == raw_night.stats["TST"]
    assert night.provenance["source_file"] is None and night.provenance["weights"] == raw_night.provenance["weights"]


@pytest.mark.parametrize("make, kwargs, kind, words", [
    (lambda raw: 42, {}, "StagingInputError", "cannot stage a int"),
    (lambda raw: raw.get_data(), {}, "StagingInputError", "needs sfreq="),
    (lambda raw: raw.get_data(), {"sfreq": 100.0, "ch_names": ["C3"]}, "MemorySourceError", "9 signal rows but 1"),
    (lambda raw: raw.get_data()[None], {"sfreq": 100.0, "ch_names": ["a"]}, "MemorySourceError", "(channels, samples)"),
    (lambda raw: raw.get_data(), {"sfreq": -1, "ch_names": ["C3"]}, "MemorySourceError", "positive number"),
    (lambda raw: raw, {"sfreq": 100.0}, "StagingInputError", "an mne Raw has its own"),
    (lambda raw: EXAMPLE.parent, {}, "StagingInputError", "is a folder"),
    (lambda raw: EXAMPLE.parent / "missing.edf", {}, "FileNotFoundError", "no such file"),
])
def test_bad_inputs_one_clear_error(stager, raw, make, kwargs, kind, words):
    with pytest.raises(Exception) as info:
        stager.stage(make(raw), **kwargs)
    assert type(info.value).__name__ == kind
    text = str(info.value)
    assert words in text and "\n" not in text


def test_to_yasa(raw_night, monkeypatch):
    yasa = pytest.importorskip("yasa")
    hyp = raw_night.to_yasa()
    assert isinstance(hyp, yasa.Hypnogram) and hyp.n_epochs == raw_night.n_epochs
    assert hyp.as_int().to_numpy().tolist() == raw_night.stages.tolist()  # yasa's codes are ours (W=0 … REM=4)
    assert np.allclose(hyp.proba.to_numpy(), raw_night.probabilities)
    monkeypatch.setitem(sys.modules, "yasa", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install yasa"):
        raw_night.to_yasa()


def test_bf16_precision_runs_in_bfloat16(tiny_weights, raw, raw_night):
    from staging import Stager

    night = Stager(tiny_weights, device="cpu", stride=STRIDE, precision="bf16").stage(raw)
    diff = np.abs(night.probabilities - raw_night.probabilities)
    assert night.provenance["precision"] == "bf16" and "precision" not in raw_night.provenance
    assert 0 < diff.max() < 0.05  # autocast took effect, and bfloat16 rounding stays small
    with pytest.raises(ValueError, match="--precision must be one of fp32, bf16, tf32"):
        Stager(tiny_weights, device="cpu", precision="fp16")


def test_tf32_is_opt_in_and_cuda_only(tiny_weights):
    """TensorFloat-32 is used only with --precision tf32 (CUDA only); fp32 on CUDA turns cuDNN's default TF32
    off while the model runs; the process's settings come back after. Flags only: no GPU is needed."""
    import torch

    from staging.stager import Stager, precision_context

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    try:
        matmul.allow_tf32, cudnn.allow_tf32 = False, True  # torch's defaults
        with precision_context("tf32", "cuda:0"):
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, True)
        with precision_context("fp32", "cuda"):
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, True)
        with precision_context("fp32", "cpu"), precision_context("tf32", "cpu"):  # the CPU: nothing changes
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, True)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved
    with pytest.raises(ValueError, match="--precision tf32 is for CUDA GPUs"):
        Stager(tiny_weights, device="cpu", precision="tf32")


def test_web_has_every_model_option_of_inference():
    import web.__main__ as web_main
    from staging.cli import MODEL_OPTIONS

    def options(parser):
        return {a.dest: a for a in parser._actions if a.option_strings}

    cli, web = options(inference.build_parser()), options(web_main.build_parser())
    assert set(MODEL_OPTIONS) <= set(cli) and set(MODEL_OPTIONS) <= set(web)
    for dest in MODEL_OPTIONS:
        assert cli[dest].option_strings == web[dest].option_strings and cli[dest].choices == web[dest].choices
    args = web_main.build_parser().parse_args(["--threads", "1", "--int8", "--backend", "onnxruntime",
                                               "--precision", "bf16", "--batch-size", "4"])
    assert (args.threads, args.int8, args.backend, args.precision, args.batch_size) == (1, True, "onnxruntime",
                                                                                          "bf16", 4)
