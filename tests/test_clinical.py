"""The clinical workflow around a staged night: lights-off/on (EDF+ annotations, CLI flags, --lights
CSV) with hand-computed TIB/SOL/SE, the one lights and clock parsers, the new statistics (known
answers and YASA on real hypnograms), exports (BIDS, npz, hypnodensity EDF), the Python API and
other input formats (FIF through MNE)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

import inference
from staging.stats import nrem_rem_cycles, sleep_statistics
from tests.conftest import real_file, write_edf

W, N1, N2, N3, R = 0, 1, 2, 3, 4
START = dt.datetime(2020, 1, 1, 22, 0, 0)
# the designed night: 40 epochs, W 0-9, N2 10-29, W 30-33, REM 34-37, W 38-39
DESIGN = np.array([W] * 10 + [N2] * 20 + [W] * 4 + [R] * 4 + [W] * 2)


@pytest.fixture
def designed_model(monkeypatch):
    """Make the model's output the designed hypnogram (one-hot), whatever the signals."""
    import staging.stager

    def fake(model, feats, channels, *args, **kwargs):  # the windows' vote over the night's CNN features
        n = feats.shape[0]
        return np.eye(5)[DESIGN[:n]] * 0.96 + 0.01

    monkeypatch.setattr(staging.stager, "vote_features", fake)


def night_edf(path: Path, n_epochs: int = 40, annotations=()) -> Path:
    rng = np.random.default_rng(1)
    t = np.arange(n_epochs * 30 * 128) / 128

    def sig(amp, f):
        return amp * (np.sin(2 * np.pi * f * t) + 0.3 * rng.standard_normal(t.size))

    chans = {"EEG C3-A2": (sig(30, 2.0), 128.0), "EEG C4-A1": (sig(30, 6.0), 128.0), "LOC": (sig(40, 0.5), 128.0),
             "ROC": (sig(40, 0.7), 128.0), "Chin1": (sig(5, 30.0), 128.0), "Chin2": (sig(5, 31.0), 128.0)}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_edf(path, chans, start=START, annotations=annotations)


def run(capsys, *args) -> tuple[int, list[str]]:
    code = inference.main([str(a) for a in args] + ["--no-progress"])
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(ln for ln in fh if not ln.startswith("#")))


# ------------------------------------------------------------------------------------- parsers


def test_one_lights_parser_everywhere():
    from preprocess.core import annotations, nsrr
    from preprocess.core.lights import lights_kind

    texts = ["Lights off", "LIGHTS OUT", "lights_off", "LightsOff", "Light off", "Lights on@@EEG F4-A1",
             "lights_on", "Lights On (end of study)", "Flashlight on", "Spotlight", "Lights", "Arousal"]
    expected = ["off", "off", "off", "off", "off", "on", "on", "on", None, None, None, None]
    assert [lights_kind(t) for t in texts] == expected
    assert annotations.lights_kind is lights_kind and nsrr.lights_kind is lights_kind


def test_one_clock_parser():
    from preprocess.core import clock, dataset_helpers, nsrr

    assert dataset_helpers.clock_time is clock.clock_time
    start = dt.time(23, 0, 0)
    assert nsrr.clock_seconds("[00:10:00] Lights on", start) == 4200.0
    assert clock.clock_time("11:10:30 PM") == (None, 83430.0)
    assert clock.hms_seconds("12.5") is None and clock.hms_seconds("01.02.03") == 3723.0


def test_lights_time_arguments():
    from staging.lights import LightsError, parse_time

    assert parse_time("600", START) == 600.0 and parse_time("22:02", START) == 120.0
    assert parse_time("06:30", START) == 8.5 * 3600 and parse_time("21:45:00", START) == -900.0
    with pytest.raises(LightsError, match="needs the recording start"):
        parse_time("22:02", None)
    with pytest.raises(LightsError, match="neither a clock time"):
        parse_time("soon", START)


# ------------------------------------------------------------------------------------- statistics


