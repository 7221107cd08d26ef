"""The README and the docs/ pages say what the code does: commands, options, formats, examples."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Pages the README links that other work items write; remove a name once its page lands.
PENDING: set[str] = set()


def text(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


def long_options(md: str) -> set[str]:
    """Every ``--option`` named in the first column of a markdown table."""
    cells = [ln.split("|")[1] for ln in md.splitlines() if ln.startswith("| `")]
    return {o for c in cells for o in re.findall(r"--[a-z][a-z0-9-]*", c)}


def parser_options(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}


def test_quick_start_is_the_two_commands_and_ci_runs_the_test_command():
    readme = text("README.md")
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == [
        "python3 -m pip install -r requirements.txt && python3 inference.py",
        "python3 -m pip install -r requirements-dev.txt && python3 -m pytest -q",
    ]
    ci = text(".ci/run")
    assert re.search(r"&& python3 -m pytest -q$", ci, re.M), "CI must run the README's test command"


def test_readme_links_resolve():
    readme = text("README.md")
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert any(link.startswith("docs/") for link in links)
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()
               and link not in PENDING]
    assert missing == []


def test_docs_links_between_pages_resolve():
    for page in DOCS.glob("*.md"):
        for link in re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8")):
            if link.startswith("http"):
                continue
            rel = str((page.parent / link).resolve().relative_to(ROOT))
            assert (page.parent / link).exists() or rel in PENDING, f"{page.name}: {link}"


def test_inference_options_table_matches_the_parser():
    import inference

    documented = long_options(text("docs/inference.md"))
    assert documented == parser_options(inference.build_parser())


DOC_PAGE = {  # entry point (EntryPoint.key: its name without the package it lives in) → its reference page
    "inference": "inference.md", "train": "training.md", "finetune": "finetune.md",
    "preprocess": "preprocessing.md", "simulate": "simulator.md", "simulate.cohorts": "simulator.md",
    "nar_cls": "diagnosis.md", "web": "web.md", "evaluate": "clinical.md", "weights": "published-weights.md",
    "explain": "explain.md", "online": "online.md", "models.onnx_export": "benchmarks.md",
    "simulate.disorders": "simulator.md", "make_simulated_night": "simulator.md",
}


def test_every_entry_point_option_is_in_its_doc_page():
    """Each option any entry point accepts (aliases and sub-commands included) is named on its page."""
    from tests.entry_points import entry_points, options, parser_of

    found = entry_points()
    assert {"inference", "train", "finetune", "preprocess", "simulate", "nar_cls", "web", "evaluate", "weights",
            "explain", "online"} <= {e.key for e in found}
    missing = {}
    for entry in found:
        assert entry.key in DOC_PAGE, f"{entry.command}: new entry point, add its doc page to DOC_PAGE"
        page = text(f"docs/{DOC_PAGE[entry.key]}")
        parser = parser_of(entry)
        assert parser is not None, f"{entry.command} parses no arguments"
        lost = sorted(o for o in options(parser) if not re.search(re.escape(o) + r"(?![A-Za-z0-9_-])", page))
        if lost:
            missing[f"{entry.command} ({DOC_PAGE[entry.key]})"] = lost
    assert missing == {}


def test_every_input_suffix_and_channel_choice_is_documented():
    """docs/inference.md names each suffix the code reads (folder search and MNE) and ``--channels published``."""
    import ast

    wanted = {}
    for f in [*ROOT.glob("staging/**/*.py"), *ROOT.glob("preprocess/core/*.py")]:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("EXTENSIONS", "MNE_SUFFIXES")
                                                    for t in node.targets):
                wanted[node.targets[0].id] = ast.literal_eval(node.value)
    assert set(wanted) == {"EXTENSIONS", "MNE_SUFFIXES"} and ".vhdr" in wanted["EXTENSIONS"]
    doc = text("docs/inference.md")
    row = next(ln for ln in doc.splitlines() if ln.startswith("| `INPUT"))
    assert {s for v in wanted.values() for s in v if f"`{s}`" not in row} == set()
    channels = next(ln for ln in doc.splitlines() if ln.startswith("| `--channels"))
    assert "`published`" in channels and "`auto`" in channels


def test_train_and_finetune_documented_options_exist():
    from tests.entry_points import entry_points, options, parser_of

    for script, page in (("train.py", "training.md"), ("finetune.py", "finetune.md")):
        entry = next(e for e in entry_points() if e.command == script)
        documented = long_options(text(f"docs/{page}"))
        assert documented and documented <= options(parser_of(entry)) | {"--version"}, (script, documented)


def test_hypnogram_csv_columns_as_documented():
    from staging.outputs import hypnogram_csv

    doc = text("docs/outputs.md")
    cols = re.search(r"\| `NAME\.hypnogram\.csv` \| `([^`]+)`", doc).group(1)
    probs = np.eye(5)[[0, 2]] * 0.9 + 0.02
    assert hypnogram_csv(probs).splitlines()[0] == cols


def test_sleep_statistics_example_as_documented():
    from staging.stats import sleep_statistics

    doc = " ".join(text("docs/outputs.md").split())
    m = re.search(r"Example: `([A-Z0-9 ]+)` → TST ([\d.]+), SOL ([\d.]+), WASO ([\d.]+), (\d+) awakening, "
                  r"REM latency (\d+(?:\.\d+)?)", doc)
    names = ["W", "N1", "N2", "N3", "REM"]
    s = sleep_statistics([names.index(t) for t in m.group(1).split()])
    assert (s["TST"], s["SOL"], s["WASO"], s["awakenings"], s["REM_latency"]) == (
        float(m.group(2)), float(m.group(3)), float(m.group(4)), int(m.group(5)), float(m.group(6)))


def test_canonical_channel_indices_as_documented():
    from preprocess.core.channels import CHANNEL_INDEX

    doc = text("docs/montage.md")
    pairs = re.findall(r"`?([A-Z][A-Za-z0-9]*)(?:-M[12]| EMG)=(\d)", doc)
    assert {name: int(i) for name, i in pairs} == CHANNEL_INDEX


def test_sta_codes_as_documented():
    from staging.outputs import sta_text

    doc = text("docs/outputs.md")
    codes = dict((name, int(c)) for c, name in re.findall(r"`(\d)`=(W|N1|N2|N3|REM)", doc))
    lines = sta_text(np.arange(5)).splitlines()
    assert [int(ln.split("\t")[1]) for ln in lines] == [codes[n] for n in ["W", "N1", "N2", "N3", "REM"]]
    assert lines[0].split("\t")[0] == "1"  # 1-based epochs


def test_hdf5_attributes_as_documented(tmp_path):
    from preprocess.core.hdf5 import write_recording

    doc = text("docs/preprocessing.md")
    row = next(ln for ln in doc.splitlines() if ln.startswith("| attributes |"))
    documented = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
    path = write_recording(tmp_path / "r.h5", np.zeros((1, 1, 3000), np.float32), ["C3"], None,
                           dataset="d", subject="s", recording="r")
    import h5py

    with h5py.File(path) as f:
        written = set(f.attrs) - {"complete"}
    optional = {"lights", "dropped_channels"}  # written when known (extra_attrs)
    assert written <= documented and documented - written <= optional, (written, documented)


def check_one_vocabulary(keys: tuple[str, ...]) -> None:
    """Every option of these entry points has a lower-case kebab spelling, and options made of the same
    words (``--lr-backbone`` / ``--backbone-lr``, ``--merge-nt1`` / ``--merge_NT1``) share one spelling;
    other spellings live on only as aliases of it."""
    from tests.entry_points import entry_points, parser_of

    kebab = re.compile(r"--[a-z0-9]+(-[a-z0-9]+)*")
    by_words: dict[frozenset, list[set[str]]] = {}
    found = [e for e in entry_points() if e.key in keys]
    assert {e.key for e in found} == set(keys)
    for entry in found:
        for action in parser_of(entry)._actions:
            names = {o for o in action.option_strings if o.startswith("--")} - {"--help", "--version"}
            if names:
                assert any(kebab.fullmatch(n) for n in names), (entry.command, sorted(names))
            for n in names:
                by_words.setdefault(frozenset(re.split(r"[-_]+", n[2:].lower())), []).append(names)
    for words, spellings in by_words.items():
        shared = set.intersection(*spellings)
        assert any(kebab.fullmatch(n) for n in shared), (sorted(words), spellings)


def test_one_flag_vocabulary_in_train_and_finetune():
    check_one_vocabulary(("train", "finetune"))


def test_one_flag_vocabulary_with_nar_cls():
    check_one_vocabulary(("train", "finetune", "nar_cls"))
