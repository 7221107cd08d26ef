"""DCSM, DOD-H, DOD-O, HMC, ISRUC, SVUH (UCDDB) and PhysioNet/CinC 2018: simulated raw releases
(simulate.raw_misc) through the shared pipeline, checked epoch by epoch against the truth; the
HMC run uses the real SN001 scoring file. Also the non-EDF readers of preprocess.core.sources."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from preprocess.core.annotations import AnnotationError, read_edf_start
from preprocess.core.dataset import Record
from preprocess.core.hdf5 import Recording, read_manifest
from preprocess.core.pipeline import run_dataset
from preprocess.core.sources import (
    Hdf5Source,
    SourceError,
    WfdbSource,
    read_dod_hypnogram,
    read_sample_stages,
    read_wfdb_header,
)
from preprocess.datasets import get_dataset
from simulate import raw_misc
from tests.conftest import real_file

STAGE_NAMES = ("W", "N1", "N2", "N3", "REM")


@pytest.fixture(autouse=True, scope="module")
def _quiet_preprocess_log():
    """The simulated sources warn by design; silenced for this module only (restored afterwards, so
    other modules' tests see the logger as configured)."""
    logger = logging.getLogger("preprocess")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def run(name: str, src: Path, dst: Path) -> dict:
    results = run_dataset(get_dataset(name), src, dst, progress=False)
    return {r.record: r for r in results}


def check(name: str, truths: list[dict], dst: Path, results: dict) -> None:
    """Every truth recording is done and its file and manifest row match the truth."""
    rows = {r["recording"]: r for r in read_manifest(dst / name)}
    for t in truths:
        res = results[t["id"]]
        assert res.status == "done", (t["id"], res.reason)
        with Recording(dst / name / f"{t['id']}.h5") as rec:
            attrs = rec.attrs
            assert rec.channels == t["channels"]
            assert rec.n_epochs == len(t["stages"])
            assert rec.read(0, 1).shape == (1, len(t["channels"]), 3000)
            np.testing.assert_array_equal(rec.stages, t["stages"])
            assert attrs["dataset"] == name and attrs["subject"] == t["subject"]
            assert rec.labels == t["labels"]
            montage = json.loads(attrs["montage"])
            assert set(montage) == set(t["channels"])
            for canon, used in montage.items():
                if canon in t["derived"]:
                    assert used == t["derived"][canon], canon
                else:
                    assert isinstance(used, str), (canon, used)
            if t["lights"] is None:
                assert "lights" not in attrs
            else:
                np.testing.assert_allclose(attrs["lights"], t["lights"], atol=1e-6)
            assert list(attrs["source_files"]) == [Path(f).name for f in t["files"] if Path(f).suffix != ".hea"]
        row = rows[t["id"]]
        assert row["subject"] == t["subject"] and row["n_epochs"] == len(t["stages"])
        assert row["channels"] == t["channels"] and row["labels"] == t["labels"]
        for code, stage in enumerate(STAGE_NAMES):
            assert row[f"n_{stage}"] == int(np.sum(t["stages"] == code))
        assert row["n_unknown"] == int(np.sum(t["stages"] < 0))


def failed(results: dict, rid: str, *fragments: str) -> None:
    res = results[rid]
    assert res.status == "failed", (rid, res)
    for frag in fragments:
        assert frag in res.reason, (frag, res.reason)


# ---------------------------------------------------------------------------------- datasets

def test_dcsm(tmp_path):
    src = tmp_path / "raw"
    truths = raw_misc.write_dcsm(src, np.random.default_rng(1))
    assert any((t["stages"] < 0).any() for t in truths)  # a gap in hypnogram.ids
    broken = src / "data" / "sleep" / "DCSM" / "tpbroken"
    broken.mkdir()
    (broken / "psg.edf").write_bytes(b"")
    (broken / "hypnogram.ids").write_text("0,30,W\n")
    results = run("dcsm", src, tmp_path / "out")
    check("dcsm", truths, tmp_path / "out", results)
    failed(results, "tpbroken", "psg.edf", "empty")
    assert "tpbroken" not in {r["recording"] for r in read_manifest(tmp_path / "out" / "dcsm")}


@pytest.mark.parametrize("name", ["dodh", "dodo"])
def test_dod(tmp_path, name):
    src = tmp_path / "raw"
    truths = getattr(raw_misc, f"write_{name}")(src, np.random.default_rng(2))
    (src / "0000dead-beef.h5").write_bytes(b"not an hdf5 file at all")
    with h5py.File(src / "nohypno.h5", "w") as f:  # signals but no consensus hypnogram
        f.create_dataset("signals/eeg/C3_M2", data=np.random.default_rng(0).standard_normal(250 * 60))
        f["signals/eeg"].attrs["fs"] = 250.0
    results = run(name, src, tmp_path / "out")
    check(name, truths, tmp_path / "out", results)
    failed(results, "0000dead-beef", "0000dead-beef.h5")
    failed(results, "nohypno", "nohypno.h5", "hypnogram")
    with h5py.File(truths[0]["files"][0]) as f:
        posix = float(f.attrs["start_time"])
    utc = dt.datetime.fromtimestamp(posix, dt.timezone.utc).replace(tzinfo=None)  # naive UTC
    assert Hdf5Source(truths[0]["files"][0]).start_time == utc
    with Recording(tmp_path / "out" / name / f"{truths[0]['id']}.h5") as rec:
        assert rec.attrs["start_time"] == utc.isoformat()


def test_hmc_real_scoring_file(tmp_path):
    real = real_file("hmc", "SN001_sleepscoring.edf")
    spec = get_dataset("hmc")
    record = Record(id="SN001", subject="SN001", signal=tmp_path / "SN001.edf", annotation=real)
    stages, lights = spec.read_stages(record, read_edf_start(real))  # lights come back with the stages
    counts = {s: int(np.sum(stages == c)) for c, s in enumerate(STAGE_NAMES)}
    assert counts == {"W": 151, "N1": 109, "N2": 430, "N3": 23, "REM": 141}
    assert len(stages) == 854 and not (stages < 0).any()
    np.testing.assert_allclose(lights, (33.43, 25618.74))
    assert "lights" not in record.extra
    # a PSG starting 60 s before the scoring shifts stages and lights by two epochs / 60 s
    shifted, lights = spec.read_stages(record, read_edf_start(real) - dt.timedelta(seconds=60))
    assert shifted[:2].tolist() == [-1, -1] and np.array_equal(shifted[2:], stages)
    np.testing.assert_allclose(lights, (93.43, 25678.74))


def test_hmc_pipeline(tmp_path):
    real = real_file("hmc", "SN001_sleepscoring.edf")
    src = tmp_path / "raw"
    # SN001: full night spanning the real scoring (cheap noise, 3 of the 8 channels to stay fast);
    # SN002: short simulated night with all HMC channels and synthetic lights events
    truths = raw_misc.write_hmc(src, np.random.default_rng(3), n_recordings=1, physiology=False, scoring=real,
                                channels=["EEG C3-M2", "EOG E1-M2", "EMG chin"])
    truths += raw_misc.write_hmc(src / "more", np.random.default_rng(4), n_recordings=1, first_number=2)
    noise = np.random.default_rng(5).standard_normal(256 * 60) * 1e-5
    raw_misc.write_edf(src / "SN003.edf", {"EEG C3-M2": (noise, 256)}, dt.datetime(2001, 1, 1))  # no scoring
    results = run("hmc", src, tmp_path / "out")
    check("hmc", truths, tmp_path / "out", results)
    rows = {r["recording"]: r for r in read_manifest(tmp_path / "out" / "hmc")}
    assert (rows["SN001"]["n_W"], rows["SN001"]["n_N1"], rows["SN001"]["n_N2"], rows["SN001"]["n_N3"],
            rows["SN001"]["n_REM"]) == (151, 109, 430, 23, 141)
    failed(results, "SN003", "SN003_sleepscoring.edf", "missing")


def test_isruc(tmp_path):
    src = tmp_path / "raw"
    truths = raw_misc.write_isruc(src, np.random.default_rng(6))
    assert {t["id"] for t in truths} == {"sg1-1", "sg1-2", "sg2-1-s1", "sg2-1-s2", "sg3-1"}
    assert {t["subject"] for t in truths} == {"sg1-1", "sg1-2", "sg2-1", "sg3-1"}  # sessions share a subject
    # subgroup I subject 9: scorer files missing -> failed; subject 8: only scorer 2 -> used, labelled
    for n in (8, 9):
        folder = src / "subgroupI" / str(n)
        folder.mkdir()
        (folder / f"{n}.rec").write_bytes(truths[0]["files"][0].read_bytes())
    (src / "subgroupI" / "8" / "8_2.txt").write_text("\n".join(["0"] * len(truths[0]["stages"])) + "\n")
    results = run("isruc", src, tmp_path / "out")
    check("isruc", truths, tmp_path / "out", results)
    failed(results, "sg1-9", "9_1.txt", "missing")
    with Recording(tmp_path / "out" / "isruc" / "sg1-8.h5") as rec:
        assert rec.labels == {"subgroup": 1, "scorer": 2} and (rec.stages == 0).all()


def test_svuh(tmp_path):
    src = tmp_path / "raw"
    truths = raw_misc.write_svuh(src, np.random.default_rng(7), n_recordings=3, minutes=14)
    codes = [int(x) for x in (src / "files" / "ucddb002_stage.txt").read_text().split()]
    assert {4, 5} <= set(codes) and {6, 7} <= set(codes)  # R&K S3+S4 -> N3; artifact/indeterminate -> -1
    # the .rec files are EDF by content; a stage file with an unknown code fails with file and line
    (src / "files" / "ucddb005_stage.txt").write_text("0\n0\n9\n")
    results = run("svuh", src, tmp_path / "out")
    check("svuh", truths[:2], tmp_path / "out", results)
    failed(results, "ucddb005", "ucddb005_stage.txt", "line 3", "'9'")


def test_svuh_code_table(tmp_path):
    path = tmp_path / "ucddb099_stage.txt"
    path.write_text("0\n1\n2\n3\n4\n5\n6\n7\n")
    stages = get_dataset("svuh").read_stages(Record("ucddb099", "ucddb099", tmp_path / "x.rec", path), None)
    assert stages.tolist() == [0, 4, 1, 2, 3, 3, -1, -1]  # W, REM, S1, S2, S3, S4, artifact, indeterminate


def test_physionet2018(tmp_path):
    src = tmp_path / "raw"
    truths = raw_misc.write_physionet2018(src, np.random.default_rng(8), n_recordings=3)
    (truths[2]["files"][2]).unlink()  # training record without its -arousal.mat
    results = run("physionet2018", src, tmp_path / "out")
    assert not any(r.startswith("te") for r in results)  # unscored test set is skipped
    check("physionet2018", truths[:2], tmp_path / "out", results)
    failed(results, truths[2]["id"], f"{truths[2]['id']}-arousal.mat", "missing")


# ---------------------------------------------------------------------------------- readers

def test_wfdb_header_and_physical_units(tmp_path):
    hea = tmp_path / "tr05-1176.hea"
    hea.write_text("tr05-1176 3 200 4\n"
                   "tr05-1176.mat 16+24 1/uV 16 0 6 -22 0 F3-M2\n"
                   "tr05-1176.mat 16+24 655.35(-32768)/% 16 0 -1 0 0 SaO2\n"
                   "tr05-1176.mat 16+24 1000/mV 16 0 5 9 0 ECG\n# comment\n")
    h = read_wfdb_header(hea)
    assert (h.n_signals, h.sfreq, h.n_samples, h.labels) == (3, 200.0, 4, ["F3-M2", "SaO2", "ECG"])
    assert (h.signals[0].fmt, h.signals[0].byte_offset, h.signals[0].units) == ("16", 24, "uV")
    assert (h.signals[1].gain, h.signals[1].baseline) == (655.35, -32768)
    import scipy.io

    val = np.array([[10, -20, 30, 0], [-32768, 32767, 0, 100], [1000, -500, 0, 2]], dtype=np.int16)
    scipy.io.savemat(tmp_path / "tr05-1176.mat", {"val": val}, format="4")
    src = WfdbSource(hea)
    x, fs = src.read("F3-M2")
    assert fs == 200.0
    np.testing.assert_allclose(x, [10e-6, -20e-6, 30e-6, 0.0])
    np.testing.assert_allclose(src.read("ECG")[0], [1e-3, -0.5e-3, 0, 2e-6])
    sao2 = (np.array([-32768, 32767, 0, 100]) + 32768) / 655.35  # (digital - baseline) / gain, in %
    np.testing.assert_allclose(src.read("SaO2")[0], sao2)  # issue 9: a non-voltage unit stays in its unit (%)
    # the same samples read as a WFDB format-16 .dat (byte offset 24) give the same values
    (tmp_path / "rec.dat").write_bytes(b"\0" * 24 + val.T.astype("<i2").tobytes())
    dat = tmp_path / "rec.hea"
    dat.write_text(hea.read_text().replace("tr05-1176.mat", "rec.dat").replace("tr05-1176 3", "rec 3"))
    np.testing.assert_allclose(WfdbSource(dat).read("F3-M2")[0], x)
    # truncated signal file
    dat.write_text(dat.read_text().replace("rec 3 200 4", "rec 3 200 9"))
    with pytest.raises(SourceError, match="rec.dat: truncated"):
        WfdbSource(dat).read("ECG")


def test_sample_stages_majority_ties_and_undefined(tmp_path):
    fs, spe = 2.0, 60  # 30 s at 2 Hz
    per = np.concatenate([np.full(spe, 0), np.full(40, 2), np.full(20, 4), np.full(30, 3), np.full(30, 1),
                          np.full(spe, -1), np.full(spe // 2, 4)])  # last: partial epoch, dropped
    keys = {0: "wake", 1: "nonrem1", 2: "nonrem2", 3: "nonrem3", 4: "rem", -1: "undefined"}
    path = raw_misc.write_mat73(tmp_path / "x-arousal.mat",
                                {f"data/sleep_stages/{k}": (per == c).astype(np.uint8)[None, :] for c, k in keys.items()})
    assert read_sample_stages(path, fs).tolist() == [0, 2, -1, -1]  # majority N2; 30/30 tie; undefined
    with pytest.raises(AnnotationError, match="not a MATLAB v7.3"):
        (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file")
        read_sample_stages(tmp_path / "bad.mat", fs)


def test_dod_hypnogram_codes(tmp_path):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f["hypnogram"] = np.array([-1, 0, 1, 2, 3, 4])
    assert read_dod_hypnogram(path).tolist() == [-1, 0, 1, 2, 3, 4]
    with h5py.File(path, "w") as f:
        f["hypnogram"] = np.array([0, 5])
    with pytest.raises(AnnotationError, match="a.h5: hypnogram epoch 1 has unknown code 5"):
        read_dod_hypnogram(path)


def test_hdf5_source_rates_units_and_description(tmp_path):
    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as f:
        f["signals/eeg/C3_M2"] = np.array([1.0, 2.0])           # rate from the description JSON
        f["signals/emg/EMG"] = np.array([3.0])
        f["signals/emg/EMG"].attrs["fs"] = 500.0               # dataset attribute wins
        f["signals/emg/EMG"].attrs["unit"] = "mV"
        f["signals/eog/EOG1"] = np.array([4.0])                 # nothing recorded -> default
        f.attrs["description"] = json.dumps([{"path": "signals/eeg/C3_M2", "fs": 128, "unit": "uV"}])
    src = Hdf5Source(path, default_sfreq=250.0)
    assert sorted(src.labels) == ["C3_M2", "EMG", "EOG1"] and src.start_time is None
    np.testing.assert_allclose(src.read("C3_M2")[0], [1e-6, 2e-6])
    assert src.read("C3_M2")[1] == 128.0 and src.read("EMG") == (pytest.approx([3e-3]), 500.0)
    assert src.read("EOG1")[1] == 250.0
    with pytest.raises(SourceError, match="has no sampling rate"):
        Hdf5Source(path).read("EOG1")
