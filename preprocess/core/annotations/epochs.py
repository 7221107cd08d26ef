"""Stage codes, events -> epochs and the shared length rule (used by every annotation reader).

Codes of the harmonized format (DESIGN.md §5): W = 0, N1 = 1, N2 = 2, N3 = 3 (R&K 3 and 4),
REM = 4, and -1 for movement, artefact, unscored and unknown.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..stages import N1, N2, N3, REM, UNKNOWN, W

EPOCH_S = 30.0


class AnnotationError(ValueError):
    """A scoring file cannot be turned into stages (bad content, unknown token, length mismatch)."""


class Event(NamedTuple):
    """One annotation: onset and duration in seconds (relative to the scoring file start).

    ``label`` is the raw description (:func:`read_edf_annotations`) or a stage code (``int``,
    ``-1`` for unknown) once mapped.
    """

    onset: float
    duration: float
    label: object


# --------------------------------------------------------------------------------------------
# stage vocabulary
# --------------------------------------------------------------------------------------------

# Keys are *normalised* texts (see _stage_key): lower case, only [a-z0-9?], the filler words
# "sleep", "stage", "stages" removed. "Sleep stage W", "stage w", "W" all become "w";
# "Stage 2 sleep|2" (NSRR EventConcept) becomes "2"; "Sleep stage N1" becomes "n1".
# Bare digits 1-4 are R&K stage numbers ("Sleep stage 4", "Stage 4"); 0 and 5 are deliberately
# absent because numeric schemes disagree (Profusion 5 = REM, DREAMS 5 = W): per-epoch numeric
# files go through an explicit mapping instead.
STAGE_WORDS: dict[str, int] = {
    # wake
    "w": W, "wake": W, "wakefulness": W, "awake": W, "wk": W,
    # N1 / R&K stage 1
    "1": N1, "n1": N1, "nrem1": N1, "s1": N1, "st1": N1,
    # N2 / R&K stage 2
    "2": N2, "n2": N2, "nrem2": N2, "s2": N2, "st2": N2,
    # N3 / R&K stages 3 and 4
    "3": N3, "n3": N3, "nrem3": N3, "s3": N3, "st3": N3, "sws": N3, "slowwave": N3,
    "4": N3, "n4": N3, "nrem4": N3, "s4": N3, "st4": N3,
    # REM
    "r": REM, "rem": REM, "paradoxical": REM,
    # stage-like but not a stage
    "?": UNKNOWN, "unknown": UNKNOWN, "unscored": UNKNOWN, "notscored": UNKNOWN, "u": UNKNOWN,
    "ns": UNKNOWN, "nonscored": UNKNOWN, "unsure": UNKNOWN, "undefined": UNKNOWN,
    "movement": UNKNOWN, "movementtime": UNKNOWN, "mt": UNKNOWN, "m": UNKNOWN, "mvt": UNKNOWN,
    "artefact": UNKNOWN, "artifact": UNKNOWN,
}

_FILLER = {"sleep", "stage", "stages"}


def _stage_key(text: str) -> str:
    """Normalise a stage text: part before ``|``, lower case, alphanumerics and ``?`` only."""
    head = str(text).split("|", 1)[0].lower()
    tokens = re.findall(r"[a-z0-9?]+", head)
    return "".join(t for t in tokens if t not in _FILLER)


def stage_code(text: object) -> int | None:
    """Map a stage string to a harmonized code.

    Parameters
    ----------
    text : str
        Any stage description: ``"Sleep stage W"``, ``"Sleep stage 4"``, ``"Sleep stage N1"``,
        ``"Sleep stage R"``, ``"Movement time"``, ``"NREM1"``, ``"Stage 2 sleep|2"``, ``"?"`` ...
        Matching ignores case, spaces and punctuation; an NSRR ``"concept|code"`` pair is read by
        its first part.

    Returns
    -------
    int or None
        0..4 for W, N1, N2, N3 (R&K 3 and 4), REM; ``-1`` for stage-like annotations that are not
        a stage (``?``, unscored, movement, artefact); ``None`` when the text is not a stage
        annotation at all (``"Lights off@@EEG F4-A1"``, arousals, apnoeas).
    """
    if text is None:
        return None
    key = _stage_key(str(text))
    if not key:
        return None
    return STAGE_WORDS.get(key)


# --------------------------------------------------------------------------------------------
# events -> epochs, and the shared length rule
# --------------------------------------------------------------------------------------------

def _ceil(x: float) -> int:
    # rounding first keeps boundaries that sit exactly on a midpoint stable against float noise
    return int(math.ceil(round(x, 9)))


def events_to_epochs(
    events: Iterable,
    n_epochs: int | None = None,
    offset_s: float = 0.0,
    epoch_s: float = EPOCH_S,
) -> np.ndarray:
    """Turn stage events into one code per epoch of the signal.

    Parameters
    ----------
    events : iterable of (onset_s, duration_s, code)
        Onsets in seconds relative to the scoring file start; ``code`` an int (``-1`` allowed) or
        ``None`` (ignored). A duration of 0 (or NaN) means "until the onset of the next stage
        event" (one epoch for the last one).
    n_epochs : int, optional
        Length of the result. ``None``: up to the last epoch covered by a stage event.
    offset_s : float
        Scoring start minus signal start, in seconds: an event at scoring time ``t`` lies at
        signal time ``t + offset_s``. Negative offsets drop what precedes the signal.
    epoch_s : float
        Epoch length in seconds (30).

    Returns
    -------
    numpy.ndarray of int8
        Epoch ``i`` spans ``[i * epoch_s, (i + 1) * epoch_s)`` of the signal and receives the
        code of the event that covers its **midpoint** ``(i + 0.5) * epoch_s`` (event interval
        ``[onset, onset + duration)``), so an event lasting several epochs fills all of them and
        scorings shifted by less than half an epoch still land on the nearest epoch. Where events
        overlap, the one starting later wins. Epochs no event covers are ``-1``.
    """
    evs = []
    for ev in events:
        onset, duration, code = ev[0], ev[1], ev[2]
        if code is None:
            continue
        evs.append((float(onset), float(duration), int(code)))
    evs.sort(key=lambda e: e[0])  # stable: equal onsets keep file order
    spans = []
    for k, (onset, duration, code) in enumerate(evs):
        if not duration > 0:  # 0, negative or NaN: until the next stage event
            if k + 1 < len(evs) and evs[k + 1][0] > onset:
                duration = evs[k + 1][0] - onset
            else:
                duration = epoch_s
        a = (onset + offset_s) / epoch_s - 0.5
        b = (onset + duration + offset_s) / epoch_s - 0.5
        spans.append((_ceil(a), _ceil(b), code))
    if n_epochs is None:
        n_epochs = max([s[1] for s in spans], default=0)
    n_epochs = max(int(n_epochs), 0)
    out = np.full(n_epochs, UNKNOWN, dtype=np.int8)
    for i0, i1, code in spans:
        i0, i1 = max(i0, 0), min(i1, n_epochs)
        if i1 > i0:
            out[i0:i1] = code
    return out


def _name(source: object) -> str:
    try:
        return Path(os.fspath(source)).name or str(source)
    except TypeError:
        return str(source)


def align_to_signal(
    stages: np.ndarray,
    n_epochs: int,
    source: object,
    max_mismatch_epochs: int | None = 1,
) -> np.ndarray:
    """Fit a stage array to a signal of ``n_epochs`` epochs (the shared length rule).

    * ``-1`` epochs past the end of the signal are dropped silently (e.g. Sleep-EDF's trailing
      ``Sleep stage ?``);
    * scored epochs past the end of the signal are cropped when there are at most
      ``max_mismatch_epochs`` of them;
    * a scoring shorter than the signal is padded with ``-1`` when the gap is at most
      ``max_mismatch_epochs``;
    * anything larger raises :class:`AnnotationError` naming ``source`` and both lengths.

    Parameters
    ----------
    stages : array-like of int
        Codes per epoch, aligned so that index 0 is the signal's epoch 0.
    n_epochs : int
        Number of whole epochs in the signal.
    source : str or path-like
        The scoring file, named in the error message.
    max_mismatch_epochs : int or None
        Tolerance in epochs; ``None`` crops and pads freely (for datasets that document it).

    Returns
    -------
    numpy.ndarray of int8, shape (n_epochs,)
    """
    st = np.asarray(stages).astype(np.int8, copy=False).ravel()
    n_epochs = int(n_epochs)
    n = len(st)
    if n > n_epochs:
        scored = np.flatnonzero(st[n_epochs:] != UNKNOWN)
        covers = n_epochs + (int(scored[-1]) + 1 if scored.size else 0)
    else:
        covers = n
    diff = abs(covers - n_epochs)
    if max_mismatch_epochs is not None and diff > max_mismatch_epochs:
        raise AnnotationError(
            f"{_name(source)}: scoring covers {covers} epochs but the signal has {n_epochs} "
            f"(difference {diff} > {max_mismatch_epochs} allowed)"
        )
    if n >= n_epochs:
        return st[:n_epochs].copy()
    out = np.full(n_epochs, UNKNOWN, dtype=np.int8)
    out[:n] = st
    return out


def _fit(stages: np.ndarray, n_epochs: int) -> np.ndarray:
    out = np.full(int(n_epochs), UNKNOWN, dtype=np.int8)
    k = min(len(stages), int(n_epochs))
    out[:k] = stages[:k]
    return out


def _float(text: str | None, path, what: str) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(f"{_name(path)}: bad {what} value {text!r}") from None
