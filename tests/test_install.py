"""A clean machine gets everything it needs from the requirement files, and a missing optional
package is one line before any work starts, never a file's failure."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from preprocess.core.extras import DISTRIBUTIONS
from tests.entry_points import entry_points

ROOT = Path(__file__).resolve().parents[1]
UNSHIPPED = {"tests", "bench"}

INDIRECT = {  # declared in requirements.txt, never imported by name: the door each one is used through
    "tensorboard": "torch.utils.tensorboard",  # engine/logger.py, nar_cls/cv.py: SummaryWriter
    "onnx": "torch.onnx.export",  # models/onnx_export.py: the TorchScript exporter writes the graphs with it
}
INDIRECT_DEV = {  # the same for requirements-dev.txt
    "httpx": "fastapi.testclient",  # TestClient runs on httpx
    "ruff": "[tool.ruff]",  # a command (ruff check), configured in pyproject.toml
}


def normalize(name: str) -> str:
    """PEP 503 name: case-insensitive, runs of ``-_.`` equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(req: str) -> set[str]:
    """Normalized distribution names of a requirements file (``-r`` includes not followed)."""
    names = set()
    for line in (ROOT / req).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(normalize(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group(0)))
    return names


def packages(shipped: bool) -> list[Path]:
    return sorted(p for p in ROOT.iterdir() if (p / "__init__.py").is_file() and (p.name in UNSHIPPED) != shipped)


def python_files(shipped: bool) -> list[Path]:
    """Every module of the shipped packages plus the top-level and example scripts, or of tests/ and bench/."""
    files = [f for p in packages(shipped) for f in p.rglob("*.py")]
    if shipped:
        files += list(ROOT.glob("*.py")) + list((ROOT / "examples").glob("*.py"))
    else:
        files += list((ROOT / "bench").glob("*.py"))
    return sorted(set(files))


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file, inside functions too, and of
    ``importlib.import_module("literal")`` calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def third_party(files: list[Path]) -> dict[str, list[str]]:
    """Distribution (normalized) → files importing it, leaving out the standard library and our own modules."""
    local = {p.name for p in packages(True) + packages(False)} | {f.stem for f in ROOT.glob("*.py")}
    local |= {f.stem for f in (ROOT / "bench").glob("*.py")}  # bench scripts import their helpers by name
    found: dict[str, list[str]] = {}
    for f in files:
        for mod in imported_modules(f) - local - set(sys.stdlib_module_names) - {"__future__"}:
            found.setdefault(normalize(DISTRIBUTIONS.get(mod, mod)), []).append(str(f.relative_to(ROOT)))
    return found


def test_import_walker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom a.b import c\n\ndef g():\n    import sklearn.metrics\n    from . import x\n"
                 "    importlib.import_module('mne_lsl.lsl')\n")
    assert imported_modules(f) == {"os", "a", "sklearn", "mne_lsl"}


def test_every_shipped_import_is_in_requirements_txt():
    """requirements.txt is the one file the Quick start installs: every documented feature must work after it."""
    found = third_party(python_files(shipped=True))
    assert {"captum", "onnxruntime", "torch", "scikit-learn", "mne-lsl"} <= set(found)  # the walker sees them
    undeclared = {d: files for d, files in found.items() if d not in declared("requirements.txt")}
    assert undeclared == {}, f"add these distributions to requirements.txt: {undeclared}"


def test_every_declared_package_is_used():
    """A declared package nothing imports is either used through another door (INDIRECT, checked here) or removed."""
    shipped = python_files(shipped=True)
    imported = set(third_party(shipped))
    code = "\n".join(f.read_text(encoding="utf-8") for f in shipped)
    unused = declared("requirements.txt") - imported - set(INDIRECT)
    assert unused == set(), f"declared in requirements.txt but imported nowhere: {unused}"
    assert all(door in code for door in INDIRECT.values())
    assert not set(INDIRECT) & imported, "imported by name now: drop it from INDIRECT"


