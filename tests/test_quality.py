"""Signal-quality gate: per-epoch flags with known answers, whole-channel drops, refusal of a
saturated recording, re-staging from the remaining channels, and a simulated night with injected
flat, clipped and NaN stretches staged end to end (FIF through MNE) with exactly those epochs flagged."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

import inference
from staging.quality import (
    BIT,
    QualityError,
    check_channel,
    describe_mask,
    epoch_masks,
    restage_unusable,
    screen,
)

FS = 100.0
EPOCH = 3000


def rhythm(n_epochs: int, amp_uv: float = 20.0, seed: int = 0) -> np.ndarray:
    """A 100-Hz EEG-like signal in volts: a 2-Hz rhythm plus noise (never flat, never clipped)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_epochs * EPOCH) / FS
    return amp_uv * 1e-6 * (np.sin(2 * np.pi * 2 * t) + 0.3 * rng.standard_normal(t.size))


# --------------------------------------------------------------------------------------------- unit


def test_epoch_masks_known_answers():
    x = rhythm(10)
    x[2 * EPOCH:3 * EPOCH] = 5e-6  # epoch 2 flat
    x[4 * EPOCH + 100:4 * EPOCH + 110] = np.nan  # 10 NaN samples in epoch 4
    x[6 * EPOCH + 500:6 * EPOCH + 600] += 1.5e-3 * np.sin(np.arange(100) / 5.0)  # 3 mV peak-to-peak burst
    hi = np.max(np.abs(x[np.isfinite(x)]))
    seg = x[8 * EPOCH:9 * EPOCH]
    x[8 * EPOCH:9 * EPOCH] = np.clip(seg * 1e3, -hi, hi)  # epoch 8 clipped at the channel's extremes
    m = epoch_masks(x, FS, 10)
    assert [describe_mask(v) for v in m] == ["ok", "ok", "flat", "ok", "nan", "ok", "artefact", "ok",
                                             "saturated", "ok"]


def test_half_flat_epoch_threshold_and_gap():
    x = rhythm(4)
    x[EPOCH:EPOCH + 1400] = 0.0  # 14 of 30 segments flat: below the 50 % rule
    x[2 * EPOCH:2 * EPOCH + 1500] = 0.0  # 15 of 30: flat
    m = epoch_masks(x[: int(3.5 * EPOCH)], FS, 4)  # the channel ends in the middle of epoch 3
    assert [describe_mask(v) for v in m] == ["ok", "ok", "flat", "gap"]


def test_non_voltage_channel_has_no_amplitude_checks():
    x = np.repeat(np.arange(6, dtype=float), EPOCH) * 1000.0  # a large step signal in "%"
    m = epoch_masks(x + np.tile(np.arange(EPOCH) % 2, 6), FS, 6, volts=False)
    assert not (m & BIT["artefact"]).any() and not (m & BIT["flat"]).any()


def test_whole_channel_problems_drop_the_channel():
    n = 10
    assert check_channel("A", np.zeros(n * EPOCH), FS, n).reason.startswith("flat signal")
    assert check_channel("B", np.full(n * EPOCH, np.nan), FS, n).reason == "every sample is NaN"
    x = rhythm(n)
    x[: 6 * EPOCH] = 0.0
    q = check_channel("C", x, FS, n)
    assert q.kind == "flat" and q.reason == "60% of its epochs are flat"
    q = check_channel("D", rhythm(n) * 1000, FS, n)  # 20 mV "EEG": unit field wrong
    assert q.kind == "amplitude" and "implausible amplitude" in q.reason
    assert check_channel("E", rhythm(n), FS, n).reason is None


class FakeSource:
    def __init__(self, signals: dict, start=None):
        self.signals, self.labels, self.start_time = signals, list(signals), start

    def read(self, label):
        return self.signals[label], FS


def test_screen_drops_and_falls_back_to_the_next_option():
    good, flat = rhythm(6), np.zeros(6 * EPOCH)
    # LOC has its own noise: one array under two labels is a copy, which the gate reduces to one
    src = FakeSource({"C3-M2": flat, "C3-A2": good, "LOC": rhythm(6, seed=1)})
    cmap = {"C3": ["C3-M2", "C3-A2"], "E1": ["LOC"]}
    screened, report = screen(src, cmap, "x.edf")
    assert report.dropped == {"C3-M2": "flat signal (no variation)"}
    assert screened.labels == ["C3-A2", "LOC"]
    assert report.dropped_channels(["C3", "E1"]) == {}  # C3 came from the next option


