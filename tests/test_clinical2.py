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
