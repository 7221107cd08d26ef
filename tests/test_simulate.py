"""Simulated PSG: determinism, file formats, annotation round trip and stage physiology markers."""

from __future__ import annotations

import json
from pathlib import Path

import edfio
import mne
import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

import simulate
from simulate import formats, hypnogram, physiology
from simulate.__main__ import main as cli_main

mne.set_log_level("ERROR")
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"

# A short designed night: every stage in blocks, a few movement epochs.
DESIGN = np.array([0] * 12 + [1] * 10 + [2] * 12 + [3] * 12 + [2] * 4 + [4] * 12 + [-1] * 2 + [0] * 4, dtype=np.int8)

# Independent label map (not simulate's own) for the round trip.
LABELS = {
    "Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage N1": 1, "Sleep stage 2": 2, "Sleep stage N2": 2,
    "Sleep stage 3": 3, "Sleep stage 4": 3, "Sleep stage N3": 3, "Sleep stage R": 4,
    "Sleep stage ?": -1, "Movement time": -1,
}


def _stages_from_annotations(path: Path, n_epochs: int) -> np.ndarray:
    ann = mne.read_annotations(str(path))
    out = np.full(n_epochs, -1, dtype=int)
    for onset, dur, text in zip(ann.onset, ann.duration, ann.description):
        if text not in LABELS:
            assert "Lights" in text, text
            continue
        a, n = int(round(onset / 30)), int(round(dur / 30))
        out[a : a + n] = LABELS[text]
    return out


@pytest.fixture(scope="module")
def hmc_design(tmp_path_factory):
    out = tmp_path_factory.mktemp("hmc")
    recs = simulate.generate(out, 2, seed=11, dataset="hmc", stages=[DESIGN])
    return out, recs


# --------------------------------------------------------------------------------------------
# determinism and formats
# --------------------------------------------------------------------------------------------


def _tree_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate.generate(a, 2, seed=5, dataset="generic", hours=0.2)
    simulate.generate(b, 2, seed=5, dataset="generic", hours=0.2)
    simulate.generate(c, 2, seed=6, dataset="generic", hours=0.2)
    ta, tb, tc = _tree_bytes(a), _tree_bytes(b), _tree_bytes(c)
    assert ta == tb
    assert ta["SIM0001.edf"] != tc["SIM0001.edf"]
    info = json.loads(ta["simulation.json"])
    assert info["simulated"] is True and info["seed"] == 5 and info["dataset"] == "generic"
    assert len(info["recordings"]) == 2 and "alpha_freq" in info["recordings"][0]["subject_params"]
    recs = simulate.generate(c, 1, seed=6, dataset="generic", hours=0.2)
    assert (c / "SIM0001.edf").read_bytes() == tc["SIM0001.edf"]  # recording i does not depend on N
    codes = {"?": -1, "W": 0, "1": 1, "2": 2, "3": 3, "R": 4}
    traced = json.loads((c / "simulation.json").read_text())["recordings"][0]["stages"]
    np.testing.assert_array_equal([codes[ch] for ch in traced], recs[0]["stages"])


def test_sleepedf_layout(tmp_path):
    recs = simulate.generate(tmp_path, 3, seed=0, dataset="sleepedf", hours=0.25)
    assert [r["id"] for r in recs] == ["SC4001E0", "SC4002E0", "SC4011E0"]
    assert [r["subject"] for r in recs] == ["SC400", "SC400", "SC401"]
    psg = tmp_path / "SC4001E0-PSG.edf"
    hyp = [f for f in recs[0]["files"] if f.name.endswith("-Hypnogram.edf")][0]
    assert hyp.name.startswith("SC4001E") and psg in recs[0]["files"]
    edf = edfio.read_edf(psg)
    got = {s.label: s.sampling_frequency for s in edf.signals}
    assert got == {"EEG Fpz-Cz": 100, "EEG Pz-Oz": 100, "EOG horizontal": 100, "Resp oro-nasal": 1,
                   "EMG submental": 1, "Temp rectal": 1, "Event marker": 1}
    assert edf.data_record_duration == 30 and edf.duration == len(recs[0]["stages"]) * 30
    raw = mne.io.read_raw_edf(psg)
    assert raw.ch_names[:3] == ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"]
    x = raw.get_data(picks=["EEG Fpz-Cz"])[0]
    assert 5e-6 < x.std() < 100e-6  # volts, EEG-sized
    assert edfio.read_edf(hyp).signals == ()  # annotation-only EDF+


