"""The per-channel signal chains (DESIGN §4): filter → resample to 100 Hz → z-score → epochs.

Two chains, each implemented once, chosen by :attr:`SignalParams.chain` and recorded with the data
and with the weights trained on it (the chain travels with the weights):

``"antialiased"`` (ours, the default for preprocessing)
    per channel at its own native rate: zero-phase Butterworth (:func:`scipy.signal.sosfiltfilt`),
    polyphase resampling with an anti-aliasing FIR (:func:`scipy.signal.resample_poly`), z-score.
``"published"`` (what the official LPSGM weights were trained on)
    every channel first brought to the highest rate among the channels read, by FFT upsampling as
    MNE's EDF reader does (:func:`fft_upsample`, done by :func:`preprocess.core.pipeline.load_montage`);
    then zero-phase Butterworth in transfer-function form (:func:`scipy.signal.filtfilt` with
    ``(b, a)``, its default odd padding), linear interpolation on a grid stretched so the last output
    sample lands on the last input sample (:func:`stretched_linear_resample`, no anti-aliasing: the
    chin EMG aliases), z-score over the night. One documented deviation: at 1000 Hz and above the
    ``(b, a)`` form is numerically unstable (its 0.3 Hz poles leave or touch the unit circle: the
    output is off by 40–70 % or diverges), so there the same filter runs as second-order sections
    with the same padding — what ``(b, a)`` computes where it is stable.

The output rate (100 Hz) and the epoch length (30 s = 3000 samples) are fixed by the model (its
kernel sizes assume them), so they are constants here, not parameters.

Every step is a small function with explicit units so it can be tested with a known answer.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import fft as spfft
from scipy import signal as sps

SFREQ = 100.0
"""Output sampling rate (Hz) of every chain; the model's kernels assume it."""

EPOCH_SECONDS = 30.0
"""Epoch length (s)."""

EPOCH_SAMPLES = 3000
"""Samples per epoch at :data:`SFREQ`."""

CHAINS = ("antialiased", "published")
"""Signal chains (see the module docstring)."""

BA_MAX_RATE = 1000.0
"""Rates (Hz) from which the published chain's filter runs as second-order sections instead of
``(b, a)``: at 512 Hz ``(b, a)`` is within 1e-3 of the exact filter, at 1000 Hz its band-pass pole
lies outside the unit circle and at 1024 Hz the output is 38 % off (measured on white noise)."""


@dataclass(frozen=True)
class SignalParams:
    """Parameters of the signal chain; recorded in every harmonized file and checkpoint.

    Attributes
    ----------
    chain : {"antialiased", "published"}
        Which chain (see the module docstring).
    eeg_band, eog_band : tuple of float
        Band-pass edges (Hz) for EEG and EOG channels.
    emg_highpass : float
        High-pass edge (Hz) for the chin EMG.
    filter_order : int
        Butterworth order; applied forward and backward (zero phase), so the effective
        attenuation is squared.
    normalization : {"zscore", "robust"}
        ``zscore``: (x − mean) / std; ``robust``: (x − median) / IQR.
    """

    chain: str = "antialiased"
    eeg_band: tuple[float, float] = (0.3, 35.0)
    eog_band: tuple[float, float] = (0.3, 35.0)
    emg_highpass: float = 10.0
    filter_order: int = 4
    normalization: str = "zscore"

    def __post_init__(self) -> None:
        if self.chain not in CHAINS:
            raise ValueError(f"chain must be one of {CHAINS}, got {self.chain!r}")
        if self.normalization not in ("zscore", "robust"):
            raise ValueError(f"normalization must be 'zscore' or 'robust', got {self.normalization!r}")

    # fixed by the model, read-only (kept as attributes so callers and files state them)
    sfreq = SFREQ
    epoch_seconds = EPOCH_SECONDS
    epoch_samples = EPOCH_SAMPLES

    def to_dict(self) -> dict:
        """JSON-ready parameters, plus the fixed ``sfreq`` and ``epoch_seconds`` for provenance."""
        return {**dataclasses.asdict(self), "sfreq": SFREQ, "epoch_seconds": EPOCH_SECONDS}

    @classmethod
    def from_dict(cls, d: dict) -> "SignalParams":
        """Parameters from :meth:`to_dict` output (a file's or a checkpoint's ``preprocessing``).

        Unknown keys are refused, like :meth:`models.config.ModelConfig.from_dict`: a chain option
        this code does not implement must not be silently ignored. ``sfreq`` and ``epoch_seconds``
        are accepted when they equal the fixed values. A missing ``chain`` means ``antialiased``
        (files and checkpoints written before the chain was recorded used that chain).

        Raises
        ------
        ValueError
            Unknown keys, or ``sfreq``/``epoch_seconds`` other than 100 Hz / 30 s.
        """
        d = dict(d)
        for key, fixed in (("sfreq", SFREQ), ("epoch_seconds", EPOCH_SECONDS)):
            value = d.pop(key, fixed)
            if float(value) != fixed:
                raise ValueError(f"preprocessing {key}={value}: only {fixed:g} is supported "
                                 "(the model's kernels assume 100 Hz and 30-s epochs)")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown SignalParams keys: {unknown}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


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


