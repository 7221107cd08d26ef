"""Whole-night spectrogram (known spectra), the one-page PDF report (``--formats report``) and the
review model (audit trail, reviewed stages and statistics)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from staging import EXAMPLE
from staging.review import Review, ReviewError, apply_review, night_from_outputs, summary
from staging.spectrogram import choose_channel, epoch_spectrogram

W, N1, N2, N3, R = 0, 1, 2, 3, 4


def test_spectrogram_known_spectra():
    fs = 100.0
    t = np.arange(0, 90, 1 / fs)
    # 3 epochs: a 2-Hz sine (delta), a 12-Hz sine (spindle band), silence except a 10-Hz sine of 1/10 amplitude.
    x = np.concatenate([np.sin(2 * np.pi * 2 * t[:3000]), np.sin(2 * np.pi * 12 * t[:3000]),
                        0.1 * np.sin(2 * np.pi * 10 * t[:3000])])
    sp = epoch_spectrogram(x, fs)
    assert sp.power_db.shape == (len(sp.freqs), 3)
    assert sp.freqs[0] == 0.5 and sp.freqs[-1] == 25.0 and np.allclose(np.diff(sp.freqs), 0.25)
    peaks = sp.freqs[np.argmax(sp.power_db, axis=0)].tolist()
    assert peaks == [2.0, 12.0, 10.0]
    # Power of a sine of amplitude A is A²/2: the PSD integrated over the peak's bins gives it back,
    # so a 10× smaller amplitude is 20 dB lower at the peak.
    assert sp.power_db[sp.freqs == 12.0, 1][0] - sp.power_db[sp.freqs == 10.0, 2][0] == pytest.approx(20.0, abs=0.01)
    df = 0.25
    lin = 10 ** (sp.power_db[:, 1].astype(float) / 10)
    assert lin.sum() * df == pytest.approx(0.5, rel=0.01)
    assert choose_channel(["F3", "C3", "E1"]) == 1 and choose_channel(["E1", "Chin"]) is None


def test_spectrogram_blocks_equal_one_welch_call(monkeypatch):
    """The spectrogram is computed in blocks of epochs (memory flat in night length): every column equals
    the one-call (whole night) Welch estimate bit for bit, whatever the block boundaries."""
    from scipy.signal import welch

    import staging.spectrogram as spm

    rng = np.random.default_rng(3)
    x = rng.standard_normal(7 * 3000 + 123).astype(np.float32)
    x[4000:4400] = 0.0  # a flat stretch: -inf dB there becomes NaN in both
    f, psd = welch(np.asarray(x[:7 * 3000], dtype=np.float64).reshape(7, 3000), fs=100.0, window="hann",
                   nperseg=400, noverlap=200, detrend="linear", axis=-1)
    keep = (f >= spm.FMIN_HZ) & (f <= spm.FMAX_HZ)
    with np.errstate(divide="ignore"):
        whole = (10 * np.log10(psd[:, keep]).T).astype(np.float32)
    whole[~np.isfinite(whole)] = np.nan
    for block in (1, 3, 7, 240):
        monkeypatch.setattr(spm, "SPECTROGRAM_BLOCK_EPOCHS", block)
        sp = epoch_spectrogram(x, 100.0)
        assert sp.power_db.dtype == np.float32 and np.array_equal(sp.freqs, f[keep])
        assert np.array_equal(sp.power_db, whole, equal_nan=True), block


def test_review_trail_last_write_wins_and_statistics():
    auto = np.array([W, W, N1, N2, N2, N2, R, W])
    r = Review()
    r.edit(2, "N2", auto, note="spindle")
    r.edit(2, "N1", auto, by="tab B")  # the later edit wins, both in the trail
    r.edit(7, "REM", auto)
    assert [(t["epoch"], t["old"], t["new"]) for t in r.trail] == [(2, "N1", "N2"), (2, "N2", "N1"), (7, "W", "REM")]
    assert r.trail[0]["note"] == "spindle" and r.trail[1]["by"] == "tab B"
    assert r.stages(auto).tolist() == [W, W, N1, N2, N2, N2, R, R]
    s = summary(auto, r)
    assert s["n_reviewed"] == 2 and s["n_changed"] == 1 and s["n_edits"] == 3 and s["changed_epochs"] == [7]
    assert Review.from_json(r.to_json()).edits == r.edits
    with pytest.raises(ReviewError, match="stage must be one of"):
        r.edit(1, "S4", auto)
    with pytest.raises(ReviewError, match="outside the night"):
        r.edit(8, "W", auto)


def test_report_of_the_bundled_example_and_reviewed_night(tmp_path, tiny_weights):
    from staging import stage

    out = tmp_path / "out"
    results, code = stage([EXAMPLE], out=out, weights=tiny_weights, formats=["csv", "stats", "png", "report"],
                          echo=lambda s: None, progress_bar=False)
    assert code == 0
    pdf = out / f"{EXAMPLE.stem}.report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert results[0].night.spectrogram is not None and results[0].night.spectrogram.channel.startswith("C4")
    night, info = night_from_outputs(out / f"{EXAMPLE.stem}.hypnogram.csv", out / f"{EXAMPLE.stem}.stats.json")
    assert night.stages.tolist() == results[0].night.stages.tolist()
    assert night.stats["TST"] == results[0].stats["TST"]
    r = Review()
    r.edit(0, "N3", night.stages)
    reviewed = apply_review(night, r)
    assert reviewed.stages[0] == N3 and reviewed.reviewed.tolist() == [True] + [False] * (night.n_epochs - 1)
    assert reviewed.stats["TST"] == night.stats["TST"] + (0.5 if night.stages[0] == W else 0.0)
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M), pages
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    for needle in ("Sleep report: simulated_night", "start: 2021-07-15 22:17:00", "total sleep time", "DEMO",
                   "AUTOMATIC", "flagged epochs", "spectrogram C4", f"{results[0].stats['TST']:.1f} min", "C3=EEG C3-M2"):
        assert needle in text, needle
