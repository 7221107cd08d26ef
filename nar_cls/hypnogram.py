"""Subject features from the staging head's own predicted hypnogram (no stage labels are read).

A REM-pressure effect (short REM latency, more REM) lives in one or two of a subject's 20-epoch
windows; the mean window embedding dilutes it. The backbone's own sleep-staging classifier gives
a stage per 30-s epoch, and a few night-level numbers of that predicted hypnogram carry such an
effect directly. :func:`hypnogram_summary` is the one place where they are computed.

Stage codes follow the design contract: W=0, N1=1, N2=2, N3=3, REM=4 (−1, unknown, is not
produced by a classifier and is ignored: it counts towards no stage and no transition).
"""

from __future__ import annotations

import numpy as np
import torch

from models.windows import add_window_probs
from preprocess.core.stages import N1, N2, N3, REM, W

#: Names (and order) of the values returned by :func:`hypnogram_summary`.
HYPNOGRAM_FEATURES = ("w_share", "n1_share", "n2_share", "n3_share", "rem_share", "sol_min",
                      "rem_latency_min", "rem_censored", "waso_min", "shifts_per_h")


def hypnogram_summary(stages, epoch_s: float = 30.0) -> np.ndarray:
    """Night-level summary of one recording's hypnogram.

    Parameters
    ----------
    stages : array_like of int, shape (n_epochs,)
        Stage of each epoch, in recording order (W=0, N1=1, N2=2, N3=3, REM=4; −1 ignored).
    epoch_s : float
        Epoch length in seconds.

    Returns
    -------
    ndarray, shape (10,)
        In the order of :data:`HYPNOGRAM_FEATURES`:

        ``w_share``            W epochs / scored epochs (time in bed), 0–1
        ``n1_share`` … ``rem_share``  stage epochs / sleep epochs (N1+N2+N3+REM), 0–1 (0 without sleep)
        ``sol_min``            sleep onset latency: minutes from the start to the first sleep epoch
                               (the night's length when there is no sleep)
        ``rem_latency_min``    minutes from sleep onset to the first REM epoch; without REM it is
                               censored at the night's end (minutes from sleep onset to the end)
        ``rem_censored``       1.0 when the night has no REM epoch (latency censored), else 0.0
        ``waso_min``           wake after sleep onset: minutes of W between the first and the last
                               sleep epoch
        ``shifts_per_h``       stage changes between consecutive scored epochs per hour of scored time

    Examples
    --------
    W, W, N1, N2, N2, REM at 30-s epochs: sleep onset after 1 min, REM 1.5 min after it.

    >>> s = hypnogram_summary([0, 0, 1, 2, 2, 4, 4, 0, 2, 2])
    >>> dict(zip(HYPNOGRAM_FEATURES, s.round(3).tolist()))  # doctest: +NORMALIZE_WHITESPACE
    {'w_share': 0.3, 'n1_share': 0.143, 'n2_share': 0.571, 'n3_share': 0.0, 'rem_share': 0.286,
     'sol_min': 1.0, 'rem_latency_min': 1.5, 'rem_censored': 0.0, 'waso_min': 0.5, 'shifts_per_h': 60.0}
    """
    s = np.asarray(stages, dtype=np.int64)
    s = s[s >= 0]
    n = len(s)
    if n == 0:
        raise ValueError("hypnogram_summary: no scored epoch")
    ep_min = epoch_s / 60.0
    sleep = s != W
    n_sleep = int(sleep.sum())
    shares = [float((s == W).sum()) / n] + [float((s == k).sum()) / n_sleep if n_sleep else 0.0
                                             for k in (N1, N2, N3, REM)]
    if n_sleep:
        onset = int(np.argmax(sleep))
        last = n - 1 - int(np.argmax(sleep[::-1]))
        rem = np.flatnonzero(s == REM)
        censored = len(rem) == 0
        rem_latency = ((n if censored else int(rem[0])) - onset) * ep_min
        waso = float((s[onset : last + 1] == W).sum()) * ep_min
    else:  # no sleep: onset and REM both censored at the night's end
        onset, censored, rem_latency, waso = n, True, 0.0, 0.0
    shifts = float((s[1:] != s[:-1]).sum()) / (n * ep_min / 60.0)
    return np.array(shares + [onset * ep_min, rem_latency, float(censored), waso, shifts])


def predicted_stages(stage_prob: np.ndarray, win_rec: np.ndarray, win_start: np.ndarray,
                     n_epochs: np.ndarray) -> list[np.ndarray]:
    """Predicted stage per epoch of every recording from the staging head's window outputs.

    Parameters
    ----------
    stage_prob : ndarray, shape (n_windows, L, 5)
        Softmax of the backbone's staging logits for each evaluation window.
    win_rec, win_start : ndarray of int, shape (n_windows,)
        Recording index and first epoch of each window.
    n_epochs : ndarray of int, shape (n_recordings,)
        Epochs per recording.

    Returns
    -------
    list of ndarray
        Per recording: argmax of the stage probabilities averaged over the windows that cover each
        epoch (−1 where no window covers it).

    Examples
    --------
    >>> p = np.zeros((2, 2, 5)); p[0, :, 0] = 1; p[1, 0, 0] = .4; p[1, 0, 4] = .6; p[1, 1, 4] = 1
    >>> [x.tolist() for x in predicted_stages(p, np.array([0, 0]), np.array([0, 1]), np.array([4]))]
    [[0, 0, 4, -1]]
    """
    prob, rec, start = torch.from_numpy(np.asarray(stage_prob)), np.asarray(win_rec), np.asarray(win_start)
    out = []
    for r, n in enumerate(n_epochs):
        total = torch.zeros((int(n), prob.shape[2]), dtype=torch.float64)
        mine = np.flatnonzero(rec == r)
        if len(mine) and int(n) > 0:  # the project's one voting rule (models.windows)
            add_window_probs(total, torch.from_numpy(start[mine]), prob[torch.from_numpy(mine)])
        x = total.numpy()
        out.append(np.where(x.sum(1) > 0, x.argmax(1), -1))
    return out


def subject_hypnogram_features(stage_prob: np.ndarray, win_rec: np.ndarray, win_start: np.ndarray,
                               n_epochs: np.ndarray, rec_subject: np.ndarray, n_subjects: int,
                               epoch_s: float = 30.0) -> np.ndarray:
    """:func:`hypnogram_summary` of each subject, averaged over its recordings; (n_subjects, 10).

    Recordings without a covered epoch, and subjects without a recording, give NaN rows.
    """
    out = np.zeros((n_subjects, len(HYPNOGRAM_FEATURES)))
    count = np.zeros(n_subjects)
    for r, st in enumerate(predicted_stages(stage_prob, win_rec, win_start, n_epochs)):
        if (st >= 0).any():
            out[rec_subject[r]] += hypnogram_summary(st, epoch_s)
            count[rec_subject[r]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return out / count[:, None]
