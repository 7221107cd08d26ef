"""Harmonized HDF5 format v1: round trip, atomic writes, validity, manifest."""

import json

import h5py
import numpy as np
import pytest

from preprocess.core import hdf5
from preprocess.core.hdf5 import Recording, is_valid, read_manifest, write_manifest, write_recording


def make(tmp_path, rid="r1", n=50, channels=("C3", "E1", "Chin"), stages=True, **kw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, len(channels), 3000)).astype(np.float32)
    st = (np.arange(n) % 6 - 1).astype(np.int8) if stages else None
    path = write_recording(tmp_path / "ds" / f"{rid}.h5", x, list(channels), st, dataset="ds", subject="s1",
                           recording=rid, labels={"diagnosis": "control"}, **kw)
    return path, x, st


def test_round_trip_and_attributes(tmp_path):
    path, x, st = make(tmp_path, montage={"C3": ["C3", "M2"]}, preprocessing={"sfreq": 100})
    with h5py.File(path) as f:
        assert f["signals"].dtype == np.float16 and f["signals"].chunks == (20, 3, 3000)
        assert f["stages"].dtype == np.int8
        assert f.attrs["format_version"] == 1 and f.attrs["sfreq"] == 100 and f.attrs["epoch_seconds"] == 30
        assert json.loads(f.attrs["montage"]) == {"C3": ["C3", "M2"]}
    rec = Recording(path)
    assert rec.channels == ["C3", "E1", "Chin"] and list(rec.channel_indices) == [2, 6, 8]
    assert rec.n_epochs == 50 and rec.labels == {"diagnosis": "control"}
    np.testing.assert_array_equal(rec.stages, st)
    np.testing.assert_allclose(rec.read(10, 30), x[10:30], atol=5e-3)
    sub = rec.read(5, 7, ["Chin", "C3"])  # any order, without loading the rest
    np.testing.assert_allclose(sub, x[5:7][:, [2, 0]], atol=5e-3)


def test_float32_option_is_exact(tmp_path):
    path, x, _ = make(tmp_path, dtype="float32")
    np.testing.assert_array_equal(Recording(path).read(0, 50), x)


def test_channels_must_be_canonical_order(tmp_path):
    with pytest.raises(ValueError, match="canonical order"):
        make(tmp_path, channels=("E1", "C3"))


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path)
    assert list((tmp_path / "ds").iterdir()) == []


def test_incomplete_or_foreign_file_is_not_valid(tmp_path):
    path, _, _ = make(tmp_path)
    assert is_valid(path)
    with h5py.File(path, "a") as f:
        del f.attrs["complete"]
    assert not is_valid(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert not is_valid(tmp_path / "junk.h5")


def test_manifest_counts(tmp_path):
    make(tmp_path, "a", n=12)
    make(tmp_path, "b", n=6, stages=False)
    write_manifest(tmp_path / "ds")
    rows = {r["recording"]: r for r in read_manifest(tmp_path / "ds")}
    # stages cycle -1,0,1,2,3,4 → 12 epochs give 2 of each
    assert [rows["a"][f"n_{s}"] for s in hdf5.STAGE_NAMES] == [2, 2, 2, 2, 2]
    assert rows["a"]["n_unknown"] == 2 and rows["a"]["scored"] == 1
    assert rows["b"]["scored"] == 0 and rows["b"]["n_epochs"] == 6
    assert rows["a"]["channels"] == ["C3", "E1", "Chin"] and rows["a"]["labels"] == {"diagnosis": "control"}
