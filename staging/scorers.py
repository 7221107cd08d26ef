"""Several scorers of one night: consensus, inter-scorer agreement, and agreement of the sleep
statistics over many nights (Bland–Altman).

**Consensus** (as in the Dreem Open Datasets study, Guillot et al. 2020, and SOMNUS): per epoch,
the stage most scorers gave (majority vote over the scorers who scored it; an unscored epoch,
−1, casts no vote). **Tie rule**: among the tied stages, the one given by the most reliable of
the scorers who voted for a tied stage, where a scorer's reliability on the night is its mean
Cohen's κ with each of the other scorers (ties in reliability: the scorer listed first). An
epoch no scorer scored is −1 in the consensus.

A scorer is compared with the consensus of the *others* (leave-one-out, so that it is not
graded against its own votes); the model is compared with the consensus of all scorers.

**Bland–Altman** (Bland & Altman 1986, as ``yasa.SleepStatsAgreement`` without covariates):
per statistic, over nights, ``difference = observed − reference``, ``bias`` = the mean
difference, ``sd`` = its sample standard deviation (n − 1), limits of agreement
``bias ± 1.96 × sd``. Nights where either value does not exist (no REM: no REM latency) are
left out of that statistic.
"""

from __future__ import annotations

import numpy as np

UNSCORED = -1
AGREEMENT_Z = 1.96
"""Half-width of the limits of agreement in standard deviations (95 % of normal differences)."""
BA_STATISTICS = ("TST", "SE", "WASO", "SOL", "REM_latency", "W", "N1", "N2", "N3", "REM")
"""Statistics compared over nights (minutes, SE in %; :mod:`staging.stats`)."""


def kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's κ of two hypnograms over epochs scored in both (None when none is).

    >>> kappa(np.array([0, 0, 2, 2]), np.array([0, 0, 2, 4]))
    0.6
    """
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a, int), np.asarray(b, int)
    ok = (a >= 0) & (b >= 0)
    if not ok.any():
        return None
    if len(set(a[ok].tolist()) | set(b[ok].tolist())) == 1:  # one stage only: κ is 0/0
        return 1.0
    return round(float(cohen_kappa_score(a[ok], b[ok], labels=[0, 1, 2, 3, 4])), 6)


def reliability(scorings: np.ndarray) -> np.ndarray:
    """Each scorer's mean Cohen's κ with the other scorers (the tie-breaking order).

    Parameters
    ----------
    scorings : ndarray, shape (n_scorers, n_epochs)
    """
    k = len(scorings)
    if k < 2:
        return np.ones(k)
    m = pairwise_kappa(scorings)
    return np.array([np.mean([m[i][j] if m[i][j] is not None else 0.0 for j in range(k) if j != i])
                     for i in range(k)])


def consensus(scorings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Majority-vote consensus with the tie rule of the module docstring.

    Parameters
    ----------
    scorings : ndarray of int, shape (n_scorers, n_epochs)
        Stages 0..4, −1 unscored.
    weights : ndarray, optional
        Reliability of each scorer (default :func:`reliability`); only its order matters.

    Examples
    --------
    >>> s = np.array([[0, 2, 2, 4], [0, 2, 3, 3], [1, 3, 3, 4]])
    >>> consensus(s).tolist()   # epoch 1: 2 votes N2; epoch 2: 2 votes N3
    [0, 2, 3, 4]
    """
    s = np.asarray(scorings, int)
    rel = reliability(s) if weights is None else np.asarray(weights, float)
    order = sorted(range(len(s)), key=lambda i: (-rel[i], i))  # most reliable first
    out = np.full(s.shape[1], UNSCORED, dtype=int)
    for e in range(s.shape[1]):
        votes = s[:, e]
        counts = np.bincount(votes[votes >= 0], minlength=5)
        if counts.sum() == 0:
            continue
        tied = np.flatnonzero(counts == counts.max())
        if tied.size == 1:
            out[e] = tied[0]
        else:
            out[e] = next(votes[i] for i in order if votes[i] in tied)
    return out