def test_entirely_saturated_recording_is_refused():
    sq = np.sign(np.sin(np.arange(6 * EPOCH) / 3.0)) * 1e-4  # every sample at ±limit
    src = FakeSource({"C3": sq, "LOC": sq.copy()})
    with pytest.raises(QualityError, match=r"^x\.edf: recording entirely saturated"):
        screen(src, {"C3": ["C3"], "E1": ["LOC"]}, "x.edf")


def test_restage_from_remaining_channels_or_unknown():
    n = 30
    probs = np.tile([1.0, 0, 0, 0, 0], (n, 1))
    masks = {"C3": np.zeros(n, int), "E1": np.zeros(n, int), "Chin": np.zeros(n, int)}
    masks["C3"][5:7] = BIT["flat"]  # E1 remains: re-staged from E1 and Chin
    masks["C3"][20:22] = BIT["nan"]
    masks["E1"][20:22] = BIT["saturated"]  # only Chin remains: unknown
    masks["Chin"][25] = BIT["artefact"]  # a flag only: not re-staged
    calls = []

    def predict(keep, start, stop):
        calls.append((tuple(keep), start, stop))
        return np.tile([0, 0, 1.0, 0, 0], (stop - start, 1))

    out, unknown = restage_unusable(probs, ["C3", "E1", "Chin"], masks, predict, context=3)
    assert calls == [((1, 2), 2, 10)]
    assert np.flatnonzero(out.argmax(1) == 2).tolist() == [5, 6]
    assert np.flatnonzero(unknown).tolist() == [20, 21]


# --------------------------------------------------------------------------------------------- night


