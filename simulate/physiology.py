"""Stage-dependent synthetic PSG physiology.

Model (all amplitudes in µV, converted to volts on output):

* Brain activity lives on three latent cortical patches (anterior, central, posterior). Each patch
  is non-stationary Gaussian noise whose power spectrum changes every 2 s (overlap-added 4-s blocks,
  so stage changes cross-fade smoothly): a 1/f background plus slow/delta (0.4-2 Hz), theta, alpha
  (subject frequency), sigma and beta bands whose amplitudes follow the stage, the subject and a
  little block-to-block jitter. Scalp electrodes mix the patches by distance, so neighbouring
  channels are correlated and bipolar derivations (Fpz-Cz, Pz-Oz) keep realistic amplitude.
* Transient events with their own topography: spindles (N2, fewer in N3), K-complexes (N2),
  vertex sharp waves (N1), sawtooth trains (REM).
* Eyes: horizontal and vertical gaze signals (saccades, blinks, slow rolling movements, rapid eye
  movements in REM) project onto E1/E2 with opposite polarity and weakly onto frontal sites.
* Chin EMG: 10 Hz+ noise whose level follows the stage (REM lowest) plus twitches.
* Artefacts: movement bursts in -1 epochs, electrode pops, slow sweat drift, ECG pick-up
  (mastoids), 50/60 Hz line noise (common mode on unreferenced channels, small residual in
  derivations), amplifier noise and scalp muscle activity.

Everything shared by several electrodes (brain, eyes, events, heart) is drawn from
``subject_params["seed"]``, so channels requested in separate calls stay consistent; the ``rng``
argument only drives channel-local noise.
"""

from __future__ import annotations

import re
import zlib
from fractions import Fraction

import numpy as np
from scipy.signal import lfilter, resample_poly

from .hypnogram import N1, N2, N3, REM, UNKNOWN, W

EPOCH_SEC = 30.0
BRAIN_FS = 128.0  # rate of the brain/eye model; channels are resampled from it
HOP_SEC = 2.0  # spectral envelope resolution (4-s overlap-added blocks)
_CHUNK = 64  # blocks per chunk in block_noise

# ------------------------------------------------------------------------------------------------
# Electrodes and topographies
# ------------------------------------------------------------------------------------------------

# patch mixing weights (anterior, central, posterior) before row normalisation; then a gain
_SCALP = {
    "FP": ([1.0, 0.25, 0.0], 1.0),
    "F": ([0.85, 0.5, 0.0], 1.0),
    "C": ([0.35, 1.0, 0.35], 1.0),
    "P": ([0.0, 0.55, 0.85], 1.0),
    "O": ([0.0, 0.2, 1.0], 1.0),
    "E": ([0.9, 0.2, 0.0], 0.55),  # EOG electrodes pick up frontal EEG, attenuated
    "M": ([0.3, 0.5, 0.5], 0.22),  # mastoids: far from the sources, small brain signal
}
# events: (anterior/frontal, central, posterior, eye, mastoid) weights per electrode region
_EVENT_TOPO = {
    #            FP    F     C     P     O     E     M
    "spindle": (0.5, 0.8, 1.0, 0.8, 0.35, 0.25, 0.12),
    "kcomplex": (0.9, 1.0, 0.85, 0.6, 0.4, 0.5, 0.15),
    "vertex": (0.4, 0.6, 1.0, 0.6, 0.3, 0.2, 0.1),
    "sawtooth": (0.6, 0.9, 1.0, 0.55, 0.3, 0.3, 0.1),
}
_REGION_INDEX = {"FP": 0, "F": 1, "C": 2, "P": 3, "O": 4, "E": 5, "M": 6}

# Electrode aliases (label styles found in PSG files) -> model electrode
_ALIASES = {"A1": "M1", "A2": "M2", "LOC": "E1", "ROC": "E2", "EOG1": "E1", "EOG2": "E2", "T3": "T7", "T4": "T8"}
SPECIAL_SITES = ("CHIN", "ECG")


def _region(electrode: str) -> str:
    e = electrode.upper()
    if e.startswith("FP"):
        return "FP"
    if e in ("E1", "E2"):
        return "E"
    if e in ("M1", "M2"):
        return "M"
    if e[0] in "FCPO":
        return e[0]
    if e[0] == "T":
        return "C"
    raise ValueError(f"unknown electrode {electrode!r}")


def _side(electrode: str) -> float:
    """-1 left, +1 right, 0 midline (10-20 convention: odd = left, even = right, z = midline)."""
    e = electrode.upper()
    if e in ("E1", "M1"):
        return -1.0
    if e in ("E2", "M2"):
        return 1.0
    m = re.search(r"(\d+)$", e)
    if m:
        return -1.0 if int(m.group(1)) % 2 else 1.0
    return 0.0


def _eye_gain(electrode: str) -> tuple[float, float]:
    """(horizontal, vertical) gain of the eye dipole at an electrode."""
    side = _side(electrode)
    return {
        "E": (-1.0, -0.45) if side < 0 else (1.0, 0.6),  # E1 below-left, E2 above-right: opposite polarity
        "FP": (0.0, 1.3),
        "F": (0.12 * side, 0.3),
        "C": (0.03 * side, 0.05),
        "M": (0.05 * side, 0.0),
    }.get(_region(electrode), (0.0, 0.0))


def _scope_gain(scope: tuple, electrode: str) -> float:
    """Signed gain of an event's source at one electrode (0 where it does not reach)."""
    if scope[0] == "brain":
        if scope[1] in _EVENT_TOPO:
            return _EVENT_TOPO[scope[1]][_REGION_INDEX[_region(electrode)]]
        mix, gain = _SCALP[_region(electrode)]
        mix = np.asarray(mix) / np.linalg.norm(mix) * gain
        return float(mix @ np.asarray(_TOPO[scope[1]]))
    if scope[0] == "eyes":
        return _eye_gain(electrode)[0 if scope[1] == "h" else 1]
    if scope[0] == "electrode":
        return 1.0 if electrode == scope[1] else 0.0
    return 0.0


def event_sites(scope: tuple, sites: list[str], rel: float = 0.25) -> str:
    """Comma-separated ``sites`` an event reaches with at least ``rel`` of its largest gain among
    them (derivations: difference of the two electrodes' gains), or ``all``."""
    if scope[0] == "all":
        return "all"
    gains = {}
    for site in sites:
        a, b = parse_site(site)
        if a in SPECIAL_SITES:
            gains[site] = 1.0 if (scope[0] == "chin" and a == "CHIN") else 0.0
        elif scope[0] == "chin":
            gains[site] = 0.0
        else:
            gains[site] = abs(_scope_gain(scope, a) - (_scope_gain(scope, b) if b else 0.0))
    top = max(gains.values(), default=0.0)
    hit = [s for s, g in gains.items() if top > 0 and g >= rel * top]
    return ",".join(dict.fromkeys(hit))


def canonical_electrode(name: str) -> str:
    e = name.strip().upper()
    return _ALIASES.get(e, e)


