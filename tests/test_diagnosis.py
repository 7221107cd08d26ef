"""OSA / depression diagnosis: NSRR subject-table readers, tasks, metrics, probe, explanations, CLI.

Reader fixtures are written in each dataset's real column layout (names in
``preprocess/core/subject_tables.py`` with their sources). The learning tests run on SIMULATED
cohorts (:mod:`simulate.disorders`); their numbers say nothing about patients.
"""

from __future__ import annotations

import csv
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nar_cls.__main__ import build_parser
from nar_cls.__main__ import main as nar_main
from nar_cls.explain import subject_explanations
from nar_cls.labels import assign_labels, get_task, label_to_class
from nar_cls.metrics import calibration
from nar_cls.probe import fit_probe, probe_probabilities, subject_features
from preprocess.core.subject_tables import ahi_class, depression_label, join, read_subject_table


def _write(path, text):
    path.write_text(text.strip() + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# subject tables in the datasets' own layouts
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tables(tmp_path):
    t = {}
    t["apples"] = read_subject_table("apples", [
        _write(tmp_path / "apples-harmonized-dataset-0.1.0.csv", """
nsrrid,visitn,fileid,nsrr_age,nsrr_sex,nsrr_ahi_chicago1999
700001,1,,54,male,
700001,3,apples-140001,54,male,42.5
700002,3,apples-140002,61,female,3.1
700003,3,apples-140003,47,male,.
"""),
        _write(tmp_path / "apples-dataset-0.1.0.csv", """
appleid,visitn,age,gender,depressionmedhxhp,hamdtotalscore,bditotalscore
700001,1,54,1,1,12,21
700001,2,54,1,0,0,0
700002,1,61,2,0,3,4
700003,1,47,1,1,2,3
""")])
    t["shhs"] = read_subject_table("shhs", [_write(tmp_path / "shhs1-dataset-0.21.0.csv", """
nsrrid,pptid,ahi_a0h3,ahi_a0h3a,ahi_a0h4,ahi_a0h4a,rdi3p
200001,1,9.1,12.0,4.0,6.0,9.1
200002,2,33.0,35.5,28.0,30.1,33.0
""")])
    t["mesa"] = read_subject_table("mesa", [_write(tmp_path / "mesa-sleep-dataset-0.7.0.csv", """
mesaid,examnumber,ahi_a0h3,ahi_a0h3a,ahi_a0h4,ahi_a0h4a
1,5,4.0,16.2,2.0,3.0
""")])
    t["cfs"] = read_subject_table("cfs", [_write(tmp_path / "cfs-visit5-harmonized-dataset-0.7.0.csv", """
nsrrid,visit,nsrr_age,nsrr_ahi_hp3u,nsrr_ahi_hp3r_aasm15,nsrr_ahi_hp4u_aasm15,nsrr_ahi_hp4r
800002,5,40,7.0,8.5,3.0,4.0
""")])
    t["mros"] = read_subject_table("mros", [_write(tmp_path / "mros-visit1-dataset-0.6.0.csv", """
nsrrid,visit,poahi3,poahi3a,poahi4,poahi4a
AA0001,1,20.0,22.0,10.0,11.0
AA0001,2,31.0,33.0,15.0,16.0
""")])
    return t


def test_readers_pick_the_documented_ahi_variable(tables):
    a = tables["apples"].values
    assert a[("140001", None)]["ahi"] == 42.5 and a[("140001", None)]["depression"] == "depressed"
    assert a[("140002", None)]["depression"] == "control" and a[("140003", None)]["ahi"] is None
    assert a[("140003", None)]["depression"] is None  # history 1 but low HAM-D and BDI: undecided
    assert tables["shhs"].source["ahi"] == "ahi_a0h3a" and tables["shhs"].values[("200002", None)]["ahi"] == 35.5
    assert tables["mesa"].values[("1", None)]["ahi"] == 16.2
    assert tables["cfs"].values[("800002", 5)]["ahi"] == 8.5  # harmonized AASM 2015 recommended rule
    assert tables["mros"].values[("aa0001", 2)]["ahi"] == 33.0


def test_join_by_subject_and_visit_reports_absent_subjects(tables):
    rows = [{"dataset": "apples", "subject": "140001", "recording": "apples-140001", "labels": {}},
            {"dataset": "apples", "subject": "149999", "recording": "apples-149999", "labels": {}},
            {"dataset": "shhs", "subject": "200002", "recording": "shhs1-200002", "labels": {"visit": 1}},
            {"dataset": "mesa", "subject": "0001", "recording": "mesa-sleep-0001", "labels": {}},
            {"dataset": "mros", "subject": "aa0001", "recording": "mros-visit2-aa0001", "labels": {"visit": 2}},
            {"dataset": "mros", "subject": "aa0001", "recording": "mros-visit3-aa0001", "labels": {"visit": 3}},
            {"dataset": "wsc", "subject": "x", "recording": "wsc-x", "labels": {}}]
    values, missing = join(rows, tables)
    assert values[0]["ahi"] == 42.5 and values[2]["ahi"] == 35.5 and values[3]["ahi"] == 16.2
    assert values[4]["ahi"] == 33.0
    assert [m["recording"] for m in missing] == ["apples-149999", "mros-visit3-aa0001", "wsc-x"]
    assert "not in the apples table" in missing[0]["reason"] and "visit 3" in missing[1]["reason"]
    # the absent subject is excluded with its reason, never put in a class
    excluded = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes, _ = assign_labels(rows[:2], get_task("osa"), table_values={0: values[0]}, excluded=excluded)
    assert classes == {"apples/140001": 1}
    assert excluded == [{"subject": "apples/149999", "reason": "no 'ahi' in the subject tables"}]


def test_reader_refuses_a_table_of_another_layout(tmp_path):
    path = _write(tmp_path / "x.csv", "id,score\n1,2\n")
    with pytest.raises(ValueError, match="x.csv: not a shhs subject table"):
        read_subject_table("shhs", [path])


def test_thresholds_known_answers():
    assert [ahi_class(a) for a in (4.99, 5, 15, 29.99, 30)] == [0, 1, 2, 2, 3]
    assert depression_label(1, 8, None) == "depressed" and depression_label(1, 7, 13) is None
    assert depression_label(0, 7, 13) == "control" and depression_label(0, 7, 14) is None
    osa, osa4 = get_task("osa"), get_task("osa", ahi_cuts=[5, 15, 30])
    assert osa.classes == ("AHI<30", "AHI>=30") and osa.positive == 1
    assert [label_to_class(v, osa) for v in ("29.9", 30, "x")] == [0, 1, None]
    assert osa4.classes == ("none", "mild", "moderate", "severe") and label_to_class(14.9, osa4) == 1
    dep = get_task("depression")
    assert [label_to_class(v, dep) for v in ("Depressed", "control", "MDD", "banana")] == [1, 0, 1, None]


# ---------------------------------------------------------------------------------------------
# metrics, probe, explanations
# ---------------------------------------------------------------------------------------------


def test_calibration_known_answers():
    y = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.9, 0.8, 0.3])
    c = calibration(y, np.stack([1 - p1, p1], 1), positive=1, threshold=0.5)
    op = c["operating_point"]
    assert (op["tp"], op["fn"], op["tn"], op["fp"]) == (2, 1, 1, 1)
    assert op["sensitivity"] == pytest.approx(2 / 3) and op["specificity"] == 0.5
    assert c["brier"] == pytest.approx(np.mean((p1 - y) ** 2))
    assert sum(b["n"] for b in c["reliability"]) == 5
    by_lo = {round(b["lo"], 1): (b["n"], b["observed"]) for b in c["reliability"]}  # 10 bins of width 0.1
    assert by_lo == {0.1: (1, 0.0), 0.3: (1, 1.0), 0.6: (1, 0.0), 0.8: (1, 1.0), 0.9: (1, 1.0)}