def simulated_night(n_epochs: int = 32, seed: int = 3) -> tuple[dict, np.ndarray]:
    """A short simulated night (volts at 256 Hz) from the project's simulator."""
    from simulate import draw_subject_params, simulate_sites

    rng = np.random.default_rng(seed)
    stages = np.repeat([0, 1, 2, 2, 3, 2, 4, 0], n_epochs // 8)
    params = draw_subject_params(rng, seed)
    chans = {"C3-M2": ("C3-M2", 256.0), "C4-M1": ("C4-M1", 256.0), "E1-M2": ("E1-M2", 256.0),
             "E2-M1": ("E2-M1", 256.0), "Chin": ("CHIN", 256.0)}
    return simulate_sites(stages, chans, rng, params), stages


def write_fif(path: Path, signals: dict, sfreq: float = 256.0) -> Path:
    import mne

    names = list(signals)
    types = ["eeg" if n.startswith("C") and n != "Chin" else "eog" if n.startswith("E") else "emg" for n in names]
    info = mne.create_info(names, sfreq, types)
    raw = mne.io.RawArray(np.vstack([signals[n] for n in names]), info, verbose="error")
    raw.set_meas_date(dt.datetime(2020, 1, 1, 22, 0, tzinfo=dt.timezone.utc))
    raw.save(path, overwrite=True, verbose="error")
    return path


def flagged_epochs(csv_path: Path) -> dict[int, tuple[str, str]]:
    with open(csv_path, newline="") as fh:
        table = csv.DictReader(ln for ln in fh if not ln.startswith("#"))  # skip the "# ..." mark lines
        return {int(r["epoch"]): (r["flag"], r["flag_channels"]) for r in table if r["flag"] != "ok"}


def test_simulated_night_with_injected_flat_clipped_nan_gets_exactly_those_epochs_flagged(tmp_path, tiny_weights,
                                                                                           capsys):
    from preprocess.core.mne_source import MneSource
    from staging.montage import auto_channel_map

    signals, _ = simulated_night()
    clean = MneSource(write_fif(tmp_path / "clean_raw.fif", signals))
    _, report = screen(clean, auto_channel_map(), "clean_raw.fif")
    assert report.dropped == {} and set(report.channels) == set(signals)
    assert all(not q.masks.any() for q in report.channels.values())  # the simulated night itself is clean
    spe = int(30 * 256)
    sig = {k: v.copy() for k, v in signals.items()}
    sig["C3-M2"][6 * spe:10 * spe] = 0.0  # flat, epochs 6-9
    hi = np.max(np.abs(sig["C4-M1"]))
    sig["C4-M1"][22 * spe:25 * spe] = np.clip(sig["C4-M1"][22 * spe:25 * spe] * 100, -hi, hi)  # clipped 22-24
    sig["E1-M2"][14 * spe + 7:16 * spe - 7] = np.nan  # NaN, epochs 14-15
    bad = write_fif(tmp_path / "bad_raw.fif", sig)
    out = tmp_path / "out"
    code = inference.main([str(bad), "--out", str(out), "--weights", str(tiny_weights), "--no-progress",
                           "--review-threshold", "0.0", "--formats", "csv,stats,png"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    expected = {**{e: ("flat", "C3") for e in range(6, 10)}, **{e: ("nan", "E1") for e in (14, 15)},
                **{e: ("saturated", "C4") for e in (22, 23, 24)}}
    assert flagged_epochs(out / "bad_raw.hypnogram.csv") == expected
    q = json.loads((out / "bad_raw.stats.json").read_text())["quality"]
    assert q["flagged_epochs"] == 9 and q["flag_counts"] == {"flat": 4, "nan": 2, "saturated": 3}
    assert q["unknown_epochs"] == 0 and q["review_epochs"] == sorted(expected)
    assert any("review: 9 epoch(s)" in ln and "6-9, 14-15, 22-24" in ln for ln in lines), lines


def test_epochs_whose_only_eeg_eog_is_unusable_are_unknown(tmp_path, tiny_weights, capsys):
    signals, _ = simulated_night()
    spe = int(30 * 256)
    sig = {"C3-M2": signals["C3-M2"].copy(), "Chin": signals["Chin"]}
    sig["C3-M2"][5 * spe:8 * spe] = 0.0
    path = write_fif(tmp_path / "one_raw.fif", sig)
    out = tmp_path / "out"
    code = inference.main([str(path), "--out", str(out), "--weights", str(tiny_weights), "--no-progress",
                           "--formats", "csv,sta,stats"])
    assert code == 0, capsys.readouterr().out
    with open(out / "one_raw.hypnogram.csv", newline="") as fh:
        rows = list(csv.DictReader(ln for ln in fh if not ln.startswith("#")))
    unknown = [int(r["epoch"]) for r in rows if r["stage"] == "?"]
    assert unknown == [5, 6, 7]
    assert all(rows[e]["flag"] == "flat+unknown" and rows[e]["p_W"] == "" for e in unknown)
    sta = [ln for ln in (out / "one_raw.STA").read_text().splitlines() if not ln.startswith("#")]
    assert [ln.split("\t")[1] for ln in sta[5:8]] == ["9", "9", "9"]
    stats = json.loads((out / "one_raw.stats.json").read_text())
    assert stats["quality"]["unknown_epochs"] == 3 and stats["statistics"]["TIB"] == 16.0


def test_saturated_recording_fails_with_one_line(tmp_path, tiny_weights, capsys):
    t = np.arange(10 * 30 * 256)
    sq = np.sign(np.sin(t / 5.0)) * 2e-4
    path = write_fif(tmp_path / "sat_raw.fif", {"C3-M2": sq, "E1-M2": sq.copy()})
    code = inference.main([str(path), "--out", str(tmp_path / "o"), "--weights", str(tiny_weights), "--no-progress"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    (fail,) = [ln for ln in lines if "FAILED" in ln]
    assert "sat_raw.fif: recording entirely saturated" in fail
    assert not (tmp_path / "o" / "sat_raw.hypnogram.csv").exists()


def test_chin_envelope_below_the_chain_rate_is_dropped_for_its_rate_in_every_output(tmp_path, tiny_weights):
    """A 1-Hz chin channel (Sleep-EDF's submental EMG is such an envelope, a few µV): the signal chain cannot
    high-pass it at 10 Hz, so that is the reason given, not an amplitude or unit hint, and the drop is a
    warning in stats.json and summary.csv like any other."""
    from tests.conftest import write_edf
    from tests.eeg_noise import pink

    rng = np.random.default_rng(3)
    n = 10 * 30 * 100
    path = write_edf(tmp_path / "chin1hz.edf",
                     {"EEG C3-M2": (pink(rng, n, 20.0), 100.0), "EOG E1-M2": (pink(rng, n, 30.0), 100.0),
                      "EMG Chin": (0.05 * np.abs(rng.standard_normal(n // 100)), 1.0)})  # µV
    out = tmp_path / "out"
    code = inference.main([str(path), "--out", str(out), "--weights", str(tiny_weights), "--no-progress"])
    assert code == 0
    warnings = json.loads((out / "chin1hz.stats.json").read_text())["warnings"]
    chin = [w for w in warnings if w.startswith("Chin ")]
    assert chin == ["Chin EMG Chin dropped: sampling rate 1 Hz is too low for a 10 Hz high-pass"]
    assert not any("unit" in w for w in warnings)
    with open(out / "summary.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["name"] == "chin1hz")
    assert chin[0] in row["warnings"]


# ------------------------------------------------------------------ memory: the gate reads by slices


def test_finite_subsample_equals_the_whole_copy():
    """The quantisation check's sample, taken a block at a time, is the one the whole finite copy gave."""
    from staging.quality import finite_subsample

    rng = np.random.default_rng(5)
    for n, max_samples, block in ((0, 10, 7), (50, 10, 7), (1000, 33, 64), (1000, 2000, 64), (12345, 100, 1000)):
        x = rng.standard_normal(n)
        x[rng.random(n) < 0.2] = np.nan
        x[rng.random(n) < 0.05] = np.inf
        f = x[np.isfinite(x)]
        want = f[::max(1, f.size // max_samples)]
        assert np.array_equal(finite_subsample(x, max_samples, block), want), (n, max_samples, block)


def test_gate_on_calibrated_slices_decides_as_on_the_float64_channel(tmp_path):
    """The gate reads an EDF channel as digital samples calibrated a slice at a time
    (``EdfReader.read_calibrated``): every slice equals the float64 read bit for bit, and every decision
    (per-epoch masks, drop reason and kind, quantisation note; the whole screen) is the one the whole
    float64 channel gives. The night spans more than one gate block (120 epochs) and more than 2^20 samples."""
    from preprocess.core.edf import EdfReader
    from staging.quality import _finite_range, finite_subsample
    from tests.conftest import write_edf
    from tests.eeg_noise import pink

    rng = np.random.default_rng(11)
    fs, n_ep = 256.0, 140
    n = int(n_ep * 30 * fs)
    c4 = pink(rng, n, 20.0)
    c4[int(10 * 30 * fs):int(11 * 30 * fs)] = 0.0  # a flat epoch
    c4[int(20 * 30 * fs):int(21 * 30 * fs):3] = 400.0  # a clipped epoch (the channel's maximum)
    c4[int(130 * 30 * fs) + 100] = -2500.0  # an artefact (and the minimum)
    e1 = np.round(pink(rng, n, 30.0) / 25.0) * 25.0  # coarse steps: a quantisation note
    chin = rng.standard_normal(n) * 5.0  # white noise (no nonphysio check for EMG)
    f4 = rng.standard_normal(n) * 20.0  # white EEG: dropped as non-physiological
    path = write_edf(tmp_path / "gate.edf", {"EEG C4-M1": (c4, fs), "EEG F4-M1": (f4, fs), "EOG E1-M2": (e1, fs),
                                             "EMG Chin": (chin, fs)}, record_duration=2.0)
    kinds = {"EEG C4-M1": "eeg", "EEG F4-M1": "eeg", "EOG E1-M2": "eog", "EMG Chin": "emg"}
    with EdfReader(path) as reader:
        for label, kind in kinds.items():
            whole, sf = reader.read(label)
            lazy, sf2 = reader.read_calibrated(label)
            assert sf == sf2 and len(lazy) == whole.size == n
            for a, b in ((0, 10), (12345, 1 << 20), (n - 7, n + 5), (0, n)):
                assert np.array_equal(lazy[a:b], whole[a:b])
            # the shortcuts from the digital samples (extremes, strided subsample) give the same numbers
            assert lazy.finite_range() == _finite_range(whole) == _finite_range(lazy)
            assert np.array_equal(finite_subsample(lazy, 1000), finite_subsample(whole, 1000))
            limits = reader.physical_range(label)
            q1 = check_channel(label, whole, sf, n_ep, kind, True, 30.0, limits, "uV")
            q2 = check_channel(label, lazy, sf, n_ep, kind, True, 30.0, limits, "uV")
            assert np.array_equal(q1.masks, q2.masks) and (q1.reason, q1.kind, q1.note) == (q2.reason, q2.kind, q2.note)
        assert check_channel("EEG F4-M1", reader.read("EEG F4-M1")[0], fs, n_ep).kind == "nonphysio"
        assert check_channel("EOG E1-M2", reader.read("EOG E1-M2")[0], fs, n_ep, "eog").note.startswith("coarse")
        c4_masks = check_channel("EEG C4-M1", reader.read("EEG C4-M1")[0], fs, n_ep,
                                 limits=reader.physical_range("EEG C4-M1")).masks
        assert [describe_mask(c4_masks[e]) for e in (10, 20, 130, 0)] == ["flat", "saturated", "artefact", "ok"]

        class WholeReads:  # the same reader without read_calibrated: the gate reads whole float64 channels
            labels, start_time = reader.labels, reader.start_time

            def __getattr__(self, name):
                if name == "read_calibrated":
                    raise AttributeError(name)
                return getattr(reader, name)

        cmap = {"C4": ["EEG C4-M1"], "F4": ["EEG F4-M1"], "E1": ["EOG E1-M2"], "Chin": ["EMG Chin"]}
        _, r1 = screen(reader, cmap, "gate")
        _, r2 = screen(WholeReads(), cmap, "gate")
    assert r1.dropped == r2.dropped and "EEG F4-M1" in r1.dropped and r1.warnings == r2.warnings and r1.warnings
    assert r1.channels.keys() == r2.channels.keys()
    assert all(np.array_equal(r1.channels[k].masks, r2.channels[k].masks) for k in r1.channels)
