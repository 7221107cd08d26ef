"""The shared preprocessing pipeline end to end: real Sleep-EDF snippet, derivations, bad inputs, resume."""

import json

import numpy as np
import pytest

from preprocess.core.annotations import read_edfplus_stages
from preprocess.core.dataset import DatasetSpec, Record
from preprocess.core.hdf5 import Recording, is_valid, read_manifest
from preprocess.core.pipeline import process_record, run_dataset, shard
from preprocess.core.signal import process_channel
from preprocess.datasets import get_dataset, registry
from tests.conftest import real_file, write_edf

STAGES = np.array([0, 0, 1, 2, 2, 3, 3, 2, 4, 4, -1, 0])


def sleepedf_fixture(folder, rid="SC4011E0", stages=STAGES, seconds=None, rng_seed=0):
    """A Sleep-EDF-layout recording: PSG EDF + EDF+ hypnogram with R&K stage names."""
    rng = np.random.default_rng(rng_seed)
    seconds = seconds or 30 * len(stages)
    eeg = {label: (rng.normal(0, 20, int(100 * seconds)), 100.0) for label in ("EEG Fpz-Cz", "EEG Pz-Oz")}
    eeg["EOG horizontal"] = (rng.normal(0, 30, int(100 * seconds)), 100.0)
    eeg["EMG submental"] = (rng.normal(0, 5, int(seconds)), 1.0)
    write_edf(folder / f"{rid}-PSG.edf", eeg)
    names = {0: "Sleep stage W", 1: "Sleep stage 1", 2: "Sleep stage 2", 3: "Sleep stage 4", 4: "Sleep stage R",
             -1: "Movement time"}
    ann = [(30.0 * i, 30.0, names[int(s)]) for i, s in enumerate(stages)]
    write_edf(folder / f"{rid[:7]}C-Hypnogram.edf", {"dummy": (np.zeros(len(stages) * 30), 1.0)}, annotations=ann)
    return folder / f"{rid}-PSG.edf"


def test_real_sleepedf_snippet(tmp_path):
    real_file("sleep-edf", "SC4001E0-first5min-PSG.edf")
    src = real_file("sleep-edf", "SC4001E0-first5min-PSG.edf").parent
    spec = get_dataset("sleepedf")
    records = [r for r in spec.find(src) if r.id == "SC4001E0"]
    assert records and records[0].annotation.name == "SC4001EC-Hypnogram.edf" and records[0].subject == "SC00"
    # strict: the hypnogram scores the whole night but the snippet is 5 minutes → one clear error
    res = process_record(spec, records[0], tmp_path)
    assert res.status == "failed" and "SC4001EC-Hypnogram.edf: scoring covers 2650 epochs" in res.reason
    assert not list(tmp_path.rglob("*.h5"))
    # cropping allowed explicitly
    res = process_record(spec, records[0], tmp_path, max_mismatch_epochs=None)
    assert res.status == "done", res.reason
    rec = Recording(tmp_path / "sleepedf" / "SC4001E0.h5")
    assert rec.channels == ["F3", "O1", "E1"] and rec.n_epochs == 10
    assert list(rec.stages) == [0] * 10  # the night starts awake
    assert "EMG submental" in rec.attrs["dropped_channels"]  # 1 Hz envelope cannot be high-passed at 10 Hz
    x = rec.read(0, 10)
    assert abs(x.mean()) < 0.05 and x.std() == pytest.approx(1.0, abs=0.05)


