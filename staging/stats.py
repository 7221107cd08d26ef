"""AASM-style sleep statistics of a hypnogram.

Definitions (all durations in minutes, epochs of ``epoch_seconds``; the recording's whole
timeline is the time in bed because an EDF carries no lights-off/on times):

- ``TIB``  time in bed = number of epochs × epoch length.
- sleep onset = first epoch scored N1, N2, N3 or REM.
- final awakening = the epoch after the last sleep epoch.
- ``SPT``  sleep period time = sleep onset → last sleep epoch, inclusive.
- ``TST``  total sleep time = epochs scored N1, N2, N3 or REM.
- ``SE``   sleep efficiency (%) = TST / TIB × 100.
- ``SOL``  sleep onset latency = recording start → sleep onset.
- ``WASO`` wake after sleep onset = W epochs inside the sleep period (after onset, before the
  final awakening).
- ``REM_latency`` = sleep onset → first REM epoch (not from lights off).
- ``N1``…``REM`` minutes per stage, and ``N1_pct``…``REM_pct`` = percent of TST.
- ``awakenings`` = runs of ≥ 1 consecutive W epoch inside the sleep period.
- ``W`` minutes of W over the whole recording (before onset, WASO and after final awakening).

Quantities that do not exist (no sleep: SOL, WASO, REM latency, SPT; no REM: REM latency)
are ``None`` (``null`` in JSON). Epochs with an unknown stage (−1) count in TIB only.
"""

from __future__ import annotations

import numpy as np

from preprocess.core.stages import N1, N2, N3, REM, STAGE_NAMES, W

SLEEP = (N1, N2, N3, REM)


def _runs(mask: np.ndarray) -> int:
    """Number of runs of consecutive True values."""
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return 0
    return int(m[0]) + int(np.count_nonzero(m[1:] & ~m[:-1]))


def sleep_statistics(stages, epoch_seconds: float = 30.0) -> dict:
    """Compute the statistics defined in the module docstring.

    Parameters
    ----------
    stages : array-like of int
        One stage per epoch, W=0, N1=1, N2=2, N3=3, REM=4 (−1 unknown).
    epoch_seconds : float
        Epoch length (s).

    Returns
    -------
    dict
        Keys ``TIB, TST, SE, SOL, WASO, SPT, REM_latency, W, N1, N2, N3, REM, N1_pct, N2_pct,
        N3_pct, REM_pct, awakenings, n_epochs, epoch_seconds`` (minutes unless stated).

    Examples
    --------
    >>> s = sleep_statistics([0, 0, 1, 2, 0, 2, 4, 0])
    >>> s["TST"], s["SOL"], s["WASO"], s["awakenings"], s["REM_latency"]
    (2.0, 1.0, 0.5, 1, 2.0)
    """
    s = np.asarray(stages, dtype=int).ravel()
    if s.size == 0:
        raise ValueError("empty hypnogram")
    minutes = epoch_seconds / 60.0
    sleep = np.isin(s, SLEEP)
    n_sleep = int(sleep.sum())
    out: dict = {"n_epochs": int(s.size), "epoch_seconds": float(epoch_seconds)}
    out["TIB"] = s.size * minutes
    out["TST"] = n_sleep * minutes
    out["SE"] = 100.0 * n_sleep / s.size
    for code, name in enumerate(STAGE_NAMES):
        out[name] = int(np.count_nonzero(s == code)) * minutes
    for name, code in zip(STAGE_NAMES[1:], SLEEP):
        out[f"{name}_pct"] = 100.0 * np.count_nonzero(s == code) / n_sleep if n_sleep else 0.0
    if n_sleep == 0:
        out.update(SOL=None, WASO=None, SPT=None, REM_latency=None, awakenings=0)
        return _order(out)
    onset = int(np.argmax(sleep))
    last = int(s.size - 1 - np.argmax(sleep[::-1]))
    period = s[onset:last + 1]
    out["SOL"] = onset * minutes
    out["SPT"] = period.size * minutes
    out["WASO"] = int(np.count_nonzero(period == W)) * minutes
    out["awakenings"] = _runs(period == W)
    rem = np.flatnonzero(s == REM)
    out["REM_latency"] = (int(rem[0]) - onset) * minutes if rem.size else None
    return _order(out)


_KEY_ORDER = ("TIB", "TST", "SE", "SOL", "WASO", "SPT", "REM_latency", "awakenings", "W", "N1", "N2",
              "N3", "REM", "N1_pct", "N2_pct", "N3_pct", "REM_pct", "n_epochs", "epoch_seconds")


def _order(d: dict) -> dict:
    return {k: (round(d[k], 4) if isinstance(d[k], float) else d[k]) for k in _KEY_ORDER}


UNITS = {
    "TIB": "min", "TST": "min", "SE": "%", "SOL": "min", "WASO": "min", "SPT": "min", "REM_latency": "min",
    "awakenings": "count", "W": "min", "N1": "min", "N2": "min", "N3": "min", "REM": "min",
    "N1_pct": "% of TST", "N2_pct": "% of TST", "N3_pct": "% of TST", "REM_pct": "% of TST",
    "n_epochs": "count", "epoch_seconds": "s",
}
"""Unit of each statistic (written next to the values in ``NAME.stats.json``)."""