def parse_site(expr: str) -> tuple[str, str | None]:
    """'C4-M1' -> ('C4', 'M1'); 'C3' -> ('C3', None); 'CHIN'/'ECG' -> special sites."""
    parts = [p for p in re.split(r"[-:_ ]", expr.strip()) if p]
    if len(parts) == 1:
        a = canonical_electrode(parts[0])
        if a not in SPECIAL_SITES:
            _region(a)
        return a, None
    if len(parts) == 2:
        a, b = canonical_electrode(parts[0]), canonical_electrode(parts[1])
        _region(a), _region(b)
        return a, b
    raise ValueError(f"cannot parse site {expr!r}")


# ------------------------------------------------------------------------------------------------
# Stage tables (RMS µV at a patch with topography weight 1)
# ------------------------------------------------------------------------------------------------

# "pink": aperiodic 1/f (PSD exponent 1); "steep": aperiodic 1/f^3. Their stage-dependent mix gives
# the stage-dependent aperiodic exponent of real sleep EEG (flattest in wake, steepest in N3).
_COMPONENTS = ("pink", "slow", "theta", "alpha", "sigma", "beta", "steep")
_TOPO = {  # per component: anterior, central, posterior patch weights
    "pink": (1.0, 1.0, 1.0),
    "slow": (1.0, 0.8, 0.6),
    "theta": (0.9, 1.0, 0.75),
    "alpha": (0.02, 0.22, 1.0),  # waking alpha is occipital; weak at central, faint frontal
    "sigma": (0.8, 1.0, 0.7),
    "beta": (1.0, 0.85, 0.7),
    "steep": (1.0, 1.0, 0.9),
}
#                      W     N1    N2    N3    REM
_STAGE_AMP = {
    "pink": (5.0, 5.0, 2.0, 2.5, 4.5),
    "slow": (3.0, 3.5, 6.0, 36.0, 4.0),
    "theta": (2.5, 4.5, 8.0, 9.0, 5.0),
    "alpha": (7.0, 4.5, 3.5, 4.0, 3.0),
    "sigma": (1.0, 1.0, 2.5, 1.5, 0.8),
    "beta": (1.5, 1.0, 0.5, 0.35, 1.0),
    "steep": (9.0, 8.0, 15.5, 14.0, 9.0),
}
_EMG_RMS = (18.0, 8.0, 6.5, 5.5, 2.0)  # chin EMG, µV RMS, W/N1/N2/N3/REM
# movement bursts in wake (calibrated on the real files, bench/simulator_amplitude.py): probability
# per 2-s block after sleep onset, median level (µV, log-normal), electrode-local share in derivations
_WASO_BURST_P = 0.12
_BURST_UV = 40.0
_BURST_LOCAL = 0.6
# rapid eye movements per second of REM at phasic level 1 (the real REM LOC/ROC snippet: ~25 µV SD)
_REM_EM_RATE = 0.7
# sd of the vertical (oblique) part of a rapid eye movement relative to its horizontal part: sets the
# LOC-ROC anti-correlation (real: -0.84, bench/simulator_realism.py)
_REM_OBLIQUE = 0.5


def draw_subject_params(rng: np.random.Generator, seed: int | None = None, spread: float = 1.0) -> dict:
    """Per-subject physiology: plain JSON-serialisable numbers (recorded in simulation.json).

    ``spread`` widens the between-subject and between-recording variation (domain randomisation
    for training: spectral tilt, amplitude, noise, filters); 1 = the calibrated population.
    """
    age = int(rng.integers(20, 80))
    young = (80 - age) / 60.0  # 1 at 20 y, 0 at 80 y: slow-wave amplitude declines with age
    p = {
        "seed": int(rng.integers(2**31)) if seed is None else int(seed),
        "age": age,
        "sex": str(rng.choice(["F", "M"])),
        "amp_scale": float(np.exp(rng.normal(0, 0.15 * spread))),
        "delta_scale": float(max(0.7, (0.75 + 0.45 * young) * np.exp(rng.normal(0, 0.1)))),
        "alpha_freq": float(np.clip(rng.normal(10.0, 0.7), 8.5, 11.5)),
        "alpha_amp": float(np.exp(rng.normal(0, 0.3))),
        "spindle_freq": float(np.clip(rng.normal(13.0, 0.6), 11.5, 14.5)),
        "spindle_density": float(rng.uniform(3.0, 6.5)),  # per minute of N2
        "spindle_amp": float(rng.uniform(20.0, 40.0)),  # peak µV at central sites
        "kcomplex_rate": float(rng.uniform(1.0, 2.5)),  # per minute of N2
        "emg_scale": float(np.exp(rng.normal(0, 0.3))),
        "eog_scale": float(np.exp(rng.normal(0, 0.2))),
        "rem_density": float(np.exp(rng.normal(0, 0.3))),
        "eyes_closed_prob": float(rng.uniform(0.5, 0.9)),
        "noise_uv": float(rng.uniform(0.25, 0.8)),  # amplifier input noise, µV RMS (0-Nyquist)
        "line_freq": 50.0,
        "line_common_uv": float(rng.uniform(5.0, 80.0)),
        "line_residual_uv": float(rng.uniform(0.1, 1.5)),
        "sweat": float(rng.uniform(0.0, 1.0)),
        "pop_rate_per_hour": float(rng.uniform(0.0, 1.5)),
        "heart_rate": float(np.clip(rng.normal(62.0, 7.0), 45.0, 85.0)),
        # spectral tilt: log-ratio applied to the steep vs flat aperiodic parts (+ = steeper)
        "tilt": float(rng.normal(0, 0.12 * spread)),
        "spread": float(spread),
    }
    p["noise_uv"] *= float(spread)
    return p


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------


def _bandpass_mag(f: np.ndarray, lo: float | None, hi: float | None, order: int = 2) -> np.ndarray:
    g = np.ones_like(f)
    with np.errstate(divide="ignore"):
        if lo:
            g = g / np.sqrt(1.0 + (lo / np.maximum(f, 1e-9)) ** (2 * order))
        if hi:
            g = g / np.sqrt(1.0 + (f / hi) ** (2 * order))
    return g


