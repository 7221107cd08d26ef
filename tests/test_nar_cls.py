"""Narcolepsy / disorder classification (nar_cls) on simulated cohorts (all numbers SIMULATED).

The learning test writes a small simulated MNC-like cohort (45 subjects, 1-h nights, C4/E1/Chin),
freezes a random LPSGM-Small saved in the official ``.pth`` format and runs the 5-fold CLI for
type 1 narcolepsy vs all others. It must reach a pooled subject AUC >= 0.9, and the same run with
shuffled subject labels must not (so the bar fails when the head ignores the data).
"""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch

from models import build_model, save_checkpoint, to_official_state_dict
from nar_cls.__main__ import main as nar_main
from nar_cls.cohort import build_cohort
from nar_cls.labels import (
    DIAGNOSIS_MAP,
    assign_labels,
    get_task,
    label_to_class,
    normalize_diagnosis,
    read_labels_csv,
)
from nar_cls.metrics import aggregate_subjects, classification_metrics
from nar_cls.model import NarModel, WindowHead, load_backbone, load_fold_model, optimizer_groups, set_strategy
from nar_cls.splits import class_weights, inner_validation, stratified_subject_folds
from simulate.cohorts import GROUPS, group_hypnogram, hypnogram_stats, write_cohort

METRIC_KEYS = {"n", "accuracy", "balanced_accuracy", "kappa", "macro_f1", "f1", "confusion", "roc_auc", "roc_auc_kind"}


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_root(tmp_path_factory):
    """45 simulated subjects (15 per group, some with two nights), 1-h nights, C4/E1/Chin."""
    root = tmp_path_factory.mktemp("nar_h5")
    write_cohort(root, per_group=(15, 15, 15), hours=1.0, channels=("C4", "E1", "Chin"), seed=0,
                 second_visit=0.1, workers=2)
    return root


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory):
    """A random LPSGM-Small saved like the published checkpoints (``module.`` keys)."""
    torch.manual_seed(0)
    model = build_model("lpsgm-small")
    path = tmp_path_factory.mktemp("ckpt") / "random_block1.pth"
    torch.save({"model_state_dict": to_official_state_dict(model)}, path)
    return path, model


@pytest.fixture(scope="module")
def nt1_runs(cohort_root, official_pth, tmp_path_factory):
    """The merge_NT1 partial run and two runs with permuted labels (embeddings computed once, cached)."""
    out = tmp_path_factory.mktemp("nar_runs")
    common = ["--data", str(cohort_root), "--init", str(official_pth[0]), "--merge_NT1", "--strategy", "partial",
              "--epochs", "20", "--feature-cache", str(out / "features.npz"), "--no-progress"]
    assert nar_main(common + ["--out", str(out / "nt1")]) == 0
    for seed in (0, 1):
        assert nar_main(common + ["--out", str(out / f"perm{seed}"), "--permute-labels", str(seed), "--no-save"]) == 0
    return out / "nt1", [out / "perm0", out / "perm1"]


# ---------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, group", [
    ("control", "control"), ("Non-Narcolepsy Control", "control"), ("NON-NARCOLEPSY CONTROL", "control"),
    ("NT1", "NT1"), ("type 1 narcolepsy", "NT1"), ("T1 narcolepsy", "NT1"), ("narcolepsy_type_1", "NT1"),
    ("other hypersomnia", "other_hypersomnia"), ("hypersomnia", "other_hypersomnia"),
    ("T2/IH", "other_hypersomnia"), ("idiopathic hypersomnia", "other_hypersomnia"),
    ("insomnia", None), ("", None), (None, None),
])
def test_diagnosis_normalisation(text, group):
    assert normalize_diagnosis(text) == group