_NOTES: contextvars.ContextVar[list | None] = contextvars.ContextVar("signal_chain_notes", default=None)


@contextmanager
def chain_notes():
    """Collect what the signal chain tolerated (NaN replaced, a resampling ratio approximated) in a list.

    Inside the ``with`` block those messages go into the list instead of :func:`warnings.warn`, for
    the current thread only: batch staging chains the next file on a second thread, and
    ``warnings.catch_warnings`` is process-wide, so it could hand one file's message to the other
    file or lose it.
    """
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def _tolerated(message: str, stacklevel: int) -> None:
    """``message`` into the collecting :func:`chain_notes`, else a ``UserWarning`` (``stacklevel`` as warnings.warn)."""
    notes = _NOTES.get()
    if notes is None:
        warnings.warn(message, stacklevel=stacklevel + 1)
    else:
        notes.append(message)


def resample(x: np.ndarray, sfreq: float, target: float = SFREQ) -> np.ndarray:
    """Polyphase resampling from ``sfreq`` to ``target`` Hz with an anti-aliasing FIR.

    The rational factor is exact for the usual rates (256→100 is 25/64, 200→100 is 1/2).
    """
    if sfreq == target:
        return np.asarray(x, dtype=np.float64)
    ratio, exact = _rational(sfreq, target)
    if not exact:
        _tolerated(f"resampling {sfreq} Hz → {target} Hz approximated by {ratio}", stacklevel=2)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator)


def fft_upsample(x: np.ndarray, n_out: int) -> np.ndarray:
    """FFT resampling of a whole channel to ``n_out`` samples, as MNE's EDF reader upsamples.

    ``mne.io.read_raw_edf`` brings every channel of a file to the highest rate among the channels
    read, with :func:`mne.filter.resample` (``npad=0``, boxcar window): the spectrum is zero-padded
    to the new length, the Nyquist bin of an even-length input is halved, and the amplitude is
    scaled by ``n_out / n``. This equals :func:`scipy.signal.resample` for real input.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n_out == n:
        return x
    spectrum = spfft.rfft(x)
    if n_out > n and n % 2 == 0:
        spectrum[n // 2] *= 0.5
    elif n_out < n and n_out % 2 == 0:
        spectrum = spectrum[: n_out // 2 + 1].copy()
        spectrum[n_out // 2] *= 2.0
    return spfft.irfft(spectrum, n_out) * (n_out / n)


def published_filter(x: np.ndarray, sfreq: float, low: float | None, high: float | None,
                     order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth as the published chain applies it: ``filtfilt`` with ``(b, a)``.

    Default ``filtfilt`` padding (odd extension of ``3 * max(len(a), len(b))`` samples, steady-state
    initial conditions). From :data:`BA_MAX_RATE` on, ``(b, a)`` is numerically unstable and the same
    design runs as second-order sections with the same padding length (the documented deviation).
    Edges the rate cannot carry are handled by :func:`usable_band` (the published code raised there).
    """
    low, high = usable_band(sfreq, low, high)
    x = np.asarray(x, dtype=np.float64)
    if low is None and high is None:
        return x
    # edges normalised as ``edge * 2 / fs`` exactly as published: (b, a) at 0.3 Hz is so
    # ill-conditioned at 512 Hz that the last bit of Wn moves the output by 4e-4 SD
    if low is not None and high is not None:
        wn, btype = [low * 2 / sfreq, high * 2 / sfreq], "bandpass"
    elif low is not None:
        wn, btype = low * 2 / sfreq, "highpass"
    else:
        wn, btype = high * 2 / sfreq, "lowpass"
    if sfreq < BA_MAX_RATE:
        b, a = sps.butter(N=order, Wn=wn, btype=btype)
        return sps.filtfilt(b, a, x)
    sos = sps.butter(N=order, Wn=wn, btype=btype, output="sos")
    n_coef = (2 if btype == "bandpass" else 1) * order + 1
    return sps.sosfiltfilt(sos, x, padlen=3 * n_coef)


