"""Nothing silently wrong, round 2 (issue 21): the generated classes of impossible inputs through one
``inference.py --formats all`` batch, the plausibility gate's known answers, EDF+C gaps, lights outside
the recording, full and read-only output folders, inputs that are not files."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import inference
from tests import robust_corpus

# --------------------------------------------------------------------------- helpers


def cli(*args) -> tuple[int, list[str]]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = inference.main([str(a) for a in args] + ["--no-progress"])
    return code, buf.getvalue().splitlines()


def rows(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {r["name"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, tiny_weights):
    """Every generated class plus a good night, staged in ONE batch with every output format."""
    root = tmp_path_factory.mktemp("robust")
    folder, out = root / "in", root / "out"
    cases = robust_corpus.write_cases(folder, seed=0)
    code, lines = cli(folder, "--out", out, "--weights", tiny_weights, "--formats", "all")
    return cases, folder, out, code, lines


# --------------------------------------------------------------------------- the batch


def test_batch_exit_code_one_line_per_file_nothing_half_written(batch):
    cases, folder, out, code, lines = batch
    assert code == 1
    for case in cases:
        mentions = [line for line in lines if f"{folder / case.name}" in line and line.startswith("[")]
        assert len(mentions) == 1, (case.name, mentions)
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not any(line.startswith("Traceback") for line in lines)


@pytest.mark.parametrize("name", [make.__name__ for make in robust_corpus.CLASSES])
def test_generated_class_outcome(batch, name):
    """Status, exact reason, exact warnings in stats.json, summary.csv, CSV/STA headers and EDF+ marks."""
    cases, folder, out, code, lines = batch
    case = cases[[m.__name__ for m in robust_corpus.CLASSES].index(name)]
    stem = Path(case.name).stem
    row = rows(out / "summary.csv")[stem]
    assert row["status"] == case.status
    written = sorted(p.name for p in out.glob(f"{stem}.*"))
    if case.status == "failed":
        assert re.fullmatch(case.reason, row["reason"]), row["reason"]
        assert written == []
        return
    assert row["reason"] == ""
    doc = json.loads((out / f"{stem}.stats.json").read_text())
    assert len(doc["warnings"]) == len(case.warnings), doc["warnings"]
    for pattern, text in zip(case.warnings, doc["warnings"]):
        assert re.fullmatch(pattern, text), (pattern, text)
    header = [line[len("# WARNING: "):] for line in (out / f"{stem}.hypnogram.csv").read_text().splitlines()
              if line.startswith("# WARNING: ")]
    sta = [line[len("# WARNING: "):] for line in (out / f"{stem}.STA").read_text().splitlines()
           if line.startswith("# WARNING: ")]
    assert header == doc["warnings"] and sta == doc["warnings"]
    assert row["warnings"] == " | ".join(["DEMO weights (simulated data)"] + doc["warnings"])
    import edfio

    marks = [a.text for a in edfio.read_edf(out / f"{stem}.annotations.edf").annotations if a.duration == 0]
    assert sorted(m for m in marks if m.startswith("WARNING: ")) == sorted(f"WARNING: {w}"[:200] for w in doc["warnings"])
    hd = edfio.read_edf(out / f"{stem}.hypnodensity.edf")
    assert {s.physical_dimension for s in hd.signals} == {"prob"}


def test_copies_reduce_to_one_and_the_png_names_the_derivations(batch):
    cases, folder, out, code, lines = batch
    case = next(c for c in cases if c.klass == "identical channels")
    doc = json.loads((out / "copies.stats.json").read_text())
    kept = [c for c in robust_corpus.CANONICAL if c not in doc["dropped_channels"]]
    assert doc["channels"] == kept and "E2" not in kept
    assert len([c for c in kept if robust_corpus.KIND[c] == "EEG"]) == 6 - (len(case.warnings) - 1)  # one E2 drop
    png = out / "copies.png"
    assert png.stat().st_size > 0


def test_lights_rule_time_in_bed_cut_at_the_recording_edges(batch):
    cases, folder, out, code, lines = batch
    doc = json.loads((out / "lights_outside.stats.json").read_text())
    assert doc["lights"]["off_s"] == 0.0 and doc["lights"]["on_s"] == robust_corpus.EPOCHS * 30.0
    assert doc["statistics"]["TIB"] == robust_corpus.EPOCHS * 0.5
    doc = json.loads((out / "lights_out_of_order.stats.json").read_text())
    assert doc["lights"]["off_s"] is None and doc["lights"]["on_s"] is None


@pytest.mark.parametrize("seed", [1, 2])
def test_other_members_of_the_file_classes(tmp_path, seed):
    """New draws of the classes decided before staging (gap, rate, links) give their exact reason."""
    from preprocess.core.edf import EdfError, EdfReader

    rng = np.random.default_rng(seed)
    case = robust_corpus.edf_c_with_gap(tmp_path, rng)
    with pytest.raises(EdfError) as exc:
        EdfReader(tmp_path / case.name)
    assert re.fullmatch(case.reason, str(exc.value).split(": ", 1)[1])
    assert EdfReader(robust_corpus.write_edf(tmp_path / "c.edf", robust_corpus.base_night(), 100.0,
                                             annotations=[(0.0, 0.0, "start")])).labels  # contiguous: read


# --------------------------------------------------------------------------- gate known answers


FS = 256.0


def _check(x, kind="eeg", unit="uV", fs=FS):
    from staging.quality import check_channel

    return check_channel("X", x, fs, int(len(x) / fs // 30), kind, unit != "%", 30.0, None, unit)


def test_gate_known_answers_per_class():
    rng = np.random.default_rng(3)
    n = int(10 * 30 * FS)
    t = np.arange(n) / FS
    white = rng.normal(0, 20e-6, n)
    assert _check(white).kind == "nonphysio"
    assert _check(white, "emg").reason is None  # chin EMG is broadband by nature: not judged by spectrum
    hum = 100e-6 * np.sin(2 * np.pi * 60 * t) + rng.normal(0, 1e-6, n)
    q = _check(hum)
    assert q.kind == "nonphysio" and "mains hum" in q.reason
    # pink (1/f) noise: the shape of EEG, kept
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.fft.rfftfreq(n, 1 / FS)
    pink = np.fft.irfft(spec / np.sqrt(np.maximum(f, 0.1)), n)
    pink *= 20e-6 / pink.std()
    assert _check(pink).reason is None and _check(pink).note is None
    # the same pink signal in the wrong unit, both ways
    assert "wrong unit field ('nV')?" in _check(pink * 1e-3, unit="nV").reason
    assert "wrong unit field ('V')?" in _check(pink * 1e6, unit="V").reason
    # coarse quantisation: a warning, not a drop
    step = 20e-6
    q = _check(np.round(pink / step) * step)
    assert q.reason is None and q.note.startswith("coarse quantisation: steps of 20 µV")
    # rate below the EEG minimum (but one the chain could filter): refused with the minimum named
    slow = pink[:: 8]  # 32 Hz
    assert _check(slow, fs=32.0).reason == ("sampling rate 32 Hz is below the 40 Hz minimum for EEG (its sleep "
                                            "bands do not fit under the Nyquist rate)")


def test_nonphysio_epochs_are_flagged_when_the_channel_is_kept():
    from staging.quality import BIT, epoch_masks

    rng = np.random.default_rng(4)
    n = int(4 * 30 * FS)
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.fft.rfftfreq(n, 1 / FS)
    x = np.fft.irfft(spec / np.maximum(f, 0.1), n)
    x *= 20e-6 / x.std()
    per = int(30 * FS)
    x[per:2 * per] = rng.normal(0, 20e-6, per)  # epoch 1: white noise (electrode off for 30 s)
    masks = epoch_masks(x, FS, 4, "eeg")
    assert [bool(m & BIT["nonphysio"]) for m in masks] == [False, True, False, False]


def test_duplicate_check_is_signed():
    """E1 and E2 mirror each other by nature (r = -1 for horizontal movements): never copies."""
    from preprocess.core.channels import Source
    from staging.quality import duplicate_channels

    x = np.random.default_rng(5).normal(size=3000).astype(np.float32)
    sig = {"a": (100.0, 1, x), "b": (100.0, 1, -x), "c": (100.0, 1, x.copy())}
    found = duplicate_channels([Source("E1", "a"), Source("E2", "b"), Source("C3", "c")], sig)
    assert [(lab, c) for lab, c, _ in found] == [("c", "C3")]


# --------------------------------------------------------------------------- faults


def _one_night(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    night = robust_corpus.base_night()
    for k in range(n):
        robust_corpus.write_edf(folder / f"night{k}.edf", night, 100.0)
    return folder


def test_full_disk_one_line_per_file_stop_rule_no_traceback(tmp_path, tiny_weights, monkeypatch):
    from staging import batch as staging_batch
    from staging import outputs

    folder = _one_night(tmp_path / "in", 3)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "atomic_write_text", full)
    monkeypatch.setattr(staging_batch, "atomic_write_text", full)
    out = tmp_path / "out"
    code, lines = cli(folder, "--out", out, "--weights", tiny_weights)
    assert code == 1
    assert f"[1/3] FAILED {folder / 'night0.edf'}: cannot write the outputs to {out}: No space left on device" in lines
    assert (f"stopping: the output folder {out} cannot be written (No space left on device); 2 file(s) not staged: "
            "free space or choose another --out, then rerun to resume") in lines
    assert f"summary.csv not written to {out}: No space left on device" in lines
    assert lines[-1].endswith("(summary: not written, see above)")
    assert sorted(p.name for p in out.iterdir()) == []  # the PNG written before the failure was removed


def test_out_not_writable_is_exit_2_before_any_file_is_read(tmp_path, tiny_weights, monkeypatch):
    from staging import batch as staging_batch

    folder = _one_night(tmp_path / "in", 1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, lines = cli(folder, "--out", blocker / "sub", "--weights", tiny_weights)
    assert code == 2 and lines == [f"error: --out {blocker / 'sub'}: cannot create the folder (Not a directory)"]

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    read = []
    monkeypatch.setattr(staging_batch, "open", read_only, raising=False)  # only the probe write is in batch
    monkeypatch.setattr(staging_batch, "stage_file", lambda *a, **k: read.append(a))
    code, lines = cli(folder, "--out", tmp_path / "ro", "--weights", tiny_weights)
    assert code == 2 and lines == [f"error: --out {tmp_path / 'ro'}: the folder is not writable (Read-only file system)"]
    assert read == []


def test_unreadable_input_is_one_line(tmp_path, tiny_weights, monkeypatch):
    from staging import batch as staging_batch

    folder = _one_night(tmp_path / "in", 1)
    monkeypatch.setattr(staging_batch, "_can_read", lambda p: False)  # root reads anything: simulate
    code, lines = cli(folder, "--out", tmp_path / "out", "--weights", tiny_weights)
    assert code == 1
    assert f"[1/1] FAILED {folder / 'night0.edf'}: cannot read the file (permission denied)" in lines


def test_png_title_names_the_real_derivations():
    from preprocess.core.channels import Source
    from staging.montage import derivations_text

    sources = [Source("F3", "EEG Fpz-Cz"), Source("O1", "EEG Pz-Oz"), Source("E1", "EOG horizontal"),
               Source("C3", "EEG C3-M2"), Source("C4", "C4", "M1"), Source("E2", "ROC"), Source("Chin", "Chin1", "Chin2")]
    assert derivations_text(sources) == "F3\u2190Fpz-Cz O1\u2190Pz-Oz E1\u2190horizontal C3 C4 E2\u2190ROC Chin"
