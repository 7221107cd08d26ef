"""The per-channel signal chain (DESIGN §4): filter → resample → normalise → epoch.

Every step is a small function with explicit units so it can be tested with a known answer,
and :func:`process_channel` chains them with the parameters of :class:`SignalParams`, which are
written into each output file.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import fft as spfft
from scipy import signal as sps


@dataclass(frozen=True)
class SignalParams:
    """Parameters of the signal chain; recorded in every harmonized file.

    Attributes
    ----------
    sfreq : float
        Output sampling rate (Hz).
    eeg_band, eog_band : tuple of float
        Band-pass edges (Hz) for EEG and EOG channels.
    emg_highpass : float
        High-pass edge (Hz) for the chin EMG.
    filter_order : int
        Butterworth order; applied forward and backward (zero phase), so the effective
        attenuation is squared.
    normalization : {"zscore", "robust"}
        ``zscore``: (x − mean) / std; ``robust``: (x − median) / IQR.
    epoch_seconds : float
        Epoch length (s).
    """

    sfreq: float = 100.0
    eeg_band: tuple[float, float] = (0.3, 35.0)
    eog_band: tuple[float, float] = (0.3, 35.0)
    emg_highpass: float = 10.0
    filter_order: int = 4
    normalization: str = "zscore"
    epoch_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.normalization not in ("zscore", "robust"):
            raise ValueError(f"normalization must be 'zscore' or 'robust', got {self.normalization!r}")

    @property
    def epoch_samples(self) -> int:
        return int(round(self.sfreq * self.epoch_seconds))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SignalParams":
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in fields}
        return cls(**kw)


class ChannelDropped(ValueError):
    """A channel that carries no usable signal (flat, all NaN, or a rate too low for its band)."""


def usable_band(sfreq: float, low: float | None, high: float | None) -> tuple[float | None, float | None]:
    """The pass band a recording at ``sfreq`` can carry.

    A ``high`` edge at or above 95 % of the Nyquist rate is dropped (the sampling already limits
    the band); a ``low`` edge there raises :class:`ChannelDropped` (nothing is left to keep).
    """
    nyq = sfreq / 2.0
    if high is not None and high >= 0.95 * nyq:
        high = None
    if low is not None and low >= 0.95 * nyq:
        raise ChannelDropped(f"sampling rate {sfreq:g} Hz is too low for a {low:g} Hz high-pass")
    return low, high


def _rational(sfreq: float, target: float) -> tuple[Fraction, bool]:
    """``target/sfreq`` as a fraction (denominator ≤ 1000) and whether it is exact."""
    ratio = Fraction(target / sfreq).limit_denominator(1000)
    return ratio, abs(float(ratio) - target / sfreq) <= 1e-9 * target / sfreq


def butter_filter(x: np.ndarray, sfreq: float, low: float | None, high: float | None,
                  order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth filter.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
    sfreq : float
        Sampling rate of ``x`` (Hz).
    low, high : float or None
        Pass-band edges (Hz). ``high=None`` gives a high-pass, ``low=None`` a low-pass; edges the
        sampling rate cannot carry are handled by :func:`usable_band` (e.g. a 35 Hz low-pass on a
        50 Hz recording is dropped).
    order : int
        Filter order of each pass (the forward-backward filter doubles it).
    """
    low, high = usable_band(sfreq, low, high)
    if low is None and high is None:
        return np.asarray(x, dtype=np.float64)
    if low is not None and high is not None:
        sos = sps.butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    elif low is not None:
        sos = sps.butter(order, low, btype="highpass", fs=sfreq, output="sos")
    else:
        sos = sps.butter(order, high, btype="lowpass", fs=sfreq, output="sos")
    return sps.sosfiltfilt(sos, x)