def test_hmc_layout_and_rates(hmc_design):
    out, recs = hmc_design
    assert [r["id"] for r in recs] == ["SN001", "SN002"]
    edf = edfio.read_edf(out / "SN001.edf")
    assert [s.label for s in edf.signals] == ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin",
                                              "EOG E1-M2", "EOG E2-M2", "ECG"]
    assert {s.sampling_frequency for s in edf.signals} == {256}
    assert {s.physical_dimension for s in edf.signals} == {"uV"}
    raw = mne.io.read_raw_edf(out / "SN001.edf")
    assert raw.n_times == len(DESIGN) * 30 * 256
    texts = set(mne.read_annotations(str(out / "SN001_sleepscoring.edf")).description)
    assert {"Lights off@@EEG F4-A1", "Sleep stage N3", "Sleep stage R"} <= texts


def test_generic_label_styles_rates_units(tmp_path):
    simulate.generate(tmp_path, 8, seed=3, dataset="generic", hours=0.1)
    info = json.loads((tmp_path / "simulation.json").read_text())
    styles, units = set(), set()
    for rec in info["recordings"]:
        edf = edfio.read_edf(tmp_path / f"{rec['id']}.edf")
        labels = [s.label for s in edf.signals]
        assert labels == [c["label"] for c in rec["channels"]]
        assert {s.sampling_frequency for s in edf.signals} <= {256, 200, 128, 100}
        assert len(labels) >= 8 and (tmp_path / f"{rec['id']}-Hypnogram.edf").exists()
        styles.add(rec["plan"]["label_style"])
        units |= {s.physical_dimension for s in edf.signals}
        raw = mne.io.read_raw_edf(tmp_path / f"{rec['id']}.edf")  # MNE scales every unit to volts
        eeg = raw.get_data(picks=[0])[0]
        assert 2e-6 < eeg.std() < 200e-6
    assert len(styles) >= 3 and len(units) >= 2


@pytest.mark.parametrize("dataset", ["sleepedf", "hmc", "generic"])
def test_annotations_round_trip(tmp_path, dataset):
    recs = simulate.generate(tmp_path, 2, seed=2, dataset=dataset, stages=[DESIGN])
    for r in recs:
        ann = [f for f in r["files"] if "Hypnogram" in f.name or "sleepscoring" in f.name]
        assert len(ann) == 1
        np.testing.assert_array_equal(_stages_from_annotations(ann[0], len(DESIGN)), r["stages"])
        np.testing.assert_array_equal(r["stages"], DESIGN)
    if dataset == "sleepedf":  # R&K: part of N3 written as stage 4
        texts = set(mne.read_annotations(str(ann[0])).description)
        assert {"Sleep stage 3", "Sleep stage 4", "Movement time"} <= texts


def test_cli(tmp_path, capsys):
    assert cli_main(["--out", str(tmp_path), "--recordings", "1", "--seed", "0", "--hours", "0.1"]) == 0
    assert (tmp_path / "SC4001E0-PSG.edf").exists()
    assert "simulated" in capsys.readouterr().out.lower()