def test_linear_probe_separates_separable_subjects():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 4)).astype(np.float32)
    win_subject = np.repeat(np.arange(20), 3)
    y = np.arange(20) % 2
    emb[:, 0] += 3.0 * y[win_subject]  # feature 0 carries the class
    x = subject_features(emb, win_subject, 20)
    model = fit_probe(x[:14], y[:14])
    p = probe_probabilities(model, x[14:], 2)
    yt = y[14:].astype(bool)
    assert p[yt, 1].min() > p[~yt, 1].max()  # test subjects ranked perfectly (AUC 1)
    assert model.named_steps["logisticregression"].class_weight == "balanced"


def test_hypnogram_summary_known_answers():
    """Hand-made 30-s hypnograms: every value counted by hand."""
    from nar_cls.hypnogram import HYPNOGRAM_FEATURES, hypnogram_summary

    W, N1, N2, N3, R = 0, 1, 2, 3, 4
    # 4 W (2 min), N1, N2 x3, W (WASO 0.5 min), N2 x2, N3 x2, REM x3, W x2 at the end: 18 scored epochs = 9 min
    s = [W] * 4 + [N1] + [N2] * 3 + [W] + [N2] * 2 + [N3] * 2 + [R] * 3 + [W] * 2 + [-1]
    f = dict(zip(HYPNOGRAM_FEATURES, hypnogram_summary(s)))
    assert f["sol_min"] == 2.0  # 4 W epochs before the first sleep epoch
    # sleep onset at epoch 4, first REM at epoch 4 + 1 + 3 + 1 + 2 + 2 = 13: (13 - 4) x 0.5 min
    assert f["rem_latency_min"] == 4.5 and f["rem_censored"] == 0.0
    assert f["waso_min"] == 0.5  # the final W after the last sleep epoch is not WASO
    assert f["w_share"] == pytest.approx(7 / 18)  # the -1 epoch counts nowhere
    sleep = 11
    assert [f[k] for k in ("n1_share", "n2_share", "n3_share", "rem_share")] == pytest.approx(
        [1 / sleep, 5 / sleep, 2 / sleep, 3 / sleep])
    # changes: W>N1, N1>N2, N2>W, W>N2, N2>N3, N3>R, R>W = 7 in 9 min
    assert f["shifts_per_h"] == pytest.approx(7 * 60 / 9)
    # no REM: latency censored at the night's end, flagged; a 60-s epoch doubles the minutes
    f = dict(zip(HYPNOGRAM_FEATURES, hypnogram_summary([W, N2, N2, N3, W, N2], epoch_s=60.0)))
    assert f["rem_censored"] == 1.0 and f["rem_latency_min"] == 5.0 and f["sol_min"] == 1.0 and f["waso_min"] == 1.0
    # no sleep at all: onset censored at the end, nothing after it
    f = dict(zip(HYPNOGRAM_FEATURES, hypnogram_summary([W] * 6)))
    assert f["sol_min"] == 3.0 and f["rem_censored"] == 1.0 and f["rem_share"] == 0.0 and f["w_share"] == 1.0
    with pytest.raises(ValueError, match="no scored epoch"):
        hypnogram_summary([-1, -1])