def resample(x: np.ndarray, sfreq: float, target: float = 100.0) -> np.ndarray:
    """Polyphase resampling from ``sfreq`` to ``target`` Hz with an anti-aliasing FIR.

    The rational factor is exact for the usual rates (256→100 is 25/64, 200→100 is 1/2).
    """
    if sfreq == target:
        return np.asarray(x, dtype=np.float64)
    ratio, exact = _rational(sfreq, target)
    if not exact:
        warnings.warn(f"resampling {sfreq} Hz → {target} Hz approximated by {ratio}", stacklevel=2)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator)


def _smooth_ratio(sfreq: float, target: float) -> Fraction | None:
    """``target/sfreq`` as up/down when both are 2-3-5-smooth (fast FFT lengths), else None."""
    ratio, exact = _rational(sfreq, target)
    if not exact:
        return None
    for n in (ratio.numerator, ratio.denominator):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        if n != 1:
            return None
    return ratio


def butter_gain2(freqs: np.ndarray, sfreq: float, low: float | None, high: float | None,
                 order: int = 4) -> np.ndarray:
    """``|H(f)|²`` of the digital Butterworth filter that :func:`scipy.signal.butter` designs.

    Closed form of the bilinear-transformed (pre-warped) design, so it costs a few vector
    operations instead of evaluating polynomials at a million frequencies: with
    ``w = tan(π f / fs)``, a low-pass is ``1 / (1 + (w / wc)^(2N))``, a high-pass
    ``1 / (1 + (wc / w)^(2N))`` and a band-pass ``1 / (1 + ((w² − w1 w2) / ((w2 − w1) w))^(2N))``.
    Squaring the magnitude gives the response of forward-backward (zero-phase) filtering.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.tan(np.pi * np.asarray(freqs, dtype=np.float64) / sfreq)
        if low is not None and high is not None:
            w1, w2 = np.tan(np.pi * low / sfreq), np.tan(np.pi * high / sfreq)
            ratio = (w * w - w1 * w2) / ((w2 - w1) * w)
        elif low is not None:
            ratio = np.tan(np.pi * low / sfreq) / w
        elif high is not None:
            ratio = w / np.tan(np.pi * high / sfreq)
        else:
            return np.ones_like(w)
        gain = 1.0 / (1.0 + ratio ** (2 * order))
    return np.nan_to_num(gain, nan=0.0, posinf=0.0)  # f = 0 for high/band-pass: zero gain


def filter_and_resample(x: np.ndarray, sfreq: float, low: float | None, high: float | None,
                        order: int = 4, target: float = 100.0) -> np.ndarray:
    """Zero-phase Butterworth filtering at the native rate, then resampling, in one FFT.

    Equivalent to :func:`butter_filter` followed by :func:`resample` away from the recording's
    first and last seconds, and several times faster on whole nights (the cost is one real FFT
    of the night instead of two IIR passes and a polyphase FIR):

    * the filter is applied as its exact zero-phase response ``|H(f)|²`` — the magnitude of the
      same digital Butterworth designed at the native rate, squared, which is what forward-backward
      filtering computes in steady state;
    * resampling keeps the spectrum up to the target Nyquist frequency, with a raised-cosine
      anti-aliasing taper over its last 10 % (like the transition band of a polyphase FIR);
    * the night is extended by odd reflection (as ``filtfilt`` does) so the circular FFT does not
      wrap the end of the night onto its start.

    Falls back to the two-step chain when the rate ratio has no fast FFT length.
    """
    ratio = _smooth_ratio(sfreq, target)
    low, high = usable_band(sfreq, low, high)
    if ratio is None or len(x) < 4 * sfreq:
        return resample(butter_filter(x, sfreq, low, high, order), sfreq, target)
    up, down = ratio.numerator, ratio.denominator
    n = len(x)
    # odd-reflection padding of ~30 s, a whole number of `down` blocks so the crop is exact
    pad_blocks = max(1, int(np.ceil(min(30.0 * sfreq, n - 1) / down)))
    pad = min(pad_blocks * down, n - 1)
    pad -= pad % down
    x = np.asarray(x, dtype=np.float32)  # single precision halves FFT time; ample for EEG
    ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2:-pad - 2:-1]]) if pad else x
    k = spfft.next_fast_len(int(np.ceil(len(ext) / down)), real=True)
    while (k * up) % 2 or spfft.next_fast_len(k * up, real=True) != k * up:
        k = spfft.next_fast_len(k + 1, real=True)
    n_in, n_out = k * down, k * up
    spectrum = spfft.rfft(ext, n_in)
    keep = min(len(spectrum), n_out // 2 + 1)
    freqs = np.arange(keep) * (sfreq / n_in)
    gain = butter_gain2(freqs, sfreq, low, high, order)
    if up < down:  # downsampling: anti-aliasing taper below the new Nyquist frequency
        nyq = target / 2.0
        edge = 0.9 * nyq
        band = freqs > edge
        gain[band] *= 0.5 * (1 + np.cos(np.pi * (freqs[band] - edge) / (nyq - edge)))
    out_spec = np.zeros(n_out // 2 + 1, dtype=spectrum.dtype)
    out_spec[:keep] = spectrum[:keep] * gain.astype(np.float32)
    y = spfft.irfft(out_spec, n_out) * (n_out / n_in)
    start = pad * up // down
    return y[start:start + (n * up) // down]


def normalize(x: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Normalise one channel over the whole recording.

    ``zscore`` subtracts the mean and divides by the standard deviation; ``robust`` subtracts
    the median and divides by the inter-quartile range (insensitive to artefact bursts).

    Raises
    ------
    ChannelDropped
        When the channel is flat (zero spread).
    """
    if method == "robust":
        q25, med, q75 = np.percentile(x, [25, 50, 75])
        centre, scale = med, q75 - q25
    else:
        centre, scale = float(np.mean(x)), float(np.std(x))
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(centre)) or scale == 0:
        raise ChannelDropped("flat signal (no variation)")
    return (x - centre) / scale


