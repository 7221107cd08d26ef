"""One atomic write for every output: temp file + rename, cleanup on error, permissions from the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from preprocess.core.atomic import atomic_write, atomic_write_text


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_whole_file_and_leaves_no_temp(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")  # replaces
    assert (tmp_path / "a.txt").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert mode(atomic_write_text(tmp_path / "a.txt", "x")) == 0o644
        os.umask(0o077)
        assert mode(atomic_write_text(tmp_path / "b.txt", "x")) == 0o600
    finally:
        os.umask(old)


def test_hdf5_and_manifest_get_normal_permissions(tmp_path, umask022):
    from preprocess.core.hdf5 import write_manifest, write_recording

    path = write_recording(tmp_path / "ds" / "r1.h5", np.zeros((2, 1, 3000), np.float32), ["C3"],
                           np.array([0, 1]), dataset="ds", subject="s1", recording="r1")
    assert mode(path) == 0o644
    manifest = write_manifest(tmp_path / "ds")
    assert mode(manifest) == 0o644
    assert "r1" in manifest.read_text()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["manifest.csv", "r1.h5"]


def test_manifest_write_failure_cleans_up(tmp_path, monkeypatch):
    import preprocess.core.hdf5 as hdf5

    (tmp_path / "ds").mkdir()
    monkeypatch.setattr(hdf5, "MANIFEST_FIELDS", ["not-a-field"])  # DictWriter raises on every row
    hdf5.write_recording(tmp_path / "ds" / "r1.h5", np.zeros((1, 1, 3000), np.float32), ["C3"], None,
                         dataset="ds", subject="s1", recording="r1")
    with pytest.raises(ValueError):
        hdf5.write_manifest(tmp_path / "ds")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["r1.h5"]


def test_checkpoint_and_state_get_normal_permissions(tmp_path, umask022):
    from engine.state import atomic_torch_save
    from models import build_model, save_checkpoint

    w, j = save_checkpoint(build_model("lpsgm-small"), tmp_path / "ck")
    assert mode(w) == mode(j) == 0o644
    assert mode(atomic_torch_save({"a": 1}, tmp_path / "state.pt")) == 0o644
