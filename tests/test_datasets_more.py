"""STAGES, MASS SS1/SS3, BOAS and MNC modules on faithful fixtures; preprocess.sh; kill-and-resume.

Fixtures (simulate/raw_more.py) are tiny recordings in each dataset's public layout; every test
runs the real pipeline and compares the written file with the fixture's ground truth epoch by
epoch, including signal/label alignment (a 12 Hz burst written at the start of one scored epoch
must come out at the start of the same output epoch).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from preprocess.core.dataset_helpers import clock_time, id_key, read_table
from preprocess.core.hdf5 import Recording, is_valid, read_manifest
from preprocess.core.pipeline import run_dataset
from preprocess.datasets import get_dataset, registry
from preprocess.datasets.mnc import diagnosis_label
from simulate import raw_more

ROOT = Path(__file__).resolve().parents[1]


def run(name, src, dst):
    return {r.record: r for r in run_dataset(get_dataset(name), src, dst, progress=False)}


def check_outputs(dst: Path, name: str, truths: list[dict]) -> None:
    rows = {r["recording"]: r for r in read_manifest(dst / name)}
    for t in truths:
        rec = Recording(dst / name / f"{t['id']}.h5")
        assert rec.channels == t["channels"], t["id"]
        montage = json.loads(rec.attrs["montage"])
        for canonical, pair in t["derived"].items():
            assert montage[canonical] == pair, (t["id"], canonical)
        assert not [v for c, v in montage.items() if isinstance(v, list) and c not in t["derived"]], montage
        assert rec.attrs["subject"] == t["subject"]
        assert rec.labels == t["labels"], t["id"]
        row = rows[t["id"]]
        assert row["subject"] == t["subject"] and row["labels"] == t["labels"] and row["n_epochs"] == rec.n_epochs
        if t["stages"] is None:
            assert rec.stages is None and row["scored"] == 0
        else:
            np.testing.assert_array_equal(rec.stages, t["stages"], err_msg=t["id"])
            assert row["scored"] == 1 and row["n_unknown"] == int((t["stages"] < 0).sum())
        if t["lights"] is None:
            assert "lights" not in rec.attrs
        else:
            np.testing.assert_allclose(rec.attrs["lights"], t["lights"], atol=1e-3)
        if t["marker"]:
            channel, epoch = t["marker"]
            x = rec.read(0, rec.n_epochs, [channel])[:, 0, :].ravel()
            rms = np.sqrt((x[: len(x) // 100 * 100].reshape(-1, 100) ** 2).mean(axis=1))
            assert int(rms.argmax()) in (30 * epoch, 30 * epoch + 1), (t["id"], int(rms.argmax()), 30 * epoch)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def test_clock_times_ids_and_diagnoses():
    assert clock_time("22:31:05") == (None, 22 * 3600 + 31 * 60 + 5)
    assert clock_time("5/22/2018 8:16:00 PM") == (dt.date(2018, 5, 22), 20 * 3600 + 16 * 60)
    assert clock_time("12:00:30 AM")[1] == 30 and clock_time("2019-01-09 00:00:01.5")[1] == 1.5
    with pytest.raises(ValueError):
        clock_time("Wake")
    assert id_key("Sub01") == id_key("SUB001") and id_key("ssc_4708_1") == id_key("SSC 4708 1")
    assert id_key("chc001") != id_key("chp001")
    assert [diagnosis_label(t) for t in ("NON-NARCOLEPSY CONTROL", "T1 NARCOLEPSY", "OTHER HYPERSOMNIA",
                                         "Type 1 narcolepsy (NT1)")] == [
        "non-narcolepsy control", "type 1 narcolepsy", "other hypersomnia", "type 1 narcolepsy"]


def test_xlsx_and_tsv_tables(tmp_path):
    raw_more.write_xlsx(tmp_path / "t.xlsx", [["ID", "Diagnosis", "CSF hypocretin-1"], ["SUB001", "T1 NARCOLEPSY", 12.0],
                                             ["N0020", "NON-NARCOLEPSY CONTROL", None]])
    assert read_table(tmp_path / "t.xlsx") == [
        {"ID": "SUB001", "Diagnosis": "T1 NARCOLEPSY", "CSF hypocretin-1": "12"},
        {"ID": "N0020", "Diagnosis": "NON-NARCOLEPSY CONTROL", "CSF hypocretin-1": ""}]
    (tmp_path / "p.tsv").write_text("participant_id\tpid\nsub-1\t88\n")
    assert read_table(tmp_path / "p.tsv") == [{"participant_id": "sub-1", "pid": "88"}]


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------

def test_stages_all_csv_styles_alignment_lights_and_bad_files(tmp_path):
    src = tmp_path / "stages"
    truths = raw_more.write_stages(src, np.random.default_rng(1), n_recordings=3)
    # a zero-byte EDF and a recording whose scoring file is missing: failed with the reason, rest done
    (src / "STAGES PSGs" / "BOGN" / "BOGN00099.edf").write_bytes(b"")
    shutil.copy(src / "STAGES PSGs" / "BOGN" / "BOGN00001.csv", src / "STAGES PSGs" / "BOGN" / "BOGN00099.csv")
    shutil.copy(src / "STAGES PSGs" / "GSSA" / "GSSA00003.edf", src / "STAGES PSGs" / "GSSA" / "GSSA00098.edf")
    (src / "STAGES PSGs" / "GSSA" / "GSSA00098_MSLT.edf").write_bytes(b"")  # MSLT naps are not nights: ignored
    res = run("stages", src, tmp_path / "h5")
    assert {t["id"] for t in truths} <= {k for k, r in res.items() if r.status == "done"}
    assert res["BOGN00099"].status == "failed" and "BOGN00099.edf" in res["BOGN00099"].reason
    assert res["GSSA00098"].status == "failed" and "GSSA00098.csv: missing" in res["GSSA00098"].reason
    assert set(res) == {t["id"] for t in truths} | {"BOGN00099", "GSSA00098"}
    check_outputs(tmp_path / "h5", "stages", truths)
    # the signal starts on the scoring grid (first onset mod 30 s dropped); start_time says so
    bogn = Recording(tmp_path / "h5" / "stages" / "BOGN00001.h5")
    assert bogn.attrs["start_time"] == "2018-05-22T22:42:00"  # EDF 22:41:47 + 13 s


def test_mass_ss1_ss3_grid_offset_and_refusals(tmp_path):
    src = tmp_path / "mass"
    t3 = raw_more.write_mass(src, np.random.default_rng(2), subset="03", n_recordings=2)
    t1 = raw_more.write_mass(src, np.random.default_rng(3), subset="01", n_recordings=1, grid=4.5)
    # SS2-style 20-s scoring written as an "03" file: refused honestly, not converted
    bad = raw_more.write_mass(tmp_path / "mass20", np.random.default_rng(4), subset="03", n_recordings=1,
                              epoch_s=20.0)[0]
    for f in bad["files"]:
        shutil.copy(f, src / "SS3" / f.name.replace("0001", "0009"))
    (src / "SS3" / "annotations" / "01-03-0002 Base.edf").unlink()  # half-missing recording
    res3 = run("mass_ss3", src, tmp_path / "h5")
    assert res3["01-03-0001"].status == "done"
    assert res3["01-03-0002"].status == "failed" and "01-03-0002 Base.edf: missing" in res3["01-03-0002"].reason
    assert res3["01-03-0009"].status == "failed" and "20-s epochs" in res3["01-03-0009"].reason
    res1 = run("mass_ss1", src, tmp_path / "h5")
    assert list(res1) == ["01-01-0001"] and res1["01-01-0001"].status == "done"  # subsets do not mix
    check_outputs(tmp_path / "h5", "mass_ss3", t3[:1])
    check_outputs(tmp_path / "h5", "mass_ss1", t1)
    assert Recording(tmp_path / "h5" / "mass_ss3" / "01-03-0001.h5").attrs["start_time"] == "2012-04-03T22:10:22.400000"


def test_boas_bids_pid_subjects_and_missing_events(tmp_path):
    src = tmp_path / "boas"
    truths = raw_more.write_boas(src, np.random.default_rng(5), n_recordings=3)
    (src / "sub-3" / "eeg" / "sub-3_task-Sleep_acq-psg_events.tsv").unlink()
    res = run("boas", src, tmp_path / "h5")
    assert res["sub-1"].status == res["sub-2"].status == "done"
    assert res["sub-3"].status == "failed" and "sub-3_task-Sleep_acq-psg_events.tsv: missing" in res["sub-3"].reason
    check_outputs(tmp_path / "h5", "boas", truths[:2])
    assert truths[0]["subject"] == truths[1]["subject"] == "pid88"  # two nights of one person: one subject
    assert (truths[0]["stages"] == -1).any()  # code 8 (PSG disconnection) -> -1


def test_mnc_cohorts_diagnoses_optional_stages(tmp_path):
    truths = raw_more.write_mnc(tmp_path, np.random.default_rng(6))
    root = tmp_path / "mnc"
    (root / "fhc" / "bad01-nsrr.edf").write_bytes(b"")
    by_cohort: dict[str, list] = {}
    for t in truths:
        by_cohort.setdefault(t["labels"]["cohort"].lower(), []).append(t)
    for cohort, ts in by_cohort.items():
        src = root if cohort != "dhc" else root / "dhc"  # --src: the MNC root or the cohort folder
        res = run(f"mnc-{cohort}", src, tmp_path / "h5")
        assert {k for k, r in res.items() if r.status == "done"} == {t["id"] for t in ts}, res
        check_outputs(tmp_path / "h5", f"mnc-{cohort}", ts)
    res = run("mnc-fhc", root, tmp_path / "h5")
    assert res["bad01"].status == "failed" and "bad01-nsrr.edf" in res["bad01"].reason
    assert res["171001b-c"].status == "skipped"
    dx = {r["recording"]: r["labels"].get("diagnosis") for r in read_manifest(tmp_path / "h5" / "mnc-dhc")}
    assert dx == {"Sub01": "other hypersomnia", "N0020": "non-narcolepsy control", "Sub99": None}
    assert not list((tmp_path / "h5" / "mnc-ssc").glob("ssc_4708_1*.h5"))[1:]  # the non-NSRR copy is ignored


# --------------------------------------------------------------------------------------------
# preprocess.sh, kill and resume
# --------------------------------------------------------------------------------------------

def test_preprocess_sh_covers_the_registry():
    text = (ROOT / "preprocess.sh").read_text()
    declared = set(re.findall(r"^(RAW_[A-Z0-9_]+)=", text, flags=re.M))
    listed = set(re.search(r"DATASETS=\(([^)]*)\)", text).group(1).split())
    names = set(registry())
    assert listed == names
    assert {f"RAW_{n.upper().replace('-', '_')}" for n in names} <= declared


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAW_")}
    env.update(PYTHONPATH=str(ROOT), PYTHON=sys.executable, **extra)
    return env


def test_preprocess_sh_runs_present_datasets_with_shards(tmp_path):
    src = tmp_path / "raw" / "boas"
    raw_more.write_boas(src, np.random.default_rng(7), n_recordings=3, minutes=2, physiology=False)
    out = tmp_path / "h5"
    cmd = ["bash", str(ROOT / "preprocess.sh")]
    env = _env(RAW_ROOT=str(tmp_path / "raw"), OUT=str(out), WORKERS="1")
    first = subprocess.run(cmd + ["--shard", "1/2"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "boas: 2 done, 0 skipped, 0 failed" in first.stdout and "shhs: not found" in first.stdout
    second = subprocess.run(cmd, env=_env(RAW_BOAS=str(src), OUT=str(out), WORKERS="1", SHARD="2/2"),
                            capture_output=True, text=True, timeout=300)
    assert "boas: 1 done, 0 skipped, 0 failed" in second.stdout, second.stdout + second.stderr
    assert not (out / "boas" / "manifest.csv").exists()  # built once, after the shards (docs/cluster.md)
    assert sorted(p.name for p in (out / "boas").glob("*.log")) == ["preprocess.shard-1-of-2.log",
                                                                   "preprocess.shard-2-of-2.log"]
    subprocess.run([sys.executable, "-m", "preprocess", "--manifest", str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    assert len(read_manifest(out / "boas")) == 3  # manifest built over all shards


def test_kill_midway_then_resume_skips_finished(tmp_path):
    src, dst = tmp_path / "boas", tmp_path / "h5"
    raw_more.write_boas(src, np.random.default_rng(8), n_recordings=6, minutes=10, physiology=False)
    cmd = [sys.executable, "-m", "preprocess", "boas", "--src", str(src), "--dst", str(dst), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not list((dst / "boas").glob("*.h5")):
            assert proc.poll() is None, "preprocessing ended before any file appeared"
            assert time.monotonic() < deadline, "no output file within 120 s"
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = sorted((dst / "boas").glob("*.h5"))
    assert finished and all(is_valid(p) for p in finished)  # no half-written file under a final name
    assert len(finished) < 6
    mtimes = {p.name: p.stat().st_mtime_ns for p in finished}
    again = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    n = len(finished)
    assert f"boas: {6 - n} done, {n} skipped, 0 failed" in again.stdout
    outputs = sorted((dst / "boas").glob("*.h5"))
    assert len(outputs) == 6 and all(is_valid(p) for p in outputs)
    assert {p.name: p.stat().st_mtime_ns for p in finished} == mtimes  # not redone
    assert not list((dst / "boas").glob(".*.tmp"))  # the killed run's temp file was cleaned up
