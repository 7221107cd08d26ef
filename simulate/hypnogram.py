"""Hypnograms that drive the simulator.

Two sources:

* real scored nights found under ``../shared/data/real`` (Sleep-EDF SC EDF+ hypnograms, the HMC
  scoring file, YASA's 30-s text hypnograms), cropped to a plausible lights-off window;
* a first-order, time-varying Markov chain over W/N1/N2/N3/REM whose transition tables were
  fitted once from those real files (see ``MARKOV_TRANSITIONS``), used when no real file is
  available or when a night of a given length is asked for.

Stage codes follow the design contract: W=0, N1=1, N2=2, N3=3, REM=4, -1 movement/unknown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from preprocess.core.annotations import events_to_epochs, stage_code
from preprocess.core.stages import N1, N2, N3, REM, UNKNOWN, W

EPOCH_SEC = 30.0
STAGE_NAMES = {W: "W", N1: "N1", N2: "N2", N3: "N3", REM: "REM", UNKNOWN: "?"}

_RK_STAGE4 = {"sleep stage 4", "sleep stage n4"}


def stage_from_label(text: str) -> int | None:
    """Stage code for an annotation text, or None when the text is not a stage (e.g. lights off)."""
    return stage_code(text)


@dataclass
class Hypnogram:
    """A 30-s stage sequence; ``stage4`` marks N3 epochs scored as R&K stage 4 (deep N3)."""

    stages: np.ndarray
    stage4: np.ndarray
    source: str = "markov"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stages = np.asarray(self.stages, dtype=np.int8)
        self.stage4 = np.asarray(self.stage4, dtype=bool)
        if self.stages.shape != self.stage4.shape:
            raise ValueError("stages and stage4 must have the same length")

    def __len__(self) -> int:
        return len(self.stages)

    def crop(self, start: int, stop: int) -> Hypnogram:
        return Hypnogram(self.stages[start:stop], self.stage4[start:stop], self.source, dict(self.meta))


# --------------------------------------------------------------------------------------------
# Real sources
# --------------------------------------------------------------------------------------------


def default_real_root() -> Path | None:
    """``$LPSGM_REAL_DATA``, else ``<repo>/../shared/data/real``, else ``../shared/data/real`` from cwd."""
    candidates = []
    env = os.environ.get("LPSGM_REAL_DATA")
    if env:
        candidates.append(Path(env))
    repo = Path(__file__).resolve().parents[1]
    candidates += [repo.parent / "shared" / "data" / "real", Path.cwd().parent / "shared" / "data" / "real"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def annotations_to_stages(onsets, durations, descriptions, epoch_sec: float = EPOCH_SEC) -> Hypnogram:
    """Turn (onset, duration, text) stage annotations into one code per epoch; gaps become -1.

    Epochs are assigned by the pipeline's own rule (:func:`preprocess.core.annotations.events_to_epochs`:
    an epoch takes the stage covering its midpoint), so simulated truth and preprocessed labels
    can never disagree about where a stage starts. Non-stage texts (lights, arousals) are ignored.
    """
    events, deep = [], []
    for onset, dur, text in zip(onsets, durations, descriptions):
        code = stage_from_label(str(text))
        if code is None:
            continue
        events.append((float(onset), float(dur), code))
        deep.append((float(onset), float(dur), int(str(text).strip().lower() in _RK_STAGE4)))
    if not events:
        return Hypnogram(np.zeros(0, np.int8), np.zeros(0, bool))
    stages = events_to_epochs(events, epoch_s=epoch_sec)
    stage4 = events_to_epochs(deep, n_epochs=len(stages), epoch_s=epoch_sec) == 1
    return Hypnogram(stages, stage4)


def read_edf_hypnogram(path: str | os.PathLike) -> Hypnogram:
    """Read an EDF+ hypnogram (Sleep-EDF ``*-Hypnogram.edf``, HMC ``*_sleepscoring.edf``)."""
    import mne

    ann = mne.read_annotations(str(path))
    hyp = annotations_to_stages(ann.onset, ann.duration, ann.description)
    hyp.source = Path(path).name
    return hyp


def read_text_hypnogram(path: str | os.PathLike) -> Hypnogram:
    """One 30-s stage per line: integer codes 0-4 (YASA) or letters W/N1/N2/N3/R; '#' comments."""
    letters = {"W": W, "N1": N1, "N2": N2, "N3": N3, "N4": N3, "R": REM, "REM": REM}
    codes = []
    for line in Path(path).read_text().splitlines():
        tok = line.split("#", 1)[0].strip()
        if not tok:
            continue
        if tok.upper() in letters:
            codes.append(letters[tok.upper()])
        else:
            v = int(float(tok))
            codes.append(v if 0 <= v <= 4 else UNKNOWN)
    stages = np.asarray(codes, dtype=np.int8)
    return Hypnogram(stages, np.zeros(len(stages), bool), source=Path(path).name)


def crop_to_lights(hyp: Hypnogram, max_wake_epochs: int = 60) -> Hypnogram:
    """Keep at most ``max_wake_epochs`` (default 30 min) of wake/unknown before sleep onset and after
    the final awakening: Sleep-EDF SC files span ~22 h, most of it daytime wake or unscored."""
    sleep = np.flatnonzero((hyp.stages >= N1) & (hyp.stages <= REM))
    if len(sleep) == 0:
        return hyp
    start = max(0, sleep[0] - max_wake_epochs)
    stop = min(len(hyp), sleep[-1] + 1 + max_wake_epochs)
    out = hyp.crop(start, stop)
    # trailing/leading unscored ("?") runs are not part of the night
    s = out.stages
    lo, hi = 0, len(s)
    while lo < hi and s[lo] == UNKNOWN:
        lo += 1
    while hi > lo and s[hi - 1] == UNKNOWN:
        hi -= 1
    out = out.crop(lo, hi)
    out.meta["crop_epochs"] = [int(start + lo), int(start + hi)]
    return out


def find_real_hypnograms(root: str | os.PathLike | None = None, min_hours: float = 3.0) -> list[Path]:
    """Real whole-night hypnogram files (sorted, so choices made from them are reproducible)."""
    root = Path(root) if root is not None else default_real_root()
    if root is None or not Path(root).is_dir():
        return []
    files = sorted((root / "sleep-edf" / "hypnograms").glob("*-Hypnogram.edf"))
    files += sorted((root / "hmc").glob("*_sleepscoring.edf"))
    files += sorted((root / "yasa").glob("*hypno_30s.txt"))
    out = []
    for f in files:
        try:
            hyp = load_real_hypnogram(f)
        except Exception:  # an unreadable file is simply not a source
            continue
        if len(hyp) * EPOCH_SEC / 3600 >= min_hours:
            out.append(f)
    return out


def load_real_hypnogram(path: str | os.PathLike, max_wake_epochs: int = 60) -> Hypnogram:
    path = Path(path)
    hyp = read_text_hypnogram(path) if path.suffix.lower() == ".txt" else read_edf_hypnogram(path)
    return crop_to_lights(hyp, max_wake_epochs)


# --------------------------------------------------------------------------------------------
# Markov model
# --------------------------------------------------------------------------------------------

# First-order transition probabilities P[phase, from, to] over W, N1, N2, N3, REM for three thirds
# of the night (phase = epoch index / night length). Fitted with ``fit_markov(n_phases=3)`` on the 39
# Sleep-EDF SC hypnograms of ../shared/data/real/sleep-edf/hypnograms plus the HMC SN001 scoring
# and YASA's 6-h hypnogram, each cropped by ``crop_to_lights`` (transitions touching -1 skipped);
# rounded to 3 decimals and renormalised. More N3 early, more REM late.
MARKOV_TRANSITIONS = np.array(
    [
        [
            [0.957, 0.038, 0.003, 0.001, 0.001],
            [0.056, 0.738, 0.197, 0.002, 0.007],
            [0.011, 0.019, 0.886, 0.074, 0.010],
            [0.005, 0.004, 0.099, 0.891, 0.001],
            [0.011, 0.014, 0.024, 0.001, 0.950],
        ],
        [
            [0.854, 0.111, 0.024, 0.001, 0.010],
            [0.051, 0.590, 0.303, 0.000, 0.056],
            [0.011, 0.015, 0.916, 0.044, 0.014],
            [0.005, 0.005, 0.153, 0.837, 0.000],
            [0.008, 0.019, 0.016, 0.000, 0.957],
        ],
        [
            [0.930, 0.059, 0.004, 0.000, 0.007],
            [0.079, 0.607, 0.251, 0.000, 0.063],
            [0.015, 0.024, 0.921, 0.023, 0.017],
            [0.013, 0.006, 0.202, 0.777, 0.002],
            [0.016, 0.026, 0.016, 0.000, 0.942],
        ],
    ]
)
# Fraction of N3 epochs scored R&K stage 4 per phase (same fit: 0.425, 0.374, 0.306). The fitted
# in-night movement/unknown rate is 0.15 %; it is raised to 0.5 % so that short simulated nights
# still carry a few -1 epochs.
MARKOV_STAGE4_FRACTION = np.array([0.425, 0.374, 0.306])
MARKOV_MOVEMENT_RATE = 0.005


def fit_markov(hypnograms: list[Hypnogram], n_phases: int = 3) -> dict:
    """Fit the time-varying transition tables (used once to produce ``MARKOV_TRANSITIONS``)."""
    counts = np.zeros((n_phases, 5, 5))
    s4 = np.zeros((n_phases, 2))
    n_mov = n_in = 0
    for hyp in hypnograms:
        s = hyp.stages.astype(int)
        n = len(s)
        phase = np.minimum((np.arange(n) * n_phases) // max(n, 1), n_phases - 1)
        a, b = s[:-1], s[1:]
        ok = (a >= 0) & (b >= 0)
        np.add.at(counts, (phase[:-1][ok], a[ok], b[ok]), 1)
        n3 = s == N3
        np.add.at(s4, (phase[n3], hyp.stage4[n3].astype(int)), 1)
        sleep = np.flatnonzero(s >= N1)
        if len(sleep):
            inner = s[sleep[0] : sleep[-1] + 1]
            n_mov += int(np.sum(inner == UNKNOWN))
            n_in += len(inner)
    counts += 1e-3  # rows never seen stay valid
    probs = counts / counts.sum(axis=2, keepdims=True)
    return {
        "transitions": probs,
        "stage4_fraction": s4[:, 1] / np.maximum(s4.sum(axis=1), 1),
        "movement_rate": n_mov / max(n_in, 1),
    }


def markov_hypnogram(n_epochs: int, rng: np.random.Generator, transitions: np.ndarray | None = None) -> Hypnogram:
    """Draw a night of ``n_epochs`` 30-s epochs: starts awake, phase-dependent transitions, a short
    final awakening, a few movement (-1) epochs inside sleep, R&K stage-4 flags on part of N3."""
    P = MARKOV_TRANSITIONS if transitions is None else np.asarray(transitions)
    n_phases = P.shape[0]
    cum = np.cumsum(P, axis=2)
    u = rng.random(n_epochs)
    stages = np.zeros(n_epochs, dtype=np.int8)
    s = W
    seen_n2 = False
    for t in range(1, n_epochs):
        ph = min(t * n_phases // n_epochs, n_phases - 1)
        s = min(int(np.searchsorted(cum[ph, s], u[t] * cum[ph, s, -1], side="right")), 4)
        if s == REM and not seen_n2:  # no sleep-onset REM: REM only after N2 has been reached
            s = N1
        seen_n2 = seen_n2 or s == N2
        stages[t] = s
    # final awakening: a few minutes, never more than 5 % of the night
    n_final = int(min(rng.integers(2, 21), max(1, n_epochs // 20)))
    if n_epochs > 4 * n_final:
        stages[n_epochs - n_final :] = W
    phase = np.minimum((np.arange(n_epochs) * n_phases) // max(n_epochs, 1), n_phases - 1)
    stage4 = (stages == N3) & (rng.random(n_epochs) < MARKOV_STAGE4_FRACTION[np.minimum(phase, 2)])
    sleep = np.flatnonzero(stages >= N1)
    if len(sleep) > 2:
        inner = np.arange(sleep[0] + 1, sleep[-1])
        mov = inner[rng.random(len(inner)) < MARKOV_MOVEMENT_RATE]
        stages[mov] = UNKNOWN
        stage4[mov] = False
    return Hypnogram(stages, stage4, source="markov")


def choose_hypnogram(
    rng: np.random.Generator,
    hours: float | None = None,
    sources: list[Path] | None = None,
    index: int | None = None,
) -> Hypnogram:
    """A real cropped night when available and no length is asked for, else a Markov night.

    ``index`` picks the real source deterministically (recording number); otherwise ``rng`` does.
    ``hours`` (when given) forces a Markov night of that length (default 8 h when no real file).
    """
    if hours is None:
        srcs = find_real_hypnograms() if sources is None else sources
        if srcs:
            i = int(rng.integers(len(srcs))) if index is None else index % len(srcs)
            return load_real_hypnogram(srcs[i])
        hours = 8.0
    n = max(1, int(round(hours * 3600 / EPOCH_SEC)))
    return markov_hypnogram(n, rng)