def test_probe_features_read_the_predicted_hypnogram():
    """Two recordings of one subject and one of another: the hypnogram part of the probe features
    is the summary of the argmax of the window staging probabilities, averaged over recordings."""
    from nar_cls.hypnogram import HYPNOGRAM_FEATURES, hypnogram_summary
    from nar_cls.probe import probe_features

    L = 4
    stages = [np.array([0, 2, 2, 4, 4, 2, 2, 2]), np.array([0, 0, 2, 2, 2, 2, 4, 4]), np.array([0, 2, 3, 3])]
    win_rec, win_start, prob = [], [], []
    for r, st in enumerate(stages):
        for a in range(0, len(st), L):
            p = np.full((L, 5), 0.05)
            p[np.arange(L), st[a : a + L]] = 0.8
            win_rec.append(r), win_start.append(a), prob.append(p)
    windows = SimpleNamespace(n_epochs=lambda i: len(stages[i]))
    cohort = SimpleNamespace(win_rec=np.array(win_rec), win_start=np.array(win_start), rec_subject=np.array([0, 0, 1]),
                             subjects=["a", "b"], rows=[{}, {}, {}], data=SimpleNamespace(windows=windows))
    cohort.win_subject = cohort.rec_subject[cohort.win_rec]
    emb = np.arange(len(win_rec), dtype=np.float32)[:, None]
    x = probe_features(emb, cohort, np.array(prob))
    assert x.shape == (2, 1 + len(HYPNOGRAM_FEATURES))
    assert x[:, 0].tolist() == [1.5, 4.0]  # mean embedding of windows 0-3 and 4
    assert x[0, 1:] == pytest.approx((hypnogram_summary(stages[0]) + hypnogram_summary(stages[1])) / 2)
    assert x[1, 1:] == pytest.approx(hypnogram_summary(stages[2]))
    assert probe_features(emb, cohort, None).shape == (2, 1)  # scratch: the embedding only


