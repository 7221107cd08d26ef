"""Signal-quality gate: per channel and per 30-s epoch checks on the raw signals.

Every raw label the montage uses is read once at its native rate and checked (thresholds
below, documented in ``docs/clinical.md``). A problem covering most of a channel drops the
channel, with a one-line reason naming the file and the label, before the montage is formed
(the montage then takes the next option of the channel map, if any); a problem confined to
some epochs marks those epochs, and the staging pipeline re-stages them without the
channels that are unusable there (:func:`restage_unusable`). A recording whose every
montage channel is saturated is refused (:class:`QualityError`), not staged as all W.

Per-epoch problem kinds, in the order they are reported in the ``flag`` column:

==============  ===========================================================================
``nan``         at least one NaN/inf sample in the epoch (the chain replaces them by the
                channel median, so the epoch's content is not the recorded one).
``flat``        at least half of the epoch's 1-s segments (10 samples below 10 Hz) have a
                peak-to-peak amplitude below ``FLAT_PTP_UV`` (0.1 µV, about one step of a
                16-bit recorder; exactly 0 for a non-voltage unit).
``saturated``   at least ``SATURATED_SHARE`` (5 %) of the epoch's samples sit at the
                channel's limits: the header's physical minimum/maximum when the reader
                exposes them (EDF/BDF: ``EdfReader.physical_range``; a clipping recorder
                writes its digital limits, which calibrate to exactly those values), else
                the channel's observed extreme values.
``gap``         the channel ends before the epoch does (a channel shorter than the
                recording, or a gap the reader reports).
``artefact``    a 1-s segment with a peak-to-peak amplitude above ``ARTEFACT_PTP_UV``
                (EEG 1000 µV, EOG 2000 µV, EMG 2000 µV): movement or electrode pop. Only a
                flag: the epoch is staged with the channel; not reported for a
                saturated epoch (the clipping explains the amplitude).
``nonphysio``   EEG/EOG only: the epoch's spectrum has no physiological shape, i.e. its mean
                power density in the sleep bands (``SLEEP_BAND_HZ``, 0.3-16 Hz: delta to
                sigma) is less than ``MIN_SLEEP_TO_HIGH`` (2) times that of ``HIGH_BAND_HZ``
                (20-40 Hz, below the Nyquist rate): white noise (ratio 1), mains hum with
                the electrode off (the line bins are left out of both bands, so what is
                left is the amplifier's white noise). Only a flag: muscle can flatten a
                wake epoch's spectrum, so the epoch is staged and listed for review.
==============  ===========================================================================

``nan``, ``flat``, ``saturated`` and ``gap`` make the channel *unusable* in that epoch.

Physiological plausibility of a whole channel (each gives the channel's one-line reason and drops it
before the montage is formed, so the next option of the channel map is tried):

* **sampling rate** below ``MIN_SFREQ`` for its kind (EEG 40 Hz, EOG 20 Hz, EMG 25 Hz): the
  band the staging needs (EEG up to the 16-Hz spindles, EOG up to the ~8-Hz rapid eye movements,
  the EMG's 10-Hz high-pass) does not fit under the Nyquist rate with the recorder's anti-alias
  roll-off. A rate the signal chain cannot filter at all keeps the chain's own reason.
* **no physiology**: ``nonphysio`` in more than ``CHANNEL_BAD_SHARE`` of its epochs; the reason
  says whether mains hum dominates (``LINE_SHARE``: more than half of the power within 1 Hz of
  50/60 Hz, an electrode off) or the spectrum is flat like white noise.
* **amplitude implausible for the unit**, either way: a median epoch SD above
  ``IMPLAUSIBLE_SD_UV`` (no EEG, EOG or chin EMG is that large) or below ``MIN_SD_UV`` for its
  kind (below an amplifier's own noise floor: µV numbers labelled nV, or an electrode not
  connected); the reason asks "wrong unit field?".
* **copies**: a montage channel whose derivation correlates at ``r >= DUPLICATE_R`` (0.99) with an
  earlier one (over up to ``DUPLICATE_EPOCHS`` epochs spread over the night, each epoch's mean
  removed) carries the same signal (a copied channel, bridged electrodes): the later one is
  dropped, the first kept. Signed: E1 and E2 are anticorrelated by nature and never copies.

A channel kept but quantised coarsely (fewer than ``MIN_LEVELS_PER_SD`` quantisation steps per
standard deviation: an 8-bit export, a recorder range set 100x too wide) gets a warning in every
output (:attr:`QualityReport.warnings`) but is staged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from preprocess.core.channels import CHANNEL_KIND, MontageError, resolve_montage

KINDS = ("nan", "flat", "saturated", "gap", "artefact", "nonphysio")
"""Per-epoch problem kinds, in report order; bit ``i`` of a mask is ``KINDS[i]``."""
UNUSABLE = ("nan", "flat", "saturated", "gap")
"""Kinds that make a channel unusable in an epoch (the epoch is re-staged without it)."""
BIT = {k: 1 << i for i, k in enumerate(KINDS)}
UNUSABLE_MASK = sum(BIT[k] for k in UNUSABLE)

FLAT_PTP_UV = 0.1
"""A 1-s segment with a peak-to-peak amplitude below this (µV) is flat."""
MIN_SEGMENT_SAMPLES = 10
"""Segments hold at least this many samples (a 1-Hz envelope channel is checked over 10 s)."""
FLAT_SEGMENT_SHARE = 0.5
"""An epoch is flat when at least this share of its 1-s segments is flat."""
SATURATED_SHARE = 0.05
"""An epoch is saturated when at least this share of its samples is at the channel's extremes."""
ARTEFACT_PTP_UV = {"eeg": 1000.0, "eog": 2000.0, "emg": 2000.0}
"""Peak-to-peak amplitude (µV) of a 1-s segment above which the epoch is flagged ``artefact``."""
CHANNEL_BAD_SHARE = 0.5
"""A channel unusable (nan/flat/saturated/gap) in more than this share of its epochs is dropped."""
IMPLAUSIBLE_SD_UV = 5000.0
"""A voltage channel whose median epoch standard deviation exceeds this (µV) is dropped: no EEG,
EOG or chin EMG is that large; the unit field is wrong or the channel is not physiological."""