def test_tasks_map_groups_to_classes():
    three, nt1, nva = get_task("3class"), get_task("merge_NT1"), get_task("normal_vs_abnormal")
    assert [label_to_class(t, three) for t in ("control", "NT1", "T2/IH")] == [0, 1, 2]
    assert [label_to_class(t, nt1) for t in ("control", "NT1", "T2/IH")] == [0, 1, 0]
    assert nt1.classes[nt1.positive] == "NT1"
    assert [label_to_class(t, nva) for t in ("control", "NT1", "T2/IH")] == [0, 1, 1]
    custom = get_task("custom", ["Control", "Insomnia"])
    assert label_to_class(" insomnia", custom) == 1 and label_to_class("NT1", custom) is None
    assert set(DIAGNOSIS_MAP.values()) == {"control", "NT1", "other_hypersomnia"}
    with pytest.raises(ValueError):
        get_task("custom", ["only_one"])


def test_assign_labels_from_attributes_and_csv(tmp_path):
    rows = [{"dataset": "D", "subject": "a", "labels": {"diagnosis": "T1 narcolepsy"}},
            {"dataset": "D", "subject": "a", "labels": {"diagnosis": "type 1 narcolepsy"}},  # 2nd visit, same class
            {"dataset": "D", "subject": "b", "labels": {"diagnosis": "non-narcolepsy control"}},
            {"dataset": "D", "subject": "c", "labels": {"diagnosis": "banana"}},
            {"dataset": "D", "subject": "d", "labels": {}}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        classes, raw = assign_labels(rows, get_task("3class"))
    assert classes == {"D/a": 1, "D/b": 0}
    assert any("banana" in str(w.message) for w in caught)
    path = tmp_path / "labels.csv"
    path.write_text("subject,group\na,control\nD/b,insomnia\n")
    table = read_labels_csv(path, label_key="group")
    with pytest.warns(UserWarning, match="no row in the labels CSV"):
        classes, _ = assign_labels(rows, get_task("custom", ["control", "insomnia"]), labels_csv=table)
    assert classes == {"D/a": 0, "D/b": 1}


# ---------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------


def test_folds_are_subject_disjoint_and_stratified():
    y = np.array([0] * 13 + [1] * 11 + [2] * 9)
    folds = stratified_subject_folds(y, 5, seed=3)
    assert set(folds.tolist()) == set(range(5))
    for c in range(3):  # each fold holds floor or ceil of 1/5 of every class
        per_fold = np.bincount(folds[y == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1
    for k in range(5):
        test = np.flatnonzero(folds == k)
        train, val = inner_validation(np.flatnonzero(folds != k), y, 0.2, seed=k)
        assert not set(train) & set(val) and not set(test) & (set(train) | set(val))
        assert len(train) + len(val) + len(test) == len(y)
        assert set(y[val]) == {0, 1, 2}  # stratified: every class validated
    with pytest.raises(ValueError, match="smallest class"):
        stratified_subject_folds(np.array([0] * 10 + [1] * 3), 5)
    assert class_weights(np.array([0, 0, 0, 1]), 2).tolist() == pytest.approx([2 / 3, 2.0])


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def test_metrics_known_answers():
    prob = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    m = classification_metrics([0, 1, 1, 1], prob, ("neg", "pos"), positive=1)
    assert set(m) == METRIC_KEYS
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["roc_auc"] == 1.0 and m["confusion"] == [[1, 0], [1, 2]]
    assert m["f1"]["pos"] == pytest.approx(0.8)
    three = classification_metrics([0, 1, 2], np.eye(3), ("a", "b", "c"))
    assert three["roc_auc"] == 1.0 and three["kappa"] == 1.0 and three["roc_auc_kind"] == "macro_ovr"
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.2, 0.8]])
    subj, mean = aggregate_subjects(p, np.array([0, 0, 0, 1]), "mean")
    assert subj.tolist() == [0, 1] and mean[0].tolist() == pytest.approx([0.5833333, 0.4166667])
    _, vote = aggregate_subjects(p, np.array([0, 0, 0, 1]), "vote")
    assert vote[0].tolist() == pytest.approx([1 / 3, 2 / 3])  # mean says class 0, the vote says 1