# --------------------------------------------------------------------------------------------
# physiology markers (known answers), measured on the written EDF files. Thresholds leave room:
# over 48 simulated subjects on DESIGN the worst cases were alpha W/N2 3.1x, sigma N2/max(N1, REM)
# 1.5x, delta N3/N2 2.7x (the N2 here borders N3), EMG RMS REM/W 0.19, E1-E2 correlation REM -0.43
# and N3 +0.44, movement/N2 std 5.7x; AASM slow-wave share on F4-M1: N3 median >= 0.25, N2 <= 0.22.
# --------------------------------------------------------------------------------------------


def _epochs(raw, label):
    x = raw.get_data(picks=[label])[0] * 1e6
    return x.reshape(len(DESIGN), -1)


def _band(x, fs, lo, hi, rel=False):
    f, p = welch(x, fs, nperseg=int(4 * fs), axis=-1)
    a = p[:, (f >= lo) & (f < hi)].sum(1)
    return a / p[:, (f >= 0.5) & (f < 35)].sum(1) if rel else a


@pytest.fixture(scope="module")
def hmc_raws(hmc_design):
    out, recs = hmc_design
    return [mne.io.read_raw_edf(out / f"{r['id']}.edf", preload=True) for r in recs]


def _median(v, stage):
    return float(np.median(v[DESIGN == stage]))


def test_alpha_occipital_wake_vs_n2(hmc_raws):
    for raw in hmc_raws:
        a = _band(_epochs(raw, "EEG O2-M1"), 256, 8, 12, rel=True)
        assert _median(a, 0) > 2.0 * _median(a, 2)


def test_sigma_central_n2_vs_n1_rem(hmc_raws):
    for raw in hmc_raws:
        s = _band(_epochs(raw, "EEG C4-M1"), 256, 11, 16)
        assert _median(s, 2) > 1.3 * max(_median(s, 1), _median(s, 4))


def test_delta_n3_vs_n2(hmc_raws):
    for raw in hmc_raws:
        d = _band(_epochs(raw, "EEG F4-M1"), 256, 0.5, 2)
        assert _median(d, 3) > 2.5 * _median(d, 2)


def _slow_wave_fraction(x, fs):
    """AASM N3 measure: share of each epoch covered by 0.5-2 Hz waves > 75 µV peak-to-peak."""
    sos = butter(2, [0.5, 2.0], "bandpass", fs=fs, output="sos")
    out = []
    for e in sosfiltfilt(sos, x, axis=-1):
        zc = np.flatnonzero(np.diff(np.signbit(e)))
        out.append(sum(b - a for a, b in zip(zc[:-2:2], zc[2::2]) if np.ptp(e[a : b + 1]) > 75) / len(e))
    return np.array(out)


def test_n3_meets_aasm_slow_wave_criterion(hmc_raws):
    for raw in hmc_raws:
        f = _slow_wave_fraction(_epochs(raw, "EEG F4-M1"), 256)
        assert _median(f, 3) > 0.2 and _median(f, 2) < 0.5 * _median(f, 3)


def test_chin_emg_rem_below_wake(hmc_raws):
    for raw in hmc_raws:
        x = _epochs(raw, "EMG chin")
        rms = np.sqrt(((x - x.mean(1, keepdims=True)) ** 2).mean(1))
        assert _median(rms, 4) < 0.4 * _median(rms, 0)


def test_eog_conjugate_in_rem(hmc_raws):
    for raw in hmc_raws:
        e1, e2 = _epochs(raw, "EOG E1-M2"), _epochs(raw, "EOG E2-M2")
        rem, n3 = DESIGN == 4, DESIGN == 3
        assert np.corrcoef(e1[rem].ravel(), e2[rem].ravel())[0, 1] < -0.3  # conjugate rapid eye movements
        assert np.corrcoef(e1[n3].ravel(), e2[n3].ravel())[0, 1] > 0.0  # frontal delta reaches both in phase


def test_movement_epochs_carry_artefact(hmc_raws):
    for raw in hmc_raws:
        x = _epochs(raw, "EEG C4-M1")
        assert _median(x.std(1), -1) > 2 * _median(x.std(1), 2)


