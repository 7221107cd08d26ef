"""EEG-like noise for tests that need "some EEG" without caring what it shows.

White noise is not EEG: the plausibility gate (staging/quality.py, issue 21) refuses a channel whose
spectrum has no 1/f fall-off. :func:`pink` gives random samples with a 1/f power spectrum (the
shape of scalp EEG), which the gate accepts.
"""

from __future__ import annotations

import numpy as np


def pink(rng: np.random.Generator, n: int, sd: float = 1.0, sfreq: float = 100.0, mean: float = 0.0) -> np.ndarray:
    """``n`` samples of 1/f noise with standard deviation ``sd`` (power flat below 0.5 Hz)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sfreq)
    x = np.fft.irfft(spec / np.sqrt(np.maximum(f, 0.5)), n)
    return mean + x * (sd / x.std())