def test_statistics_on_time_in_bed_hand_computed():
    s = sleep_statistics(DESIGN, lights=(120.0, 1110.0))
    # in bed: epochs 4..36 (midpoints 135 s .. 1095 s) = 33 epochs
    assert s["TIB"] == 16.5 and s["lights_off"] == 2.0 and s["lights_on"] == 18.5
    assert s["SOL"] == 3.0  # first sleep at epoch 10, lights-off epoch 4
    assert s["TST"] == 11.5  # 20 N2 + 3 REM epochs in bed
    assert s["SE"] == pytest.approx(100 * 23 / 33, abs=1e-4)
    assert s["WASO"] == 2.0 and s["SPT"] == 13.5 and s["SME"] == pytest.approx(100 * 23 / 27, abs=1e-4)
    assert s["REM_latency"] == 12.0 and s["REM_latency_lights"] == 15.0
    assert s["N2_latency"] == 0.0 and s["N1_latency"] is None and s["N3_latency"] is None
    assert s["LPS"] == 3.0  # 20 N2 epochs = 10 min of persistent sleep from epoch 10
    assert s["SFI"] == pytest.approx(1 / (11.5 / 60), abs=1e-4)  # one N2 -> W transition
    assert s["n_transitions"] == 3 and s["transitions"]["N2"]["W"] == 1 and s["transitions"]["N2"]["N2"] == 19
    assert s["cycles"] == 0 and s["cycle_minutes"] == []  # 10 min of NREM before the REM: < 15 min, no cycle


def test_cycles_rule():
    # NREM 20 min, REM 5, NREM 10 (< 15 min: the REM periods merge), REM 5, NREM 30, REM 10
    hyp = [N2] * 40 + [R] * 10 + [N2] * 20 + [R] * 10 + [N3] * 60 + [R] * 20 + [W] * 4
    assert nrem_rem_cycles(hyp) == [(0, 80), (80, 160)]
    assert sleep_statistics(hyp)["cycle_minutes"] == [40.0, 40.0]


YASA_KEYS = {"TIB": "TIB", "SPT": "SPT", "WASO": "WASO", "TST": "TST", "SE": "SE", "SME": "SME", "SFI": "SFI",
             "SOL": "SOL", "Lat_REM": "REM_latency_lights", "WAKE": "W", "N1": "N1", "N2": "N2", "N3": "N3",
             "REM": "REM", "%N1": "N1_pct", "%N2": "N2_pct", "%N3": "N3_pct", "%REM": "REM_pct"}


@pytest.mark.parametrize("rel", ["sleep-edf/hypnograms/SC4001EC-Hypnogram.edf",
                                 "sleep-edf/hypnograms/SC4012EC-Hypnogram.edf", "hmc/SN001_sleepscoring.edf"])
def test_statistics_match_yasa_on_real_hypnograms(rel):
    yasa = pytest.importorskip("yasa")
    from preprocess.core.annotations import read_edfplus_stages

    stages = np.asarray(read_edfplus_stages(real_file(*rel.split("/"))), dtype=int)
    names = np.array(["UNS", "WAKE", "N1", "N2", "N3", "REM"])[stages + 1]
    ys = yasa.Hypnogram(list(names), n_stages=5, freq="30s").sleep_statistics()
    ours = sleep_statistics(stages)
    for yk, ok in YASA_KEYS.items():
        assert ours[ok] == pytest.approx(float(ys[yk]), abs=1e-3), (yk, ours[ok], ys[yk])


# ------------------------------------------------------------------------------------- lights end to end


def check_tib(stats: dict) -> None:
    assert stats["TIB"] == 16.5 and stats["SOL"] == 3.0
    assert stats["SE"] == pytest.approx(100 * 23 / 33, abs=1e-3) and stats["TST"] == 11.5


def test_lights_from_edf_annotations(tmp_path, tiny_weights, designed_model, capsys):
    edf = night_edf(tmp_path / "in" / "night.edf", annotations=[(120.0, 0.0, "Lights off"),
                                                               (1110.0, 0.0, "Lights on")])
    out = tmp_path / "out"
    code, lines = run(capsys, edf, "--out", out, "--weights", tiny_weights, "--formats", "csv,stats,png")
    assert code == 0, lines
    assert any("lights: off 120 s (annotations in the file), on 1110 s (annotations in the file)" in ln
               for ln in lines), lines
    doc = json.loads((out / "night.stats.json").read_text())
    check_tib(doc["statistics"])
    assert doc["lights"]["off_s"] == 120.0 and doc["units"]["TIB"] == "min"
    r = rows(out / "night.hypnogram.csv")
    assert [x["flag"] for x in r] == ["outside_tib"] * 4 + ["ok"] * 33 + ["outside_tib"] * 3
    assert [x["stage"] for x in r] == [("W", "N1", "N2", "N3", "REM")[s] for s in DESIGN]  # whole file kept
    assert doc["quality"]["flagged_epochs"] == 0 and doc["quality"]["flag_counts"] == {"outside_tib": 7}