def test_probe_blocks_weigh_each_block_equally():
    """Known answer: with blocks [4, 1] the standardised columns are scaled by 1/2 and 1, so the
    transformed block norms are equal; widths that do not add up are refused."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), np.arange(30) % 2
    model = fit_probe(x, y, blocks=[4, 1])
    z = model[:-1].transform(x)
    assert np.sum(z[:, :4] ** 2) == pytest.approx(np.sum(z[:, 4:] ** 2))
    assert np.allclose(z[:, 4], (x[:, 4] - x[:, 4].mean()) / x[:, 4].std())
    with pytest.raises(ValueError, match="do not add up"):
        fit_probe(x, y, blocks=[4, 2])


def test_a_head_that_reads_the_hypnogram_is_not_loaded_as_a_window_model(tmp_path):
    from nar_cls.model import load_fold_model

    (tmp_path / "head.json").write_text(json.dumps({"head": {"in_dim": 618, "n_classes": 2}, "backbone": "x",
                                                    "head_hypnogram": True}))
    with pytest.raises(ValueError, match="predicted-hypnogram summary"):
        load_fold_model(tmp_path)


def test_explanation_shares_are_exact_occlusion_effects():
    # one subject, two windows of 2 epochs each over a 4-epoch night: stages W W | REM N2
    stages = [np.array([0, 0, 4, 2])]
    cohort = SimpleNamespace(win_subject=np.array([0, 0]), win_rec=np.array([0, 0]), win_start=np.array([0, 2]),
                             seq_len=2, subjects=["D/s"], data=SimpleNamespace(windows=SimpleNamespace(stages=stages)))
    prob = np.array([[0.7, 0.3], [0.1, 0.9]])  # contributions (0.3-0.5)/2 = -0.1, (0.9-0.5)/2 = +0.2
    (row,) = subject_explanations(prob, np.array([0, 1]), cohort, ("c", "d"), positive=1)
    assert float(row["score"]) == pytest.approx(0.6, abs=1e-4)
    assert float(row["stage_W"]) == pytest.approx(-0.1 / 0.3, abs=1e-4) and float(row["stage_REM"]) == pytest.approx(0.1 / 0.3, abs=1e-4)
    assert float(row["stage_N2"]) == pytest.approx(0.1 / 0.3, abs=1e-4) and float(row["stage_N3"]) == 0.0
    # window 0 (middle epoch 1 of 4) is in the first third, window 1 (middle epoch 3) in the last
    assert float(row["night_1"]) == pytest.approx(-0.1 / 0.3, abs=1e-4) and float(row["night_3"]) == pytest.approx(0.2 / 0.3, abs=1e-4)


def test_joint_loss_adds_the_staging_term():
    from models import build_model
    from nar_cls.model import NarModel, WindowHead
    from nar_cls.train import joint_train_steps

    torch.manual_seed(0)
    backbone = build_model("lpsgm-small")
    model = NarModel(backbone, WindowHead(backbone.cfg.d_model, 2))
    x = torch.randn(2, 2, 1, 3000)
    ch = torch.zeros(2, 1, dtype=torch.long)
    labels = torch.tensor([[0, 1, 2], [1, -1, -1]])

    class _Sched:
        def step(self):
            pass

    def loss_with(w):
        m = NarModel(backbone, WindowHead(backbone.cfg.d_model, 2))
        m.load_state_dict(model.state_dict())
        m.head.eval()
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        (_, stats), = joint_train_steps(m, [{"x": x, "channels": ch, "labels": labels}], opt, _Sched(),
                                        torch.device("cpu"), bf16=False, stage_weight=w)
        return float(stats["loss"])

    model.eval()
    with torch.no_grad():
        diag, stage = model.joint_forward(x, ch)
    ce_d = torch.nn.functional.cross_entropy(diag, labels[:, 0])
    ce_s = torch.nn.functional.cross_entropy(stage.reshape(-1, stage.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=-1)
    backbone.eval()
    assert loss_with(0.0) == pytest.approx(float(ce_d), rel=1e-5)
    assert loss_with(0.5) == pytest.approx(float(ce_d + 0.5 * ce_s), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# command line: one flag vocabulary, input problems answered with one line and exit 2
# ---------------------------------------------------------------------------------------------


def test_old_flag_spellings_are_aliases():
    p = build_parser()
    new = p.parse_args(["--lr-backbone", "3e-5", "--merge-nt1", "--lr-head", "0.01"])
    old = p.parse_args(["--backbone-lr", "3e-5", "--merge_NT1", "--lr", "0.01"])
    assert (new.lr_backbone, new.merge_nt1, new.lr) == (old.lr_backbone, old.merge_nt1, old.lr) == (3e-5, True, 0.01)


@pytest.mark.parametrize("extra, message", [
    (["--init", "weights/none.pth"], "weights/none.pth: --init checkpoint not found"),
    (["--folds", "1"], "--folds must be at least 2"),
    (["--task", "depression", "--ahi-cuts", "30"], "--ahi-cuts applies to --task osa only"),
    (["--subject-table", "apples=nope.csv"], "nope.csv: file not found"),
    (["--strategy", "full", "--head-hypnogram"], "--head-hypnogram needs --strategy partial"),
])
def test_input_problems_exit_2_with_one_line(tmp_path, capsys, extra, message):
    assert nar_main(["--data", str(tmp_path), "--out", str(tmp_path / "run")] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not (tmp_path / "run").exists()  # nothing read or written


def _doc_commands(path, prefix):
    """Shell commands of the markdown code blocks of ``path`` that start with ``prefix``."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / path).read_text()
    blocks = text.split("```")[1::2]
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [ln.split(" #")[0].strip()[len(prefix):].split() for ln in lines if ln.strip().startswith(prefix)]


