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

from .defaults import DEFAULT_FORMATS, DEFAULT_LOW_CONFIDENCE
from .quality import UNUSABLE_MASK, QualityReport, epoch_flags, restage_unusable
from .stats import STAGE_NAMES, sleep_statistics, tib_mask

UNKNOWN = -1
"""Stage code of an epoch that could not be staged (no usable EEG/EOG in it)."""
YASA_STAGES = ("WAKE", "N1", "N2", "N3", "REM")
"""Stage labels of ``yasa.Hypnogram`` (5 stages), in our stage order; an unknown epoch is ``UNS``."""


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

    The attributes below are filled by :meth:`staging.Stager.stage` (defaults when a night is built
    from probabilities alone):

    name : str
        Output base name.
    channels : list of str
        Canonical channels staged, in model order.
    montage : dict
        Canonical channel → raw label or ``[a, b]`` derivation used.
    warnings : list of str
        What was tolerated in this recording; written into every output.
    lines : list of str
        Console lines: lights origin, montage description, warnings.
    provenance : dict
        The ``NAME.stats.json`` document without the statistics: source, montage, weights, software,
        signal chain, options.
    start_time : datetime or None
        Wall-clock time of the first epoch.
    model_probs : ndarray or None
        The model's probabilities before re-staging epochs with unusable channels (plotted).
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
    name: str = "recording"
    channels: list = field(default_factory=list)
    montage: dict = field(default_factory=dict)
    montage_text: str = ""
    channels_text: str = ""  # "F3←Fpz-Cz O1←Pz-Oz E1←horizontal" (the PNG title), empty: the channel names
    warnings: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    start_time: object = None
    epoch_seconds: float = 30.0
    model_probs: np.ndarray | None = None
    eeg: bool = True
    spectrogram: object = None
    reviewed: np.ndarray | None = None

    @property
    def n_epochs(self) -> int:
        return len(self.stages)

    @property
    def probabilities(self) -> np.ndarray:
        """``(n_epochs, 5)`` probabilities of W, N1, N2, N3, REM (NaN rows where unknown)."""
        return self.probs

    def document(self, review_threshold: float | None = None) -> dict:
        """The ``NAME.stats.json`` document: provenance, quality summary (with the review list when
        ``review_threshold`` is given); the statistics are added by the writer."""
        return {**self.provenance, "quality": self.quality_summary(review_threshold)}

    def title(self) -> str:
        """The PNG title: name, TST, SE, channels and the marks that qualify the night."""
        s = self.stats
        return (f"{self.name}   TST {s['TST']:.0f} min   SE {s['SE']:.0f} %   "
                f"{len(self.channels)} ch: {self.channels_text or ' '.join(self.channels)}"
                + ("   [DEMO weights trained on simulated data]" if self.provenance.get("demo_weights") else "")
                + ("   [no EEG]" if not self.eeg else "")
                + (f"   [{len(self.warnings)} warning(s): see stats.json]" if self.warnings else ""))

    def write(self, out, formats=DEFAULT_FORMATS, review_threshold: float | None = None, paths=None) -> list:
        """Write this night's outputs into folder ``out`` (atomic; existing files are replaced).

        Parameters
        ----------
        out : path
            Output folder (created).
        formats : sequence of str
            Among :data:`staging.defaults.FORMATS` (``"all"`` for every one).
        review_threshold : float, optional
            Store the epochs to review (flagged or below this confidence) in ``NAME.stats.json``.
        paths : dict, optional
            Format → path, overriding ``out``/``formats`` (the batch keeps existing files this way).

        Returns
        -------
        list of Path
            The files written.
        """
        from pathlib import Path

        from .defaults import FORMATS
        from .outputs import output_paths, write_outputs

        if isinstance(formats, str):
            formats = FORMATS if formats == "all" else tuple(f.strip() for f in formats.split(","))
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown output format(s) {bad}; choose from {', '.join(FORMATS)}")
        if paths is None:
            Path(out).mkdir(parents=True, exist_ok=True)
            paths = output_paths(Path(out), self.name, formats)
        probs = self.model_probs if self.model_probs is not None else self.probs
        return write_outputs(paths, probs, self.stats, self.document(review_threshold), self.start_time,
                             self.title(), self.epoch_seconds, night=self)

    def to_yasa(self):
        """This hypnogram as a ``yasa.Hypnogram`` (5 stages, 30-s epochs, ``proba`` when every epoch
        was staged; unknown epochs are ``UNS``).

        Raises
        ------
        preprocess.core.extras.MissingPackageError
            yasa (in requirements.txt) is not installed here; one line with the install command.
        """
        from preprocess.core.extras import YASA, check

        check(YASA)
        import pandas as pd
        import yasa

        values = [YASA_STAGES[s] if s >= 0 else "UNS" for s in self.stages]
        proba = None
        if np.isfinite(self.probs).all():  # yasa wants every row to sum to 1
            proba = pd.DataFrame(self.probs, columns=list(YASA_STAGES))
        return yasa.Hypnogram(values, n_stages=5, freq=f"{self.epoch_seconds:g}s", start=self.start_time,
                              scorer="LPSGM", proba=proba)

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


__all__ = ["DEFAULT_LOW_CONFIDENCE", "StagedNight", "UNKNOWN", "YASA_STAGES", "analyse_night", "entropy_bits"]
