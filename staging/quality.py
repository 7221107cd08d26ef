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
==============  ===========================================================================

``nan``, ``flat``, ``saturated`` and ``gap`` make the channel *unusable* in that epoch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from preprocess.core.channels import CHANNEL_KIND, MontageError, resolve_montage

KINDS = ("nan", "flat", "saturated", "gap", "artefact")
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
    """

    label: str
    masks: np.ndarray
    reason: str | None = None
    kind: str | None = None


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
                epoch_seconds: float = 30.0, limits: tuple[float, float] | None = None) -> np.ndarray:
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
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).any():
        return _epoch_masks_block(x, sfreq, n_epochs, kind, volts, epoch_seconds, (0.0, 0.0))
    lo, hi = limits if limits is not None else _finite_range(x)
    # blocks of epochs: the per-epoch arrays below hold several copies of the signal, so a whole
    # night at once grew the gate's memory with the night's length (1 GB at 36 h)
    step = _epoch_step(sfreq, epoch_seconds)
    masks = np.zeros(n_epochs, dtype=np.int64)
    for e0 in range(0, n_epochs, GATE_BLOCK_EPOCHS):
        e1 = min(n_epochs, e0 + GATE_BLOCK_EPOCHS)
        masks[e0:e1] = _epoch_masks_block(x[e0 * step: e1 * step], sfreq, e1 - e0, kind, volts,
                                          epoch_seconds, (lo, hi))
    return masks


GATE_BLOCK_EPOCHS = 120
"""Epochs the gate judges at once (1 h): its temporaries stay near 30 MB at 256 Hz whatever the night."""


def _epoch_step(sfreq: float, epoch_seconds: float) -> int:
    """Samples from one epoch's start to the next in :func:`_segments`' layout."""
    seg = max(MIN_SEGMENT_SAMPLES, int(round(sfreq)))
    return int(round(epoch_seconds * sfreq)) // seg * seg


def _finite_range(x: np.ndarray, block: int = 1 << 20) -> tuple[float, float]:
    """``(min, max)`` of the finite samples of ``x``, a block at a time (no whole-length copy)."""
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


def describe_mask(mask: int, outside_tib: bool = False) -> str:
    """``flag`` text of an epoch: ``ok`` or the problem kinds joined by ``+`` (report order).

    >>> describe_mask(BIT["nan"] | BIT["flat"]), describe_mask(0), describe_mask(0, True)
    ('nan+flat', 'ok', 'outside_tib')
    """
    kinds = [k for k in KINDS if int(mask) & BIT[k]] + (["outside_tib"] if outside_tib else [])
    return "+".join(kinds) if kinds else "ok"


def check_channel(label: str, x: np.ndarray, sfreq: float, n_epochs: int, kind: str = "eeg",
                  volts: bool = True, epoch_seconds: float = 30.0,
                  limits: tuple[float, float] | None = None) -> ChannelQuality:
    """Per-epoch masks of one raw channel and whether the whole channel must be dropped
    (``limits``: header physical range, see :func:`epoch_masks`)."""
    masks = epoch_masks(x, sfreq, n_epochs, kind, volts, epoch_seconds, limits)
    q = ChannelQuality(label, masks)
    lo, hi = _finite_range(np.asarray(x, dtype=np.float64))
    if lo > hi:
        q.reason, q.kind = "every sample is NaN", "nan"
        return q
    if hi - lo == 0:
        q.reason, q.kind = "flat signal (no variation)", "flat"  # the signal chain's wording
        return q
    for k in ("saturated", "flat", "nan"):
        share = float(np.mean(masks & BIT[k] > 0)) if n_epochs else 0.0
        if share > CHANNEL_BAD_SHARE:
            what = {"saturated": "at the digital limits (clipped)", "flat": "flat", "nan": "NaN"}[k]
            q.reason, q.kind = f"{share:.0%} of its epochs are {what}", k
            return q
    if volts:
        sd = _median_epoch_sd(x, sfreq, n_epochs, epoch_seconds)
        if sd > IMPLAUSIBLE_SD_UV * 1e-6:
            q.reason, q.kind = (f"implausible amplitude for a voltage (median epoch SD {sd * 1e3:.3g} mV; "
                                f"wrong unit field?)"), "amplitude"
    return q


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

    def dropped_channels(self, kept: Iterable[str]) -> dict[str, str]:
        """Canonical channel → ``"label: reason"`` for channels lost to the gate (not in ``kept``)."""
        kept = set(kept)
        return {c: f"{lab}: {self.dropped[lab]}" for lab, c in self.canonical.items() if c not in kept}

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
    (if the map has one) is checked and used instead.

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
        if not todo:
            break
        for canonical, label in todo:
            if label in checked:  # a reference shared by two derivations
                continue
            x, sf = source.read(label)
            n_epochs = int(len(x) / float(sf) // epoch_seconds)  # one channel in memory at a time
            if n_epochs == 0:  # nothing to judge per epoch; the same reason the signal chain gives
                raise MontageError(f"{name}: recording shorter than one {epoch_seconds:g}-s epoch")
            report.n_epochs = max(report.n_epochs, n_epochs)
            q = check_channel(label, x, float(sf), n_epochs, CHANNEL_KIND[canonical],
                              _is_volts(source, label), epoch_seconds, _header_limits(source, label))
            checked[label] = q
            if q.reason:
                report.dropped[label] = q.reason
                report.canonical[label] = canonical
    report.channels = {lab: q for lab, q in checked.items() if lab not in report.dropped}
    if all(q.kind == "saturated" for q in checked.values() if q.reason) and report.dropped and \
            not report.channels:
        _refuse(name, checked, report)
    return FilteredSource(source, report.dropped), report


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


__all__ = ["ARTEFACT_PTP_UV", "BIT", "CHANNEL_BAD_SHARE", "ChannelQuality", "FLAT_PTP_UV", "FilteredSource",
           "IMPLAUSIBLE_SD_UV", "KINDS", "QualityError", "QualityReport", "SATURATED_SHARE", "UNUSABLE",
           "check_channel", "describe_mask", "epoch_flags", "epoch_masks", "restage_unusable", "screen",
           "unusable_sets"]