def test_documented_nar_cls_commands_parse():
    import shlex

    commands = _doc_commands("docs/diagnosis.md", "python -m nar_cls")
    assert len(commands) >= 4
    for argv in commands:
        if argv == ["--help"]:
            continue
        args, unknown = build_parser().parse_known_args(shlex.split(" ".join(argv)))
        assert not unknown, (argv, unknown)


def test_fewer_subjects_than_folds_exit_2(tmp_path, capsys):
    from simulate.disorders import HARMONIZED, SOURCE, write_disorder_cohort

    root = write_disorder_cohort(tmp_path / "h5", "osa", (2, 2), hours=0.2, drop_from_table=1)
    argv = ["--data", str(tmp_path / "h5"), "--task", "osa", "--folds", "5", "--out", str(tmp_path / "run"),
            "--subject-table", f"apples={root / HARMONIZED},{root / SOURCE}", "--model", "lpsgm-small"]
    assert nar_main(argv) == 2
    err = capsys.readouterr().err
    assert "3 labelled subjects are fewer than --folds 5" in err
    excluded = (tmp_path / "run" / "excluded.csv").read_text()
    assert "apples/900004" in excluded and "not in the apples table" in excluded


# ---------------------------------------------------------------------------------------------
# the simulated depression effects are the cited g, and the AUC they allow (known answers)
# ---------------------------------------------------------------------------------------------


def test_bayes_ceiling_known_answer():
    from scipy.stats import norm

    from simulate.disorders import bayes_auc_ceiling

    assert bayes_auc_ceiling([0.0]) == 0.5
    assert bayes_auc_ceiling([3.0, 4.0]) == pytest.approx(norm.cdf(5 / np.sqrt(2)))
    # Monte Carlo: independent unit-variance features shifted by g, optimal score sum(g_i x_i)
    rng = np.random.default_rng(0)
    g = np.array([-0.5, 0.5, 0.5, 0.23, 0.37])
    x0, x1 = rng.normal(size=(20000, 5)) @ g, (rng.normal(size=(20000, 5)) + g) @ g
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(np.r_[np.zeros(20000), np.ones(20000)], np.r_[x0, x1])
    assert auc == pytest.approx(bayes_auc_ceiling(g), abs=0.01)