# ---------------------------------------------------------------------------------------------
# simulated cohorts
# ---------------------------------------------------------------------------------------------


def test_group_hypnograms_differ_as_specified():
    rng = np.random.default_rng(0)
    stats = {g: [hypnogram_stats(group_hypnogram(g, 480, rng)) for _ in range(40)] for g in GROUPS}

    def mean(g, key):
        return float(np.nanmean([s[key] for s in stats[g]]))

    nt1, ctl, oh = "type 1 narcolepsy", "control", "other hypersomnia"
    assert mean(nt1, "soremp") > 0.7 > 0.3 > mean(ctl, "soremp")  # SOREMP: REM within 15 min of onset
    assert mean(nt1, "rem_latency_min") < 15 < mean(ctl, "rem_latency_min")
    assert mean(nt1, "n_awakenings") > 2 * mean(ctl, "n_awakenings")  # fragmented night sleep
    assert mean(oh, "tst_min") > mean(ctl, "tst_min") + 30  # long total sleep
    assert mean(oh, "sleep_efficiency") > 0.9


@pytest.mark.slow  # builds the 45-subject cohort that the slow learning tests share
def test_cohort_files(cohort_root):
    task = get_task("3class")
    cohort = build_cohort(cohort_root, task)
    assert len(cohort.subjects) == 45 and np.bincount(cohort.y).tolist() == [15, 15, 15]
    assert cohort.simulated and len(cohort.rows) > 45  # some subjects have two recordings
    assert cohort.rows[0]["channels"] == ["C4", "E1", "Chin"]
    assert np.all(np.bincount(cohort.win_subject) >= 6)  # 1 h = 6 windows of 20 epochs


# ---------------------------------------------------------------------------------------------
# strategies and checkpoints
# ---------------------------------------------------------------------------------------------


def test_strategy_parameter_groups():
    model = NarModel(build_model("lpsgm-small"), WindowHead(608, 3))
    set_strategy(model, "partial")
    groups = optimizer_groups(model, "partial", 1e-3, 1e-5, 0.01)
    assert {g["name"].split("_")[0] for g in groups} == {"head"}
    assert not any(p.requires_grad for p in model.backbone.parameters())
    set_strategy(model, "full")
    lrs = {g["name"]: g["lr"] for g in optimizer_groups(model, "full", 1e-3, 1e-5, 0.01)}
    assert lrs["head"] == 1e-3 and lrs["backbone"] == 1e-5
    lrs = {g["name"]: g["lr"] for g in optimizer_groups(model, "scratch", 1e-3, 1e-5, 0.01)}
    assert lrs["backbone"] == 1e-3


def test_official_pth_backbone_gives_the_same_embeddings(official_pth, tmp_path):
    path, reference = official_pth
    backbone, info = load_backbone(path)
    assert info["format"] == "official" and backbone.cfg.n_blocks == 1
    save_checkpoint(reference, tmp_path / "ours")
    ours, info_ours = load_backbone(tmp_path / "ours.safetensors")
    assert info_ours["format"] == "ours"
    x, ch = torch.randn(2, 20, 2, 3000), torch.tensor([[3, 6], [8, -1]])
    with torch.no_grad():
        want = reference.eval().cls_features(x, ch).mean(1)
        assert torch.allclose(backbone.cls_features(x, ch).mean(1), want, atol=1e-5)
        assert torch.allclose(ours.cls_features(x, ch).mean(1), want, atol=1e-5)


