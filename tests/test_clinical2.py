"""Known-answer tests for the clinical follow-ups: hypnodensity EDF of any night length,
``inference.py --reference``, header-range saturation, clock-time alignment in evaluation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from staging.exports import HYPNODENSITY_NOTE, write_hypnodensity_edf
from staging.night import StagedNight
from staging.stats import STAGE_NAMES


def _night(n: int, seed: int = 0) -> StagedNight:
    p = np.random.default_rng(seed).dirichlet(np.ones(5), n)
    stages = p.argmax(axis=1)
    p[3] = np.nan  # one unknown epoch
    stages[3] = -1
    return StagedNight(probs=p, stages=stages, flags=["ok"] * n, flag_channels=[""] * n,
                       confidence=np.nanmax(p, axis=1) if n else p[:, 0], entropy=np.zeros(n),
                       in_bed=np.ones(n, bool))


MARKS = [(), ("DEMO weights: not for clinical use",),
         ("DEMO weights: " + "x" * 190, "warning: " + "y" * 150, "warning: C3 dropped")]


@pytest.mark.parametrize("n", [4, 120, 959, 960, 961, 1234, 2880])
def test_hypnodensity_edf_any_length_reads_back(tmp_path, n):
    import edfio
    import mne

    night = _night(n)
    start = dt.datetime(2021, 5, 4, 22, 31, 7)
    for k, marks in enumerate(MARKS):
        path = tmp_path / f"h{k}.hypnodensity.edf"
        write_hypnodensity_edf(path, night, start, marks=marks)
        edf = edfio.read_edf(path)
        assert edf.num_data_records == n and edf.data_record_duration == 30.0
        assert [s.label for s in edf.signals] == [f"p_{s}" for s in STAGE_NAMES]
        want = np.nan_to_num(night.probs, nan=0.0)
        for i, sig in enumerate(edf.signals):
            np.testing.assert_allclose(sig.data, want[:, i], atol=1.0 / 65535)
        texts = [a.text for a in edf.annotations]
        stage_anns = [a for a in edf.annotations if a.text.startswith("Sleep stage")]
        assert len(stage_anns) == n and stage_anns[3].text == "Sleep stage ?"
        assert [a.onset for a in stage_anns] == [30.0 * i for i in range(n)]
        notes = [a for a in edf.annotations if a.text.startswith("LPSGM")]
        assert [(a.onset, a.text.rstrip()) for a in notes] == [(0.0, HYPNODENSITY_NOTE.format(30.0))]
        assert sorted(a.text for a in edf.annotations if a.text.startswith(("DEMO", "warning"))) == \
            sorted(m[:200] for m in marks)
        assert edf.starttime == start.time() and edf.startdate == start.date()
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
        assert raw.n_times == n and raw.info["sfreq"] == pytest.approx(1 / 30)
        np.testing.assert_allclose(raw.get_data()[:, :], want.T, atol=1.0 / 65535)


# ------------------------------------------------------------------ saturation against the header


def _rhythm_uv(n_epochs: int, fs: float, amp: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(n_epochs * 30 * fs)) / fs
    return amp * (np.sin(2 * np.pi * 2 * t) + 0.3 * rng.standard_normal(t.size))


def test_saturation_is_judged_against_the_edf_header_range(tmp_path):
    import edfio

    from preprocess.core.edf import EdfReader
    from staging.quality import BIT, epoch_masks, screen

    fs, n = 100, 8
    spe = 30 * fs
    c3 = _rhythm_uv(n, fs, 40.0, 1)
    c3[4 * spe:7 * spe] = np.clip(c3[4 * spe:7 * spe] * 50, -500.0, 500.0)  # clipped at the header max: 4-6
    loc = _rhythm_uv(n, fs, 40.0, 2)
    loc[2 * spe:3 * spe] = np.clip(loc[2 * spe:3 * spe] * 3, -100.0, 100.0)  # a plateau far below the limits
    path = tmp_path / "clip.edf"
    edfio.Edf([edfio.EdfSignal(x, fs, label=lab, physical_dimension="uV", physical_range=(-500.0, 500.0),
                               digital_range=(-32768, 32767)) for lab, x in (("C3", c3), ("LOC", loc))]
              ).write(path)
    with EdfReader(path) as reader:
        assert reader.physical_range("C3") == (-500e-6, 500e-6)
        assert reader.physical_range("LOC") == (-500e-6, 500e-6)
        _, report = screen(reader, {"C3": ["C3"], "E1": ["LOC"]}, "clip.edf")
        sat = {lab: [e for e, m in enumerate(q.masks) if m & BIT["saturated"]] for lab, q in report.channels.items()}
        assert sat == {"C3": [4, 5, 6], "LOC": []}
        # without the header range the plateau at LOC's own maximum would read as clipping
        x, sf = reader.read("LOC")
        assert [e for e, m in enumerate(epoch_masks(x, sf, n, "eog")) if m & BIT["saturated"]] == [2]


# ------------------------------------------------------------------ clock-time alignment


def _scoring_edf(path, stages, start):
    from staging.outputs import write_edf_annotations

    write_edf_annotations(path, np.asarray(stages), start)
    return path


def test_evaluation_aligns_by_clock_time_and_refuses_a_fractional_offset(tmp_path):
    import json

    from staging.evaluate import EvaluateError, evaluate

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 40)
    t0 = dt.datetime(2022, 3, 1, 23, 0, 0)
    (tmp_path / "p").mkdir()
    pred = _scoring_edf(tmp_path / "p" / "A.annotations.edf", truth, t0)
    (tmp_path / "r").mkdir()
    ref = _scoring_edf(tmp_path / "r" / "A_sleepscoring.edf", truth[2:], t0 + dt.timedelta(seconds=60))
    doc = evaluate(pred, ref, tmp_path / "ev", echo=lambda *_: None)
    res = doc["recordings"]["a"]
    assert res["offset_epochs"] == 2 and res["n_compared"] == 38 and res["accuracy"] == 1.0 and res["kappa"] == 1.0
    assert json.loads((tmp_path / "ev" / "evaluation.json").read_text())["recordings"]["a"]["offset_epochs"] == 2
    # positionally the same pair disagrees: the offset matters
    assert evaluate(pred, ref, tmp_path / "ev0", echo=lambda *_: None,
                    pred_starts={str(pred): t0 + dt.timedelta(seconds=60)})["recordings"]["a"]["accuracy"] < 0.5
    # PRED later than REF: the reference is cut instead
    doc = evaluate(ref, pred, tmp_path / "ev2", echo=lambda *_: None)
    assert doc["recordings"]["a"]["offset_epochs"] == -2 and doc["recordings"]["a"]["accuracy"] == 1.0
    # 45 s is not a whole number of epochs
    bad = _scoring_edf(tmp_path / "r" / "B.edf", truth, t0 + dt.timedelta(seconds=45))
    with pytest.raises(EvaluateError, match=r"^no pair could be evaluated: A\.annotations\.edf / B\.edf: start times "
                                            r"differ by 45 s .*not a whole number of 30-s epochs"):
        evaluate(pred, bad, tmp_path / "ev3", echo=lambda *_: None)


# ------------------------------------------------------------------ inference.py --reference


def test_inference_reference_matches_staging_evaluate_on_the_bundled_example(tmp_path, tiny_weights, capsys):
    import json
    import shutil

    import inference
    from staging import EXAMPLE
    from staging.evaluate import evaluate

    truth = EXAMPLE.with_name("simulated_night.stages.txt")
    out = tmp_path / "out"
    code = inference.main([str(EXAMPLE), "--out", str(out), "--weights", str(tiny_weights), "--no-progress",
                           "--formats", "csv,stats", "--reference", str(truth)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    got = json.loads((out / "evaluation.json").read_text())
    assert (out / "evaluation.csv").is_file() and (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    want = evaluate(out / "simulated_night.hypnogram.csv", truth, tmp_path / "ev", echo=lambda *_: None)
    assert got["recordings"] == want["recordings"] and got["pooled"] == want["pooled"]
    res = got["recordings"]["simulated_night"]
    assert res["n_epochs_ref"] == res["n_epochs_pred"] == 90 and res["offset_epochs"] == 0
    assert (out / "evaluation.csv").read_text() == (tmp_path / "ev" / "evaluation.csv").read_text()
    assert any(ln.startswith("pooled: 90 epochs") for ln in lines), lines
    # a folder of scorings, paired by recording name; a staged recording without a scoring fails
    from staging.batch import FileResult

    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(truth, refs / "simulated_night.txt")
    shutil.copy(out / "simulated_night.hypnogram.csv", out / "other.hypnogram.csv")
    staged = [FileResult(EXAMPLE, "simulated_night", "ok"), FileResult(tmp_path / "other.edf", "other", "skipped")]
    assert inference.compare_with_reference(staged, str(out), str(refs)) == 1
    doc = json.loads((out / "evaluation.json").read_text())
    assert list(doc["recordings"]) == ["simulated_night"] and doc["recordings"]["simulated_night"] == res | {
        "ref_file": str(refs / "simulated_night.txt")}
    assert any(u.startswith("other: no reference scoring for it") for u in doc["unpaired"])
    # one scoring file for two recordings is refused with one line
    assert inference.compare_with_reference(staged, str(out), str(truth)) == 1
    assert "is one file but 2 recordings were staged" in capsys.readouterr().err
