"""One version string (VERSION + git commit) printed by every entry point and carried by every output
and checkpoint JSON."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from preprocess.core import version
from tests.entry_points import ROOT, entry_points

PATTERN = r"lpsgm (\d+\.\d+\.\d+)(?: git ([0-9a-f]{12})(\+dirty)?)?"


def head_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def test_version_string_is_the_version_file_plus_the_commit():
    m = re.fullmatch(PATTERN, version.software_version())
    assert m and m.group(1) == (ROOT / "VERSION").read_text().strip() == version.__version__
    commit = head_commit()
    assert m.group(2) == (commit[:12] if commit else None)
    assert version.software_info()["git_commit"] == commit


def test_outside_a_checkout_the_version_alone(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(version.subprocess, "run", no_git)
    version.git_state.cache_clear()
    try:
        assert version.software_version() == f"lpsgm {version.__version__}"
        assert version.software_info() == {"version": version.__version__, "git_commit": None, "git_dirty": False}
    finally:
        version.git_state.cache_clear()


def test_every_entry_point_prints_the_version(capsys):
    found = entry_points()
    commands = {e.command for e in found}
    assert {"inference.py", "train.py", "finetune.py", "-m preprocess", "-m simulate", "-m nar_cls", "-m web",
            "-m staging.evaluate", "-m staging.weights"} <= commands, commands  # the discovery sees them
    for entry in found:
        code = entry.run(["--version"])
        out = capsys.readouterr().out
        assert code == 0 and out.strip().endswith(f"({version.software_version()})"), (entry.command, out)


def test_checkpoint_json_carries_the_version(tmp_path):
    from models import build_model, save_checkpoint

    _, j = save_checkpoint(build_model("lpsgm-small"), tmp_path / "m",
                           {"software": {"software_version": "lpsgm 0.0.0 git old"}})  # carried over: replaced
    software = json.loads(j.read_text())["software"]
    assert software == {"software_version": version.software_version(), **version.software_info()}


def test_training_provenance_carries_the_version():
    pytest.importorskip("torch")
    from engine.logger import provenance

    p = provenance()
    assert p["version"] == version.__version__ and p["software_version"] == version.software_version()
    assert p["git_commit"] == version.software_info()["git_commit"]


def test_every_output_names_the_software(tmp_path, tiny_weights):
    """One staged night, every format: each file that can carry text carries the version string."""
    import edfio
    import numpy as np
    from PIL import Image

    from staging import stage
    from tests.conftest import write_edf
    from tests.robust_corpus import base_night

    write_edf(tmp_path / "n.edf", {"C3-M2": (base_night()["EEG C3-M2"], 100.0)})  # passes the quality gate
    out = tmp_path / "out"
    results, code = stage([tmp_path / "n.edf"], out=out, weights=tiny_weights, stride=20, echo=lambda line: None,
                          formats=("csv", "stats", "png", "sta", "edf", "bids", "npz", "hypnodensity"))
    assert code == 0
    sv = version.software_version()
    assert f"software: {sv};" in (out / "n.hypnogram.csv").read_text().splitlines()[0]
    assert json.loads((out / "n.stats.json").read_text())["software_version"] == sv
    assert str(np.load(out / "n.hypnodensity.npz")["software_version"]) == sv
    assert Image.open(out / "n.png").info["Software"] == sv
    for name in ("n.annotations.edf", "n.hypnodensity.edf"):
        assert edfio.read_edf(out / name).recording.equipment_code == sv.replace(" ", "_")[:28]
    (sidecar,) = [f for f in (out / "bids").rglob("*_events.json")]
    assert json.loads(sidecar.read_text())["LPSGM"]["software"] == sv
    assert f",{sv}" in (out / "summary.csv").read_text()