def stretched_linear_resample(x: np.ndarray, sfreq: float, target: float = SFREQ) -> np.ndarray:
    """Linear interpolation to ``target`` Hz on the published, stretched grid.

    ``round(target / sfreq * n)`` output samples evenly spaced from the first to the last input
    sample (``np.linspace(0, n - 1, ...)`` in input-sample units): the grid is slightly stretched,
    so output sample ``k`` shows the input at ``k / target`` plus a shift growing to
    ``1/target − 1/sfreq`` at the end of the night (6 ms at 256 Hz). No anti-aliasing filter. ``sfreq`` equal to ``target`` returns ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if sfreq == target:
        return x
    n = len(x)
    grid = np.linspace(0, n - 1, int(round(target / sfreq * n)))
    return np.interp(grid, np.arange(n, dtype=np.float64), x)


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
    _tolerated(f"{frac:.1%} of samples are NaN/inf; replaced by the channel median", stacklevel=2)
    x = x.copy()
    x[bad] = np.median(x[~bad])
    return x


def _band(kind: str, params: SignalParams) -> tuple[float | None, float | None]:
    if kind == "emg":
        return params.emg_highpass, None
    return params.eog_band if kind == "eog" else params.eeg_band


BLOCK_SAMPLES = 1 << 20
"""Input samples per block of the block-wise chain (1,048,576: 68 min at 256 Hz, 8 MB in float64):
long enough that the overlap (2 × ~34 s, :func:`settling_samples`) costs under 2 % more filtering,
short enough that a block's filter and resampler temporaries (~8 copies) stay near 70 MB whatever
the night's length."""

SETTLE_TOL = 1e-12
"""A block overlaps its neighbours by the samples after which the filter's impulse response stays
below this fraction of its peak (:func:`settling_samples`): the cut's transient then changes the
kept samples by ~1e-12 of the signal's scale, far below the float32 step of the output."""


@functools.lru_cache(maxsize=64)
def settling_samples(sfreq: float, low: float | None, high: float | None, order: int,
                     chain: str = "antialiased") -> int:
    """Samples after which the chain's filter's impulse response stays below :data:`SETTLE_TOL` of its peak.

    Measured on the filter each chain runs (second-order sections, or the published ``(b, a)``
    form below :data:`BA_MAX_RATE`, whose rounded coefficients move its poles a little), so any
    band and rate get their own overlap: about 20 s for the 0.3 Hz high-pass edge, under 1 s for
    the 10 Hz EMG high-pass.
    """
    low, high = usable_band(sfreq, low, high)
    if low is None and high is None:
        return 0
    edge = min(e for e in (low, high) if e is not None)
    n = int(sfreq * 60.0 / edge) + 64  # 60 periods of the lowest edge: well past any Butterworth tail
    impulse = np.zeros(n)
    impulse[0] = 1.0
    if chain == "published" and sfreq < BA_MAX_RATE:
        wn = [low * 2 / sfreq, high * 2 / sfreq] if low is not None and high is not None else \
            (low if low is not None else high) * 2 / sfreq
        btype = "bandpass" if low is not None and high is not None else ("highpass" if low is not None else "lowpass")
        b, a = sps.butter(N=order, Wn=wn, btype=btype)
        h = np.abs(sps.lfilter(b, a, impulse))
    else:
        h = np.abs(sps.sosfilt(_butter_sos(sfreq, low, high, order), impulse))
    above = np.flatnonzero(h > SETTLE_TOL * h.max())
    return int(above[-1]) + 1