def clean_nan(x: np.ndarray) -> np.ndarray:
    """Replace NaN/inf samples by the channel median; all-NaN raises :class:`ChannelDropped`."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    if bad.all():
        raise ChannelDropped("all samples are NaN")
    frac = bad.mean()
    warnings.warn(f"{frac:.1%} of samples are NaN/inf; replaced by the channel median", stacklevel=2)
    x = x.copy()
    x[bad] = np.median(x[~bad])
    return x


def process_channel(x: np.ndarray, sfreq: float, kind: str, params: SignalParams = SignalParams()) -> np.ndarray:
    """Run the signal chain on one channel.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Signal in volts at its native rate.
    sfreq : float
        Native sampling rate (Hz).
    kind : {"eeg", "eog", "emg"}
    params : SignalParams

    Returns
    -------
    ndarray of float32, shape (n_samples * params.sfreq / sfreq,)
        Unitless, normalised signal at ``params.sfreq``.
    """
    x = clean_nan(np.asarray(x, dtype=np.float64))
    if np.ptp(x) == 0:
        raise ChannelDropped("flat signal (no variation)")
    if kind == "emg":
        low, high = params.emg_highpass, None
    else:
        low, high = params.eog_band if kind == "eog" else params.eeg_band
    y = filter_and_resample(x, sfreq, low, high, params.filter_order, params.sfreq)
    return normalize(y, params.normalization).astype(np.float32)


def to_epochs(signals: np.ndarray, epoch_samples: int = 3000) -> np.ndarray:
    """Cut ``(n_channels, n_samples)`` into ``(n_epochs, n_channels, epoch_samples)``.

    A trailing partial epoch is dropped.
    """
    n_channels, n_samples = signals.shape
    n_epochs = n_samples // epoch_samples
    trimmed = signals[:, : n_epochs * epoch_samples]
    return trimmed.reshape(n_channels, n_epochs, epoch_samples).transpose(1, 0, 2)
