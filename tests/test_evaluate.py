"""staging.evaluate: a scoring against itself, and real Sleep-EDF / HMC hypnograms against copies with
known edits, every figure computed by hand from the stage counts; pairing of folders; outputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from staging.evaluate import evaluate, pair_files, read_hypnogram
from staging.outputs import hypnogram_csv, sta_text
from tests.conftest import real_file

W, N1, N2, N3, R = 0, 1, 2, 3, 4


def kappa_by_hand(ref: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa from its definition: (p_o - p_e) / (1 - p_e)."""
    n = len(ref)
    p_o = np.mean(ref == pred)
    p_e = sum(np.sum(ref == k) * np.sum(pred == k) for k in range(5)) / n**2
    return (p_o - p_e) / (1 - p_e)


def test_a_scoring_against_itself(tmp_path):
    ref = real_file("sleep-edf", "hypnograms", "SC4002EC-Hypnogram.edf")
    doc = evaluate(ref, ref, tmp_path, echo=lambda s: None)
    (res,) = doc["recordings"].values()
    st = read_hypnogram(ref)
    scored = st[st >= 0]
    assert res["accuracy"] == 1.0 and res["kappa"] == 1.0 and res["macro_f1"] == 1.0
    assert res["n_compared"] == scored.size and res["n_unknown_ref"] == int(np.sum(st < 0))
    assert np.array_equal(np.diag(res["confusion"]), [np.sum(scored == k) for k in range(5)])
    assert all(v["diff"] in (0, 0.0, None) for v in res["statistics"].values())


def test_sleep_edf_against_a_copy_without_n3(tmp_path):
    ref_path = real_file("sleep-edf", "hypnograms", "SC4001EC-Hypnogram.edf")
    ref = read_hypnogram(ref_path)
    assert [int(np.sum(ref == k)) for k in (-1, 0, 1, 2, 3, 4)] == [230, 1997, 58, 250, 220, 125]
    pred = np.where(ref == N3, N2, ref)  # the 220 N3 epochs scored N2
    (tmp_path / "SC4001E0-PSG.STA").write_text(sta_text(pred))
    doc = evaluate(tmp_path / "SC4001E0-PSG.STA", ref_path, tmp_path / "ev", echo=lambda s: None)
    res = doc["recordings"]["sc4001e0"]
    n = 2650  # scored epochs: 2880 - 230 unknown
    assert res["n_compared"] == n and res["accuracy"] == pytest.approx((n - 220) / n, abs=1e-6)
    assert res["f1"]["N3"] == 0.0 and res["f1"]["N2"] == pytest.approx(2 * 250 / (2 * 250 + 220), abs=1e-6)
    assert res["f1"]["W"] == res["f1"]["N1"] == res["f1"]["REM"] == 1.0
    assert res["macro_f1"] == pytest.approx((3 + 500 / 720) / 5, abs=1e-6)
    ok = ref >= 0
    assert res["kappa"] == pytest.approx(kappa_by_hand(ref[ok], pred[ok]), abs=1e-6)
    assert res["confusion"][N3] == [0, 0, 220, 0, 0] and res["confusion"][N2][N2] == 250
    sleep = 58 + 250 + 220 + 125
    d = res["statistics"]
    assert d["TST"]["diff"] == 0.0 and d["SE"]["diff"] == 0.0 and d["WASO"]["diff"] == 0.0
    assert d["N3"]["diff"] == -110.0 and d["N2"]["diff"] == 110.0
    assert d["N3_pct"]["diff"] == pytest.approx(-100 * 220 / sleep, abs=1e-3)


def test_hmc_against_an_edited_copy_and_folder_pairing(tmp_path):
    ref_path = real_file("hmc", "SN001_sleepscoring.edf")
    ref = read_hypnogram(ref_path)
    assert [int(np.sum(ref == k)) for k in range(5)] == [151, 109, 430, 23, 141] and len(ref) == 854
    pred = ref.copy()
    n2, rem = np.flatnonzero(ref == N2), np.flatnonzero(ref == R)
    pred[n2[:50]] = N1  # 50 N2 -> N1
    pred[rem[:10]] = W  # 10 REM -> W
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    preds.mkdir(), refs.mkdir()
    (preds / "SN001.hypnogram.csv").write_text(hypnogram_csv(np.eye(5)[pred]))
    shutil.copy(ref_path, refs / ref_path.name)
    (preds / "SN999.hypnogram.csv").write_text(hypnogram_csv(np.eye(5)[pred[:30]]))  # no reference
    pairs, unpaired = pair_files(preds, refs)
    assert [(k, p.name, r.name) for k, p, r in pairs] == [("sn001", "SN001.hypnogram.csv", "SN001_sleepscoring.edf")]
    assert unpaired == [f"SN999.hypnogram.csv: no reference hypnogram for 'sn999' in {refs}"]

    out = tmp_path / "ev"
    doc = evaluate(preds, refs, out, echo=lambda s: None)
    res = doc["recordings"]["sn001"]
    assert res["accuracy"] == pytest.approx(794 / 854, abs=1e-6)
    assert res["kappa"] == pytest.approx(kappa_by_hand(ref, pred), abs=1e-6)
    f1 = {"W": 302 / 312, "N1": 218 / 268, "N2": 760 / 810, "N3": 1.0, "REM": 262 / 272}
    assert res["f1"] == pytest.approx(f1, abs=1e-6)
    assert res["macro_f1"] == pytest.approx(sum(f1.values()) / 5, abs=1e-6)
    cm = np.array(res["confusion"])
    assert cm[N2].tolist() == [0, 50, 380, 0, 0] and cm[R].tolist() == [10, 0, 0, 0, 131]
    assert cm.sum() == 854 and np.trace(cm) == 794
    d = res["statistics"]
    assert d["TST"]["diff"] == -5.0 and d["N1"]["diff"] == 25.0 and d["REM"]["diff"] == -5.0
    onset = int(np.flatnonzero(ref > 0)[0])
    assert d["REM_latency"]["diff"] == pytest.approx((rem[10] - rem[0]) * 0.5, abs=1e-6)
    assert d["SOL"]["diff"] == 0.0 and d["REM_latency"]["ref"] == (rem[0] - onset) * 0.5

    pooled = doc["pooled"]  # one recording: the pooled figures are its own
    assert pooled["accuracy"] == res["accuracy"] and pooled["statistics"]["TST"]["mean_diff"] == -5.0
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["recordings"]["sn001"]["kappa"] == res["kappa"]
    with open(out / "evaluation.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["name"] for r in table] == ["sn001", "POOLED"] and float(table[0]["diff_TST"]) == -5.0
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_exit_codes(tmp_path, capsys):
    from staging.evaluate import main

    ref = real_file("hmc", "SN001_sleepscoring.edf")
    assert main([str(ref), str(ref), "--out", str(tmp_path / "a")]) == 0
    (tmp_path / "x.hypnogram.csv").write_text("nonsense\n")
    assert main([str(tmp_path / "x.hypnogram.csv"), str(ref), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "x.hypnogram.csv: cannot read as a hypnogram" in err
