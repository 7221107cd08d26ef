"""NSRR dataset modules end to end on simulated raw releases (simulate/raw_nsrr.py).

For every dataset: fixture in the release layout → ``run_dataset`` → each harmonized file has the
expected canonical channels, derivations, stages (epoch by epoch, -1 for unknown/movement, R&K 4 →
N3), subject, labels and lights, and the manifest agrees. Then the facts that the published
preprocessing got wrong (SHHS hemispheres, WSC stage 4), the scoring-format fallbacks, and bad
recordings being skipped with their reason.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from preprocess.core.edf import EdfReader
from preprocess.core.hdf5 import read_manifest
from preprocess.core.nsrr import clock_seconds, find_records, lights_kind, xml_lights
from preprocess.core.pipeline import run_dataset
from preprocess.core.signal import process_channel
from preprocess.datasets import get_dataset
from simulate import raw_nsrr

NAMES = sorted(raw_nsrr.WRITERS)


def build(tmp_path: Path, name: str, seed: int = 0, **kw):
    src = tmp_path / "raw" / name
    truths = raw_nsrr.WRITERS[name](src, np.random.default_rng(seed), **kw)
    return src, truths


def run(name: str, src: Path, dst: Path, **kw):
    return run_dataset(get_dataset(name), src, dst, progress=False, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_dataset_end_to_end(tmp_path, name):
    src, truths = build(tmp_path, name)
    results = run(name, src, tmp_path / "h5")
    assert sorted(r.record for r in results) == sorted(t["id"] for t in truths)
    assert all(r.status == "done" for r in results), [(r.record, r.reason) for r in results]
    for t in truths:
        with h5py.File(tmp_path / "h5" / name / f"{t['id']}.h5", "r") as f:
            assert list(f.attrs["channels"]) == t["channels"]
            assert json.loads(f.attrs["montage"]) == t["montage"]
            assert f["signals"].shape == (len(t["stages"]), len(t["channels"]), 3000)
            np.testing.assert_array_equal(f["stages"][:], t["stages"], err_msg=t["id"])
            assert f.attrs["subject"] == t["subject"] and f.attrs["recording"] == t["id"]
            assert json.loads(f.attrs["labels"]) == t["labels"]
            assert list(f.attrs["source_files"]) == [Path(t["signal"]).name, Path(t["annotation"]).name]
            if t["lights"] is None:
                assert "lights" not in f.attrs
            else:
                np.testing.assert_allclose(f.attrs["lights"], t["lights"])
            x = f["signals"][:].astype(np.float32)
            assert np.isfinite(x).all() and abs(float(x.std()) - 1.0) < 0.1
    rows = {r["recording"]: r for r in read_manifest(tmp_path / "h5" / name)}
    for t in truths:
        row, st = rows[t["id"]], t["stages"]
        assert row["subject"] == t["subject"] and row["n_epochs"] == len(st) and row["channels"] == t["channels"]
        assert [row[f"n_{s}"] for s in ("W", "N1", "N2", "N3", "REM")] == [int((st == k).sum()) for k in range(5)]
        assert row["n_unknown"] == int((st == -1).sum()) and row["labels"] == t["labels"]


def test_visits_share_the_subject(tmp_path):
    for name in ("shhs", "mros", "chat", "abc"):
        src, truths = build(tmp_path, name)
        records = get_dataset(name).find(src)
        assert len({r.id for r in records}) == 2 and len({r.subject for r in records}) == 1, name


def test_shhs_eeg_sec_is_c3_and_eeg_is_c4(tmp_path):
    """NSRR SHHS montage: EEG(sec) = C3/A2, EEG = C4/A1 (the published code swapped them)."""
    src, truths = build(tmp_path, "shhs")
    run("shhs", src, tmp_path / "h5")
    t = truths[0]
    with EdfReader(t["signal"]) as edf:
        assert edf.sfreq("EEG(sec)") == 125 and edf.sfreq("EOG(L)") == 50 and edf.sfreq("EMG") == 125
        ref = {lab: process_channel(*edf.read(lab), "eeg")[: 3000 * len(t["stages"])] for lab in ("EEG(sec)", "EEG")}
    with h5py.File(tmp_path / "h5" / "shhs" / f"{t['id']}.h5", "r") as f:
        c3, c4 = (f["signals"][:, i, :].astype(np.float64).ravel() for i in (0, 1))
    assert np.abs(c3 - ref["EEG(sec)"]).max() < 0.02 and np.abs(c4 - ref["EEG"]).max() < 0.02
    assert np.abs(c3 - ref["EEG"]).max() > 0.5


def test_rereferencing_uses_the_contralateral_mastoid(tmp_path):
    src, truths = build(tmp_path, "abc")
    run("abc", src, tmp_path / "h5")
    t = truths[0]
    with EdfReader(t["signal"]) as edf:
        (c3, fs), (m2, _), (m1, _) = edf.read("C3"), edf.read("M2"), edf.read("M1")
    n = 3000 * len(t["stages"])
    good = process_channel(c3 - m2, fs, "eeg")[:n]
    wrong = process_channel(c3 - m1, fs, "eeg")[:n]
    with h5py.File(tmp_path / "h5" / "abc" / f"{t['id']}.h5", "r") as f:
        out = f["signals"][:, 2, :].astype(np.float64).ravel()
    assert np.abs(out - good).max() < 0.02 and np.abs(out - wrong).max() > 0.1


def test_wsc_stage4_merges_into_n3_and_scoring_fallbacks(tmp_path):
    src, truths = build(tmp_path, "wsc", n_recordings=3)
    gamma = truths[0]
    stg = Path(gamma["annotation"]).read_text().splitlines()
    codes = [int(line.split("\t")[1]) for line in stg[1:]]
    assert 4 in codes
    run("wsc", src, tmp_path / "h5")
    for t in truths:
        with h5py.File(tmp_path / "h5" / "wsc" / f"{t['id']}.h5", "r") as f:
            np.testing.assert_array_equal(f["stages"][:], t["stages"])
    with h5py.File(tmp_path / "h5" / "wsc" / f"{gamma['id']}.h5", "r") as f:
        stages = f["stages"][:]
    assert (stages[np.array(codes) == 4] == 3).all() and (stages[np.isin(codes, [6, 7])] == -1).all()
    assert stg[0].startswith("Epoch") and not Path(truths[2]["annotation"]).read_text().startswith("Epoch")
    # without the original staging the NSRR .eannot gives the same stages
    Path(gamma["annotation"]).unlink()
    rec = next(r for r in get_dataset("wsc").find(src) if r.id == gamma["id"])
    assert rec.annotation.name.endswith(".eannot")
    run("wsc", src, tmp_path / "h5b")
    with h5py.File(tmp_path / "h5b" / "wsc" / f"{gamma['id']}.h5", "r") as f:
        np.testing.assert_array_equal(f["stages"][:], gamma["stages"])
        np.testing.assert_allclose(f.attrs["lights"], gamma["lights"])


def test_nsrr_xml_preferred_profusion_fallback(tmp_path):
    src, truths = build(tmp_path, "mros")
    records = {r.id: r for r in get_dataset("mros").find(src)}
    assert records["mros-visit1-aa0001"].annotation.name == "mros-visit1-aa0001-nsrr.xml"
    assert records["mros-visit2-aa0001"].annotation.name == "mros-visit2-aa0001-profusion.xml"
    assert "annotations-events-nsrr" in records["mros-visit1-aa0001"].annotation.parts


def test_bad_recordings_are_skipped_with_their_reason(tmp_path):
    src, truths = build(tmp_path, "shhs")
    edfs = src / "polysomnography" / "edfs" / "shhs1"
    (edfs / "shhs1-200099.edf").write_bytes(b"")  # zero-byte EDF (its XML exists)
    nsrr = src / "polysomnography" / "annotations-events-nsrr" / "shhs1"
    (nsrr / "shhs1-200099-nsrr.xml").write_text((nsrr / "shhs1-200001-nsrr.xml").read_text())
    (edfs / "shhs1-200098.edf").write_bytes(Path(truths[0]["signal"]).read_bytes())  # no annotation at all
    (nsrr / "shhs1-200097-nsrr.xml").write_text("<PSGAnnotation><ScoredEvents>")  # truncated XML
    (edfs / "shhs1-200097.edf").write_bytes(Path(truths[0]["signal"]).read_bytes())
    results = {r.record: r for r in run("shhs", src, tmp_path / "h5")}
    assert {k for k, r in results.items() if r.status == "done"} == {t["id"] for t in truths}
    assert results["shhs1-200099"].status == "failed" and "shhs1-200099.edf" in results["shhs1-200099"].reason
    assert "empty" in results["shhs1-200099"].reason
    assert results["shhs1-200098"].status == "failed" and "shhs1-200098-nsrr.xml: missing" in results["shhs1-200098"].reason
    assert results["shhs1-200097"].status == "failed" and "shhs1-200097-nsrr.xml" in results["shhs1-200097"].reason
    assert len(read_manifest(tmp_path / "h5" / "shhs")) == len(truths)


def test_nchsdb_empty_or_nul_tsv_is_reported(tmp_path):
    src, truths = build(tmp_path, "nchsdb")
    Path(truths[1]["annotation"]).write_bytes(b"\x00" * 64)  # as 1483_7963.tsv in the release
    results = {r.record: r for r in run("nchsdb", src, tmp_path / "h5")}
    assert results[truths[0]["id"]].status == "done"
    bad = results[truths[1]["id"]]
    assert bad.status == "failed" and f"{truths[1]['id']}.tsv: corrupt TSV" in bad.reason


def test_find_records_pairs_sidecars_and_mirrored_xml(tmp_path):
    poly = tmp_path / "polysomnography"
    (poly / "edfs" / "v1").mkdir(parents=True)
    (poly / "edfs" / "v1" / "x-v1-1.edf").write_bytes(b"0")
    (poly / "x-v1-2.edf").write_bytes(b"0")
    (poly / "x-v1-2.annot").write_text("class\n")
    recs = {r.id: r for r in find_records(tmp_path, scoring=(".annot", "nsrr"))}
    assert recs["x-v1-2"].annotation == poly / "x-v1-2.annot"
    assert recs["x-v1-1"].annotation == poly / "edfs" / "v1" / "x-v1-1.annot"  # none exists: first candidate
    # the expected NSRR XML path mirrors edfs/ under annotations-events-nsrr/
    recs = {r.id: r for r in find_records(tmp_path, scoring=("nsrr",))}
    assert recs["x-v1-1"].annotation == poly / "annotations-events-nsrr" / "v1" / "x-v1-1-nsrr.xml"
    assert recs["x-v1-1"].subject == "1"


def test_clock_and_lights_helpers(tmp_path):
    start = dt.datetime(1985, 1, 1, 23, 58, 30)
    assert clock_seconds("23:59:00", start) == 30.0
    assert clock_seconds("00:00:30.5", start) == 120.5  # after midnight
    assert clock_seconds("no time here", start) is None
    assert [lights_kind(t) for t in ("Lights Off", "LIGHTS OUT", "lights_on", "Light on", "Arousal")] == \
        ["off", "off", "on", "on", None]
    xml = tmp_path / "a-nsrr.xml"
    xml.write_text("<PSGAnnotation><ScoredEvents>"
                   "<ScoredEvent><EventType>Lights|Lights</EventType><EventConcept>Lights off|Lights off</EventConcept>"
                   "<Start>120</Start><Duration>0</Duration></ScoredEvent>"
                   "<ScoredEvent><EventConcept>Lights on|Lights on</EventConcept><Start>30000</Start></ScoredEvent>"
                   "</ScoredEvents></PSGAnnotation>")
    assert xml_lights(xml) == (120.0, 30000.0)