MIN_SD_UV = {"eeg": 0.5, "eog": 0.5, "emg": 0.1}
"""Median epoch SD (µV) below which a voltage channel is implausibly small: an EEG amplifier's own
input noise is ~0.5 µV rms over the PSG band, so no connected scalp electrode reads less over a night;
the chin EMG in REM atonia reaches ~1 µV, its floor is set lower."""
MIN_SFREQ = {"eeg": 40.0, "eog": 20.0, "emg": 25.0}
"""Lowest native sampling rate (Hz) per channel kind: twice the top of the band staging needs (EEG
16-Hz sigma, EOG ~8-Hz rapid eye movements, EMG the 10-Hz high-pass), plus room for the recorder's
anti-alias roll-off (its pass band ends near 0.4x the rate)."""
SLEEP_BAND_HZ = (0.3, 16.0)
"""Sleep bands (delta, theta, alpha, sigma): where an EEG/EOG carries most of its power (1/f)."""
HIGH_BAND_HZ = (20.0, 40.0)
"""Reference band above the sleep bands (cut at 0.45x the sampling rate); needs 2 Hz of width."""
MIN_SLEEP_TO_HIGH = 2.0
"""Mean power density in the sleep bands over that of the high band, below which an epoch has no
physiological spectrum: white noise gives 1 (+-0.1 with 30-s Welch estimates), a 1/f spectrum 7,
sleep EEG (1/f^1.5-2 plus rhythms) 20 and more."""
LINE_HZ = (50.0, 60.0)
"""Mains frequencies; bins within ``LINE_HALF_WIDTH_HZ`` are left out of both bands."""
LINE_HALF_WIDTH_HZ = 1.0
LINE_SHARE = 0.5
"""Share of an epoch's power at the mains frequency above which the reason says "mains hum"."""
DUPLICATE_R = 0.99
"""Correlation at or above which two montage channels carry the same signal (copies, bridges)."""
DUPLICATE_EPOCHS = 40
"""Epochs (spread over the night) compared for :data:`DUPLICATE_R`."""
MIN_LEVELS_PER_SD = 4.0
"""Quantisation steps per standard deviation below which a channel is coarsely quantised (16
levels over the range of an EEG is about 2.5)."""


class QualityError(ValueError):
    """A recording refused by the quality gate (one line naming the file and the reason)."""


@dataclass
class ChannelQuality:
    """Outcome of the checks on one raw label.

    Attributes
    ----------
    label : str
        Raw label in the file.
    masks : ndarray of int, shape (n_epochs,)
        Bit mask of :data:`KINDS` per epoch.
    reason : str or None
        Why the whole channel is dropped, or None when it is kept.
    kind : str or None
        Dominant whole-channel problem (``"saturated"`` …) when dropped.
    note : str or None
        Warning about a kept channel (coarse quantisation).
    """

    label: str
    masks: np.ndarray
    reason: str | None = None
    kind: str | None = None
    note: str | None = None  # a warning about a kept channel (coarse quantisation)


def _segments(x: np.ndarray, sfreq: float, n_epochs: int, epoch_seconds: float) -> np.ndarray:
    """``(n_epochs, segments per epoch, samples per segment)`` view of 1-s segments (NaN padded)."""
    seg = max(MIN_SEGMENT_SAMPLES, int(round(sfreq)))
    per_epoch = int(round(epoch_seconds * sfreq)) // seg
    need = n_epochs * per_epoch * seg
    y = np.full(need, np.nan)
    m = min(need, x.size)
    y[:m] = x[:m]
    return y.reshape(n_epochs, per_epoch, seg)


