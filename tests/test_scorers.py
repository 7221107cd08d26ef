"""Several scorers (staging.scorers, ``python -m staging.evaluate PRED REF1 REF2 …``): consensus and
inter-scorer figures on hand-made scorer triples with known answers; Bland–Altman bias and limits on 5
nights against a hand computation and ``yasa.SleepStatsAgreement``; the Sleep-EDF folder layout
(PSG and hypnogram in one folder) pairs each prediction with the scoring file."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from staging.evaluate import main, pair_files, read_hypnogram
from staging.outputs import sta_text
from staging.scorers import bland_altman, consensus, inter_scorer_kappa, kappa, leave_one_out, reliability
from tests.conftest import real_file

W, N1, N2, N3, R, U = 0, 1, 2, 3, 4, -1


def kappa_by_hand(a, b) -> float:
    """Cohen's kappa from its definition, (p_o − p_e) / (1 − p_e), over epochs scored in both."""
    a, b = np.asarray(a), np.asarray(b)
    ok = (a >= 0) & (b >= 0)
    a, b = a[ok], b[ok]
    p_o = np.mean(a == b)
    p_e = sum(np.mean(a == k) * np.mean(b == k) for k in range(5))
    return (p_o - p_e) / (1 - p_e)


# A hand-made triple without ties: every epoch has a 2-of-3 or 3-of-3 majority (or one unscored vote).
A = [W, W, N2, N2, N2, N3, R, R, N1, W]
B = [W, N1, N2, N2, N3, N3, R, W, N1, W]
C = [W, W, N2, N1, N3, N2, R, R, N2, U]
CONSENSUS = [W, W, N2, N2, N3, N3, R, R, N1, W]  # by hand, epoch by epoch


def test_consensus_majority_of_a_hand_made_triple():
    assert consensus(np.array([A, B, C])).tolist() == CONSENSUS
    assert consensus(np.array([[U, U], [U, N2], [U, U]])).tolist() == [U, N2]  # nobody / one scorer


def test_tie_goes_to_the_most_reliable_scorer():
    # Epochs 0-7: A and C agree perfectly, B disagrees on 4 of 8; epoch 8: A says N2, B says N3, C unscored
    # -> a 1-1 tie between N2 and N3, broken by the more reliable of A and B (A: κ(A,C) = 1).
    a = [W, W, N2, N2, N3, N3, R, R, N2]
    b = [W, N1, N2, N1, N3, N2, R, W, N3]
    c = [W, W, N2, N2, N3, N3, R, R, U]
    s = np.array([a, b, c])
    rel = reliability(s)
    by_hand = [np.mean([kappa_by_hand(s[i], s[j]) for j in range(3) if j != i]) for i in range(3)]
    np.testing.assert_allclose(rel, by_hand, atol=1e-6)
    assert rel[0] > rel[1]
    assert consensus(s)[8] == N2  # A's stage
    assert consensus(s, weights=np.array([0.0, 1.0, 0.5]))[8] == N3  # with B most reliable: B's stage
    assert consensus(np.array([[N2], [N3]]), weights=np.array([0.5, 0.5]))[0] == N2  # equal: listed first


def test_inter_scorer_kappa_and_leave_one_out_by_hand():
    s = np.array([A, B, C])
    pairs = [kappa_by_hand(A, B), kappa_by_hand(A, C), kappa_by_hand(B, C)]
    assert inter_scorer_kappa(s) == pytest.approx(np.mean(pairs), abs=1e-6)
    assert kappa(np.array(A), np.array(B)) == pytest.approx(pairs[0], abs=1e-6)
    # Two scorers left: every disagreement is a tie between equally reliable scorers -> the first listed,
    # and an epoch only one of them scored takes that one's stage.
    assert leave_one_out(s, 0).tolist() == B  # consensus of B and C = B (B scored every epoch)
    assert leave_one_out(s, 1).tolist() == A  # A and C: A's stages (epoch 9: only A scored it)
    assert leave_one_out(s, 2).tolist() == A


