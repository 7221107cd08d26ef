"""An independent reference of the published LPSGM inference, for the fidelity tests and bench.

Written from the published description (not from our pipeline, and without the published code):
the EDF is read with MNE (``mne.io.read_raw_edf`` on the included channels, which brings every
channel to the highest rate among them), each channel is filtered with ``scipy.signal.filtfilt``
on the ``(b, a)`` Butterworth design (0.3–35 Hz band-pass for EEG/EOG, 10 Hz high-pass for the chin,
order 4, default padding; second-order sections from 1000 Hz, where ``(b, a)`` is unstable — the
project's one documented deviation), resampled to 100 Hz with ``scipy.interpolate.interp1d``
(linear) at ``np.linspace(0, TN - 1, round(100 / fs * TN))``, z-scored over the night and cut into
30-s epochs (trailing partial epoch dropped). Voting: every window of 20 consecutive epochs with
stride 1, the plain ``model(x, channels)`` on each, softmax probabilities summed per epoch.

Also here: :func:`simulated_edf`, the simulated nights (SIMULATED PSG) these tests use.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import torch
from scipy import signal as sps
from scipy.interpolate import interp1d

CANONICAL_INDEX = {"F3": 0, "F4": 1, "C3": 2, "C4": 3, "O1": 4, "O2": 5, "E1": 6, "E2": 7, "Chin": 8}


def read_with_mne(path: Path, channel_map: dict) -> tuple[dict[str, np.ndarray], int]:
    """``{canonical: signal}`` at the file's highest included rate, and that rate (rounded, as published)."""
    import mne

    include = sorted({lab for opts in channel_map.values() for o in opts
                      for lab in (o if isinstance(o, (list, tuple)) else [o])})
    raw = mne.io.read_raw_edf(path, include=include, preload=True, verbose=False)
    data, names = raw.get_data(), raw.ch_names
    out = {}
    for canonical, options in channel_map.items():
        for o in options:
            if isinstance(o, (list, tuple)) and o[0] in names and o[1] in names:
                out[canonical] = data[names.index(o[0])] - data[names.index(o[1])]
                break
            if isinstance(o, str) and o in names:
                out[canonical] = data[names.index(o)]
                break
    return out, int(round(raw.info["sfreq"]))


def published_channel(sig: np.ndarray, fs: int, canonical: str) -> np.ndarray:
    """Filter → linear interpolation to 100 Hz → z-score → ``(n_epochs, 3000)``."""
    if canonical == "Chin":
        wn, btype, n_coef = 10 * 2 / fs, "highpass", 5
    else:
        wn, btype, n_coef = [0.3 * 2 / fs, 35 * 2 / fs], "bandpass", 9
    if fs < 1000:
        b, a = sps.butter(N=4, Wn=wn, btype=btype)
        sig = sps.filtfilt(b, a, sig)
    else:  # (b, a) is numerically unstable here: the documented deviation
        sig = sps.sosfiltfilt(sps.butter(N=4, Wn=wn, btype=btype, output="sos"), sig, padlen=3 * n_coef)
    tn = len(sig)
    if fs != 100:
        scaled = round(100 / fs * tn)
        sig = interp1d(np.linspace(0, tn - 1, tn), sig, kind="linear")(np.linspace(0, tn - 1, scaled))
    sig = (sig - np.mean(sig)) / np.std(sig)
    n_epochs = len(sig) // 3000
    return sig[: n_epochs * 3000].reshape(n_epochs, 3000)


def published_inputs(path: Path, channel_map: dict) -> tuple[np.ndarray, list[str]]:
    """Model input ``(n_epochs, n_channels, 3000)`` of the published chain, channels in map order."""
    signals, fs = read_with_mne(path, channel_map)
    epochs = {c: published_channel(s, fs, c) for c, s in signals.items()}
    return np.stack([epochs[c] for c in epochs], axis=1).astype(np.float32), list(epochs)


@torch.no_grad()
def published_probabilities(model, x: np.ndarray, channels: list[str], seq_len: int = 20,
                            batch: int = 16) -> np.ndarray:
    """Softmax probabilities summed over every stride-1 window, normalised per epoch.

    The published code makes no window for a recording shorter than ``seq_len`` (it fails there);
    this reference then runs the one window of the recording's own length, as our pipeline does.
    """
    n = len(x)
    length = min(seq_len, n)
    starts = list(range(n - length + 1))
    ch = torch.tensor([CANONICAL_INDEX[c] for c in channels])
    total = np.zeros((n, 5))
    for b in range(0, len(starts), batch):
        s = starts[b:b + batch]
        xb = torch.from_numpy(np.stack([x[i:i + length] for i in s]))
        p = torch.softmax(model(xb, ch[None].expand(len(s), -1)), dim=-1).numpy()
        for k, i in enumerate(s):
            total[i:i + length] += p[k]
    return total / total.sum(1, keepdims=True)


# ---- simulated nights (SIMULATED PSG) -------------------------------------------------------------

SITES = {"C3": "C3", "M2": "M2", "C4-M1": "C4-M1", "E1-M2": "E1-M2", "E2-M1": "E2-M1", "Chin": "CHIN"}
CHANNEL_MAP = {"C3": [["C3", "M2"]], "C4": ["C4-M1"], "E1": ["E1-M2"], "E2": ["E2-M1"], "Chin": ["Chin"]}
"""Map of the simulated files: C3 is formed from its electrodes (a derivation at the common rate)."""


def simulated_stages(n_epochs: int, seed: int = 0) -> np.ndarray:
    """A plausible hypnogram of ``n_epochs`` (runs of W, N1, N2, N3, REM)."""
    rng = np.random.default_rng(seed)
    cycle = [(0, 6), (1, 4), (2, 20), (3, 16), (2, 10), (4, 14), (1, 2)]
    out: list[int] = []
    while len(out) < n_epochs:
        for stage, length in cycle:
            out += [stage] * max(1, int(length * rng.uniform(0.5, 1.5)))
    return np.array(out[:n_epochs], dtype=np.int8)


def simulated_edf(path: Path, n_epochs: int, rates: dict[str, float] | float, seed: int = 0,
                  extra_seconds: float = 0.0) -> Path:
    """Write a SIMULATED night: labels of :data:`SITES` at ``rates`` (one rate or per label).

    ``extra_seconds`` appends a trailing partial epoch. Signals follow :func:`simulated_stages`.
    """
    from simulate.physiology import draw_subject_params, simulate_sites
    from tests.conftest import write_edf

    if not isinstance(rates, dict):
        rates = {label: float(rates) for label in SITES}
    rng = np.random.default_rng(seed)
    stages = simulated_stages(n_epochs + 1, seed)
    volts = simulate_sites(stages, {lab: (SITES[lab], rates[lab]) for lab in SITES}, rng,
                           draw_subject_params(rng, seed))
    keep = {lab: v[: int(round((n_epochs * 30 + extra_seconds) * rates[lab]))] * 1e6 for lab, v in volts.items()}
    return write_edf(path, {lab: (keep[lab], rates[lab]) for lab in SITES}, unit="uV",
                     start=dt.datetime(2020, 1, 1, 22, 0, 0))
