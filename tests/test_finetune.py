"""finetune.py: k-fold by subject, the three strategies, run folder, a truly frozen backbone."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from models import build_model, save_checkpoint
from tests.test_train import toy_root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    root = toy_root(tmp / "h5", {"site": 6, "other": 2}, n_epochs=30, seed=4)
    torch.manual_seed(0)
    init = build_model("lpsgm-small", seq_len=5)
    save_checkpoint(init, tmp / "pre", meta={"note": "random init for tests"})
    return tmp, root


def run(tmp, root, strategy, *extra):
    import finetune

    out = tmp / strategy
    args = ["--data", str(root), "--dataset", "site", "--folds", "3", "--fold", "1", "--strategy", strategy,
            "--out", str(out), "--max-steps", "3", "--warmup-steps", "1", "--batch-size", "2", "--workers", "0",
            "--eval-every", "3", "--lr-backbone", "1e-3", "--lr-head", "1e-2", "--precision", "fp32",
            "--device", "cpu", "--wake-margin", "-1", "--seed", "2", *extra]
    if strategy != "scratch":
        args += ["--init", str(tmp / "pre.safetensors")]
    summary = finetune.main(args)
    return out, summary


def backbone_and_head(state):
    head = {k: v for k, v in state.items() if k.startswith("classifier.")}
    return {k: v for k, v in state.items() if k not in head}, head


def test_partial_freezes_the_backbone_and_writes_the_run_folder(setup):
    tmp, root = setup
    out, summary = run(tmp, root, "partial")
    for name in ("config.json", "metrics.json", "predictions.csv", "best.safetensors", "best.json",
                 "last.safetensors", "state.pt", "metrics.jsonl"):
        assert (out / name).exists(), name
    pre_bb, pre_head = backbone_and_head(load_file(tmp / "pre.safetensors"))
    bb, head = backbone_and_head(load_file(out / "last.safetensors"))
    for k in pre_bb:  # weights AND BatchNorm statistics untouched
        assert torch.equal(pre_bb[k], bb[k]), k
    assert any(not torch.equal(pre_head[k], head[k]) for k in head)
    config = json.loads((out / "config.json").read_text())
    assert config["trainable_parameters"] == 608 * 5 + 5
    # outer fold and inner validation are subject-disjoint, and only "site" subjects are used
    s = config["subjects"]
    assert not set(s["test"]) & (set(s["train"]) | set(s["val"])) and not set(s["train"]) & set(s["val"])
    assert len(s["test"]) == 2 and all(x.startswith("site-") for v in s.values() for x in v)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "partial" and metrics["test"]["n_epochs"] > 0
    assert set(metrics["test"]["per_recording"]) == {f"site/{r}" for r in
                                                      {row["recording"] for row in _csv(out)}}
    rows = _csv(out)
    assert {r["subject"] for r in rows} == set(s["test"])
    assert len(rows) == 2 * 30 and {int(r["pred"]) for r in rows} <= {0, 1, 2, 3, 4}
    assert summary["test"]["accuracy"] == metrics["test"]["accuracy"]


def _csv(out):
    with open(out / "predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_full_trains_backbone_with_its_own_lr(setup):
    tmp, root = setup
    out, _ = run(tmp, root, "full")
    pre_bb, _ = backbone_and_head(load_file(tmp / "pre.safetensors"))
    bb, _ = backbone_and_head(load_file(out / "last.safetensors"))
    assert any(not torch.equal(pre_bb[k], bb[k]) for k in pre_bb)
    state = torch.load(out / "state.pt", weights_only=True)
    peaks = sorted({g["peak_lr"] for g in state["optimizer"]["param_groups"]})
    assert peaks == [1e-3, 1e-2]
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "full"


def test_scratch_needs_no_init_and_other_strategies_do(setup):
    tmp, root = setup
    out, _ = run(tmp, root, "scratch", "--model", "lpsgm-small")
    assert json.loads((out / "last.json").read_text())["model"]["n_blocks"] == 1
    assert (out / "predictions.csv").exists()
    import finetune

    with pytest.raises(SystemExit):
        finetune.parse_args(["--data", "x", "--dataset", "y", "--out", "z", "--strategy", "full"])