def test_referencing_unreferenced_channels():
    """Unreferenced C3 and M2 carry common-mode mains; their difference looks like C3-M2."""
    p = physiology.draw_subject_params(np.random.default_rng(0))
    p["line_freq"], p["line_common_uv"] = 50.0, 50.0
    st = np.array([2] * 6)
    sig = physiology.simulate_sites(st, {"C3": ("C3", 256), "M2": ("M2", 256), "C3-M2": ("C3-M2", 256)},
                                    np.random.default_rng(1), p)
    diff = sig["C3"] - sig["M2"]
    f, pr = welch(sig["C3"], 256, nperseg=1024)
    _, pd = welch(diff, 256, nperseg=1024)
    k = np.argmin(np.abs(f - 50))
    assert pr[k] > 100 * pd[k]
    assert np.corrcoef(diff, sig["C3-M2"])[0, 1] > 0.95


def test_simulate_site_shares_sources_between_calls():
    p = physiology.draw_subject_params(np.random.default_rng(4))
    st = np.array([4] * 6)
    e1 = simulate.simulate_site(st, "E1-M2", 100, np.random.default_rng(0), p)
    e2 = simulate.simulate_site(st, "E2-M1", 100, np.random.default_rng(0), p)
    assert e1.shape == (6 * 3000,) and np.corrcoef(e1, e2)[0, 1] < -0.5


def test_sleepedf_emg_envelope_follows_stage(tmp_path):
    simulate.generate(tmp_path, 1, seed=1, dataset="sleepedf", stages=[DESIGN])
    emg = edfio.read_edf(tmp_path / "SC4001E0-PSG.edf").get_signal("EMG submental").data
    ep = emg.reshape(len(DESIGN), 30).mean(1)
    assert emg.min() >= -0.01 and _median(ep, 4) < 0.5 * _median(ep, 0)


# --------------------------------------------------------------------------------------------
# hypnograms
# --------------------------------------------------------------------------------------------


def test_markov_hypnogram():
    h1 = hypnogram.markov_hypnogram(960, np.random.default_rng(0))
    h2 = hypnogram.markov_hypnogram(960, np.random.default_rng(0))
    np.testing.assert_array_equal(h1.stages, h2.stages)
    assert len(h1) == 960 and set(np.unique(h1.stages)) <= {-1, 0, 1, 2, 3, 4}
    np.testing.assert_allclose(hypnogram.MARKOV_TRANSITIONS.sum(axis=2), 1.0, atol=1e-9)
    n3 = [np.mean(hypnogram.markov_hypnogram(960, np.random.default_rng(s)).stages[:320] == 3) for s in range(5)]
    n3_late = [np.mean(hypnogram.markov_hypnogram(960, np.random.default_rng(s)).stages[640:] == 3) for s in range(5)]
    assert np.mean(n3) > np.mean(n3_late)  # more N3 early
    first_n2 = np.argmax(h1.stages == 2)
    assert not (h1.stages[:first_n2] == 4).any()  # no sleep-onset REM


@pytest.mark.skipif(not (REAL / "sleep-edf" / "hypnograms").is_dir(), reason="real hypnograms not present")
def test_real_hypnograms_cropped_and_markov_fit():
    files = hypnogram.find_real_hypnograms(REAL)
    assert len(files) >= 30
    h = hypnogram.load_real_hypnogram(REAL / "sleep-edf" / "hypnograms" / "SC4001EC-Hypnogram.edf")
    onset = np.argmax(h.stages >= 1)
    last = len(h) - 1 - np.argmax(h.stages[::-1] >= 1)
    assert onset <= 60 and len(h) - 1 - last <= 60 and 700 < len(h) < 1000
    assert h.stage4.any() and (h.stages == 3).sum() >= h.stage4.sum()
    fit = hypnogram.fit_markov([hypnogram.load_real_hypnogram(f) for f in files])
    np.testing.assert_allclose(fit["transitions"], hypnogram.MARKOV_TRANSITIONS, atol=0.002)