def test_sleepedf_fixture_round_trip_with_workers_and_resume(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(3):
        sleepedf_fixture(src, rid=f"SC40{i}1E0", rng_seed=i)
    results = run_dataset(get_dataset("sleepedf"), src, tmp_path / "h5", workers=2, progress=False)
    assert sorted(r.status for r in results) == ["done"] * 3
    expected = np.where(STAGES == 3, 3, STAGES)
    for row in read_manifest(tmp_path / "h5" / "sleepedf"):
        rec = Recording(row["path"])
        np.testing.assert_array_equal(rec.stages, expected)  # R&K stage 4 → N3, movement → −1
        assert row["n_N3"] == 2 and row["n_unknown"] == 1
    again = run_dataset(get_dataset("sleepedf"), src, tmp_path / "h5", progress=False)
    assert [r.status for r in again] == ["skipped"] * 3


def generic_spec(tmp_path, channel_map):
    return DatasetSpec(
        name="testset", description="test", layout="*.edf", url="", channel_map=channel_map,
        find=lambda src: [Record(p.stem, p.stem, p) for p in sorted(src.glob("*.edf"))])


def test_derivation_is_the_subtraction(tmp_path):
    rng = np.random.default_rng(1)
    c3, m2 = rng.normal(0, 30, 6000), rng.normal(0, 10, 6000) + 5 * np.sin(np.arange(6000) / 50)
    path = write_edf(tmp_path / "a.edf", {"C3": (c3, 100.0), "M2": (m2, 100.0)})
    spec = generic_spec(tmp_path, {"C3": [("C3", "M2")]})
    res = process_record(spec, spec.find(tmp_path)[0], tmp_path / "out", dtype="float32")
    assert res.status == "done", res.reason
    rec = Recording(tmp_path / "out" / "testset" / "a.h5")
    assert json.loads(rec.attrs["montage"]) == {"C3": ["C3", "M2"]}
    from preprocess.core.edf import EdfReader

    reader = EdfReader(path)
    expected = process_channel(reader.read("C3")[0] - reader.read("M2")[0], 100.0, "eeg")
    np.testing.assert_allclose(rec.read(0, 2)[:, 0].ravel(), expected, atol=1e-5)


def test_bad_inputs_fail_with_one_line_and_write_nothing(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    (src / "empty.edf").write_bytes(b"")
    good = write_edf(src / "cut.edf", {"C3-M2": (np.random.default_rng(0).normal(size=9000), 100.0)})
    good.write_bytes(good.read_bytes()[:-4000])
    write_edf(src / "ecg_only.edf", {"ECG": (np.random.default_rng(0).normal(size=9000), 100.0)})
    write_edf(src / "flat.edf", {"C3-M2": (np.zeros(9000), 100.0)})
    write_edf(src / "ok.edf", {"C3-M2": (np.random.default_rng(0).normal(size=9000), 100.0)})
    spec = generic_spec(tmp_path, {"C3": ["C3-M2"]})
    results = {r.record: r for r in run_dataset(spec, src, tmp_path / "out", progress=False)}
    assert results["ok"].status == "done"
    assert "empty.edf: file is empty" in results["empty"].reason
    # issue 9: a file cut in its data is read up to its last complete record (86 of 90 1-s records)
    assert results["cut"].status == "done"
    assert Recording(tmp_path / "out" / "testset" / "cut.h5").n_epochs == 2
    assert "ecg_only.edf: no canonical channel" in results["ecg_only"].reason
    assert "flat.edf: no usable channel" in results["flat"].reason
    for r in results.values():
        assert "\n" not in r.reason
    assert sorted(p.name for p in (tmp_path / "out" / "testset").glob("*.h5")) == ["cut.h5", "ok.h5"]
    assert is_valid(tmp_path / "out" / "testset" / "ok.h5")


@pytest.mark.parametrize("n_scored, status", [(12, "done"), (13, "done"), (11, "done"), (16, "failed"), (8, "failed")])
def test_annotation_longer_or_shorter_than_signal(tmp_path, n_scored, status):
    src = tmp_path / "raw"
    src.mkdir()
    stages = np.resize(STAGES, n_scored)
    sleepedf_fixture(src, stages=stages, seconds=360)  # signal: 12 epochs
    res = run_dataset(get_dataset("sleepedf"), src, tmp_path / "h5", progress=False)[0]
    assert res.status == status
    if status == "failed":
        assert f"scoring covers {n_scored} epochs but the signal has 12" in res.reason
    else:
        got = Recording(tmp_path / "h5" / "sleepedf" / "SC4011E0.h5").stages
        assert len(got) == 12
        np.testing.assert_array_equal(got[: min(12, n_scored)], np.where(stages == 3, 3, stages)[:12])


def test_shards_partition_records():
    recs = list(range(10))
    parts = [shard(recs, f"{i}/3") for i in (1, 2, 3)]
    assert sorted(sum(parts, [])) == recs and parts[0] == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="i/n"):
        shard(recs, "4/3")


def test_list_shows_every_dataset(capsys):
    from preprocess.__main__ import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in registry():
        assert name in out


def test_hypnogram_reader_agrees_with_fixture(tmp_path):
    sleepedf_fixture(tmp_path)
    got = read_edfplus_stages(tmp_path / "SC4011EC-Hypnogram.edf")
    np.testing.assert_array_equal(got, STAGES)


def test_generic_folder_with_auto_montage_matches_simulated_truth(tmp_path):
    import simulate

    truth = simulate.generate(tmp_path / "raw", 3, seed=5, dataset="generic", hours=0.25)
    results = run_dataset(get_dataset("generic"), tmp_path / "raw", tmp_path / "h5", progress=False)
    assert [r.status for r in results] == ["done"] * 3, [r.reason for r in results]
    for t in truth:
        rec = Recording(tmp_path / "h5" / "generic" / f"{t['id']}.h5")
        assert rec.channels == ["F3", "F4", "C3", "C4", "O1", "O2", "E1", "E2", "Chin"]
        np.testing.assert_array_equal(rec.stages, t["stages"][: rec.n_epochs])


@pytest.mark.parametrize("chain", ["antialiased", "published"])
def test_streamed_montage_rows_equal_the_montage(tmp_path, chain):
    """load_montage(consume=...) hands over each kept channel exactly as the whole montage holds it (both
    chains; channels at 256 and 200 Hz, a derivation, a flat one the chain drops), and reports the same
    night length, channels and drops."""
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from tests.eeg_noise import pink

    rng = np.random.default_rng(4)
    n = 40 * 30 * 256
    chans = {"C3": (pink(rng, n, 20.0, 256.0), 256.0), "M2": (pink(rng, n, 5.0, 256.0), 256.0),
             "E1": (pink(rng, n // 256 * 200, 30.0, 200.0), 200.0), "Chin": (np.zeros(n), 256.0)}
    edf = write_edf(tmp_path / "s.edf", chans)
    params = SignalParams(chain=chain)
    for cmap in ({"C3": [["C3", "M2"]], "E1": ["E1"], "Chin": ["Chin"]}, {"C3": ["C3"], "E1": ["E1"]}):
        whole = load_montage(EdfReader(edf), cmap, params, edf.name)
        rows = []
        streamed = load_montage(EdfReader(edf), cmap, params, edf.name,
                                consume=lambda src, row: rows.append((src.canonical, row.copy())))
        assert streamed.signals is None and streamed.n_epochs == whole.n_epochs
        assert streamed.channels == whole.channels == [c for c, _ in rows] and streamed.dropped == whole.dropped
        for (c, row), ref in zip(rows, whole.signals):
            assert len(row) >= ref.size and np.array_equal(row[:ref.size], ref), c
    assert load_montage(EdfReader(edf), {"C3": ["C3"], "Chin": ["Chin"]}, params).dropped.keys() == {"Chin"}