def test_cli_three_scorers_and_bland_altman_on_five_nights(tmp_path):
    """5 nights, 3 scorers who agree on everything but a few epochs; the model adds known TST errors."""
    rng = np.random.default_rng(3)
    pred_dir, ref_dirs = tmp_path / "pred", [tmp_path / f"s{i}" for i in range(3)]
    for d in (pred_dir, *ref_dirs):
        d.mkdir()
    extra_wake = [2, 4, 0, 6, 8]  # W epochs of the consensus the model calls N2: TST +1, +2, 0, +3, +4 min
    truths = []
    for night, k in enumerate(extra_wake):
        base = np.array([W] * 20 + [N1] * 6 + [N2] * 60 + [N3] * 30 + [W] * 12 + [N2] * 40 + [R] * 25 + [W] * 7)
        base[rng.choice(np.flatnonzero(base == N2), 5, replace=False)] = N1  # nights differ a little
        scorers = [base.copy() for _ in range(3)]
        for i in range(3):  # each scorer disagrees on 3 epochs of its own; the other two outvote it
            scorers[i][30 + 10 * i + np.arange(3)] = R
        wake = np.flatnonzero(base[:20] == W)[:k]
        pred = base.copy()
        pred[wake] = N2
        truths.append((base, pred))
        (pred_dir / f"night{night}.STA").write_text(sta_text(pred))
        for i, d in enumerate(ref_dirs):
            (d / f"night{night}.STA").write_text(sta_text(scorers[i]))
    out = tmp_path / "ev"
    assert main([str(pred_dir), *map(str, ref_dirs), "--out", str(out), "--names", "ann,bob,cat"]) == 0
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["scorers"] == ["ann", "bob", "cat"] and len(doc["recordings"]) == 5
    night0 = doc["recordings"]["night0"]
    n = len(truths[0][0])
    # Consensus = the base night (each scorer's own 3 edits are outvoted): model accuracy (n − 2) / n.
    assert night0["model_vs_consensus"]["accuracy"] == pytest.approx((n - 2) / n, abs=1e-6)
    # ann against the consensus of bob and cat: they tie wherever they differ (epochs 40-42 and 50-52),
    # equally reliable, so bob (listed first) wins: ann differs from it on 30-32 and 40-42.
    assert night0["scorer_vs_consensus"]["ann"]["accuracy"] == pytest.approx((n - 6) / n, abs=1e-6)
    base, _ = truths[0]
    b = base.copy()
    b[40:43] = R
    c = base.copy()
    c[50:53] = R
    a = base.copy()
    a[30:33] = R
    assert night0["inter_scorer_kappa"] == pytest.approx(
        np.mean([kappa_by_hand(a, b), kappa_by_hand(a, c), kappa_by_hand(b, c)]), abs=1e-6)

    # Bland–Altman of TST over the 5 nights, by hand: differences 1, 2, 0, 3, 4 min.
    d = np.array([1.0, 2.0, 0.0, 3.0, 4.0])
    bias = d.sum() / 5  # 2.0
    sd = math.sqrt(((d - bias) ** 2).sum() / 4)  # sqrt(10 / 4) = 1.5811
    ba = doc["pooled"]["bland_altman"]["model_vs_consensus"]
    assert ba["TST"]["bias"] == pytest.approx(2.0) and ba["TST"]["sd"] == pytest.approx(sd, abs=1e-6)
    assert ba["TST"]["loa_lower"] == pytest.approx(bias - 1.96 * sd, abs=1e-6)  # -1.0990
    assert ba["TST"]["loa_upper"] == pytest.approx(bias + 1.96 * sd, abs=1e-6)  # 5.0990
    assert ba["TST"]["n"] == 5 and ba["W"]["bias"] == pytest.approx(-2.0)
    # SOL: the model's sleep onset is at epoch 0 on nights 1, 2, 4, 5 (the first 20 W epochs are moved
    # forward by k), the consensus at 10 min; night 3 (k = 0) agrees.
    assert ba["SOL"]["bias"] == pytest.approx(np.mean([-10, -10, 0, -10, -10]))

    # The same figures from yasa.SleepStatsAgreement where both apply (parametric bias and LoA).
    yasa = pytest.importorskip("yasa")
    import pandas as pd

    keys = ["TST", "SE", "WASO", "SOL", "N1", "N2", "N3", "REM"]
    frame = {who: pd.DataFrame([{k: doc["recordings"][f"night{i}"]["statistics"][who][k] for k in keys}
                                for i in range(5)], index=pd.Index([f"n{i}" for i in range(5)], name="session"))
             for who in ("model", "consensus")}
    summary = yasa.SleepStatsAgreement(frame["consensus"], frame["model"]).summary()
    for key in summary.index:  # yasa drops the statistics without any difference
        assert ba[key]["bias"] == pytest.approx(summary.loc[key, ("bias_mean", "center")], abs=1e-6)
        assert ba[key]["loa_lower"] == pytest.approx(summary.loc[key, ("loa_lower", "center")], abs=1e-6)
        assert ba[key]["loa_upper"] == pytest.approx(summary.loc[key, ("loa_upper", "center")], abs=1e-6)
    assert "TST" in summary.index and "SOL" in summary.index
    assert (out / "bland_altman.png").read_bytes()[:4] == b"\x89PNG"
    rows = (out / "evaluation.csv").read_text().splitlines()
    assert rows[0].startswith("name,who,against") and len(rows) == 1 + 5 * 4


def test_bland_altman_small_cases():
    assert bland_altman([1.0], [0.0]) == {"n": 1, "bias": 1.0, "sd": None, "loa_lower": None, "loa_upper": None,
                                          "mean_abs_diff": 1.0}
    assert bland_altman([None, 3.0, 5.0], [1.0, 1.0, 1.0])["n"] == 2  # a missing value drops its night


def test_sleep_edf_layout_pairs_the_scoring_not_the_psg(tmp_path):
    """PSG and hypnogram in one folder (Sleep-EDF): the prediction named after the PSG pairs with the
    hypnogram file; before the fix it paired with the PSG and failed ("no pair could be evaluated")."""
    scor, res = tmp_path / "scorings", tmp_path / "results"
    scor.mkdir(), res.mkdir()
    shutil.copy(real_file("sleep-edf", "SC4001E0-first5min-PSG.edf"), scor / "SC4001E0-PSG.edf")
    hyp = real_file("sleep-edf", "SC4001EC-Hypnogram.edf")
    shutil.copy(hyp, scor / hyp.name)
    (res / "SC4001E0-PSG.STA").write_text(sta_text(np.where(read_hypnogram(hyp) < 0, 0, read_hypnogram(hyp))))
    pairs, unpaired = pair_files(res, scor)
    assert [(k, p.name, r.name) for k, p, r in pairs] == [("sc4001e0", "SC4001E0-PSG.STA", "SC4001EC-Hypnogram.edf")]
    assert unpaired == []
    assert main([str(res), str(scor), "--out", str(tmp_path / "ev")]) == 0
