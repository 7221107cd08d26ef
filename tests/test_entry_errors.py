"""Entry points answer input problems with one line and a non-zero exit code (issue 21): train.py,
finetune.py, python -m preprocess, python -m simulate. What can be checked before the data is
loaded (--init) is checked first: a data root that does not exist is not even looked at."""

from __future__ import annotations

import contextlib
import io

import pytest

from engine.cli_errors import run_main
from tests.test_train import toy_root

TINY = ["--model", "lpsgm-small", "--workers", "0", "--precision", "fp32", "--device", "cpu", "--max-steps", "1"]


def one_line(fn, argv, prog=""):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_main(fn, argv, prog) if prog else fn(argv)
    return code, err.getvalue().splitlines()


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return toy_root(tmp_path_factory.mktemp("h5"), {"aa": 3, "bb": 2})


def test_train_init_checked_before_data_and_batch_too_large(tmp_path, h5):
    import train

    code, lines = one_line(train.main, ["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"),
                                        "--init", str(tmp_path / "nope.safetensors"), *TINY], "train.py")
    assert code == 2 and lines == [f"train.py: error: --init {tmp_path / 'nope.safetensors'}: no such weights file "
                                   f"(nope.safetensors not found in {tmp_path})"]
    code, lines = one_line(train.main, ["--data", str(h5), "--out", str(tmp_path / "r"), "--seq-len", "5",
                                        "--batch-size", "5000", *TINY], "train.py")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("train.py: error: --batch-size 5000 is larger than the ")
    assert lines[0].endswith(" training windows each of the 1 process(es) gets per epoch: lower --batch-size "
                             "(or add data)")


def test_finetune_folds_init_batch(tmp_path, h5):
    import finetune

    base = ["--data", str(h5), "--dataset", "aa", "--out", str(tmp_path / "f"), *TINY[2:]]
    code, lines = one_line(finetune.main, [*base, "--folds", "5", "--strategy", "scratch", "--model", "lpsgm-small"],
                           "finetune.py")
    assert (code, lines) == (2, ["finetune.py: error: aa: 3 subjects cannot be split into 5 folds"])
    code, lines = one_line(finetune.main, [*base, "--folds", "2", "--init", str(tmp_path / "w.json")], "finetune.py")
    assert (code, lines) == (2, [f"finetune.py: error: --init {tmp_path / 'w.json'}: no such weights file "
                                 f"(w.safetensors not found in {tmp_path})"])


def test_preprocess_folder_without_recordings_and_simulate_bad_out(tmp_path):
    from preprocess.__main__ import main as preprocess_main
    from simulate.__main__ import main as simulate_main

    (tmp_path / "raw").mkdir()
    code, lines = one_line(preprocess_main, ["sleepedf", "--src", str(tmp_path / "raw"), "--dst",
                                             str(tmp_path / "h5"), "--no-progress"])
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path / 'raw'}: no sleepedf recording found there (layout: ")
    assert not (tmp_path / "h5").exists()
    (tmp_path / "file").write_text("x")
    code, lines = one_line(simulate_main, ["--out", str(tmp_path / "file" / "sim"), "--recordings", "1",
                                           "--hours", "0.05"])
    assert (code, lines) == (2, [f"error: --out {tmp_path / 'file' / 'sim'}: Not a directory"])