def test_test_and_bench_imports_are_in_the_requirement_files():
    found = third_party(python_files(shipped=False))
    both = declared("requirements.txt") | declared("requirements-dev.txt")
    assert {d for d in found if d not in both} == set()
    texts = "\n".join(f.read_text(encoding="utf-8") for f in python_files(shipped=False))
    texts += (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    dev_only = declared("requirements-dev.txt") - declared("requirements.txt")
    assert dev_only - set(found) - set(INDIRECT_DEV) == set()
    assert all(door in texts for door in INDIRECT_DEV.values())
    assert (ROOT / "requirements-dev.txt").read_text().startswith("-r requirements.txt")


# --- an optional feature whose package is missing: one line, exit 2, before any file is read ---


@pytest.mark.parametrize("entry, argv, blocked, package", [
    ("inference", ["NIGHT", "--explain", "40-41"], "captum", "captum"),
    ("inference", ["NIGHT", "--backend", "onnxruntime"], "onnxruntime", "onnxruntime"),
    ("inference", ["NIGHT", "--backend", "onnxruntime"], "onnx", "onnx"),
    ("inference", ["NIGHT", "--formats", "csv,bids"], "mne_bids", "mne-bids"),
    ("explain", ["NIGHT"], "captum", "captum"),
    ("online", ["--replay", "NIGHT"], "mne_lsl", "mne-lsl"),
    ("web", ["--port", "8765"], "fastapi", "fastapi"),
    ("web", ["--port", "8765", "--backend", "onnxruntime"], "onnxruntime", "onnxruntime"),
])
def test_missing_optional_package_is_one_line_before_any_file(tmp_path, monkeypatch, capsys, entry, argv,
                                                              blocked, package):
    """``entry`` is an entry point's name without its package (tests/entry_points.py), so the test follows
    a CLI that moves (``staging.explain`` → ``explain``)."""
    night = tmp_path / "night.edf"
    night.write_bytes(b"not read: a missing package must be reported before any input is opened")
    monkeypatch.setitem(sys.modules, blocked, None)  # as if the package were not installed
    monkeypatch.chdir(tmp_path)  # outputs (there must be none) would land here
    (found,) = [e for e in entry_points() if e.key == entry]
    code = found.run([str(night) if a == "NIGHT" else a for a in argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and f"package {package}" in err, err
    assert f"pip install {package}" in err and "requirements.txt" in err
    assert out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["night.edf"]


def test_stage_raises_missing_package_before_reading(tmp_path, monkeypatch):
    from preprocess.core.extras import MissingPackageError
    from staging import stage

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    seen = []
    with pytest.raises(MissingPackageError, match="onnxruntime"):
        stage([tmp_path / "absent.edf"], out=tmp_path / "out", backend="onnxruntime", echo=seen.append)
    assert seen == [] and not (tmp_path / "out").exists()


def test_import_error_while_staging_a_file_stops_the_batch(tmp_path, tiny_weights, monkeypatch):
    """A package lost mid-run (here matplotlib's pyplot for the plot) is the installation's fault: the batch
    stops with the ImportError instead of reporting the recording as failed and going on."""
    from staging import stage
    from tests.conftest import write_edf
    from tests.robust_corpus import base_night

    (tmp_path / "in").mkdir()
    c3 = base_night()["EEG C3-M2"]  # 20 epochs of the bundled example: passes the signal-quality gate
    for name in ("a", "b"):
        write_edf(tmp_path / "in" / f"{name}.edf", {"C3-M2": (c3, 100.0)})
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="matplotlib.pyplot"):
        stage([tmp_path / "in"], out=tmp_path / "out", weights=tiny_weights, formats=("csv", "png"),
              echo=lambda line: None, progress_bar=False)
    summary = tmp_path / "out" / "summary.csv"  # written with the files finished so far: none failed
    assert not summary.exists() or ",failed," not in summary.read_text()


def test_extras_check_passes_when_installed_and_names_every_missing_package(monkeypatch):
    from preprocess.core import extras

    extras.check(extras.ONNXRUNTIME)  # installed here (requirements.txt): nothing raised
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(extras.MissingPackageError) as info:
        extras.check(extras.ONNXRUNTIME)
    assert str(info.value).startswith("the ONNX Runtime backend (--backend onnxruntime): the Python packages "
                                      "onnxruntime, onnx are not installed")
    assert extras.staging_features("all", "onnxruntime", "all") == [extras.EXPLAIN, extras.ONNXRUNTIME, extras.BIDS]
    assert extras.staging_features(None, "torch", "csv,stats") == []