def test_lights_from_cli_flags_and_csv(tmp_path, tiny_weights, designed_model, capsys):
    edf = night_edf(tmp_path / "in" / "night2.edf")
    out = tmp_path / "out"
    code, lines = run(capsys, edf, "--out", out, "--weights", tiny_weights, "--formats", "stats",
                      "--lights-off", "22:02:00", "--lights-on", "1110")
    assert code == 0, lines
    check_tib(json.loads((out / "night2.stats.json").read_text())["statistics"])
    table = tmp_path / "lights.csv"
    table.write_text("name,lights_off,lights_on\nnight2.edf,120,22:18:30\nother,1,2\n")
    code, lines = run(capsys, edf, "--out", out, "--weights", tiny_weights, "--formats", "stats", "--overwrite",
                      "--lights", table)
    assert code == 0, lines
    assert any("(--lights CSV)" in ln for ln in lines)
    check_tib(json.loads((out / "night2.stats.json").read_text())["statistics"])


def test_cli_lights_override_annotations_and_scoring_file_beside(tmp_path, tiny_weights, designed_model, capsys):
    import edfio

    night_edf(tmp_path / "in" / "SN900.edf", annotations=[(0.0, 0.0, "Lights off")])
    scoring = edfio.Edf([], annotations=[edfio.EdfAnnotation(1110.0, 0.0, "Lights on@@EEG F4-A1")],
                        starttime=START.time(), recording=edfio.Recording(startdate=START.date()))
    scoring.write(tmp_path / "in" / "SN900_sleepscoring.edf")
    out = tmp_path / "out"
    code, lines = run(capsys, tmp_path / "in" / "SN900.edf", "--out", out, "--weights", tiny_weights, "--formats",
                      "stats", "--lights-off", "120")
    assert code == 0, lines
    assert any("off 120 s (command line), on 1110 s (SN900_sleepscoring.edf)" in ln for ln in lines), lines
    check_tib(json.loads((out / "SN900.stats.json").read_text())["statistics"])


# ------------------------------------------------------------------------------------- exports and API


