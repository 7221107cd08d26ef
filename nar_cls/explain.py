"""Why a subject got its score: shares of the decision by sleep stage and by part of the night.

The subject score is the mean of its window probabilities (``--subject-agg mean``; for ``vote``
the window "probabilities" are one-hot votes). Measured against a neutral value ``t`` (the
binary operating threshold, or ``1/K`` for ``K`` classes), the decision margin ``S − t`` is the
sum of the window contributions ``c_w = (p_w − t) / n``, and **occluding** window ``w`` (replacing
its probability with the neutral ``t``) changes the score by exactly ``−c_w``: the decomposition
below is the exact occlusion effect, no sampling.

* **Stage**: a window's contribution is split over its 20 epochs equally and each epoch's share
  goes to its stage (the hypnogram in the files; ``unscored`` where there is none or it is −1).
* **Part of the night**: each window goes to the third of its recording (by its middle epoch)
  it lies in: ``night_1`` (first third), ``night_2``, ``night_3``.

Shares are the contributions divided by the sum of their absolute values (signed; |shares| sum
to 1 within each of the two splits). A positive share pushed the subject towards the scored
class (binary: the positive class; more classes: the predicted class).
"""

from __future__ import annotations

import numpy as np

STAGE_COLUMNS = ("W", "N1", "N2", "N3", "REM", "unscored")
PARTS = 3


def subject_explanations(prob: np.ndarray, windows: np.ndarray, cohort, classes, positive: int | None,
                         threshold: float = 0.5) -> list[dict]:
    """One row per subject of the given evaluation windows.

    Parameters
    ----------
    prob : ndarray, shape (n_windows, K)
        Window probabilities (of ``windows``).
    windows : ndarray of int
        Evaluation window indices into ``cohort``.
    cohort : nar_cls.cohort.Cohort
    classes : sequence of str
    positive : int or None
        Binary task: the scored class; None: each subject's predicted class.
    threshold : float
        Binary neutral value (the operating threshold).

    Returns
    -------
    list of dict
        ``subject``, ``class`` (scored), ``score``, ``neutral``, ``stage_<S>`` and ``night_<i>``
        signed shares.
    """
    k = prob.shape[1]
    win_subject = cohort.win_subject[windows]
    stages = cohort.data.windows.stages
    L = cohort.seq_len
    rows = []
    for s in np.unique(win_subject):
        sel = np.flatnonzero(win_subject == s)
        p = prob[sel]
        c = positive if positive is not None else int(np.argmax(p.mean(0)))
        neutral = threshold if positive is not None else 1.0 / k
        contrib = (p[:, c] - neutral) / len(sel)
        by_stage = dict.fromkeys(STAGE_COLUMNS, 0.0)
        by_part = np.zeros(PARTS)
        for w, cw in zip(windows[sel], contrib):
            rec, start = int(cohort.win_rec[w]), int(cohort.win_start[w])
            n = len(stages[rec])
            hyp = stages[rec][start : start + L]
            for code in hyp:
                name = STAGE_COLUMNS[int(code)] if 0 <= int(code) <= 4 else "unscored"
                by_stage[name] += cw / L
            if len(hyp) < L:
                by_stage["unscored"] += cw * (L - len(hyp)) / L
            middle = min(start + L // 2, n - 1)
            by_part[min(PARTS - 1, int(PARTS * middle / max(n, 1)))] += cw
        norm_s = sum(abs(v) for v in by_stage.values()) or 1.0
        norm_p = float(np.abs(by_part).sum()) or 1.0
        rows.append({"subject": cohort.subjects[s], "class": classes[c], "score": f"{p[:, c].mean():.6f}",
                     "neutral": f"{neutral:.6f}",
                     **{f"stage_{k_}": f"{v / norm_s:.4f}" for k_, v in by_stage.items()},
                     **{f"night_{i + 1}": f"{v / norm_p:.4f}" for i, v in enumerate(by_part)}})
    return rows