def _butter_sos(sfreq: float, low: float | None, high: float | None, order: int) -> np.ndarray:
    """Second-order sections of the Butterworth band-, high- or low-pass (edges already usable)."""
    if low is not None and high is not None:
        return sps.butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    if low is not None:
        return sps.butter(order, low, btype="highpass", fs=sfreq, output="sos")
    return sps.butter(order, high, btype="lowpass", fs=sfreq, output="sos")


def _fir_half_width(up: int, down: int) -> int:
    """Input samples either side of an output sample that :func:`scipy.signal.resample_poly` uses
    (its default Kaiser FIR has ``20 * max(up, down) + 1`` taps at the upsampled rate)."""
    return 10 * max(up, down) // up + 2


@dataclass
class _Stats:
    """Running statistics of one channel's chain output (its whole length, not only the kept part).

    Sums are shifted by the first block's mean so that the variance is exact in float64 even for
    a signal far from zero (``Σ(y − c)²/n − (ȳ − c)²``).
    """

    n: int = 0
    shift: float | None = None
    total: float = 0.0
    squares: float = 0.0

    def add(self, y: np.ndarray) -> None:
        if self.shift is None:
            self.shift = float(np.mean(y)) if y.size else 0.0
        d = y - self.shift
        self.n += y.size
        self.total += float(d.sum())
        self.squares += float(np.dot(d, d))

    def mean_std(self) -> tuple[float, float]:
        mean_shifted = self.total / self.n
        var = max(self.squares / self.n - mean_shifted ** 2, 0.0)
        return mean_shifted + self.shift, float(np.sqrt(var))