def test_bids_npz_hypnodensity_edf_of_the_bundled_example(tmp_path, tiny_weights, capsys):
    import edfio
    import mne

    from staging import EXAMPLE
    from staging.exports import BIDS_COLUMNS

    if not EXAMPLE.exists():
        pytest.skip("bundled example missing")
    out = tmp_path / "out"
    code, lines = run(capsys, EXAMPLE, "--out", out, "--weights", tiny_weights, "--formats",
                      "csv,bids,npz,hypnodensity")
    assert code == 0, lines
    n = len(rows(out / "simulated_night.hypnogram.csv"))
    events = out / "bids" / "sub-simulatednight" / "eeg" / "sub-simulatednight_task-sleep_desc-lpsgm_events.tsv"
    lines_tsv = events.read_text().splitlines()
    header = lines_tsv[0].split("\t")
    assert tuple(header) == BIDS_COLUMNS and len(lines_tsv) == n + 1
    body = [ln.split("\t") for ln in lines_tsv[1:]]
    assert all(len(r) == len(header) for r in body)
    assert [float(r[0]) for r in body] == [30.0 * i for i in range(n)] and {r[1] for r in body} == {"30"}
    p = np.array([[float(v) for v in r[3:8]] for r in body])
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    sidecar = json.loads(events.with_suffix(".json").read_text())
    assert set(BIDS_COLUMNS) <= set(sidecar) and sidecar["onset"]["Units"] == "s"
    assert set(sidecar["stage"]["Levels"]) >= {r[2] for r in body}
    desc = json.loads((out / "bids" / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["BIDSVersion"] and desc["GeneratedBy"]

    z = np.load(out / "simulated_night.hypnodensity.npz")
    assert z["probs"].shape == (n, 5) and np.allclose(z["probs"], p, atol=1e-5)
    assert z["stages"].tolist() == p.argmax(1).tolist()

    hd = out / "simulated_night.hypnodensity.edf"
    e = edfio.read_edf(hd)
    assert [s.label for s in e.signals] == ["p_W", "p_N1", "p_N2", "p_N3", "p_REM"]
    back = np.stack([s.data for s in e.signals], axis=1)
    assert back.shape == (n, 5) and np.allclose(back, p, atol=1e-4)
    raw = mne.io.read_raw_edf(hd, preload=True, verbose="error")
    assert raw.ch_names == ["p_W", "p_N1", "p_N2", "p_N3", "p_REM"] and raw.n_times == n
    stage_anns = [d for d in raw.annotations.description if d.startswith("Sleep stage")]
    assert len(stage_anns) == n and any("DEMO" in d for d in raw.annotations.description)  # marked as demo


def test_python_api_returns_stages_and_probabilities(tmp_path, tiny_weights):
    from staging import stage

    edf = night_edf(tmp_path / "night3.edf")
    results, code = stage([edf], out=tmp_path / "o", weights=tiny_weights, formats=("csv",), echo=lambda s: None,
                          progress_bar=False, review_threshold=0.99)
    (res,) = results
    assert code == 0 and res.stages.shape == (40,) and res.probabilities.shape == (40, 5)
    r = rows(tmp_path / "o" / "night3.hypnogram.csv")
    assert [x["stage"] for x in r] == [("W", "N1", "N2", "N3", "REM")[s] for s in res.stages]
    assert np.allclose([float(x["confidence"]) for x in r], res.probabilities.max(1), atol=1e-6)
    assert res.night.review(0.99) == [i for i in range(40) if res.probabilities[i].max() < 0.99]
    assert res.night.review(None) == []


def test_fif_input_is_staged_at_its_rate(tmp_path, tiny_weights, capsys):
    from tests.test_quality import write_fif

    rng = np.random.default_rng(0)
    n = 25 * 30 * 200
    from tests.eeg_noise import pink  # white noise is refused by the plausibility gate (issue 21)

    sig = {name: pink(rng, n, 20e-6, 200.0) for name in ("C3-M2", "E1-M2", "Chin")}
    path = write_fif(tmp_path / "rec_raw.fif", sig, sfreq=200.0)
    code, lines = run(capsys, tmp_path, "--out", tmp_path / "o", "--weights", tiny_weights, "--formats", "csv")
    assert code == 0, lines
    assert any("ok" in ln and "rec_raw.fif" in ln and "25 epochs" in ln for ln in lines), lines
    assert path.exists()


def test_wake_margin_policy_uses_the_lights_attribute():
    from data.windows import sleep_range

    stages = np.array([0] * 100 + [2] * 10 + [0] * 100)
    assert sleep_range(stages, 30) == (40, 170)
    assert sleep_range(stages, 30, lights=(600.0, 4500.0)) == (20, 150)  # midpoints in [600 s, 4500 s]
    assert sleep_range(stages, 30, lights=(np.nan, 4500.0)) == (40, 150)
    assert sleep_range(stages, None, lights=(600.0, 4500.0)) == (0, 210)


def test_clinical_page_states_the_code():
    import re

    from staging import quality
    from staging.exports import BIDS_COLUMNS
    from staging.stats import UNITS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "clinical.md").read_text(encoding="utf-8")
    order = re.search(r"joined by `\+` in the order `([^`]+)`", doc).group(1).split(", ")
    assert order == [*quality.KINDS, "outside_tib", "unknown"]
    assert f"< {quality.FLAT_PTP_UV:g} µV" in doc and f"≥ {quality.SATURATED_SHARE * 100:g} % of the epoch" in doc
    assert f"> {quality.ARTEFACT_PTP_UV['eeg']:g} µV (EEG), {quality.ARTEFACT_PTP_UV['eog']:g} µV" in doc
    assert f"> {quality.IMPLAUSIBLE_SD_UV / 1000:g} mV" in doc
    cols = re.search(r"TSV columns (.+?); `n/a`", doc).group(1)
    named = re.findall(r"`([A-Za-z0-9_]+)`", cols.replace("`p_W … p_REM`", "`p_W` `p_N1` `p_N2` `p_N3` `p_REM`"))
    assert named == list(BIDS_COLUMNS)
    table = {m[0]: m[1] for m in re.findall(r"^\| `([A-Za-z0-9_]+)`[^|]*\| ([^|]+?) \|", doc, re.M)}
    for key in ("TIB", "SE", "LPS", "SME", "SFI", "REM_latency_lights", "n_transitions", "cycles"):
        assert table[key].strip() in UNITS[key] or UNITS[key] in table[key], (key, table[key], UNITS[key])
