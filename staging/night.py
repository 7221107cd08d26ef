"""A staged night as the clinic uses it: stages, probabilities, per-epoch flags, confidence,
time in bed, statistics on it and the epochs to review.

Built from the model's probabilities by :func:`analyse_night`, after the signal-quality gate
(:mod:`staging.quality`) and the lights resolution (:mod:`staging.lights`). Every output format
(:mod:`staging.outputs`, :mod:`staging.exports`) and :class:`staging.batch.FileResult` take their
per-epoch columns from here, so they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .quality import UNUSABLE_MASK, QualityReport, epoch_flags, restage_unusable
from .stats import STAGE_NAMES, sleep_statistics, tib_mask

UNKNOWN = -1
"""Stage code of an epoch that could not be staged (no usable EEG/EOG in it)."""
DEFAULT_LOW_CONFIDENCE = 0.5
"""Confidence (max probability) below which the PNG marks an epoch as low-confidence."""


@dataclass
class StagedNight:
    """Per-epoch results of one recording (all arrays have one row per 30-s epoch).

    Attributes
    ----------
    probs : ndarray, shape (n, 5)
        Probabilities of W, N1, N2, N3, REM (rows sum to 1; NaN rows for unknown epochs).
    stages : ndarray of int
        Most probable stage, −1 where unknown.
    flags : list of str
        ``ok``, or problem kinds joined by ``+`` (:mod:`staging.quality`, plus ``outside_tib``
        and ``unknown``).
    flag_channels : list of str
        Canonical channels with a signal problem in the epoch (space-separated).
    confidence : ndarray
        Max probability (NaN where unknown).
    entropy : ndarray
        Shannon entropy of the probabilities in bits (0 = certain, log2(5) = 2.32 = uniform).
    in_bed : ndarray of bool
        Epochs within lights-off → lights-on.
    lights : (float or None, float or None)
        Lights-off/on, s from the recording start.
    stats : dict
        :func:`staging.stats.sleep_statistics` on the time in bed.
    spectrogram : staging.spectrogram.Spectrogram or None
        Whole-night spectrogram of the preferred EEG channel (drawn in the PNG and the report).
    reviewed : ndarray of bool or None
        Epochs whose stage a scorer set (:mod:`staging.review`); None for an automatic night.
    """

    probs: np.ndarray
    stages: np.ndarray
    flags: list
    flag_channels: list
    confidence: np.ndarray
    entropy: np.ndarray
    in_bed: np.ndarray
    lights: tuple = (None, None)
    stats: dict = field(default_factory=dict)
    spectrogram: object = None
    reviewed: np.ndarray | None = None

    @property
    def n_epochs(self) -> int:
        return len(self.stages)

    def signal_flagged(self) -> np.ndarray:
        """Epochs with a signal problem or unknown stage (``outside_tib`` alone is not one)."""
        return np.array([f not in ("ok", "outside_tib") for f in self.flags])

    def review(self, threshold: float | None) -> list[int]:
        """Epochs to review: flagged for the signal, unknown, or confidence below ``threshold``."""
        low = np.zeros(self.n_epochs, bool) if threshold is None else ~(self.confidence >= threshold)
        return [int(i) for i in np.flatnonzero(self.signal_flagged() | low)]

    def quality_summary(self, review_threshold: float | None = None) -> dict:
        """Counts for ``NAME.stats.json``: flagged epochs per kind, unknown, low confidence, review list."""
        counts: dict[str, int] = {}
        for f in self.flags:
            for kind in f.split("+"):
                if kind != "ok":
                    counts[kind] = counts.get(kind, 0) + 1
        doc = {"flagged_epochs": int(self.signal_flagged().sum()), "flag_counts": counts,
               "unknown_epochs": int(np.count_nonzero(self.stages == UNKNOWN)),
               "low_confidence_epochs": int(np.count_nonzero(~(self.confidence >= DEFAULT_LOW_CONFIDENCE))),
               "low_confidence_threshold": DEFAULT_LOW_CONFIDENCE,
               "mean_confidence": _round(np.nanmean(self.confidence)) if np.isfinite(self.confidence).any()
               else None}
        if review_threshold is not None:
            doc["review_threshold"] = review_threshold
            doc["review_epochs"] = self.review(review_threshold)
        return doc

    def stage_names(self) -> list[str]:
        """Stage text per epoch (``?`` where unknown)."""
        return [STAGE_NAMES[s] if s >= 0 else "?" for s in self.stages]


def _round(v: float) -> float:
    return round(float(v), 4)


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits) of each probability row.

    >>> entropy_bits(np.array([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])).tolist()
    [0.0, 1.0]
    """
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    out = terms.sum(axis=1)
    out[~np.isfinite(p).all(axis=1)] = np.nan
    return out


def analyse_night(probs: np.ndarray, channels: Sequence[str], report: QualityReport | None, sources,
                  predict_subset: Callable | None, lights=(None, None), epoch_seconds: float = 30.0,
                  context: int = 20) -> StagedNight:
    """Flags, re-staging of epochs with unusable channels, confidence, time in bed, statistics.

    Parameters
    ----------
    probs : ndarray, shape (n, 5)
        Probabilities from every channel.
    channels : sequence of str
        Canonical channels of the signals, in order.
    report : QualityReport or None
        The quality gate's report (None: no per-epoch checks).
    sources : sequence of Source
        Montage sources (raw labels of each canonical channel).
    predict_subset : callable(keep, start, stop) -> ndarray, optional
        Probabilities of epochs ``start:stop`` from the channel positions ``keep`` only.
    lights : (float or None, float or None)
    epoch_seconds : float
    context : int
        Epochs of context around re-staged spans (the model's window length).
    """
    n = probs.shape[0]
    masks = report.canonical_masks(sources, n) if report is not None else {}
    unknown = np.zeros(n, dtype=bool)
    if predict_subset is not None and any((m & UNUSABLE_MASK).any() for m in masks.values()):
        probs, unknown = restage_unusable(probs, channels, masks, predict_subset, context)
    probs = probs.astype(np.float64, copy=True)
    stages = probs.argmax(axis=1)
    stages[unknown] = UNKNOWN
    probs[unknown] = np.nan
    in_bed = tib_mask(n, lights, epoch_seconds)
    flags, where = epoch_flags(masks, n, ~in_bed, unknown)
    conf = probs.max(axis=1)
    night = StagedNight(probs, stages, flags, where, conf, entropy_bits(probs), in_bed, tuple(lights))
    night.stats = sleep_statistics(stages, epoch_seconds, lights)
    return night


__all__ = ["DEFAULT_LOW_CONFIDENCE", "StagedNight", "UNKNOWN", "analyse_night", "entropy_bits"]