def epoch_masks(x: np.ndarray, sfreq: float, n_epochs: int, kind: str = "eeg", volts: bool = True,
                epoch_seconds: float = 30.0, limits: tuple[float, float] | None = None,
                spectrum: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per-epoch problem bit masks of one raw channel.

    Parameters
    ----------
    x : ndarray
        Signal at its native rate, in volts when ``volts`` (any unit otherwise).
    sfreq : float
        Native sampling rate (Hz).
    n_epochs : int
        Epochs of the recording (the channel may be shorter: the missing part is ``gap``).
    kind : {"eeg", "eog", "emg"}
    volts : bool
        Whether ``x`` is a voltage (amplitude thresholds apply).
    epoch_seconds : float
    limits : (float, float), optional
        Header ``(physical min, physical max)`` in the unit of ``x``; saturation is judged
        against them. ``None``: against the observed minimum and maximum of ``x``.
    spectrum : (ndarray, ndarray), optional
        :func:`spectral_shape` of ``x`` when already computed (EEG/EOG ``nonphysio`` check).

    Returns
    -------
    ndarray of int, shape (n_epochs,)

    Examples
    --------
    >>> x = np.sin(np.arange(3 * 3000) / 5.0) * 20e-6     # three epochs of a 20 µV rhythm at 100 Hz
    >>> x[3000:6000] = 0.0                                 # epoch 1 flat
    >>> [describe_mask(m) for m in epoch_masks(x, 100.0, 3)]
    ['ok', 'flat', 'ok']
    """
    x = _float64(x)
    if not _any_finite(x):
        return _epoch_masks_block(x[0:len(x)], sfreq, n_epochs, kind, volts, epoch_seconds, (0.0, 0.0))
    lo, hi = limits if limits is not None else _finite_range(x)
    # blocks of epochs: the per-epoch arrays below hold several copies of the signal, so a whole
    # night at once grew the gate's memory with the night's length (1 GB at 36 h)
    step = _epoch_step(sfreq, epoch_seconds)
    masks = np.zeros(n_epochs, dtype=np.int64)
    for e0 in range(0, n_epochs, GATE_BLOCK_EPOCHS):
        e1 = min(n_epochs, e0 + GATE_BLOCK_EPOCHS)
        masks[e0:e1] = _epoch_masks_block(x[e0 * step: e1 * step], sfreq, e1 - e0, kind, volts,
                                          epoch_seconds, (lo, hi))
    if kind in ("eeg", "eog"):  # whole-channel Welch estimates (spectral_shape works in chunks itself)
        ratio, _ = spectrum if spectrum is not None else spectral_shape(x, sfreq, n_epochs, epoch_seconds)
        with np.errstate(invalid="ignore"):
            masks[:ratio.size][ratio < MIN_SLEEP_TO_HIGH] |= BIT["nonphysio"]
    return masks


GATE_BLOCK_EPOCHS = 120
"""Epochs the gate judges at once (1 h): its temporaries stay near 30 MB at 256 Hz whatever the night."""


def _epoch_step(sfreq: float, epoch_seconds: float) -> int:
    """Samples from one epoch's start to the next in :func:`_segments`' layout."""
    seg = max(MIN_SEGMENT_SAMPLES, int(round(sfreq)))
    return int(round(epoch_seconds * sfreq)) // seg * seg


def _float64(x):
    """``x`` as float64 slices: a :class:`~preprocess.core.edf.CalibratedChannel` as it is (it
    calibrates each slice), anything else as a float64 array (copied only when it is not one)."""
    from preprocess.core.edf import CalibratedChannel

    return x if isinstance(x, CalibratedChannel) else np.asarray(x, dtype=np.float64)


def _known_range(x) -> tuple[float, float] | None:
    """``(min, max)`` of a :class:`~preprocess.core.edf.CalibratedChannel` whose samples are all finite (from
    its digital extremes, no pass over the samples), else None."""
    from preprocess.core.edf import CalibratedChannel

    return x.finite_range() if isinstance(x, CalibratedChannel) else None


def _any_finite(x, block: int = 1 << 20) -> bool:
    """Whether ``x`` has a finite sample, a block at a time."""
    if _known_range(x) is not None:
        return True
    return any(np.isfinite(x[a: a + block]).any() for a in range(0, len(x), block))


def finite_subsample(x, max_samples: int = 200_000, block: int = 1 << 20) -> np.ndarray:
    """``f[::max(1, f.size // max_samples)]`` of ``f = x[np.isfinite(x)]`` without ``f`` (a block at a time).

    >>> x = np.array([1.0, np.nan, 2.0, 3.0, np.inf, 4.0, 5.0])
    >>> finite_subsample(x, 2).tolist(), x[np.isfinite(x)][::2].tolist()
    ([1.0, 3.0, 5.0], [1.0, 3.0, 5.0])
    """
    if _known_range(x) is not None:  # every sample finite: the strided samples themselves
        return x.strided(max(1, len(x) // max_samples))
    n = sum(int(np.isfinite(x[a: a + block]).sum()) for a in range(0, len(x), block))
    stride = max(1, n // max_samples)
    parts, seen = [], 0  # seen: finite samples before this block
    for a in range(0, len(x), block):
        b = x[a: a + block]
        b = b[np.isfinite(b)]
        first = (-seen) % stride  # the first kept finite sample of this block
        parts.append(b[first::stride].copy())  # a copy: a view would keep the whole block alive
        seen += b.size
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.asarray(x[0:0]).dtype)


def _finite_range(x: np.ndarray, block: int = 1 << 20) -> tuple[float, float]:
    """``(min, max)`` of the finite samples of ``x``, a block at a time (no whole-length copy)."""
    known = _known_range(x)
    if known is not None:
        return known
    lo, hi = np.inf, -np.inf
    for a in range(0, len(x), block):
        b = x[a: a + block]
        b = b[np.isfinite(b)]
        if b.size:
            lo, hi = min(lo, float(b.min())), max(hi, float(b.max()))
    return lo, hi


def _epoch_masks_block(x: np.ndarray, sfreq: float, n_epochs: int, kind: str, volts: bool,
                       epoch_seconds: float, limits: tuple[float, float]) -> np.ndarray:
    """:func:`epoch_masks` of ``n_epochs`` consecutive epochs starting at ``x[0]``."""
    seg = _segments(x, sfreq, n_epochs, epoch_seconds)
    present = np.arange(seg.size).reshape(seg.shape) < x.size
    masks = np.zeros(n_epochs, dtype=np.int64)
    gap = ~present.all(axis=(1, 2))
    masks[gap] |= BIT["gap"]
    finite_x = np.isfinite(x)
    nan = (~np.isfinite(seg) & present).any(axis=(1, 2))
    masks[nan] |= BIT["nan"]
    if not finite_x.any():
        return masks
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN segments: ptp NaN, handled below
        ptp = np.nanmax(seg, axis=2) - np.nanmin(seg, axis=2) if seg.size else np.zeros(seg.shape[:2])
    scale = 1e-6 if volts else 1.0
    flat_seg = (ptp < FLAT_PTP_UV * scale) if volts else (ptp == 0)
    flat_seg &= present.all(axis=2)
    masks[flat_seg.mean(axis=1) >= FLAT_SEGMENT_SHARE] |= BIT["flat"]
    lo, hi = limits
    if hi > lo:
        tol = 1e-6 * (hi - lo)
        at_limit = (np.abs(seg - lo) <= tol) | (np.abs(seg - hi) <= tol)
        share = at_limit.sum(axis=(1, 2)) / np.maximum(present.sum(axis=(1, 2)), 1)
        masks[share >= SATURATED_SHARE] |= BIT["saturated"]
    if volts:
        limit = ARTEFACT_PTP_UV.get(kind, ARTEFACT_PTP_UV["eeg"]) * scale
        with np.errstate(invalid="ignore"):
            big = (np.nan_to_num(ptp) > limit).any(axis=1)
        masks[big & ~(masks & BIT["saturated"]).astype(bool)] |= BIT["artefact"]  # clipping explains it
    return masks


def spectral_shape(x: np.ndarray, sfreq: float, n_epochs: int, epoch_seconds: float = 30.0,
                   chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per epoch: sleep-band to high-band power density ratio, and the share of power at the mains.

    Welch estimates (4-s Hann segments, half overlap) per 30-s epoch, in chunks of ``chunk`` epochs
    to bound the memory. Bins within ``LINE_HALF_WIDTH_HZ`` of 50/60 Hz are left out of both
    bands. NaN where the epoch has a NaN/missing sample or no power, and for every epoch when
    the rate leaves the high band narrower than 2 Hz (nothing to compare with).

    Returns
    -------
    (ratio, line_share) : ndarray, ndarray, shape (n_epochs,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ratio, line = spectral_shape(rng.normal(0, 20e-6, 2 * 3000), 100.0, 2)   # white noise
    >>> bool(np.all(np.abs(ratio - 1) < 0.3)), bool(np.all(line < 0.05))   # 49-50 Hz: 1 bin of 200
    (True, True)
    """
    from scipy.signal import welch

    x = _float64(x)
    per = int(round(epoch_seconds * sfreq))
    ratio = np.full(n_epochs, np.nan)
    line_share = np.full(n_epochs, np.nan)
    top = min(HIGH_BAND_HZ[1], 0.45 * sfreq)
    if top - HIGH_BAND_HZ[0] < 2.0 or per < 8:
        return ratio, line_share
    nperseg = min(per, int(round(4 * sfreq)))
    for a in range(0, n_epochs, chunk):
        b = min(n_epochs, a + chunk)
        seg = np.full((b - a) * per, np.nan)
        part = x[a * per:b * per]
        seg[:part.size] = part
        seg = seg.reshape(b - a, per)
        ok = np.isfinite(seg).all(axis=1)
        if not ok.any():
            continue
        f, pxx = welch(seg[ok], fs=sfreq, nperseg=nperseg, axis=-1)
        near_line = np.zeros(f.size, bool)
        for hz in LINE_HZ:
            near_line |= np.abs(f - hz) <= LINE_HALF_WIDTH_HZ
        sleep = (f >= SLEEP_BAND_HZ[0]) & (f <= SLEEP_BAND_HZ[1]) & ~near_line
        high = (f >= HIGH_BAND_HZ[0]) & (f <= top) & ~near_line
        total = pxx[:, f >= SLEEP_BAND_HZ[0]].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = pxx[:, sleep].mean(axis=1) / pxx[:, high].mean(axis=1)
            ls = pxx[:, near_line].sum(axis=1) / total
        idx = np.flatnonzero(ok) + a
        ratio[idx] = np.where(np.isfinite(r), r, np.nan)
        line_share[idx] = np.where(np.isfinite(ls), ls, np.nan)
    return ratio, line_share


def describe_mask(mask: int, outside_tib: bool = False) -> str:
    """``flag`` text of an epoch: ``ok`` or the problem kinds joined by ``+`` (report order).

    >>> describe_mask(BIT["nan"] | BIT["flat"]), describe_mask(0), describe_mask(0, True)
    ('nan+flat', 'ok', 'outside_tib')
    """
    kinds = [k for k in KINDS if int(mask) & BIT[k]] + (["outside_tib"] if outside_tib else [])
    return "+".join(kinds) if kinds else "ok"


def check_channel(label: str, x: np.ndarray, sfreq: float, n_epochs: int, kind: str = "eeg",
                  volts: bool = True, epoch_seconds: float = 30.0,
                  limits: tuple[float, float] | None = None, unit: str = "") -> ChannelQuality:
    """Per-epoch masks of one raw channel and whether the whole channel must be dropped
    (``limits``: header physical range, see :func:`epoch_masks`; ``unit``: the header's unit,
    quoted in the reasons). The order of the whole-channel checks is the module docstring's.

    ``x`` may be a :class:`~preprocess.core.edf.CalibratedChannel` (what :func:`screen` reads): every
    check below works on slices of it, so no whole-channel float64 copy exists."""
    x = _float64(x)  # once (a float32 array was converted by each check below in turn)
    spectrum = spectral_shape(x, sfreq, n_epochs, epoch_seconds) if kind in ("eeg", "eog") else None
    masks = epoch_masks(x, sfreq, n_epochs, kind, volts, epoch_seconds, limits, spectrum)
    q = ChannelQuality(label, masks)
    lo, hi = _finite_range(x)
    if lo > hi:
        q.reason, q.kind = "every sample is NaN", "nan"
        return q
    if hi - lo == 0:
        q.reason, q.kind = "flat signal (no variation)", "flat"  # the signal chain's wording
        return q
    minimum = MIN_SFREQ.get(kind, 0.0)
    if sfreq < minimum:
        if _chain_refuses(kind, sfreq):
            # the signal chain drops it with its own reason (the rate); judging the amplitude of a signal
            # it cannot filter would give a wrong hint (Sleep-EDF's 1-Hz chin envelope is not a wrong unit)
            return q
        q.reason, q.kind = (f"sampling rate {sfreq:g} Hz is below the {minimum:g} Hz minimum for {kind.upper()} "
                            f"(its sleep bands do not fit under the Nyquist rate)"), "rate"
        return q
    sd = _median_epoch_sd(x, sfreq, n_epochs, epoch_seconds)
    floor = MIN_SD_UV.get(kind, MIN_SD_UV["eeg"])
    if volts and 0 < sd < floor * 1e-6:
        q.reason, q.kind = (f"implausibly small amplitude for {kind.upper()} (median epoch SD {sd * 1e6:.3g} µV, "
                            f"below the {floor:g} µV of any connected electrode): wrong unit field"
                            f"{f' ({unit.strip()!r})' if unit.strip() else ''}? or an electrode not connected"), \
            "amplitude"
        return q
    for k in ("saturated", "flat", "nan"):
        share = float(np.mean(masks & BIT[k] > 0)) if n_epochs else 0.0
        if share > CHANNEL_BAD_SHARE:
            what = {"saturated": "at the digital limits (clipped)", "flat": "flat", "nan": "NaN"}[k]
            q.reason, q.kind = f"{share:.0%} of its epochs are {what}", k
            return q
    if volts and sd > IMPLAUSIBLE_SD_UV * 1e-6:
        q.reason, q.kind = (f"implausible amplitude for a voltage (median epoch SD {sd * 1e3:.3g} mV; "
                            f"wrong unit field{f' ({unit.strip()!r})' if unit.strip() else ''}?)"), "amplitude"
        return q
    share = float(np.mean(masks & BIT["nonphysio"] > 0)) if n_epochs else 0.0
    if share > CHANNEL_BAD_SHARE:
        line = float(np.nanmedian(spectrum[1])) if np.isfinite(spectrum[1]).any() else 0.0
        what = (f"mains hum ({line:.0%} of the power within {LINE_HALF_WIDTH_HZ:g} Hz of 50/60 Hz) over a flat "
                f"spectrum: an electrode off?") if line > LINE_SHARE else \
            (f"its sleep bands ({SLEEP_BAND_HZ[0]:g}-{SLEEP_BAND_HZ[1]:g} Hz) carry less than {MIN_SLEEP_TO_HIGH:g}x "
             f"the power density of {HIGH_BAND_HZ[0]:g}-{min(HIGH_BAND_HZ[1], 0.45 * sfreq):g} Hz (white noise has "
             f"1x, EEG 7x and more)")
        q.reason, q.kind = f"no physiological signal in {share:.0%} of its epochs: {what}", "nonphysio"
        return q
    if kind in ("eeg", "eog"):
        q.note = _quantisation_note(finite_subsample(x, QUANTISATION_SAMPLES), sd, volts, unit)
    return q


def _chain_refuses(kind: str, sfreq: float) -> bool:
    """Whether the signal chain itself drops a ``kind`` channel at ``sfreq`` (its high-pass)."""
    from preprocess.core.signal import ChannelDropped, SignalParams, _band, usable_band

    try:
        usable_band(sfreq, *_band(kind, SignalParams()))
    except ChannelDropped:
        return True
    return False


QUANTISATION_SAMPLES = 200_000
"""Finite samples (evenly strided) from which :func:`quantisation_step` judges a channel's steps."""


def quantisation_step(x: np.ndarray, max_samples: int = QUANTISATION_SAMPLES) -> float:
    """Typical step between neighbouring values of ``x`` (its quantisation), from a strided subsample.

    >>> float(quantisation_step(np.round(np.sin(np.arange(5000) / 7.0) * 8) / 8))
    0.125
    """
    x = np.asarray(x)[:: max(1, x.size // max_samples)]
    u = np.unique(x)
    return float(np.median(np.diff(u))) if u.size > 1 else 0.0


def _quantisation_note(x: np.ndarray, sd: float, volts: bool, unit: str) -> str | None:
    step = quantisation_step(x)
    if step <= 0 or sd <= 0 or sd / step >= MIN_LEVELS_PER_SD:
        return None
    scale, u = (1e6, "µV") if volts else (1.0, unit.strip() or "units")
    return (f"coarse quantisation: steps of {step * scale:.3g} {u} for a median epoch SD of {sd * scale:.3g} {u} "
            f"({sd / step:.1f} steps per SD, fewer than {MIN_LEVELS_PER_SD:g}): an 8-bit export or a recorder "
            f"range set too wide?")


def _median_epoch_sd(x: np.ndarray, sfreq: float, n_epochs: int, epoch_seconds: float) -> float:
    step, parts = _epoch_step(sfreq, epoch_seconds), []
    for e0 in range(0, n_epochs, GATE_BLOCK_EPOCHS):  # blocks of epochs, as in epoch_masks
        e1 = min(n_epochs, e0 + GATE_BLOCK_EPOCHS)
        seg = _segments(x[e0 * step: e1 * step], sfreq, e1 - e0, epoch_seconds).reshape(e1 - e0, -1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs: NaN, dropped below
            parts.append(np.nanstd(seg, axis=1))
    sd = np.concatenate(parts) if parts else np.zeros(0)
    sd = sd[np.isfinite(sd)]
    return float(np.median(sd)) if sd.size else 0.0


def _is_volts(source, label: str) -> bool:
    """Whether ``label`` is a voltage channel (amplitude thresholds apply), from the reader's unit."""
    from preprocess.core.edf import is_voltage

    unit = getattr(source, "unit", None)
    if not callable(unit):
        return True  # a reader without units: the pipeline treats its signals as volts
    try:
        return is_voltage(str(unit(label)))
    except (KeyError, ValueError, TypeError):
        return True


def _header_limits(source, label: str) -> tuple[float, float] | None:
    """Header physical range of ``label`` when the reader exposes one (EDF/BDF), else None."""
    get = getattr(source, "physical_range", None)
    if not callable(get):
        return None
    try:
        lo, hi = (float(v) for v in get(label))
    except (KeyError, ValueError, TypeError):
        return None
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) and hi > lo else None


@dataclass
class QualityReport:
    """Quality of the raw labels of one recording.

    Attributes
    ----------
    n_epochs : int
        Epochs checked (from the longest montage channel).
    channels : dict
        Raw label → :class:`ChannelQuality`.
    dropped : dict
        Raw label → one-line reason, for labels removed before the montage.
    """

    n_epochs: int
    channels: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    canonical: dict = field(default_factory=dict)  # dropped label -> canonical channel it was meant for
    warnings: list = field(default_factory=list)  # "label: note" for kept channels (coarse quantisation)

    def dropped_channels(self, kept: Iterable[str]) -> dict[str, str]:
        """Canonical channel → ``"label: reason"`` for channels lost to the gate (not in ``kept``)."""
        kept = set(kept)
        return {c: f"{lab}: {self.dropped[lab]}" for lab, c in self.canonical.items() if c not in kept}

    def explain(self, reason: str) -> str:
        """``reason`` (a montage refusal) followed by the gate's drops it does not already name."""
        unsaid = {k: v for k, v in self.dropped.items() if f"{k}: {v}" not in reason}
        if not unsaid:
            return reason
        return reason + "; dropped by the quality gate: " + "; ".join(
            f"{self.canonical[k]} {k}: {v}" for k, v in unsaid.items())

    def canonical_masks(self, sources: Sequence, n_epochs: int) -> dict[str, np.ndarray]:
        """Canonical channel → per-epoch mask (union over the labels of its derivation)."""
        out = {}
        for src in sources:
            m = np.zeros(n_epochs, dtype=np.int64)
            for label in (src.positive, src.negative):
                q = self.channels.get(label)
                if label is not None and q is not None:
                    k = min(n_epochs, q.masks.size)
                    m[:k] |= q.masks[:k]
            out[src.canonical] = m
        return out


class FilteredSource:
    """A signal source with some labels hidden (those the quality gate dropped)."""

    def __init__(self, source, hidden: Iterable[str]):
        self._source = source
        hidden = set(hidden)
        self.labels = [lab for lab in source.labels if lab not in hidden]
        self.start_time = source.start_time

    def read(self, label: str, *args, **kwargs):
        return self._source.read(label, *args, **kwargs)

    def __getattr__(self, name):  # sfreq(), header … of the wrapped reader
        return getattr(self._source, name)


def screen(source, channel_map, name: str, epoch_seconds: float = 30.0) -> tuple[FilteredSource, QualityReport]:
    """Check every raw label the montage would use; hide those unusable as a whole.

    The montage is resolved again after each drop, so the next option of a canonical channel
    (if the map has one) is checked and used instead. Once every label of the montage is
    checked, montage channels carrying the same signal (:data:`DUPLICATE_R`) are reduced to the
    first one, and the montage is resolved again.

    Returns
    -------
    (FilteredSource, QualityReport)

    Raises
    ------
    QualityError
        Every montage channel is saturated (the recording is refused, not staged as W).
    MontageError
        No canonical channel is left after the drops (the reasons are in the message).
    """
    checked: dict[str, ChannelQuality] = {}
    signatures: dict[str, tuple[float, int, np.ndarray]] = {}
    report = QualityReport(0)
    while True:
        visible = [lab for lab in source.labels if lab not in report.dropped]
        try:
            sources = resolve_montage(visible, channel_map, name)
        except MontageError:
            if report.dropped:
                _refuse(name, checked, report)
            raise
        todo = [(s.canonical, lab) for s in sources for lab in (s.positive, s.negative)
                if lab is not None and lab not in checked]
        for canonical, label in todo:
            if label in checked:  # a reference shared by two derivations
                continue
            x, sf = _read_for_gate(source, label)
            n_epochs = int(len(x) / float(sf) // epoch_seconds)  # one channel in memory at a time
            if n_epochs == 0:  # nothing to judge per epoch; the same reason the signal chain gives
                raise MontageError(f"{name}: recording shorter than one {epoch_seconds:g}-s epoch")
            report.n_epochs = max(report.n_epochs, n_epochs)
            unit = _unit(source, label)
            q = check_channel(label, x, float(sf), n_epochs, CHANNEL_KIND[canonical],
                              _is_volts(source, label), epoch_seconds, _header_limits(source, label), unit)
            checked[label] = q
            signatures[label] = (float(sf), n_epochs, _signature(x, float(sf), n_epochs, epoch_seconds))
            if q.reason:
                report.dropped[label] = q.reason
                report.canonical[label] = canonical
        if todo:
            continue
        copies = duplicate_channels(sources, signatures)
        if not copies:
            break
        for label, canonical, reason in copies:
            report.dropped[label] = reason
            report.canonical[label] = canonical
    report.channels = {lab: q for lab, q in checked.items() if lab not in report.dropped}
    report.warnings = [f"{lab}: {q.note}" for lab, q in report.channels.items() if q.note]
    if all(q.kind == "saturated" for q in checked.values() if q.reason) and report.dropped and \
            not report.channels:
        _refuse(name, checked, report)
    return FilteredSource(source, report.dropped), report


def _read_for_gate(source, label: str):
    """``(signal, sfreq)`` of one label: an EDF/BDF channel as digital samples calibrated a slice at a
    time (:meth:`~preprocess.core.edf.EdfReader.read_calibrated`: a quarter of the memory of a float64
    read, the same values), any other source's ``read``."""
    lazy = getattr(source, "read_calibrated", None)
    return lazy(label) if callable(lazy) else source.read(label)


def _unit(source, label: str) -> str:
    unit = getattr(source, "unit", None)
    try:
        return str(unit(label)) if callable(unit) else ""
    except (KeyError, ValueError, TypeError):
        return ""


def _signature(x: np.ndarray, sfreq: float, n_epochs: int, epoch_seconds: float) -> np.ndarray:
    """Up to :data:`DUPLICATE_EPOCHS` epochs spread over the night, each minus its mean (float32)."""
    per = int(round(epoch_seconds * sfreq))
    picks = np.unique(np.linspace(0, n_epochs - 1, min(n_epochs, DUPLICATE_EPOCHS)).astype(int))
    rows = np.stack([np.asarray(x[p * per:(p + 1) * per], dtype=np.float64) for p in picks])
    rows = np.nan_to_num(rows - np.nanmean(rows, axis=1, keepdims=True))
    return rows.astype(np.float32).ravel()


def _derivation_signature(src, signatures: dict) -> np.ndarray | None:
    pos = signatures.get(src.positive)
    if pos is None:
        return None
    if src.negative is None:
        return pos[2]
    neg = signatures.get(src.negative)
    if neg is None or neg[:2] != pos[:2]:
        return None  # different rates or lengths: not compared
    return pos[2] - neg[2]


def duplicate_channels(sources, signatures: dict) -> list[tuple[str, str, str]]:
    """Montage channels whose signal repeats an earlier one's: ``(label to hide, canonical, reason)``.

    Two derivations are copies when their correlation (over the :func:`_signature` epochs) is at
    least :data:`DUPLICATE_R`; the later channel (canonical order) is dropped through the label
    it does not share with the kept one.
    """
    out, kept = [], []
    for src in sources:
        sig = _derivation_signature(src, signatures)
        twin = None
        if sig is not None and np.std(sig) > 0:
            for other, osig in kept:
                if osig.size == sig.size:
                    r = float(np.corrcoef(sig, osig)[0, 1])
                    if r >= DUPLICATE_R:
                        twin = (other, r)
                        break
        if twin is None:
            if sig is not None and np.std(sig) > 0:
                kept.append((src, sig))
            continue
        other, r = twin
        label = src.positive if src.positive not in (other.positive, other.negative) else src.negative
        if label is None:
            continue
        out.append((label, src.canonical, f"same signal as {other.canonical} ({other.describe()}, r = {r:.3f}): "
                                          f"a copied channel or bridged electrodes; {other.canonical} kept"))
    return out


def _refuse(name: str, checked: dict, report: QualityReport) -> None:
    kinds = {q.kind for q in checked.values() if q.reason}
    if kinds == {"saturated"}:
        reasons = "; ".join(f"{lab}: {r}" for lab, r in report.dropped.items())
        raise QualityError(f"{name}: recording entirely saturated: every montage channel is clipped at its "
                           f"digital limits ({reasons}); refusing to stage it")
    # the signal chain's wording for the same outcome: "no usable channel (C3 <label>: <reason>; ...)"
    reasons = "; ".join(f"{report.canonical[lab]} {lab}: {r}" for lab, r in report.dropped.items())
    raise MontageError(f"{name}: no usable channel ({reasons})")


def unusable_sets(masks: dict[str, np.ndarray], n_epochs: int) -> list[frozenset]:
    """Per epoch, the set of canonical channels unusable there."""
    out = []
    for e in range(n_epochs):
        out.append(frozenset(c for c, m in masks.items() if e < m.size and m[e] & UNUSABLE_MASK))
    return out


def restage_unusable(probs: np.ndarray, channels: Sequence[str], masks: dict[str, np.ndarray], predict,
                     context: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Re-stage epochs whose channels are partly unusable from the remaining channels.

    Parameters
    ----------
    probs : ndarray, shape (n_epochs, 5)
        Probabilities from every channel.
    channels : sequence of str
        Canonical channels of ``probs`` (signal order).
    masks : dict
        Canonical channel → per-epoch mask (:meth:`QualityReport.canonical_masks`).
    predict : callable(keep, start, stop) -> ndarray
        Probabilities of epochs ``start:stop`` from the channels at positions ``keep`` only.
    context : int
        Epochs of context on each side of the affected span (the model's window length).

    Returns
    -------
    (probs, unknown)
        Updated probabilities, and a bool mask of epochs left unknown (no usable EEG/EOG).
    """
    probs = probs.copy()
    n = probs.shape[0]
    unknown = np.zeros(n, dtype=bool)
    sets = unusable_sets(masks, n)
    for bad in sorted(set(sets) - {frozenset()}, key=sorted):
        epochs = np.array([e for e in range(n) if sets[e] == bad])
        keep = [i for i, c in enumerate(channels) if c not in bad]
        if not any(CHANNEL_KIND[channels[i]] in ("eeg", "eog") for i in keep):
            unknown[epochs] = True
            continue
        start, stop = max(0, int(epochs[0]) - context), min(n, int(epochs[-1]) + context + 1)
        part = predict(keep, start, stop)
        probs[epochs] = part[epochs - start]
    return probs, unknown


def epoch_flags(masks: dict[str, np.ndarray], n_epochs: int, outside_tib: np.ndarray | None = None,
                unknown: np.ndarray | None = None) -> tuple[list[str], list[str]]:
    """``flag`` and ``flag_channels`` columns: problem kinds and the canonical channels they hit."""
    flags, where = [], []
    for e in range(n_epochs):
        m = 0
        chans = []
        for c, cm in masks.items():
            if e < cm.size and cm[e]:
                m |= int(cm[e])
                chans.append(c)
        text = describe_mask(m, bool(outside_tib is not None and outside_tib[e]))
        if unknown is not None and unknown[e]:
            text = "unknown" if text == "ok" else f"{text}+unknown"
        flags.append(text)
        where.append(" ".join(chans))
    return flags, where


__all__ = ["ARTEFACT_PTP_UV", "BIT", "CHANNEL_BAD_SHARE", "ChannelQuality", "DUPLICATE_R", "FLAT_PTP_UV",
           "FilteredSource", "IMPLAUSIBLE_SD_UV", "KINDS", "MIN_LEVELS_PER_SD", "MIN_SD_UV", "MIN_SFREQ",
           "MIN_SLEEP_TO_HIGH", "QualityError", "QualityReport", "SATURATED_SHARE", "UNUSABLE", "check_channel",
           "describe_mask", "duplicate_channels", "epoch_flags", "epoch_masks", "quantisation_step",
           "restage_unusable", "screen", "spectral_shape", "unusable_sets"]
