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