def pairwise_kappa(scorings: np.ndarray) -> list[list[float | None]]:
    """Cohen's κ of every pair (a symmetric matrix, 1 on the diagonal)."""
    k = len(scorings)
    m: list[list[float | None]] = [[1.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            m[i][j] = m[j][i] = kappa(scorings[i], scorings[j])
    return m


def inter_scorer_kappa(scorings: np.ndarray) -> float | None:
    """Mean Cohen's κ over the pairs of scorers."""
    k = len(scorings)
    vals = [v for i in range(k) for j in range(i + 1, k) if (v := kappa(scorings[i], scorings[j])) is not None]
    return round(float(np.mean(vals)), 6) if vals else None


def leave_one_out(scorings: np.ndarray, i: int) -> np.ndarray:
    """Consensus of every scorer but ``i`` (the reliability order is that of the others alone)."""
    return consensus(np.delete(np.asarray(scorings, int), i, axis=0))


def bland_altman(observed, reference) -> dict:
    """Bias and 95 % limits of agreement of paired values (None values dropped pairwise).

    Returns
    -------
    dict
        ``n``, ``bias`` (mean of observed − reference), ``sd`` (sample SD, n − 1),
        ``loa_lower``, ``loa_upper`` (bias ∓ 1.96 sd), ``mean_abs_diff``; None where n is too small.

    Examples
    --------
    >>> bland_altman([10, 12, 11], [9, 9, 9])["bias"], bland_altman([10, 12, 11], [9, 9, 9])["sd"]
    (2.0, 1.0)
    """
    pairs = [(float(o), float(r)) for o, r in zip(observed, reference) if o is not None and r is not None]
    d = np.array([o - r for o, r in pairs])
    out = {"n": int(d.size), "bias": None, "sd": None, "loa_lower": None, "loa_upper": None,
           "mean_abs_diff": None}
    if d.size == 0:
        return out
    out["bias"] = round(float(d.mean()), 6)
    out["mean_abs_diff"] = round(float(np.abs(d).mean()), 6)
    if d.size >= 2:
        sd = float(d.std(ddof=1))
        out.update(sd=round(sd, 6), loa_lower=round(float(d.mean() - AGREEMENT_Z * sd), 6),
                   loa_upper=round(float(d.mean() + AGREEMENT_Z * sd), 6))
    return out


def statistics_agreement(observed: list[dict], reference: list[dict], keys=BA_STATISTICS) -> dict:
    """:func:`bland_altman` of each statistic over nights (lists of :func:`sleep_statistics` dicts)."""
    return {k: bland_altman([o.get(k) for o in observed], [r.get(k) for r in reference]) for k in keys}


def plot_bland_altman(path, observed: list[dict], reference: list[dict], title: str = "",
                      keys=BA_STATISTICS) -> None:
    """One Bland–Altman panel per statistic: difference against the mean of the two, bias and
    limits of agreement as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from preprocess.core.atomic import atomic_write

    from .stats import UNITS

    cols = 5
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        pairs = [(o.get(key), r.get(key)) for o, r in zip(observed, reference)]
        pairs = [(float(a), float(b)) for a, b in pairs if a is not None and b is not None]
        ba = bland_altman([a for a, _ in pairs], [b for _, b in pairs])
        if pairs:
            mean = [(a + b) / 2 for a, b in pairs]
            diff = [a - b for a, b in pairs]
            ax.scatter(mean, diff, s=14, color="#3d7ea6")
        for v, style in ((ba["bias"], "-"), (ba["loa_lower"], "--"), (ba["loa_upper"], "--")):
            if v is not None:
                ax.axhline(v, color="#d62728" if style == "-" else "0.4", ls=style, lw=1)
        bias = "n/a" if ba["bias"] is None else f"{ba['bias']:.1f}"
        loa = "" if ba["loa_lower"] is None else f" [{ba['loa_lower']:.1f}, {ba['loa_upper']:.1f}]"
        ax.set_title(f"{key} ({UNITS.get(key, '')}): bias {bias}{loa}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.supxlabel("mean of the two", fontsize=9)
    fig.supylabel("observed − reference", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


__all__ = ["AGREEMENT_Z", "BA_STATISTICS", "UNSCORED", "bland_altman", "consensus", "inter_scorer_kappa", "kappa",
           "leave_one_out", "pairwise_kappa", "plot_bland_altman", "reliability", "statistics_agreement"]