def test_edf_helpers():
    assert formats.record_duration([256, 100, 1]) == 1 and formats.record_duration([0.5, 100]) == 2
    for m in [3.3e-5, 0.00042, 7.7, 345.0, 12000.0]:
        v = formats.nice_physical_max(m)
        assert v >= m and len(str(-v)) <= 8
    ev = formats.stage_events(np.array([0, 0, 1, -1, 2]), {0: "W", 1: "N1", 2: "N2", -1: None}, merge_runs=True)
    assert ev == [(0.0, 60.0, "W"), (60.0, 30.0, "N1"), (120.0, 30.0, "N2")]
    with pytest.raises(ValueError, match="unknown dataset"):
        formats.get_profile("nope")


# --------------------------------------------------------------------------------------------
# events table
# --------------------------------------------------------------------------------------------


def test_events_table_matches_stages_and_sites(hmc_design):
    out, recs = hmc_design
    rec = recs[0]
    psg = rec["files"][0]
    assert rec["events"] == psg.with_name(psg.stem + ".events.tsv") and rec["events"].exists()
    ev = simulate.read_events(psg)
    assert ev == simulate.read_events(rec["events"])
    assert [e["onset"] for e in ev] == sorted(e["onset"] for e in ev)
    stage_at = lambda t: int(DESIGN[min(int(t // 30), len(DESIGN) - 1)])  # noqa: E731
    kinds = {e["kind"] for e in ev}
    assert {"spindle", "kcomplex", "rem", "blink", "twitch"} <= kinds
    for e in ev:
        assert 0 <= e["onset"] < len(DESIGN) * 30 and e["duration"] > 0
        st = stage_at(e["onset"])
        if e["kind"] == "rem":
            assert st == 4, e
        if e["kind"] in ("spindle", "kcomplex"):
            assert st in (1, 2, 3), e
        if e["kind"] in ("rem", "blink", "saccade", "sem"):
            assert {"E1-M2", "E2-M2"} <= set(e["channels"]), e
        if e["kind"] == "twitch":
            assert e["channels"] == ["CHIN"]
        if e["kind"] == "spindle":
            assert "C4-M1" in e["channels"] and "CHIN" not in e["channels"]
    # one spindle per logged onset really is in the signal: 11-16 Hz power rises around it
    raw = mne.io.read_raw_edf(psg, preload=True)
    x = raw.get_data(picks=["EEG C4-M1"])[0] * 1e6
    fs = raw.info["sfreq"]
    sig = sosfiltfilt(butter(4, [11, 16], "bandpass", fs=fs, output="sos"), x)
    sp = [e for e in ev if e["kind"] == "spindle" and e["duration"] > 0.8]
    inside = np.mean([np.std(sig[int(e["onset"] * fs) : int((e["onset"] + e["duration"]) * fs)]) for e in sp])
    n2 = np.flatnonzero(DESIGN == 2)
    assert inside > 1.5 * np.std(sig[int(n2[0] * 30 * fs) : int((n2[-1] + 1) * 30 * fs)])


def test_read_events_rejects_bad_table(tmp_path):
    p = tmp_path / "x.events.tsv"
    p.write_text("onset\tduration\tkind\n1\t2\tspindle\n")
    with pytest.raises(ValueError, match="x.events.tsv"):
        simulate.read_events(p)
    p.write_text("onset\tduration\tkind\tchannels\n1\tlong\tspindle\tC3\n")
    with pytest.raises(ValueError, match="line 2"):
        simulate.read_events(p)


# --------------------------------------------------------------------------------------------
# realism markers (calibrated on ../shared/data/real; see docs/simulator.md)
# --------------------------------------------------------------------------------------------


def _aperiodic_exponent(x, fs):
    """Minus the slope of log PSD vs log f over 2-24 Hz without 8-16 Hz (alpha/sigma peaks)."""
    f, p = welch(x, fs, nperseg=int(4 * fs), axis=-1)
    fit = (f >= 2) & (f <= 24) & ~((f >= 8) & (f <= 16))
    return np.array([-np.polyfit(np.log10(f[fit]), np.log10(row[fit]), 1)[0] for row in p])


def test_aperiodic_exponent_steepens_with_depth(hmc_raws):
    # real C3-A1 (DREAMS): W 1.1-1.7, N2 2.3-2.8, N3 2.6-2.9 with this fit
    for raw in hmc_raws:
        e = _aperiodic_exponent(_epochs(raw, "EEG C3-M2"), 256)
        assert _median(e, 0) < 1.9 < _median(e, 2) < _median(e, 3)


def test_beta_small_in_nrem(hmc_raws):
    # real N2 relative 16-25 Hz power at C3-A1: 0.008-0.013 (old simulator: 0.045-0.06)
    for raw in hmc_raws:
        b = _band(_epochs(raw, "EEG C3-M2"), 256, 16, 25, rel=True)
        assert _median(b, 2) < 0.025 and _median(b, 3) < _median(b, 2)


def test_rem_eye_movements_are_brief_partly_correlated_deflections():
    p = physiology.draw_subject_params(np.random.default_rng(5))
    p["rem_density"], p["eog_scale"] = 1.0, 1.0
    st = np.array([4] * 40)
    ev: list = []
    sig = physiology.simulate_sites(st, {"E1-M2": ("E1-M2", 100), "E2-M2": ("E2-M2", 100)},
                                    np.random.default_rng(0), p, events=ev)
    sos = butter(2, [0.3, 5.0], "bandpass", fs=100, output="sos")
    loc, roc = (sosfiltfilt(sos, sig[k] * 1e6) for k in ("E1-M2", "E2-M2"))
    r = np.corrcoef(loc, roc)[0, 1]
    assert -0.95 < r < -0.6  # real LOC/ROC in REM: -0.84; a pure dipole would give -1
    rems = [e for e in ev if e["kind"] == "rem"]
    assert len(rems) > 40 and all(0.1 < e["duration"] < 0.8 for e in rems)
    peaks = [np.ptp(loc[int(e["onset"] * 100) : int(e["onset"] * 100) + 60]) for e in rems]
    assert 40 < np.median(peaks) < 250  # µV peak-to-peak, real REMs ~80-90 µV peak


def test_alpha_mainly_occipital_in_wake(hmc_raws):
    for raw in hmc_raws:
        o = _band(_epochs(raw, "EEG O2-M1"), 256, 8, 12)
        c = _band(_epochs(raw, "EEG C4-M1"), 256, 8, 12)
        assert _median(o, 0) > 2.0 * _median(c, 0)


def test_hypnogram_epochs_by_midpoint_rule():
    # W [0, 16), N1 [16, 44), N2 [44, 90): the 15-s midpoint is W, 45 and 75 s are N2 - the N1
    # event covers no midpoint (the old round(onset / 30) rule gave it epoch 1)
    hyp = hypnogram.annotations_to_stages([0, 16, 44], [16, 28, 46], ["Sleep stage W", "Sleep stage 1", "Sleep stage 2"])
    np.testing.assert_array_equal(hyp.stages, [0, 2, 2])
    hyp = hypnogram.annotations_to_stages([0, 30], [30, 60], ["Sleep stage 3", "Sleep stage 4"])
    np.testing.assert_array_equal(hyp.stages, [3, 3, 3])
    np.testing.assert_array_equal(hyp.stage4, [False, True, True])


def test_spread_widens_variation_deterministically():
    a = [physiology.draw_subject_params(np.random.default_rng(i), spread=2.0) for i in range(40)]
    b = [physiology.draw_subject_params(np.random.default_rng(i)) for i in range(40)]
    assert a[3] == physiology.draw_subject_params(np.random.default_rng(3), spread=2.0)
    assert np.std([x["tilt"] for x in a]) > 1.5 * np.std([x["tilt"] for x in b])
    assert max(x["noise_uv"] for x in a) > max(x["noise_uv"] for x in b)


# --- what users have (issue 24): the field profile, excerpts, restless wake after sleep onset ---


def test_field_profile_covers_rates_montages_and_channel_counts():
    profile = formats.get_profile("field")
    plans = [profile.plan(i, np.random.default_rng([7, i])) for i in range(300)]
    rates = {c.sfreq for p in plans for c in p.channels}
    assert {50.0, 512.0} <= rates and rates <= {50.0, 64.0, 100.0, 128.0, 200.0, 250.0, 256.0, 500.0, 512.0}
    assert {"ipsi", "bipolar", "unref", "dreams"} <= {p.extra["label_style"] for p in plans}
    counts = set()
    for p in plans:
        sites = [physiology.parse_site(c.site) for c in p.channels]
        signals = [s for s in sites if s[0] not in ("M1", "M2")]  # unreferenced mastoids are references
        assert len(signals) == p.extra["n_signals"]
        assert any(a not in ("E1", "E2", "CHIN") for a, _ in signals), p.extra  # at least one EEG
        if any(b is None and a not in ("CHIN", "M1", "M2") for a, b in sites) and p.extra["label_style"] != "unref":
            assert {"M1", "M2"} <= {a for a, _ in sites}, p.extra  # raw styles keep their mastoids
        counts.add(len(signals))
    assert counts == set(range(1, 10))
    share = np.mean(["excerpt_epochs" in p.extra for p in plans])
    assert 0.25 < share < 0.45  # 35 % of recordings are 30-min excerpts


def test_excerpt_starts_asleep_and_keeps_length():
    from simulate.generator import _excerpt

    st = np.array([0] * 50 + [1] * 5 + [2] * 100 + [0] * 20, dtype=np.int8)
    hyp = hypnogram.Hypnogram(st, np.zeros(len(st), bool))
    for s in range(20):
        ex = _excerpt(hyp, 60, np.random.default_rng(s))
        a = ex.meta["excerpt_start_epoch"]
        assert len(ex) == 60 and st[a] >= 1 and np.array_equal(ex.stages, st[a : a + 60])
    short = hypnogram.Hypnogram(st[:40], np.zeros(40, bool))
    assert _excerpt(short, 60, np.random.default_rng(0)) is short


def test_wake_after_sleep_onset_is_louder_than_wake_before():
    # real DREAMS C3-A1: wake before sleep ~8 µV, wake inside the excerpts ~17 µV (0.3-20 Hz SD)
    st = np.r_[np.zeros(20, int), np.full(20, 2), np.zeros(20, int)]
    sos = butter(4, [0.3, 20.0], "bandpass", fs=100, output="sos")
    before, after = [], []
    for s in range(4):
        rng = np.random.default_rng([1, s])
        x = physiology.simulate_sites(st, {"x": ("C3-M1", 100.0)}, rng, physiology.draw_subject_params(rng))["x"]
        sd = sosfiltfilt(sos, x * 1e6).reshape(60, 3000).std(axis=1)
        before.append(sd[:20])
        after.append(sd[40:])
    assert np.median(np.concatenate(after)) > 1.5 * np.median(np.concatenate(before))


def test_field_recordings_preprocess_with_the_generic_reader(tmp_path):
    from preprocess.__main__ import main as preprocess_main

    recs = simulate.generate(tmp_path / "raw", 4, seed=3, dataset="field", hours=0.5)
    assert preprocess_main(["generic", "--src", str(tmp_path / "raw"), "--dst", str(tmp_path / "h5")]) in (0, None)
    rows = (tmp_path / "h5" / "generic" / "manifest.csv").read_text().splitlines()[1:]
    assert len(rows) == len(recs)