def _blocks(n: int, align: int) -> list[tuple[int, int]]:
    """``[start, stop)`` spans cutting ``range(n)`` into blocks of about :data:`BLOCK_SAMPLES`,
    every inner boundary a multiple of ``align`` (so each block's resampler phase is the night's)."""
    n_blocks = max(1, -(-n // BLOCK_SAMPLES))
    cuts = [0] + [(n * k // n_blocks) // align * align for k in range(1, n_blocks)] + [n]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def output_length(n: int, sfreq: float, params: SignalParams = SignalParams()) -> int:
    """Samples at 100 Hz that the chain of ``params`` makes from ``n`` samples at ``sfreq``."""
    if params.chain == "published":
        rate = float(round(sfreq))
        return n if rate == SFREQ else int(round(SFREQ / rate * n))
    if sfreq == SFREQ:
        return n
    ratio, _ = _rational(sfreq, SFREQ)
    return -(-n * ratio.numerator // ratio.denominator)


class ChainNotFinite(Exception):
    """A block held NaN/inf: the channel goes through the whole-signal path (median replacement)."""


def _antialiased_blocks(read, n: int, sfreq: float, low, high, order: int):
    """Yield ``(first output index, output block)`` of filter → polyphase resampling, block by block.

    Every block is the night's computation restricted to it: it reads :func:`settling_samples`
    plus the resampler's FIR half-width beyond each inner boundary (rounded up to the resampling
    period, so the polyphase phase matches) and keeps only its own output samples.
    """
    if sfreq == SFREQ:
        up = down = 1
    else:
        ratio, exact = _rational(sfreq, SFREQ)
        if not exact:
            _tolerated(f"resampling {sfreq} Hz → {SFREQ} Hz approximated by {ratio}", stacklevel=3)
        up, down = ratio.numerator, ratio.denominator
    margin = settling_samples(sfreq, low, high, order) + (_fir_half_width(up, down) if down > 1 or up > 1 else 0)
    margin = -(-margin // down) * down
    n_out = -(-n * up // down)
    for a, b in _blocks(n, down):
        lo, hi = max(0, a - margin), min(n, b + margin)
        x = read(lo, hi)
        y = butter_filter(x, sfreq, low, high, order)
        del x
        if up != down:
            y = sps.resample_poly(y, up, down)
        first, out_a = lo * up // down, a * up // down
        out_b = n_out if b == n else b * up // down
        yield out_a, y[out_a - first: out_b - first]


def _published_blocks(read, n: int, rate: float, low, high, order: int):
    """Yield ``(first output index, output block)`` of ``(b, a)`` filtfilt → stretched linear grid.

    The grid point of output ``k`` is ``k · (n − 1)/(m − 1)`` input samples, computed as
    :func:`numpy.linspace` computes it, so each block interpolates on exactly the night's grid.
    """
    m = n if rate == SFREQ else int(round(SFREQ / rate * n))
    margin = settling_samples(rate, low, high, order, "published") + 2
    step = (n - 1) / (m - 1) if m > 1 else 0.0
    for a, b in _blocks(m, 1):  # blocks of output samples (the count is alike at any rate)
        a_in = int(np.floor(a * step)) if rate != SFREQ else a
        b_in = min(n, int(np.floor((b - 1) * step)) + 2) if rate != SFREQ else b
        lo, hi = max(0, a_in - margin), min(n, b_in + margin)
        x = read(lo, hi)
        y = published_filter(x, rate, low, high, order)
        del x
        if rate == SFREQ:
            yield a, y[a - lo: b - lo]
            continue
        grid = np.arange(a, b, dtype=np.float64) * step
        if b == m and m > 1:
            grid[-1] = n - 1  # linspace's exact endpoint
        yield a, np.interp(grid - lo, np.arange(hi - lo, dtype=np.float64), y)


def run_chain(read, n: int, sfreq: float, kind: str, params: SignalParams = SignalParams(),
              out: np.ndarray | None = None) -> np.ndarray:
    """The chain of ``params.chain`` on one channel read block by block (memory flat in its length).

    Equals the whole-signal chain (:func:`process_channel` on the whole array) to float32
    rounding: each block overlaps its neighbours by more than the filter's settling time
    (:func:`settling_samples`), the resampler's phase and grid are the night's, and the z-score
    uses the mean and SD of the whole output (running sums). Only one block is ever held in float64.

    Parameters
    ----------
    read : callable(start, stop) -> ndarray
        Samples ``start:stop`` of the channel at ``sfreq`` (any float dtype; volts).
    n : int
        Samples of the channel.
    sfreq : float
        Its sampling rate (Hz).
    kind : {"eeg", "eog", "emg"}
    params : SignalParams
    out : ndarray of float32, optional
        Where to write the first ``len(out)`` output samples (the rest only enters the z-score);
        default: a new array of :func:`output_length` samples.

    Returns
    -------
    ndarray of float32
        ``out``, normalised.

    Raises
    ------
    ChannelDropped
        A flat channel, or a rate too low for the band.
    """
    low, high = _band(kind, params)
    n_out = output_length(n, sfreq, params)
    if out is None:
        out = np.empty(n_out, dtype=np.float32)
    if len(out) > n_out:
        raise ValueError(f"out holds {len(out)} samples, the chain makes {n_out}")
    lo_x, hi_x = np.inf, -np.inf

    def checked(a: int, b: int) -> np.ndarray:
        nonlocal lo_x, hi_x
        x = np.asarray(read(a, b), dtype=np.float64)
        if x.size:
            lo_b, hi_b = float(x.min()), float(x.max())
            if not (np.isfinite(lo_b) and np.isfinite(hi_b)):
                raise ChainNotFinite
            lo_x, hi_x = min(lo_x, lo_b), max(hi_x, hi_b)
        return x

    usable_band(sfreq, low, high)  # raises ChannelDropped before any read
    if params.chain == "published":
        blocks = _published_blocks(checked, n, float(round(sfreq)), low, high, params.filter_order)
    else:
        blocks = _antialiased_blocks(checked, n, sfreq, low, high, params.filter_order)
    stats, tail = _Stats(), []
    for a, y in blocks:
        stats.add(y)
        keep = max(0, min(len(y), len(out) - a))
        out[a: a + keep] = y[:keep]
        if params.normalization == "robust" and keep < len(y):
            tail.append(y[keep:].astype(np.float32))
    if hi_x - lo_x == 0:
        raise ChannelDropped("flat signal (no variation)")
    if params.normalization == "robust":
        centre, scale = _robust_centre_scale(np.concatenate([out] + tail))
    else:
        centre, scale = stats.mean_std()
    _check_spread(centre, scale)
    _affine_inplace(out, centre, scale)
    return out


def _robust_centre_scale(y: np.ndarray) -> tuple[float, float]:
    q25, med, q75 = np.percentile(y, [25, 50, 75])
    return float(med), float(q75 - q25)


def _check_spread(centre: float, scale: float) -> None:
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(centre)) or scale == 0:
        raise ChannelDropped("flat signal (no variation)")


def _affine_inplace(out: np.ndarray, centre: float, scale: float, block: int = 1 << 20) -> None:
    """``out = (out − centre) / scale`` computed in float64 a block at a time, stored in ``out``."""
    for a in range(0, len(out), block):
        seg = out[a: a + block].astype(np.float64)
        seg -= centre
        seg /= scale
        out[a: a + block] = seg


def process_channel(x: np.ndarray, sfreq: float, kind: str, params: SignalParams = SignalParams()) -> np.ndarray:
    """Run the chain of ``params.chain`` on one channel.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        Signal in volts at ``sfreq``. For the published chain this is the rate after the
        file-level upsampling (see :func:`fft_upsample`); the published code then works with the
        rate rounded to an integer, and so does this function.
    sfreq : float
        Sampling rate of ``x`` (Hz).
    kind : {"eeg", "eog", "emg"}
    params : SignalParams

    Returns
    -------
    ndarray of float32
        Unitless, normalised signal at 100 Hz (the trailing partial epoch is kept; epoching drops it).

    Notes
    -----
    Runs block-wise (:func:`run_chain`); equal to :func:`process_channel_whole` to float32 rounding.
    """
    x = clean_nan(np.asarray(x))
    return run_chain(lambda a, b: x[a:b], len(x), sfreq, kind, params)


def process_channel_whole(x: np.ndarray, sfreq: float, kind: str, params: SignalParams = SignalParams()) -> np.ndarray:
    """The chain on the whole channel at once, in float64: the reference :func:`run_chain` equals.

    Holds several float64 copies of the night (its memory grows with the night's length); kept
    as the plain statement of each chain and for the tests.
    """
    x = clean_nan(np.asarray(x, dtype=np.float64))
    if np.ptp(x) == 0:
        raise ChannelDropped("flat signal (no variation)")
    low, high = _band(kind, params)
    if params.chain == "published":
        rate = float(round(sfreq))  # the published code derives an integer rate from MNE's time axis
        y = stretched_linear_resample(published_filter(x, rate, low, high, params.filter_order), rate)
    else:
        y = resample(butter_filter(x, sfreq, low, high, params.filter_order), sfreq, SFREQ)
    return normalize(y, params.normalization).astype(np.float32)


def to_epochs(signals: np.ndarray, epoch_samples: int = EPOCH_SAMPLES) -> np.ndarray:
    """Cut ``(n_channels, n_samples)`` into ``(n_epochs, n_channels, epoch_samples)``.

    A trailing partial epoch is dropped (as the published chain does).
    """
    n_channels, n_samples = signals.shape
    n_epochs = n_samples // epoch_samples
    trimmed = signals[:, : n_epochs * epoch_samples]
    return trimmed.reshape(n_channels, n_epochs, epoch_samples).transpose(1, 0, 2)


# ---- the causal chain (online staging) ------------------------------------------------------------
# The offline chains above filter forward and backward and z-score over the whole night; neither is
# possible while a night is recorded. The causal chain runs the same Butterworth design forward
# only, a causal anti-alias low-pass before linear interpolation onto the 100-Hz grid, and a running
# z-score (``online`` stages with it; docs/online.md says what differs and why).

ANTIALIAS_HZ = 45.0
"""Edge of the causal anti-alias low-pass before the 100-Hz grid (Nyquist 50 Hz)."""


def butter_sos(sfreq: float, low: float | None, high: float | None, order: int) -> np.ndarray | None:
    """Butterworth second-order sections for the usable part of ``[low, high]`` Hz (None: no filter)."""
    low, high = usable_band(sfreq, low, high)
    if low is None and high is None:
        return None
    if low is not None and high is not None:
        return sps.butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    if low is not None:
        return sps.butter(order, low, btype="highpass", fs=sfreq, output="sos")
    return sps.butter(order, high, btype="lowpass", fs=sfreq, output="sos")


class CausalChain:
    """Causal filter + resampling to 100 Hz of one channel, fed chunk by chunk.

    Parameters
    ----------
    sfreq : float
        Stream rate (Hz).
    kind : {"eeg", "eog", "emg"}
    params : SignalParams
        Band edges and filter order (the offline chain's; run forward only here).

    Notes
    -----
    Output sample ``k`` is the filtered signal at ``k / 100`` s after the first input sample, by
    linear interpolation between the two input samples around it. The output of any split of the
    input into chunks is the same as of the whole input at once (tested).
    """

    def __init__(self, sfreq: float, kind: str, params: SignalParams = SignalParams()) -> None:
        self.sfreq = float(sfreq)
        sections = []
        band = butter_sos(self.sfreq, *_band(kind, params), params.filter_order)
        if band is not None:
            sections.append(band)
        if self.sfreq > SFREQ:
            aa = butter_sos(self.sfreq, None, ANTIALIAS_HZ, 8)
            if aa is not None:
                sections.append(aa)
        self.sos = np.concatenate(sections) if sections else None
        self.reset()

    def reset(self) -> None:
        """Forget the filter state and the interpolation position (after a gap)."""
        self.zi = None if self.sos is None else np.zeros((self.sos.shape[0], 2))
        self.n_in = 0          # input samples consumed since the last reset
        self.n_out = 0         # output samples produced since the last reset
        self.last = 0.0        # last filtered input sample (for interpolation across chunks)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (1-D, volts) and return the new 100-Hz samples it completes."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return np.empty(0)
        if self.sos is not None:
            if self.n_in == 0:  # start from the first value (no step transient from zero)
                self.zi = sps.sosfilt_zi(self.sos) * x[0]
            x, self.zi = sps.sosfilt(self.sos, x, zi=self.zi)
        if self.sfreq == SFREQ:
            self.n_in += x.size
            self.n_out += x.size
            return x
        # positions (in input samples since reset) of the outputs this chunk completes: an output at
        # position p needs input samples floor(p) and floor(p)+1 (the latter only when p is not whole)
        step = self.sfreq / SFREQ
        first_needed = self.n_in - 1 if self.n_in else 0
        joined = np.concatenate([[self.last], x]) if self.n_in else x
        n_total = self.n_in + x.size
        k_end = int(np.floor((n_total - 1) / step)) + 1  # outputs with position ≤ last input index
        k = np.arange(self.n_out, k_end)
        out = np.interp(k * step - first_needed, np.arange(joined.size), joined)
        self.n_in = n_total
        self.n_out = k_end
        self.last = float(x[-1])
        return out


class RunningNorm:
    """Z-score of one channel with statistics of the signal seen so far.

    Parameters
    ----------
    mode : {"running", "calibration"}
        ``running``: mean and SD of every sample up to the end of the current epoch;
        ``calibration``: frozen after the first ``calibration_s`` seconds (running before).
    calibration_s : float
    """

    def __init__(self, mode: str = "running", calibration_s: float = 300.0) -> None:
        if mode not in ("running", "calibration"):
            raise ValueError(f"--norm must be running or calibration, got {mode!r}")
        self.mode, self.limit = mode, int(calibration_s * SFREQ)
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def update(self, x: np.ndarray) -> None:
        if self.mode == "calibration" and self.n >= self.limit:
            return
        self.n += x.size
        self.s += float(x.sum())
        self.ss += float(np.dot(x, x))

    def apply(self, x: np.ndarray) -> np.ndarray:
        mean = self.s / max(self.n, 1)
        var = max(self.ss / max(self.n, 1) - mean * mean, 0.0)
        sd = np.sqrt(var)
        return (x - mean) / sd if sd > 0 else np.zeros_like(x)
