"""AASM-style sleep statistics of a hypnogram.

Definitions (all durations in minutes, epochs of ``epoch_seconds``). Statistics are computed on
the time in bed: the epochs whose midpoint lies between lights-off and lights-on (``lights``),
or the whole recording when the lights are unknown; the times below are from lights-off.

- ``TIB``  time in bed = number of epochs in bed × epoch length.
- ``lights_off``, ``lights_on`` = start and end of the time in bed, minutes from the recording
  start (epoch-aligned).
- sleep onset = first epoch scored N1, N2, N3 or REM.
- final awakening = the epoch after the last sleep epoch.
- ``SPT``  sleep period time = sleep onset → last sleep epoch, inclusive.
- ``TST``  total sleep time = epochs scored N1, N2, N3 or REM.
- ``SE``   sleep efficiency (%) = TST / TIB × 100.
- ``SOL``  sleep onset latency = lights-off → sleep onset.
- ``LPS``  latency to persistent sleep = lights-off → first epoch of the first 10 min
  (20 epochs of 30 s) of uninterrupted sleep (any of N1, N2, N3, REM).
- ``SME``  sleep maintenance efficiency (%) = TST / SPT × 100.
- ``SFI``  sleep fragmentation index (per hour) = transitions from a sleep stage to W / TST in h
  (the YASA definition).
- ``N1_latency``, ``N2_latency``, ``N3_latency`` = sleep onset → first epoch of that stage.
- ``REM_latency_lights`` = lights-off → first REM epoch (= SOL + REM_latency).
- ``n_transitions`` = stage changes between consecutive epochs in bed; ``transitions`` = the
  matrix of counts ``transitions[from][to]`` over W, N1, N2, N3, REM (diagonal = epochs that keep
  their stage).
- ``cycles`` = NREM–REM cycles. Rule: REM runs separated by less than 15 min are one REM period;
  the first cycle starts at sleep onset and every cycle ends with the last epoch of a REM period;
  a cycle counts only if it holds at least 15 min of NREM (N1–N3) before its REM period,
  otherwise that REM period joins the next cycle; sleep after the last REM period (no REM) is not
  a cycle. ``cycle_minutes`` = the duration of each counted cycle.
- ``WASO`` wake after sleep onset = W epochs inside the sleep period (after onset, before the
  final awakening).
- ``REM_latency`` = sleep onset → first REM epoch (AASM; YASA's ``Lat_REM`` is
  ``REM_latency_lights``).
- ``N1``…``REM`` minutes per stage, and ``N1_pct``…``REM_pct`` = percent of TST.
- ``awakenings`` = runs of ≥ 1 consecutive W epoch inside the sleep period.
- ``W`` minutes of W over the whole recording (before onset, WASO and after final awakening).

Quantities that do not exist (no sleep: SOL, WASO, latencies, SPT, SME, SFI; no REM: REM
latencies; no persistent sleep: LPS) are ``None`` (``null`` in JSON). Epochs with an unknown stage
(−1) count in TIB only.
"""

from __future__ import annotations

import numpy as np

from preprocess.core.stages import N1, N2, N3, REM, STAGE_NAMES, W

SLEEP = (N1, N2, N3, REM)
EDF_TEXT = ("Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage N3", "Sleep stage R")
"""EDF+ annotation text of W, N1, N2, N3, REM (the AASM wording EDF+ scorings use)."""