def test_depression_cohort_realises_the_cited_g_and_its_ceiling():
    """Known answer: on 1500 + 1500 simulated subjects (true night variables, no signals) each
    realised Hedges' g is the g of DEPRESSION_G within 0.15 (4 standard errors of g at this size),
    and a logistic regression on those true variables reaches the Bayes ceiling Φ(‖g‖/√2)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from simulate.disorders import DEPRESSION_G, bayes_auc_ceiling, hedges_g, simulate_depression_variables

    x, y, names = simulate_depression_variables(1500, 2.0, seed=0)
    realised = {n: hedges_g(x[y == 0, i], x[y == 1, i]) for i, n in enumerate(names)}
    print("SIMULATED depression cohort, realised g:", {k: round(v, 3) for k, v in realised.items()})
    for n in names:
        assert realised[n] == pytest.approx(DEPRESSION_G[n], abs=0.15), n
    # no REM in the night -> REM latency undefined: scored as the night's end (no REM seen)
    x[:, names.index("rem_latency_min")] = np.nan_to_num(x[:, names.index("rem_latency_min")], nan=120.0)
    half = np.random.default_rng(1).permutation(len(y))
    tr, te = half[: len(y) // 2], half[len(y) // 2 :]
    model = LogisticRegression(max_iter=1000).fit(x[tr], y[tr])
    empirical = roc_auc_score(y[te], model.predict_proba(x[te])[:, 1])
    ceiling = bayes_auc_ceiling(DEPRESSION_G)
    print(f"SIMULATED depression: Bayes ceiling {ceiling:.3f}, logistic regression on true variables {empirical:.3f}")
    assert empirical == pytest.approx(ceiling, abs=0.04)  # AUC SE ~0.013 at 1500 test subjects
    assert ceiling < 0.85  # the bar is above what these effects allow (docs/simulator.md)


def test_depression_shift_leaves_out_what_a_short_night_cannot_show():
    from simulate.disorders import depression_shift

    short = depression_shift(0.5)  # 30 min: never any REM, so no REM latency to shift (was a NaN leak)
    assert "rem_latency_min" not in short and short["rem_share"] == 0.0
    assert all(np.isfinite(v) for v in short.values())
    assert depression_shift(2.0, scale=0.0) == {}
    from simulate.disorders import depression_hypnogram

    with pytest.raises(ValueError, match="waso_min must be >= 0"):
        depression_hypnogram(240, np.random.default_rng(0), {"waso_min": -1.0})


# ---------------------------------------------------------------------------------------------
# learning on SIMULATED cohorts (slow): known effect -> AUC >= 0.85; null cohort and shuffled
# labels -> chance. Frozen shipped demo backbone (LPSGM-Small trained to stage simulated PSG, like
# the paper's pretrained backbone), 2-h nights, C4/E1/Chin.
# ---------------------------------------------------------------------------------------------

# osa: the simulator's own fragmentation magnitudes at scale 1.5. depression: a CAPACITY test at an
# AMPLIFIED effect, DEPRESSION_SCALE x the g of simulate.disorders.DEPRESSION_G, whose Bayes subject-AUC
# ceiling Phi(||g||/sqrt 2) is computed below (0.980 at 3); at the published g (scale 1) the ceiling is
# 0.753, below the 0.85, and 31 subjects cannot separate a pipeline near it from chance
# reliably (sampling SD of an AUC ~0.09): that figure is a bench (bench/diagnosis_sim.py, docs/diagnosis.md).
DEPRESSION_SCALE = 3.0
SIM = {"per_class": (16, 16), "hours": 2.0,
       "effect_scale": {"osa": 1.5, "depression": DEPRESSION_SCALE, "null": 0.0}}
# Subject-AUC bar per task: the 0.85 for the best of head/probe, 0.70 for the other.
LEARN_BAR = {"osa": (0.85, 0.70), "depression": (0.85, 0.70)}  # (best of head/probe, worst of them)


@pytest.fixture(scope="module")
def random_pth():
    """The frozen backbone (name kept short): the shipped demo weights."""
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "weights" / "lpsgm-small-demo.safetensors"


def _cohort_and_runs(tmp_path_factory, random_pth, task: str, cohort: str, permute: bool) -> dict:
    from simulate.disorders import HARMONIZED, SOURCE, write_disorder_cohort

    root = tmp_path_factory.mktemp(f"{task}_{cohort}")
    tables = write_disorder_cohort(root, cohort, SIM["per_class"], SIM["hours"], seed=0 if cohort != "null" else 1,
                                   effect_scale=SIM["effect_scale"][cohort], workers=2)
    common = ["--data", str(root), "--task", task, "--init", str(random_pth), "--strategy", "partial",
              "--subject-table", f"apples={tables / HARMONIZED},{tables / SOURCE}", "--folds", "4",
              "--epochs", "20", "--feature-cache", str(root / "features.npz"), "--no-progress", "--no-save",
              "--head-hypnogram"]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert nar_main(common + ["--out", str(root / "run")]) == 0
        out["run"] = json.loads((root / "run" / "metrics.json").read_text())
        if permute:
            assert nar_main(common + ["--out", str(root / "perm"), "--permute-labels", "0"]) == 0
            out["perm"] = json.loads((root / "perm" / "metrics.json").read_text())
    out["root"] = root
    return out


def _aucs(m: dict) -> tuple[float, float]:
    return m["pooled"]["subject"]["roc_auc"], m["linear_probe"]["subject"]["roc_auc"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["osa", "depression"])
def test_learns_the_simulated_effect_and_not_shuffled_labels(tmp_path_factory, random_pth, task):
    r = _cohort_and_runs(tmp_path_factory, random_pth, task, task, permute=True)
    head, probe = _aucs(r["run"])
    head_p, probe_p = _aucs(r["perm"])
    print(f"SIMULATED {task}: subject AUC head {head:.3f}, linear probe {probe:.3f}; "
          f"permuted labels: head {head_p:.3f}, probe {probe_p:.3f}")
    assert r["run"]["simulated"] is True and r["run"]["n_subjects"] == sum(SIM["per_class"]) - 1
    if task == "depression":  # the amplified effect leaves room above the bar
        from simulate.disorders import DEPRESSION_G, bayes_auc_ceiling

        ceiling = bayes_auc_ceiling({k: DEPRESSION_SCALE * g for k, g in DEPRESSION_G.items()})
        print(f"SIMULATED depression at {DEPRESSION_SCALE} x the published g: Bayes ceiling {ceiling:.3f}")
        assert ceiling > LEARN_BAR[task][0] + 0.05
    best, worst = LEARN_BAR[task]
    assert max(head, probe) >= best and min(head, probe) >= worst
    assert max(head_p, probe_p) <= 0.75  # 31 subjects: chance 0.5 +- ~0.1
    # one subject is absent from the tables: reported, not classified
    excluded = (r["root"] / "run" / "excluded.csv").read_text()
    assert "not in the apples table" in excluded
    # explanations sit next to the predictions, one row per subject, |shares| summing to 1
    with open(r["root"] / "run" / "explanations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == r["run"]["n_subjects"]
    shares = [abs(float(rows[0][f"night_{i}"])) for i in (1, 2, 3)]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    cal = r["run"]["subject_calibration"]
    assert 0.0 <= cal["brier"] <= 1.0 and cal["operating_point"]["rule"] == "p(1) >= 0.5"


@pytest.mark.slow
def test_null_cohort_stays_at_chance(tmp_path_factory, random_pth):
    r = _cohort_and_runs(tmp_path_factory, random_pth, "osa", "null", permute=False)
    head, probe = _aucs(r["run"])
    print(f"SIMULATED null cohort (osa labels, no effect): subject AUC head {head:.3f}, linear probe {probe:.3f}")
    assert max(head, probe) <= 0.75
