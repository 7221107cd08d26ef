"""Whole-night spectrogram of one EEG channel: the figure sleep scientists read first (as
``yasa.plot_spectrogram``), drawn above the hypnogram.

Method (Welch, one column per 30-s epoch): each epoch is cut into :data:`SEGMENT_S`-s Hann
segments overlapping by half, their periodograms averaged (``scipy.signal.welch``, linear
detrending per segment); the power spectral density is shown in dB (10·log10) from
:data:`FMIN_HZ` to :data:`FMAX_HZ`, the colour range clipped at the :data:`CLIP_PERCENT` and
100 − :data:`CLIP_PERCENT` percentiles of the night so that a few artefact epochs do not wash out
the rest. Frequency resolution 1 / SEGMENT_S = 0.25 Hz; time resolution one epoch.

Units: on the staging signals (band-passed, resampled to 100 Hz and z-scored over the night) the
power is in dB relative to the channel's whole-night variance per Hz, so nights and channels are
comparable in shape, not in absolute power; on the web page's display signals (raw derivations
in µV) it is dB re 1 µV²/Hz. The caption of every figure says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENT_S = 4.0
"""Welch segment length (s): 0.25-Hz resolution, ≥ 2 cycles of the slowest delta wave (0.5 Hz)."""
FMIN_HZ = 0.5
FMAX_HZ = 25.0
"""Shown band: delta to beta; spindles (11–16 Hz) and alpha (8–12 Hz) lie inside it."""
CLIP_PERCENT = 2.0
"""Colour range: the 2nd to 98th percentile of the night's dB values."""
CHANNEL_PREFERENCE = ("C4", "C3", "F4", "F3", "O2", "O1")
"""The EEG channel shown: central first (the AASM's recommended derivation), then frontal, occipital."""


@dataclass
class Spectrogram:
    """Power of one channel per epoch.

    Attributes
    ----------
    freqs : ndarray, shape (n_freqs,)
        Hz.
    power_db : ndarray, shape (n_freqs, n_epochs)
        10·log10 of the PSD (NaN for an epoch without signal).
    channel : str
        Canonical channel (with its derivation when known).
    unit : str
        What 0 dB means (see the module docstring).
    """

    freqs: np.ndarray
    power_db: np.ndarray
    channel: str
    unit: str

    def color_range(self) -> tuple[float, float]:
        """``(vmin, vmax)`` in dB: the clipped percentiles of :data:`CLIP_PERCENT`."""
        finite = self.power_db[np.isfinite(self.power_db)]
        if finite.size == 0:
            return 0.0, 1.0
        lo, hi = np.percentile(finite, [CLIP_PERCENT, 100 - CLIP_PERCENT])
        return float(lo), float(max(hi, lo + 1e-6))


def choose_channel(channels) -> int | None:
    """Index of the channel to show (:data:`CHANNEL_PREFERENCE`), None without EEG."""
    for name in CHANNEL_PREFERENCE:
        if name in channels:
            return list(channels).index(name)
    return None


def epoch_spectrogram(x: np.ndarray, sfreq: float, epoch_seconds: float = 30.0, channel: str = "",
                      unit: str = "dB re whole-night variance/Hz") -> Spectrogram:
    """Welch spectrogram of ``x`` with one column per epoch (a trailing partial epoch is dropped).

    Examples
    --------
    >>> t = np.arange(0, 60, 0.01)
    >>> sp = epoch_spectrogram(np.sin(2 * np.pi * 10 * t), 100.0)
    >>> sp.power_db.shape, float(sp.freqs[np.argmax(sp.power_db[:, 0])])
    ((99, 2), 10.0)
    """
    from scipy.signal import welch

    per = int(round(epoch_seconds * sfreq))
    n = len(x) // per
    if n == 0:
        raise ValueError("shorter than one epoch")
    nper = int(round(SEGMENT_S * sfreq))
    freqs = keep = db = None
    # blocks of epochs (each epoch's estimate is its own): a whole night at once held float64
    # copies, segments and complex spectra of the channel, +315 MB at 24 h (bench/memory_night.py)
    for a in range(0, n, SPECTROGRAM_BLOCK_EPOCHS):
        b = min(n, a + SPECTROGRAM_BLOCK_EPOCHS)
        epochs = np.asarray(x[a * per: b * per], dtype=np.float64).reshape(b - a, per)
        freqs, psd = welch(epochs, fs=sfreq, window="hann", nperseg=nper, noverlap=nper // 2, detrend="linear",
                           axis=-1)
        if db is None:
            keep = (freqs >= FMIN_HZ) & (freqs <= FMAX_HZ)
            db = np.empty((int(keep.sum()), n), dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            part = 10 * np.log10(psd[:, keep]).T
        part[~np.isfinite(part)] = np.nan
        db[:, a:b] = part
    return Spectrogram(freqs[keep], db, channel, unit)


SPECTROGRAM_BLOCK_EPOCHS = 240
"""Epochs per Welch call of :func:`epoch_spectrogram` (2 h): its temporaries stay near 15 MB at 100 Hz."""


def night_spectrogram(signals: np.ndarray, channels, sfreq: float = 100.0, epoch_seconds: float = 30.0,
                      sources=None, unit: str = "dB re whole-night variance/Hz") -> Spectrogram | None:
    """Spectrogram of the preferred EEG channel of a montage (None when there is no EEG)."""
    i = choose_channel(channels)
    if i is None:
        return None
    label = channels[i] + (f" ({sources[i]})" if sources is not None else "")
    return epoch_spectrogram(signals[i], sfreq, epoch_seconds, label, unit)


def draw(ax, sp: Spectrogram, hours_per_epoch: float, colorbar: bool = True):
    """Draw ``sp`` on a matplotlib axis, time in hours from the recording start."""
    vmin, vmax = sp.color_range()
    n = sp.power_db.shape[1]
    df = sp.freqs[1] - sp.freqs[0] if len(sp.freqs) > 1 else 1.0
    im = ax.imshow(sp.power_db, aspect="auto", origin="lower", cmap="RdBu_r", vmin=vmin, vmax=vmax,
                   extent=(0, n * hours_per_epoch, sp.freqs[0] - df / 2, sp.freqs[-1] + df / 2),
                   interpolation="nearest")
    ax.set_ylabel("Hz")
    ax.set_title(f"spectrogram {sp.channel}: Welch {SEGMENT_S:g}-s Hann segments per 30-s epoch, {sp.unit}",
                 fontsize=8, loc="left")
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, pad=0.01, fraction=0.025)
        cb.ax.tick_params(labelsize=7)
        cb.set_label("dB", fontsize=7)
    return im


__all__ = ["CHANNEL_PREFERENCE", "CLIP_PERCENT", "FMAX_HZ", "FMIN_HZ", "SEGMENT_S", "Spectrogram", "choose_channel",
           "draw", "epoch_spectrogram", "night_spectrogram"]