def _runs(mask: np.ndarray) -> int:
    """Number of runs of consecutive True values."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return 0
    return int(m[0]) + int(np.count_nonzero(m[1:] & ~m[:-1]))


def tib_mask(n_epochs: int, lights=None, epoch_seconds: float = 30.0) -> np.ndarray:
    """Epochs in bed: midpoint between lights-off and lights-on (NaN/None = recording edge).

    Parameters
    ----------
    n_epochs : int
    lights : (float or None, float or None), optional
        Lights-off and lights-on, seconds from the recording start.
    epoch_seconds : float

    Examples
    --------
    >>> tib_mask(6, (60.0, 150.0)).astype(int).tolist()  # epochs 2, 3, 4 (midpoints 75, 105, 135 s)
    [0, 0, 1, 1, 1, 0]
    """
    mid = (np.arange(n_epochs) + 0.5) * epoch_seconds
    mask = np.ones(n_epochs, dtype=bool)
    if lights is None:
        return mask
    off, on = lights
    if off is not None and np.isfinite(off):
        mask &= mid >= off
    if on is not None and np.isfinite(on):
        mask &= mid <= on
    return mask


def sleep_statistics(stages, epoch_seconds: float = 30.0, lights=None) -> dict:
    """Compute the statistics defined in the module docstring.

    Parameters
    ----------
    stages : array-like of int
        One stage per epoch, W=0, N1=1, N2=2, N3=3, REM=4 (−1 unknown).
    epoch_seconds : float
        Epoch length (s).
    lights : (float or None, float or None), optional
        Lights-off and lights-on in seconds from the recording start (None/NaN = recording edge).

    Returns
    -------
    dict
        Keys of :data:`UNITS` (minutes unless stated).

    Raises
    ------
    ValueError
        Empty hypnogram, or lights that leave no epoch in bed.

    Examples
    --------
    >>> s = sleep_statistics([0, 0, 1, 2, 0, 2, 4, 0])
    >>> s["TST"], s["SOL"], s["WASO"], s["awakenings"], s["REM_latency"]
    (2.0, 1.0, 0.5, 1, 2.0)
    >>> sleep_statistics([0, 0, 1, 2, 0, 2, 4, 0], lights=(30.0, None))["SOL"]  # lights-off at 30 s
    0.5
    """
    full = np.asarray(stages, dtype=int).ravel()
    if full.size == 0:
        raise ValueError("empty hypnogram")
    in_bed = tib_mask(full.size, lights, epoch_seconds)
    if not in_bed.any():
        raise ValueError(f"lights-off/on {lights} leave no epoch in bed")
    first_in_bed = int(np.argmax(in_bed))
    s = full[in_bed]
    minutes = epoch_seconds / 60.0
    sleep = np.isin(s, SLEEP)
    n_sleep = int(sleep.sum())
    out: dict = {"n_epochs": int(full.size), "epoch_seconds": float(epoch_seconds)}
    out["lights_off"] = first_in_bed * minutes
    out["lights_on"] = (first_in_bed + s.size) * minutes
    out["TIB"] = s.size * minutes
    out["TST"] = n_sleep * minutes
    out["SE"] = 100.0 * n_sleep / s.size
    for code, name in enumerate(STAGE_NAMES):
        out[name] = int(np.count_nonzero(s == code)) * minutes
    for name, code in zip(STAGE_NAMES[1:], SLEEP):
        out[f"{name}_pct"] = 100.0 * np.count_nonzero(s == code) / n_sleep if n_sleep else 0.0
    out.update(_transitions(s))
    none = dict.fromkeys(("SOL", "WASO", "SPT", "REM_latency", "REM_latency_lights", "N1_latency",
                          "N2_latency", "N3_latency", "LPS", "SME", "SFI"))
    if n_sleep == 0:
        out.update(none, awakenings=0, cycles=0, cycle_minutes=[])
        return _order(out)
    onset = int(np.argmax(sleep))
    last = int(s.size - 1 - np.argmax(sleep[::-1]))
    period = s[onset:last + 1]
    out["SOL"] = onset * minutes
    out["SPT"] = period.size * minutes
    out["WASO"] = int(np.count_nonzero(period == W)) * minutes
    out["awakenings"] = _runs(period == W)
    out["SME"] = 100.0 * n_sleep / period.size
    to_wake = int(np.count_nonzero(np.isin(s[:-1], SLEEP) & (s[1:] == W)))
    out["SFI"] = to_wake / (n_sleep * minutes / 60.0)
    for name, code in zip(("N1", "N2", "N3", "REM"), SLEEP):
        hit = np.flatnonzero(s == code)
        out[f"{name}_latency"] = (int(hit[0]) - onset) * minutes if hit.size else None
    out["REM_latency_lights"] = None if out["REM_latency"] is None else out["SOL"] + out["REM_latency"]
    persistent = _first_run(sleep, int(np.ceil(10.0 / minutes - 1e-9)))
    out["LPS"] = None if persistent is None else persistent * minutes
    cycles = nrem_rem_cycles(s, epoch_seconds)
    out["cycles"] = len(cycles)
    out["cycle_minutes"] = [round((b - a) * minutes, 4) for a, b in cycles]
    return _order(out)


def _first_run(mask: np.ndarray, length: int) -> int | None:
    """Index of the first run of at least ``length`` consecutive True values."""
    run = 0
    for i, v in enumerate(mask):
        run = run + 1 if v else 0
        if run >= length:
            return i - length + 1
    return None


def _transitions(s: np.ndarray) -> dict:
    """Transition counts between consecutive epochs (unknown epochs break the chain)."""
    m = np.zeros((5, 5), dtype=int)
    a, b = s[:-1], s[1:]
    ok = (a >= 0) & (b >= 0)
    np.add.at(m, (a[ok], b[ok]), 1)
    matrix = {STAGE_NAMES[i]: {STAGE_NAMES[j]: int(m[i, j]) for j in range(5)} for i in range(5)}
    return {"n_transitions": int(m.sum() - np.trace(m)), "transitions": matrix}


def nrem_rem_cycles(stages, epoch_seconds: float = 30.0, merge_minutes: float = 15.0,
                    min_nrem_minutes: float = 15.0) -> list[tuple[int, int]]:
    """NREM–REM cycles as ``(first epoch, last epoch + 1)`` pairs (rule in the module docstring).

    Examples
    --------
    >>> hyp = [0] + [2] * 40 + [4] * 10 + [2] * 40 + [4] * 5 + [0] * 3
    >>> nrem_rem_cycles(hyp)     # onset at 1; REM ends at 50 and 95
    [(1, 51), (51, 96)]
    >>> nrem_rem_cycles([2] * 10 + [4] * 4 + [2] * 40 + [4] * 2)   # SOREMP joins the next cycle
    [(0, 56)]
    """
    s = np.asarray(stages, dtype=int)
    per_min = 60.0 / epoch_seconds
    rem = np.flatnonzero(s == REM)
    sleep = np.flatnonzero(np.isin(s, SLEEP))
    if rem.size == 0 or sleep.size == 0:
        return []
    periods: list[list[int]] = [[int(rem[0]), int(rem[0])]]
    for e in rem[1:]:
        if e - periods[-1][1] - 1 < merge_minutes * per_min:
            periods[-1][1] = int(e)
        else:
            periods.append([int(e), int(e)])
    start, cycles = int(sleep[0]), []
    for first, last in periods:
        nrem = int(np.count_nonzero(np.isin(s[start:first], (N1, N2, N3))))
        if nrem >= min_nrem_minutes * per_min:
            cycles.append((start, last + 1))
            start = last + 1
    return cycles


_KEY_ORDER = ("TIB", "TST", "SE", "SOL", "WASO", "SPT", "REM_latency", "awakenings", "W", "N1", "N2",
              "N3", "REM", "N1_pct", "N2_pct", "N3_pct", "REM_pct", "n_epochs", "epoch_seconds",
              "lights_off", "lights_on", "LPS", "SME", "SFI", "N1_latency", "N2_latency", "N3_latency",
              "REM_latency_lights", "n_transitions", "transitions", "cycles", "cycle_minutes")


def _order(d: dict) -> dict:
    return {k: (round(d[k], 4) if isinstance(d[k], float) else d[k]) for k in _KEY_ORDER}


UNITS = {
    "TIB": "min", "TST": "min", "SE": "%", "SOL": "min", "WASO": "min", "SPT": "min", "REM_latency": "min",
    "awakenings": "count", "W": "min", "N1": "min", "N2": "min", "N3": "min", "REM": "min",
    "N1_pct": "% of TST", "N2_pct": "% of TST", "N3_pct": "% of TST", "REM_pct": "% of TST",
    "n_epochs": "count", "epoch_seconds": "s", "lights_off": "min from recording start",
    "lights_on": "min from recording start", "LPS": "min", "SME": "%", "SFI": "per hour of TST",
    "N1_latency": "min", "N2_latency": "min", "N3_latency": "min", "REM_latency_lights": "min",
    "n_transitions": "count", "transitions": "count (from -> to)", "cycles": "count", "cycle_minutes": "min",
}
SCALAR_KEYS = tuple(k for k in _KEY_ORDER if k not in ("transitions", "cycle_minutes"))
"""Statistics that are single numbers (compared by :mod:`staging.evaluate`)."""
"""Unit of each statistic (written next to the values in ``NAME.stats.json``)."""