def block_noise(
    rng: np.random.Generator,
    amps: np.ndarray,
    shapes: np.ndarray,
    hop: int,
    n_samples: int,
) -> np.ndarray:
    """Non-stationary Gaussian noise, float32.

    ``amps`` (n_blocks, n_comp): RMS of each component around block centre ``b * hop``; ``shapes``
    (n_comp, hop + 1): spectral magnitude of each component on the rfft grid of a ``2 * hop`` block.
    Blocks are independent, sine-windowed and 50 % overlap-added, so the variance is stationary
    within a block and cross-fades over ``2 * hop`` samples between blocks.
    """
    L = 2 * hop
    n_blocks = n_samples // hop + 2
    amps = np.asarray(amps, dtype=np.float32)
    if amps.shape[0] < n_blocks:
        amps = np.concatenate([amps, np.repeat(amps[-1:], n_blocks - amps.shape[0], axis=0)])
    amps = amps[:n_blocks]
    sh = np.asarray(shapes, dtype=np.float64).copy()
    sh[:, 0] = 0.0
    sh[:, -1] = 0.0
    norm = np.sqrt((sh**2).sum(axis=1, keepdims=True))
    sh = (sh / np.where(norm > 0, norm, 1.0) * (L / 2.0)).astype(np.float32)
    out = np.zeros((n_blocks - 1) * hop, dtype=np.float32)
    live = np.flatnonzero(np.abs(amps).max(axis=0) @ sh > 0)
    if len(live) == 0:
        return out[:n_samples]
    lo, hi = live[0], live[-1] + 1
    sh2 = sh[:, lo:hi] ** 2
    win = np.sin(np.pi * (np.arange(L) + 0.5) / L).astype(np.float32)
    spec = np.zeros((_CHUNK, hop + 1), dtype=np.complex64)
    prev = None
    # chunks of blocks keep temporaries small (page faults dominate on large fresh arrays)
    for s in range(0, n_blocks, _CHUNK):
        e = min(n_blocks, s + _CHUNK)
        m = e - s
        if not amps[s:e].any():  # silent chunk: nothing to draw
            if prev is not None:
                out[(s - 1) * hop : s * hop] = prev
            prev = np.zeros(hop, np.float32)
            continue
        z = rng.standard_normal((m, 2 * (hi - lo)), dtype=np.float32).view(np.complex64)
        z *= np.sqrt(amps[s:e] ** 2 @ sh2)
        spec[:m, lo:hi] = z
        blk = np.fft.irfft(spec[:m], n=L, axis=1)
        blk *= win
        # block b covers samples [(b - 1) * hop, (b + 1) * hop)
        if prev is not None:
            out[(s - 1) * hop : s * hop] = prev + blk[0, :hop]
        if m > 1:
            np.add(blk[:-1, hop:], blk[1:, :hop], out=out[s * hop : (e - 1) * hop].reshape(m - 1, hop))
        prev = blk[-1, hop:].copy()
    return out[:n_samples]