def test_full_strategy_updates_backbone(tmp_path, official_pth):
    """A few full fine-tuning steps on a tiny cohort: the saved backbone differs from the init."""
    root = tmp_path / "h5"
    write_cohort(root, per_group=(3, 3, 3), hours=0.5, channels=("C4",), seed=1)
    out = tmp_path / "full"
    assert nar_main(["--data", str(root), "--init", str(official_pth[0]), "--merge_NT1", "--strategy", "full",
                     "--folds", "2", "--val-fraction", "0.34", "--epochs", "1", "--steps-per-epoch", "2",
                     "--batch-size", "2", "--out", str(out), "--no-progress"]) == 0
    info = json.loads((out / "fold_0" / "head.json").read_text())
    assert info["strategy"] == "full" and info["backbone"] == "backbone"
    tuned = load_fold_model(out / "fold_0")
    init = official_pth[1].state_dict()
    changed = [k for k, v in tuned.backbone.state_dict().items() if not torch.equal(v, init[k])]
    assert any(k.startswith("epoch_encoder") for k in changed)
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "full"


# ---------------------------------------------------------------------------------------------
# end to end: learning, chance control, outputs
# ---------------------------------------------------------------------------------------------


def _pooled_auc(run) -> float:
    return json.loads((run / "metrics.json").read_text())["pooled"]["subject"]["roc_auc"]


@pytest.mark.slow
def test_nt1_vs_others_learns_from_the_signals(nt1_runs):
    run, permuted = nt1_runs
    auc, chance = _pooled_auc(run), [_pooled_auc(p) for p in permuted]
    print(f"SIMULATED cohort, merge_NT1, partial (frozen random backbone): pooled subject AUC {auc:.3f}, "
          f"with permuted labels {chance}")
    assert auc >= 0.9
    # same pipeline, subject labels shuffled: near chance (0.5 +- ~0.09 per run with 45 subjects)
    assert np.mean(chance) <= 0.75 and max(chance) <= 0.85


@pytest.mark.slow
def test_run_outputs_have_documented_keys(nt1_runs):
    run, _ = nt1_runs
    config = json.loads((run / "config.json").read_text())
    assert config["simulated"] is True and config["backbone"]["format"] == "official"
    pooled = json.loads((run / "metrics.json").read_text())
    assert pooled["simulated"] is True and pooled["classes"] == ["non_NT1", "NT1"]
    assert set(pooled["pooled"]) == {"window", "subject"} and len(pooled["folds"]) == 5
    for level in ("window", "subject"):
        assert set(pooled["pooled"][level]) == METRIC_KEYS
        assert set(pooled["mean_over_folds"][level]) >= {"accuracy", "balanced_accuracy", "kappa", "macro_f1", "roc_auc"}
    with open(run / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["subject", "fold", "true", "pred", "p_non_NT1", "p_NT1"]
    assert len(rows) == len({r["subject"] for r in rows}) == 45  # every subject predicted once
    with open(run / "subjects.csv", newline="") as fh:
        fold_of = {r["subject"]: r["fold"] for r in csv.DictReader(fh)}
    seen = set()
    for k in range(5):
        fold = run / f"fold_{k}"
        m = json.loads((fold / "metrics.json").read_text())
        assert set(m["test"]) == {"loss", "window", "subject"} and set(m["test"]["subject"]) == METRIC_KEYS
        split = json.loads((fold / "split.json").read_text())
        assert not (set(split["train"]) | set(split["val"])) & set(split["test"])
        assert all(fold_of[s] == str(k) for s in split["test"])
        seen |= set(split["test"])
        with open(fold / "windows.csv", newline="") as fh:
            wins = list(csv.DictReader(fh))
        assert {w["subject"] for w in wins} == set(split["test"])  # all windows of a subject in its test fold
    assert len(seen) == 45
    # the saved head + official backbone reproduce the fold's window probabilities
    model = load_fold_model(run / "fold_0")
    cohort = build_cohort(json.loads((run / "config.json").read_text())["args"]["data"], get_task("merge_NT1"))
    with open(run / "fold_0" / "windows.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    rec = cohort.recording_names().index(first["recording"])
    item = cohort.data[(rec, int(first["start"]))]
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(item["x"])[None], torch.from_numpy(item["channels"])[None]), 1)
    assert p[0, 1].item() == pytest.approx(float(first["p_NT1"]), abs=1e-4)