def _smooth_blocks(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    k = np.hanning(width + 2)[1:-1]
    k /= k.sum()
    pad = width // 2
    xp = np.pad(x, [(pad, width - 1 - pad)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    if x.ndim == 1:
        return np.convolve(xp, k, mode="valid")
    return np.stack([np.convolve(xp[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


def _add(x: np.ndarray, start: int, wave: np.ndarray) -> None:
    """x[start:start+len(wave)] += wave, clipped to the array."""
    a = max(start, 0)
    b = min(start + len(wave), len(x))
    if b > a:
        x[a:b] += wave[a - start : b - start]


def _markov_binary(rng: np.random.Generator, n: int, p_on: float, persist: float) -> np.ndarray:
    """Two-state chain with stationary P(on) = p_on and mean run length ~1/(1-persist)."""
    out = np.zeros(n, bool)
    if n == 0:
        return out
    p_switch_on = min((1 - persist) * p_on / max(1 - p_on, 1e-6), 1.0)
    s = bool(rng.random() < p_on)
    u = rng.random(n)
    for i in range(n):
        s = bool(u[i] < persist) if s else bool(u[i] < p_switch_on)
        out[i] = s
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index runs ``[a, b)`` where ``mask`` is true."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def _shifted(bank: np.ndarray, rng: np.random.Generator, fs: float) -> np.ndarray:
    """Circularly shifted, randomly signed copy of a noise bank (4-60 s shift)."""
    k = int(rng.uniform(4.0, 60.0) * fs) % max(len(bank), 1)
    out = np.roll(bank, k)
    if rng.random() < 0.5:
        np.negative(out, out=out)
    return out


def resample(x: np.ndarray, fs_from: float, fs_to: float, n_out: int) -> np.ndarray:
    """Polyphase resampling to exactly ``n_out`` samples."""
    if fs_from == fs_to:
        y = x
    else:
        r = Fraction(fs_to / fs_from).limit_denominator(2000)
        y = resample_poly(x, r.numerator, r.denominator)
    if len(y) < n_out:
        y = np.pad(y, (0, n_out - len(y)), mode="edge")
    return y[:n_out]


# ------------------------------------------------------------------------------------------------
# The night: shared latent sources
# ------------------------------------------------------------------------------------------------


class _Night:
    """Latent sources of one night (brain patches, events, eyes, heart, artefacts) at BRAIN_FS."""

    def __init__(self, stages: np.ndarray, params: dict, n3_depth: np.ndarray | None = None):
        self.stages = np.asarray(stages, dtype=np.int64)
        self.p = params
        self.n_epochs = len(self.stages)
        self.fs = BRAIN_FS
        self.n = int(round(self.n_epochs * EPOCH_SEC * self.fs))
        self.hop = int(HOP_SEC * self.fs)
        self.bpe = int(EPOCH_SEC / HOP_SEC)  # blocks per epoch
        # one independent stream per latent source, so sources do not depend on call order
        self.rng_plan = self._rng("plan")
        self.rng_brain = self._rng("brain")
        self.rng_events = self._rng("events")
        self.rng_eyes = self._rng("eyes")
        self.rng_heart = self._rng("heart")
        self.rng_art = self._rng("artefacts")
        # brain state per epoch: movement/unknown epochs look like wake underneath the artefact
        self.brain = np.where(self.stages < 0, W, self.stages)
        if n3_depth is None:
            n3_depth = self.rng_plan.uniform(0.25, 0.9, self.n_epochs)
        self.depth = np.asarray(n3_depth, dtype=np.float64)
        # where transient events were placed: (onset s, duration s, kind, scope); see event_log()
        self._log: dict[str, list[tuple[float, float, str, tuple]]] = {}
        self._plan_blocks()
        self._electrode_cache: dict[str, np.ndarray] = {}
        self._patches: np.ndarray | None = None
        self._events: dict[str, np.ndarray] | None = None
        self._eyes: tuple[np.ndarray, np.ndarray] | None = None
        self._beats: np.ndarray | None = None
        self._ecg_brain: np.ndarray | None = None
        self._movement: np.ndarray | None = None
        self._movement_level: np.ndarray | None = None
        self._local_bank: np.ndarray | None = None
        self._time: np.ndarray | None = None
        self._fast_banks: dict[float, np.ndarray] = {}

    def _rng(self, tag: str) -> np.random.Generator:
        return np.random.default_rng([int(self.p["seed"]), zlib.crc32(tag.encode())])

    def _note(self, source: str, onset: float, duration: float, kind: str, scope: tuple) -> None:
        """Record one placed event. ``source`` names the cached generator that placed it (so a
        generator run twice never logs twice); ``scope`` says which sites it reaches: ``("brain",
        topo_key)``, ``("eyes", "h"|"v")``, ``("chin",)``, ``("electrode", name)`` or ``("all",)``."""
        self._log.setdefault(source, []).append((float(onset), float(duration), kind, scope))

    def event_log(self) -> list[tuple[float, float, str, tuple]]:
        """Every event placed so far by the generators that ran, sorted by onset."""
        return sorted((e for evs in self._log.values() for e in evs), key=lambda e: (e[0], e[2]))

    # -- per-block plan ---------------------------------------------------------------------------
    def _plan_blocks(self) -> None:
        rng, p = self.rng_plan, self.p
        nb = self.n_epochs * self.bpe
        st = np.repeat(self.brain, self.bpe)
        raw = np.repeat(self.stages, self.bpe)
        self.block_stage = st
        for a0, a1 in _runs(self.stages == UNKNOWN):
            self._note("plan", a0 * EPOCH_SEC, (a1 - a0) * EPOCH_SEC, "movement", ("all",))
        # eyes closed during wake (alpha on, few blinks); drowsy wake is mostly eyes closed
        ec = _markov_binary(rng, nb, p["eyes_closed_prob"], persist=0.9)
        self.eyes_closed = ec | (st != W)
        for a0, a1 in _runs((st == W) & ec):  # eyes-closed wake: posterior alpha on
            self._note("plan", a0 * HOP_SEC, (a1 - a0) * HOP_SEC, "alpha", ("brain", "alpha"))
        # N2 slow-wave amplitude grows near N3 (descending / ascending sleep)
        near_n3 = np.zeros(self.n_epochs)
        n3_idx = np.flatnonzero(self.brain == N3)
        if len(n3_idx):
            i = np.arange(self.n_epochs)
            k = np.clip(np.searchsorted(n3_idx, i), 1, len(n3_idx)) - 1
            k2 = np.minimum(k + 1, len(n3_idx) - 1)
            dist = np.minimum(np.abs(i - n3_idx[k]), np.abs(i - n3_idx[k2]))
            near_n3 = np.exp(-dist / 4.0)
        amps = np.zeros((nb, len(_COMPONENTS)))
        for j, c in enumerate(_COMPONENTS):
            amps[:, j] = np.asarray(_STAGE_AMP[c])[st]
        col = {c: j for j, c in enumerate(_COMPONENTS)}
        depth_b = np.repeat(self.depth, self.bpe)
        near_b = np.repeat(near_n3, self.bpe)
        slow = amps[:, col["slow"]]
        slow[st == N3] *= 0.6 + 0.8 * depth_b[st == N3]
        slow[st == N2] *= 1.0 + 0.35 * near_b[st == N2]
        # age/subject slow-wave scale: full effect on N3, damped elsewhere (N2 keeps < 20 % slow waves)
        slow *= np.where(st == N3, p["delta_scale"], np.sqrt(p["delta_scale"]))
        alpha = amps[:, col["alpha"]]
        alpha[(st == W) & ~ec] *= 0.3
        # N1 keeps intermittent alpha fragments early in drowsiness
        n1_alpha = np.repeat(rng.uniform(0.2, 1.2, self.n_epochs), self.bpe)
        alpha[st == N1] *= n1_alpha[st == N1]
        alpha *= p["alpha_amp"]
        # block-to-block jitter (log-normal), then smoothing over ~10 s for gradual transitions
        jitter = np.exp(rng.normal(0, 0.18, amps.shape))
        epoch_var = np.repeat(np.exp(rng.normal(0, 0.12, (self.n_epochs, amps.shape[1]))), self.bpe, axis=0)
        tilt = p.get("tilt", 0.0)
        amps[:, col["steep"]] *= np.exp(tilt)
        amps[:, col["pink"]] *= np.exp(-tilt)
        amps = amps * jitter * epoch_var * p["amp_scale"]
        self.block_amps = np.exp(_smooth_blocks(np.log(amps), 5))
        # EMG level per block
        emg = np.asarray(_EMG_RMS)[st] * p["emg_scale"]
        emg = np.where((st == W) & ~ec, emg * 1.5, emg)
        emg = emg * np.exp(rng.normal(0, 0.15, nb))
        emg[raw == UNKNOWN] = 60.0 * p["emg_scale"]
        self.block_emg = np.exp(_smooth_blocks(np.log(emg), 3))
        # REM phasic density per epoch (eye-movement bursts, twitches, sawtooth)
        phasic = rng.gamma(0.8, 1.0 / 0.8, self.n_epochs) * p["rem_density"]
        self.rem_phasic = np.where(self.brain == REM, phasic, 0.0)

    # -- frequency grid ---------------------------------------------------------------------------
    def _shapes(self) -> np.ndarray:
        f = np.fft.rfftfreq(2 * self.hop, 1.0 / self.fs)
        p = self.p
        pink = _bandpass_mag(f, 0.3, 40.0, 2) / np.sqrt(np.maximum(f, 0.3))
        slow = _bandpass_mag(f, 0.4, 2.0, 3)
        theta = _bandpass_mag(f, 4.0, 7.5, 3)
        alpha = np.exp(-0.5 * ((f - p["alpha_freq"]) / 0.7) ** 2)
        sigma = _bandpass_mag(f, 11.0, 15.5, 3)
        beta = _bandpass_mag(f, 15.0, 30.0, 2)
        # Lorentzian with a 2-Hz knee: 1/f^3 above the knee, flat below (slow waves are a
        # separate component), so NREM gets its steep tilt without a delta excess in N2
        steep = _bandpass_mag(f, 0.4, 40.0, 2) / (f**2 + 2.0**2) ** 0.75
        return np.stack([pink, slow, theta, alpha, sigma, beta, steep])

    def patches(self) -> np.ndarray:
        if self._patches is None:
            shapes = self._shapes()
            out = np.empty((3, self.n), np.float32)
            for k in range(3):
                topo = np.array([_TOPO[c][k] for c in _COMPONENTS])
                out[k] = block_noise(self.rng_brain, self.block_amps * topo, shapes, self.hop, self.n)
            self._patches = out
        return self._patches

    # -- transient events -------------------------------------------------------------------------
    def _event_times(self, rate_per_epoch: np.ndarray) -> np.ndarray:
        rng = self.rng_events
        counts = rng.poisson(np.maximum(rate_per_epoch, 0))
        ep = np.repeat(np.arange(self.n_epochs), counts)
        return (ep + rng.random(len(ep))) * EPOCH_SEC

    def events(self) -> dict[str, np.ndarray]:
        if self._events is not None:
            return self._events
        rng, p, fs, n = self.rng_events, self.p, self.fs, self.n
        b = self.brain
        out = {k: np.zeros(n, np.float32) for k in _EVENT_TOPO}
        self._log["events"] = []
        note = lambda t, d, kind, topo: self._note("events", t, d, kind, ("brain", topo))  # noqa: E731
        # spindles
        rate = np.select([b == N2, b == N3, b == N1], [p["spindle_density"] / 2, p["spindle_density"] / 6, 0.05], 0.0)
        for t0 in self._event_times(rate):
            dur = float(np.clip(rng.gamma(6.0, 0.16), 0.5, 2.0))
            m = int(dur * fs)
            tt = np.arange(m) / fs
            f = p["spindle_freq"] + rng.normal(0, 0.4) - 0.4 * tt / dur
            env = np.sin(np.pi * tt / dur) ** 2
            amp = p["spindle_amp"] * np.exp(rng.normal(0, 0.25))
            note(t0, m / fs, "spindle", "spindle")
            _add(out["spindle"], int(t0 * fs), (amp * env * np.sin(2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 6.3))).astype(np.float32))
        # K-complexes (sometimes followed by a spindle)
        rate = np.select([b == N2, b == N3, b == N1], [p["kcomplex_rate"] / 2, 0.3, 0.05], 0.0)
        kc_t = np.arange(int(1.6 * fs)) / fs
        for t0 in self._event_times(rate):
            a = rng.uniform(70, 180) * p["delta_scale"]
            w = -a * np.exp(-0.5 * ((kc_t - 0.3) / 0.09) ** 2) + 0.55 * a * np.exp(-0.5 * ((kc_t - 0.75) / 0.17) ** 2)
            _add(out["kcomplex"], int(t0 * fs), w.astype(np.float32))
            note(t0 + 0.1, 1.0, "kcomplex", "kcomplex")
            if rng.random() < 0.4:
                m = int(rng.uniform(0.6, 1.2) * fs)
                tt = np.arange(m) / fs
                s = 0.8 * p["spindle_amp"] * np.sin(np.pi * tt / tt[-1]) ** 2 * np.sin(2 * np.pi * p["spindle_freq"] * tt)
                _add(out["spindle"], int((t0 + 1.0) * fs), s.astype(np.float32))
                note(t0 + 1.0, m / fs, "spindle", "spindle")
        # vertex sharp waves
        rate = np.select([b == N1, b == N2], [1.2, 0.2], 0.0)
        vt = np.arange(int(0.6 * fs)) / fs
        for t0 in self._event_times(rate):
            a = rng.uniform(40, 100)
            w = -a * np.exp(-0.5 * ((vt - 0.2) / 0.05) ** 2) + 0.3 * a * np.exp(-0.5 * ((vt - 0.33) / 0.06) ** 2)
            _add(out["vertex"], int(t0 * fs), w.astype(np.float32))
            note(t0 + 0.1, 0.35, "vertex", "vertex")
        # sawtooth trains in REM
        for t0 in self._event_times(0.5 + 0.5 * self.rem_phasic):
            f = rng.uniform(2.0, 4.5)
            ncyc = int(rng.integers(3, 10))
            m = int(ncyc / f * fs)
            ph = (np.arange(m) / fs * f) % 1.0
            saw = np.where(ph < 0.25, ph / 0.25, (1.0 - ph) / 0.75) * 2 - 1  # fast rise, slow fall
            env = np.sin(np.pi * np.arange(m) / m) ** 0.5
            _add(out["sawtooth"], int(t0 * fs), (rng.uniform(15, 40) * env * saw).astype(np.float32))
            note(t0, m / fs, "sawtooth", "sawtooth")
        self._events = out
        return out

    # -- eyes -------------------------------------------------------------------------------------
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        """Horizontal and vertical eye signals (µV at the EOG electrodes), AC-coupled."""
        if self._eyes is not None:
            return self._eyes
        rng, p, fs, n = self.rng_eyes, self.p, self.fs, self.n
        g = p["eog_scale"]
        bs, ec = self.block_stage, self.eyes_closed
        # saccade rate per 2-s block (events per second)
        rem_b = np.repeat(self.rem_phasic, self.bpe)
        rate = np.select(
            [(bs == W) & ~ec, bs == W, bs == N1, bs == REM],
            [0.9, 0.08, 0.03, 0.55 * rem_b],
            0.0,
        )
        counts = rng.poisson(rate * HOP_SEC)
        blk = np.repeat(np.arange(len(bs)), counts)
        t = (blk + rng.random(len(blk))) * HOP_SEC
        order = np.argsort(t, kind="stable")
        t, blk = t[order], blk[order]
        is_rem = bs[blk] == REM
        # waking gaze jumps (scanning with eyes open: the gaze stays where it jumped); REM movements
        # are brief deflections added below, not steps
        wake = ~is_rem
        t, blk, is_rem = t[wake], blk[wake], is_rem[wake]
        targets = np.clip(rng.normal(0, 1, len(t)), -2, 2) * 90.0 * g
        rise = rng.uniform(0.04, 0.09, len(t))
        # breakpoints: (start of jump, previous gaze), (end of jump, new gaze)
        bt = np.empty(2 * len(t) + 2)
        bv = np.zeros_like(bt)
        bt[0] = 0.0
        bt[1:-1:2], bt[2:-1:2] = t, t + rise
        bv[2:-1:2] = targets
        bv[3:-1:2] = targets[:-1]
        bt[-1], bv[-1] = n / fs + 1.0, targets[-1] if len(t) else 0.0
        self._log["eyes"] = [
            (float(t0), float(r), "rem" if is_r else "saccade", ("eyes", "h")) for t0, r, is_r in zip(t, rise, is_rem)
        ]
        order = np.argsort(bt, kind="stable")
        time = self.time()
        h = np.interp(time, bt[order], bv[order]).astype(np.float32)
        v = np.zeros(n, np.float32)
        self._rem_movements(h, v)
        # slow rolling eye movements (N1, drowsy wake), 0.1-0.5 Hz, at 4 Hz then interpolated
        sem_level = np.select([bs == N1, (bs == W) & ec, bs == N2], [35.0, 15.0, 8.0], 3.0) * g
        sem_level = _smooth_blocks(sem_level, 5)
        for a0, a1 in _runs(sem_level >= 15.0 * g):
            self._note("eyes", a0 * HOP_SEC, (a1 - a0) * HOP_SEC, "sem", ("eyes", "h"))
        fs_l = 4.0
        n_l = int(self.n_epochs * EPOCH_SEC * fs_l) + 1
        z = np.fft.rfft(rng.standard_normal(n_l))
        fl = np.fft.rfftfreq(n_l, 1 / fs_l)
        sem = np.fft.irfft(z * _bandpass_mag(fl, 0.1, 0.45, 2), n_l)
        sem /= max(sem.std(), 1e-12)
        tl = np.arange(n_l) / fs_l
        sem = sem * np.interp(tl, (np.arange(len(bs)) + 0.5) * HOP_SEC, sem_level)
        h += np.interp(time, tl, sem).astype(np.float32)
        # blinks (vertical), eyes open wake mostly
        brate = np.select([(bs == W) & ~ec, bs == W, bs == N1], [0.3, 0.02, 0.02], 0.0)
        counts = rng.poisson(brate * HOP_SEC)
        blk = np.repeat(np.arange(len(bs)), counts)
        for t0 in (blk + rng.random(len(blk))) * HOP_SEC:
            d = rng.uniform(0.25, 0.45)
            self._note("eyes", t0, d, "blink", ("eyes", "v"))
            m = int(d * fs)
            x = np.arange(m) / m
            w = np.sin(np.pi * x**0.6) ** 2  # fast rise, slower fall
            _add(v, int(t0 * fs), (rng.uniform(100, 250) * g * w).astype(np.float32))
        # AC coupling of the EOG amplifier (first-order high-pass, ~0.16 Hz)
        a = np.exp(-2 * np.pi * 0.16 / fs)
        bcoef, acoef = [(1 + a) / 2, -(1 + a) / 2], [1, -a]
        h = lfilter(bcoef, acoef, h).astype(np.float32)
        v = lfilter(bcoef, acoef, v).astype(np.float32)
        self._eyes = (h, v)
        return self._eyes

    def _rem_movements(self, h: np.ndarray, v: np.ndarray) -> None:
        """Rapid eye movements of REM sleep, added to the gaze signals ``h``/``v`` (µV at E1/E2).

        Each is a brief deflection: a smooth rise (0.12-0.35 s; real REMs reach ~80-90 µV at
        ~350 µV/s on LOC/ROC), a short hold, and a return towards the centre, with an oblique
        (vertical) part of random size, so LOC and ROC are strongly but not perfectly
        anti-correlated. Bursts: movements come in clusters whose density follows the epoch's
        phasic level.
        """
        rng, g, fs = self._rng("rem-movements"), self.p["eog_scale"], self.fs
        bs = self.block_stage
        rem_b = np.repeat(self.rem_phasic, self.bpe)
        counts = rng.poisson(np.where(bs == REM, _REM_EM_RATE * rem_b, 0.0) * HOP_SEC)
        blk = np.repeat(np.arange(len(bs)), counts)
        self._log["rem"] = []
        for t0 in np.sort((blk + rng.random(len(blk))) * HOP_SEC):
            amp = rng.choice([-1.0, 1.0]) * rng.lognormal(np.log(82.0), 0.35) * g
            rise, hold, back = rng.uniform(0.12, 0.35), rng.uniform(0.05, 0.4), rng.uniform(0.4, 1.2)
            tt = np.arange(int((rise + hold + back) * fs)) / fs
            w = np.where(tt < rise, 0.5 - 0.5 * np.cos(np.pi * tt / rise), 1.0)
            w = np.where(tt > rise + hold, np.exp(-(tt - rise - hold) / (back / 3)), w)
            i0 = int(t0 * fs)
            _add(h, i0, (amp * w).astype(np.float32))
            _add(v, i0, (amp * rng.normal(0.0, _REM_OBLIQUE) * w).astype(np.float32))
            self._note("rem", t0, rise + hold, "rem", ("eyes", "h"))

    # -- heart ------------------------------------------------------------------------------------
    def beats(self) -> np.ndarray:
        if self._beats is None:
            rng, p = self.rng_heart, self.p
            hr_stage = np.array([1.08, 1.02, 0.97, 0.95, 1.04])[self.brain]
            hr_ep = p["heart_rate"] * hr_stage * np.exp(rng.normal(0, 0.03, self.n_epochs))
            total = self.n_epochs * EPOCH_SEC
            t, out = rng.uniform(0, 1.0), []
            while t < total:
                out.append(t)
                hr = hr_ep[min(int(t / EPOCH_SEC), self.n_epochs - 1)]
                t += 60.0 / hr * (1 + 0.04 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 0.015))
            self._beats = np.asarray(out)
        return self._beats

    def ecg_brain(self) -> np.ndarray:
        """Unit-amplitude ECG at BRAIN_FS (pick-up on electrodes), cached."""
        if self._ecg_brain is None:
            self._ecg_brain = self.ecg(self.fs, self.n, amp_uv=1.0)
        return self._ecg_brain

    def ecg(self, fs: float, n: int, amp_uv: float = 1000.0) -> np.ndarray:
        """ECG waveform (µV, lead-II-like) at rate ``fs``."""
        tt = np.arange(int(0.7 * fs)) / fs - 0.25
        waves = [(0.12, -0.17, 0.025), (-0.12, -0.03, 0.01), (1.0, 0.0, 0.012), (-0.25, 0.03, 0.012), (0.3, 0.25, 0.05)]
        tmpl = sum(a * np.exp(-0.5 * ((tt - mu) / sd) ** 2) for a, mu, sd in waves) * amp_uv
        L, off = len(tmpl), int(0.25 * fs)  # the template starts 0.25 s before the R peak
        x = np.zeros(n + L + off, np.float32)
        if L == 0:
            return x[:n]
        start = np.round(self.beats() * fs).astype(np.int64)
        start = start[start < n + off]
        idx = start[:, None] + np.arange(L)[None, :]
        tmpl = tmpl.astype(np.float32)
        # beats i and i + 3 never overlap (template 0.7 s < three RR intervals): vectorised adds
        for k in range(3):
            rows = idx[k::3]
            x[rows.ravel()] += np.tile(tmpl, len(rows))
        return x[off : off + n]

    # -- artefacts --------------------------------------------------------------------------------
    def movement_level(self) -> np.ndarray:
        """Movement artefact level per block (µV): -1 epochs, plus brief bursts in some wake blocks."""
        if self._movement_level is None:
            raw = np.repeat(self.stages, self.bpe)
            lvl = np.where(raw == UNKNOWN, 80.0, 0.0)
            # wake after sleep onset is restless (arousal movements: the real DREAMS in-sleep wake
            # epochs are ~17 µV median with some > 50 µV at C3-A1), wake before it mostly quiet
            sleep = np.flatnonzero(self.block_stage >= N2)  # sleep onset: first N2/N3/REM
            waso = (np.arange(len(lvl)) > sleep[0]) if len(sleep) else np.zeros(len(lvl), bool)
            p_burst = np.where(waso, _WASO_BURST_P, 0.02)
            burst = (self.block_stage == W) & (self.rng_art.random(len(lvl)) < p_burst) & (raw != UNKNOWN)
            size = self.rng_art.lognormal(np.log(_BURST_UV), 0.9, len(lvl))
            lvl = np.where(burst, size, lvl)
            for a0, a1 in _runs(burst):
                self._note("movement", a0 * HOP_SEC, (a1 - a0) * HOP_SEC, "movement", ("all",))
            self._movement_level = _smooth_blocks(lvl, 3)
        return self._movement_level

    def movement(self, rng: np.random.Generator | None = None, fs: float | None = None, n: int | None = None):
        """Movement artefact (slow swings + broadband), None when the night has none. Without ``rng``:
        the component shared by all electrodes (cached); with it: an electrode's own part."""
        lvl = self.movement_level()
        if not lvl.any():
            return None
        if rng is None and self._movement is not None:
            return self._movement
        fs = fs or self.fs
        n = n or self.n
        hop = int(round(HOP_SEC * fs))
        f = np.fft.rfftfreq(2 * hop, 1.0 / fs)
        shapes = np.stack([_bandpass_mag(f, 0.3, 4.0, 1), _bandpass_mag(f, 4.0, min(60.0, 0.45 * fs), 1)])
        if rng is not None:  # electrode-specific part: full in movement (-1) epochs, partial in bursts
            lvl = np.where(np.repeat(self.stages, self.bpe) == UNKNOWN, lvl, _BURST_LOCAL * lvl)
            if not lvl.any():
                return np.zeros(n, np.float32)
        x = block_noise(rng or self.rng_art, np.stack([lvl * 2.0, lvl], axis=1), shapes, hop, n)
        if rng is None:
            self._movement = x
        return x

    # -- electrodes -------------------------------------------------------------------------------
    def electrode(self, name: str) -> np.ndarray:
        """Potential of one electrode (µV at BRAIN_FS), before amplifier noise and line noise."""
        if name in self._electrode_cache:
            return self._electrode_cache[name]
        region = _region(name)
        mix, gain = _SCALP[region]
        if region == "E":  # E2 sits above the eye, nearer frontal cortex, than E1 below it
            gain = gain * (1.2 if _side(name) > 0 else 0.8)
        mix = (np.asarray(mix) / np.linalg.norm(mix) * gain).astype(np.float32)
        P = self.patches()
        x = mix[0] * P[0]
        x += mix[1] * P[1]
        x += mix[2] * P[2]
        side = _side(name)
        ev = self.events()
        ri = _REGION_INDEX[region]
        lat = 1.0 + 0.05 * side  # tiny hemispheric asymmetry
        for k, topo in _EVENT_TOPO.items():
            x += np.float32(topo[ri] * lat) * ev[k]
        h, v = self.eyes()
        hg, vg = _eye_gain(name)
        if hg:
            x += np.float32(hg) * h
        if vg:
            x += np.float32(vg) * v
        erng = self._rng("electrode:" + name)
        # local (electrode-specific) background: a shifted copy of a shared noise bank (shifts of
        # 4-60 s make the copies uncorrelated while the stage envelope stays aligned to ~1 epoch)
        x += np.float32(0.3 if region != "M" else 0.15) * _shifted(self.local_bank(), erng, self.fs)
        # ECG pick-up (strongest on mastoids, left more)
        ecg_gain = {"M": 7.0 if side < 0 else 4.0, "E": 2.0}.get(region, 1.0)
        x += np.float32(ecg_gain) * self.ecg_brain()
        # sweat: slow (<0.3 Hz) drift in episodes
        sweat = self._sweat(erng, name)
        if sweat is not None:
            x += sweat
        # electrode pops: step + exponential recovery
        hours = self.n_epochs * EPOCH_SEC / 3600
        self._log["pop:" + name] = []
        for t0 in erng.uniform(0, self.n / self.fs, erng.poisson(self.p["pop_rate_per_hour"] * hours)):
            tau = erng.uniform(0.2, 1.5)
            m = int(5 * tau * self.fs)
            self._note("pop:" + name, t0, 3 * tau, "pop", ("electrode", name))
            w = erng.choice([-1, 1]) * erng.uniform(100, 400) * np.exp(-np.arange(m) / (tau * self.fs))
            _add(x, int(t0 * self.fs), w.astype(np.float32))
        mv = self.movement()
        if mv is not None:
            x += np.float32(erng.uniform(0.2, 0.6)) * mv + self.movement(erng)
        self._electrode_cache[name] = x
        return x

    def local_bank(self) -> np.ndarray:
        if self._local_bank is None:
            f = np.fft.rfftfreq(2 * self.hop, 1.0 / self.fs)
            pink = (_bandpass_mag(f, 0.3, 40.0, 2) / np.sqrt(np.maximum(f, 0.3)))[None]
            self._local_bank = block_noise(self._rng("local"), self.block_amps[:, 0:1], pink, self.hop, self.n)
        return self._local_bank

    def fast_bank(self, sfreq: float, n: int) -> np.ndarray:
        """Amplifier noise + scalp muscle activity at a channel rate (shared bank, see local_bank)."""
        if sfreq not in self._fast_banks:
            hop = int(round(HOP_SEC * sfreq))
            f = np.fft.rfftfreq(2 * hop, 1.0 / sfreq)
            shapes = np.stack([np.ones_like(f), _bandpass_mag(f, 20.0, None, 2)])
            muscle = np.where(self.block_stage == W, 0.1, 0.03) * self.block_emg
            amps = np.stack([np.full_like(muscle, self.p["noise_uv"]), muscle], axis=1)
            self._fast_banks[sfreq] = block_noise(self._rng(f"fast:{sfreq}"), amps, shapes, hop, n)
        return self._fast_banks[sfreq]

    def _sweat(self, erng: np.random.Generator, name: str) -> np.ndarray | None:
        """Slow (0.02-0.3 Hz) electrode drift during sweat episodes; None when the night has none."""
        ep = np.zeros(self.n_epochs)
        n_ep = erng.poisson(4 * self.p["sweat"] * self.n_epochs / 960)
        for c in erng.integers(0, self.n_epochs, n_ep):
            ep[c : c + int(erng.integers(10, 80))] = erng.uniform(15, 60)
        return self._sweat_drift(erng, ep, name)

    def _sweat_drift(self, erng: np.random.Generator, ep: np.ndarray, name: str) -> np.ndarray | None:
        for a0, a1 in _runs(ep > 0):
            self._note("sweat:" + name, a0 * EPOCH_SEC, (a1 - a0) * EPOCH_SEC, "sweat", ("electrode", name))
        if not ep.any():
            return None
        fs_l = 1.0
        n_l = int(self.n_epochs * EPOCH_SEC * fs_l) + 2
        z = np.fft.rfft(erng.standard_normal(n_l))
        fl = np.fft.rfftfreq(n_l, 1 / fs_l)
        d = np.fft.irfft(z * _bandpass_mag(fl, 0.02, 0.3, 1), n_l)
        d /= max(d.std(), 1e-12)
        d *= np.interp(np.arange(n_l) / fs_l, (np.arange(self.n_epochs) + 0.5) * EPOCH_SEC, ep)
        return np.interp(self.time(), np.arange(n_l) / fs_l, d).astype(np.float32)

    def time(self) -> np.ndarray:
        if self._time is None:
            self._time = np.arange(self.n, dtype=np.float64) / self.fs
        return self._time

    # -- chin -------------------------------------------------------------------------------------
    def chin(self, fs: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """Bipolar chin EMG (µV) at ``fs``: 10 Hz+ noise following the stage, twitches, ECG."""
        hop = int(round(HOP_SEC * fs))
        f = np.fft.rfftfreq(2 * hop, 1.0 / fs)
        shape = _bandpass_mag(f, 10.0, min(120.0, 0.45 * fs), 2)[None]
        x = block_noise(rng, self.block_emg[:, None], shape, hop, n)
        mv = self.movement()
        # phasic twitches: REM (phasic-density driven), rare in NREM
        b = self.brain
        rate = np.select([b == REM, b == N2, b == N1], [1.0 + 3.0 * self.rem_phasic, 0.3, 0.5], 0.0)
        trng = self._rng("twitches")
        counts = trng.poisson(rate)
        ep = np.repeat(np.arange(self.n_epochs), counts)
        self._log["chin"] = []
        for t0 in (ep + trng.random(len(ep))) * EPOCH_SEC:
            m = max(int(trng.uniform(0.05, 0.25) * fs), 3)
            self._note("chin", t0, m / fs, "twitch", ("chin",))
            w = rng.standard_normal(m) * np.hanning(m) * trng.uniform(8, 30) * self.p["emg_scale"]
            _add(x, int(t0 * fs), w.astype(np.float32))
        x += self.ecg(fs, n, amp_uv=8.0)
        if mv is not None:
            x += self.movement(rng, fs, n)
        return x


# ------------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------------


def _hardware(rng: np.random.Generator, spread: float = 1.0) -> dict:
    """Per-recording amplifier: analog high-pass (first order), optional low-pass, gain error."""
    hp_max = 0.3 if spread <= 1 else 0.7
    return {
        "highpass_hz": float(np.exp(rng.uniform(np.log(0.05), np.log(hp_max)))),
        "lowpass_hz": [None, 35.0, 45.0, 70.0, 100.0][int(rng.integers(0, 5))] if spread <= 1 else
        [None, 25.0, 30.0, 35.0, 45.0, 70.0][int(rng.integers(0, 6))],
        "gain_sd": 0.03 * spread,
    }


def _amplifier(x: np.ndarray, sfreq: float, hw: dict, crng: np.random.Generator) -> np.ndarray:
    """Apply the recording's analog filters (causal, like the real front end) and a channel gain."""
    from scipy.signal import butter, sosfilt

    hp = hw["highpass_hz"] * float(np.exp(crng.normal(0, 0.1)))  # per-site component tolerance
    sos = [butter(1, hp, "highpass", fs=sfreq, output="sos")]
    lp = hw["lowpass_hz"]
    if lp is not None and lp < 0.45 * sfreq:
        sos.append(butter(2, lp, "lowpass", fs=sfreq, output="sos"))
    y = sosfilt(np.concatenate(sos), x.astype(np.float64))
    return (y * (1.0 + crng.normal(0, hw["gain_sd"]))).astype(np.float32)


def simulate_sites(
    stages: np.ndarray,
    channels: dict[str, tuple[str, float]],
    rng: np.random.Generator,
    subject_params: dict,
    n3_depth: np.ndarray | None = None,
    events: list | None = None,
) -> dict[str, np.ndarray]:
    """Simulate several channels of one night.

    ``channels`` maps an output name to ``(site, sfreq)``. A site is a derivation ``"C4-M1"``
    (amplifier difference: common-mode noise cancels), a single electrode ``"C3"``/``"M2"``
    (unreferenced: carries the common-mode line noise and drift of the recording system),
    ``"CHIN"`` (bipolar chin EMG) or ``"ECG"``. Aliases: A1/A2 = M1/M2, LOC/ROC = E1/E2.
    ``stages``: one code per 30 s (0-4, -1 movement/unknown). ``n3_depth`` (per epoch, 0-1): share
    of slow waves in N3 epochs (deep N3 ~ R&K stage 4). Returns volts (float64), 30 s * sfreq samples
    per epoch. ``events``: a list that, when given, receives one dict per placed event (``onset``,
    ``duration`` in s from the start, ``kind``, ``channels``: comma-separated requested sites it
    reaches, or ``all``), sorted by onset; events reaching none of the requested sites are left out.
    """
    stages = np.asarray(stages)
    night = _Night(stages, subject_params, n3_depth)
    p = subject_params
    line_f = float(p.get("line_freq", 50.0))
    out = {}
    base_seed = int(rng.integers(2**62))
    dur = len(stages) * EPOCH_SEC
    phasors: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def line(sfreq: float, n: int, amp: float, phase: float) -> np.ndarray:
        if sfreq not in phasors:  # exact periodic sin/cos, tiled (cheap, no float32 phase error)
            r = Fraction(line_f / sfreq).limit_denominator(100000)
            ph = 2 * np.pi * ((np.arange(r.denominator) * r.numerator) % r.denominator) / r.denominator
            phasors[sfreq] = (np.resize(np.sin(ph).astype(np.float32), n), np.resize(np.cos(ph).astype(np.float32), n))
        sn, cs = phasors[sfreq]
        out = np.float32(amp * np.cos(phase)) * sn
        out += np.float32(amp * np.sin(phase)) * cs
        return out

    hw = _hardware(night._rng("hardware"), float(p.get("spread", 1.0)))
    for name, (site, sfreq) in channels.items():
        sfreq = float(sfreq)
        n = int(round(dur * sfreq))
        if abs(n - dur * sfreq) > 1e-6:
            raise ValueError(f"{name}: 30 s * {sfreq} Hz is not a whole number of samples")
        crng = np.random.default_rng([base_seed, zlib.crc32(name.encode())])
        a, b = parse_site(site)
        if a == "CHIN":
            x = night.chin(sfreq, n, crng)
        elif a == "ECG":
            x = night.ecg(sfreq, n) + crng.standard_normal(n, dtype=np.float32) * np.float32(10.0)
        else:
            xb = night.electrode(a) if b is None else night.electrode(a) - night.electrode(b)
            x = resample(xb, night.fs, sfreq, n).astype(np.float32)
            # amplifier noise + scalp muscle (strong in wake / movement)
            x += _shifted(night.fast_bank(sfreq, n), crng, sfreq)
            # line noise: small residual from electrode impedance imbalance ...
            if sfreq > 2 * line_f:
                x += line(sfreq, n, p["line_residual_uv"] * crng.uniform(0.3, 1.5), crng.uniform(0, 2 * np.pi))
            # ... and a large common mode (plus slow drift) on unreferenced channels
            if b is None:
                cm = night._rng("common-mode")
                ph = cm.uniform(0, 2 * np.pi)
                if sfreq > 2 * line_f:
                    x += line(sfreq, n, p["line_common_uv"], ph)
                x += (20.0 * np.sin(2 * np.pi * 0.01 * np.arange(n) / sfreq + ph)).astype(np.float32)
            x = _amplifier(x, sfreq, hw, crng)
        out[name] = np.multiply(x, 1e-6, dtype=np.float64)
    if events is not None:
        sites = list(dict.fromkeys(site for site, _ in channels.values()))
        for onset, duration, kind, scope in night.event_log():
            where = event_sites(scope, sites)
            if where:
                events.append({"onset": onset, "duration": duration, "kind": kind, "channels": where})
    return out


def simulate_site(
    stages: np.ndarray, site: str, sfreq: float, rng: np.random.Generator, subject_params: dict
) -> np.ndarray:
    """One channel (volts); see :func:`simulate_sites`. Shared sources come from
    ``subject_params["seed"]``, so E1 and E2 simulated in separate calls are still coupled."""
    return simulate_sites(stages, {site: (site, sfreq)}, rng, subject_params)[site]
