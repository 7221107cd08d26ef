"""Agreement of a staged night with a manual scoring: ``python -m staging.evaluate PRED REF``.

PRED and REF are hypnograms in any format the project reads — our ``NAME.hypnogram.csv``,
``.STA``, ``NAME.hypnodensity.npz``, EDF+ stage annotations (Sleep-EDF ``*-Hypnogram.edf``, HMC
``*_sleepscoring.edf``, our ``NAME.annotations.edf``), NSRR/Profusion XML, NSRR ``.annot``,
one-stage-per-line text — or two folders, paired by recording name (:func:`pair_files`).

Epochs are aligned by clock time when both files carry a start time (the header of an EDF+
scoring / annotation file; for our ``NAME.hypnogram.csv`` / ``.hypnodensity.npz`` the
``start_time`` of the ``NAME.stats.json`` beside it): REF starting ``k`` epochs after PRED is
compared with PRED from epoch ``k`` on (``offset_epochs`` in the outputs). A start difference
that is not a whole number of 30-s epochs (± 1 s) is refused with a one-line reason. Otherwise
epochs are compared position by position from the start of both hypnograms. Either way the
comparison runs over the common length; epochs unknown in either (−1:
unscored, movement, ``?``) are left out of the agreement figures and counted. Reported per
recording and pooled over all epochs of all recordings:

- ``accuracy`` (fraction of epochs with the same stage), ``kappa`` (Cohen's κ), ``macro_f1``
  (mean F1 over the stages present in either hypnogram), ``f1`` per stage (``null`` for a stage
  absent from both), the confusion matrix (rows = reference, columns = prediction, order W N1 N2
  N3 REM) — all with scikit-learn;
- the difference ``PRED − REF`` of every scalar sleep statistic (:mod:`staging.stats`, on the
  compared epochs); pooled: the mean difference and the mean absolute difference over recordings.

Outputs in ``--out`` (default ``evaluation/``): ``evaluation.json`` (everything),
``evaluation.csv`` (one row per recording, then ``POOLED``), ``confusion.png`` (pooled matrix,
counts and row percentages), ``bland_altman.png`` (bias and limits of agreement of the
statistics over nights, :mod:`staging.scorers`).

Several scorers: ``python -m staging.evaluate PRED REF1 REF2 … [--names A,B,…]`` compares the
model with the consensus of the scorers and each scorer with the consensus of the others, with
pairwise and inter-scorer κ and Bland–Altman agreement over nights (:func:`evaluate_scorers`;
consensus and tie rule in :mod:`staging.scorers`). A REF folder may hold the PSG files too
(Sleep-EDF layout): EDF/BDF files with signals are not scorings and are left out of the pairing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
import sys
from pathlib import Path

import numpy as np

from preprocess.core.version import add_version_argument, software_version

from .outputs import STA_CODES, atomic_write, atomic_write_text
from .scorers import (
    consensus,
    inter_scorer_kappa,
    leave_one_out,
    pairwise_kappa,
    plot_bland_altman,
    reliability,
    statistics_agreement,
)
from .stats import SCALAR_KEYS, STAGE_NAMES, sleep_statistics

LABELS = (0, 1, 2, 3, 4)
HYPNOGRAM_SUFFIXES = (".hypnogram.csv", ".hypnodensity.npz", ".annotations.edf", ".sta", ".edf", ".xml",
                      ".annot", ".txt", ".csv")
"""Files a folder is searched for (our outputs first)."""
_NAME_TAILS = re.compile(r"([-_. ]?(hypnogram|sleepscoring|scoring|annotations|hypnodensity|nsrr|profusion|"
                         r"psg|stages?))+$", re.I)


YASA_CODES = {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "-1": -1}
"""Integer codes of a one-stage-per-line text file without stage words (YASA; ISRUC's 5 = REM
is refused, not guessed)."""


class EvaluateError(ValueError):
    """A hypnogram that cannot be read or paired (one line naming the file)."""


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

def _stage_of_text(text: str) -> int:
    key = text.strip().upper()
    if key in ("W", "WAKE"):
        return 0
    if key in ("N1", "N2", "N3"):
        return int(key[1])
    if key in ("REM", "R"):
        return 4
    return -1


def read_hypnogram(path: str | Path) -> np.ndarray:
    """Stages (0 W … 4 REM, −1 unknown) of the 30-s epochs of a hypnogram file.

    Raises
    ------
    EvaluateError
        Unknown format or unreadable file.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".hypnogram.csv"):
            with open(path, newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(line for line in fh if not line.startswith("#"))]
            col = rows[0].index("stage")
            return np.array([_stage_of_text(r[col]) for r in rows[1:]], dtype=int)
        if name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                return np.asarray(z["stages"], dtype=int)
        if name.endswith(".sta"):
            code = {c: i for i, c in enumerate(STA_CODES)}
            lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
            return np.array([code.get(int(float(f[1])), -1) for f in lines], dtype=int)
        if name.endswith((".edf", ".bdf")):
            from preprocess.core.annotations import read_edfplus_stages

            return np.asarray(read_edfplus_stages(path), dtype=int)
        if name.endswith(".xml"):
            from preprocess.core.annotations import read_nsrr_xml

            return np.asarray(read_nsrr_xml(path), dtype=int)
        if name.endswith(".annot"):
            from preprocess.core.annotations import read_nsrr_annot

            return np.asarray(read_nsrr_annot(path), dtype=int)
        if name.endswith((".txt", ".csv")):
            from preprocess.core.annotations import AnnotationError, read_epoch_text

            try:
                return np.asarray(read_epoch_text(path, None), dtype=int)  # the shared stage words
            except AnnotationError:  # else integer codes, YASA's 0 W 1 N1 2 N2 3 N3 4 REM, -1 unscored
                return np.asarray(read_epoch_text(path, YASA_CODES), dtype=int)
    except EvaluateError:
        raise
    except Exception as exc:  # any reader failure becomes one line naming the file
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EvaluateError(f"{path.name}: cannot read as a hypnogram ({text})") from None
    raise EvaluateError(f"{path.name}: unknown hypnogram format (expected one of {', '.join(HYPNOGRAM_SUFFIXES)})")


def read_start_time(path: str | Path) -> dt.datetime | None:
    """Clock time of the first epoch of a hypnogram file, or None when it carries none.

    EDF/BDF: the header start. Our ``NAME.hypnogram.csv`` / ``NAME.hypnodensity.npz``: the
    ``start_time`` of ``NAME.stats.json`` beside it. Other formats: None.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".edf", ".bdf")):
            from preprocess.core.edf import read_start

            return read_start(path)
        for suffix in (".hypnogram.csv", ".hypnodensity.npz"):
            if name.endswith(suffix):
                stats = path.with_name(path.name[: -len(suffix)] + ".stats.json")
                if stats.is_file():
                    value = json.loads(stats.read_text(encoding="utf-8")).get("start_time")
                    return dt.datetime.fromisoformat(value) if value else None
    except (OSError, ValueError, TypeError):
        return None
    return None


def epoch_offset(pred_start: dt.datetime | None, ref_start: dt.datetime | None, epoch_seconds: float = 30.0,
                 where: str = "") -> int:
    """Epochs from the first PRED epoch to the first REF epoch (0 when either start is unknown).

    Raises
    ------
    EvaluateError
        The starts differ by more than 1 s from a whole number of epochs.

    Examples
    --------
    >>> t = dt.datetime(2020, 1, 1, 22, 0, 0)
    >>> epoch_offset(t, t + dt.timedelta(seconds=60)), epoch_offset(t + dt.timedelta(seconds=90.4), t)
    (2, -3)
    """
    from preprocess.core.annotations import start_offset

    if pred_start is None or ref_start is None:
        return 0
    diff = start_offset(ref_start, pred_start)  # s from the PRED start to the REF start
    k = int(round(diff / epoch_seconds))
    if abs(diff - k * epoch_seconds) > 1.0:
        raise EvaluateError(f"{where}start times differ by {diff:g} s ({pred_start:%H:%M:%S} vs {ref_start:%H:%M:%S}), "
                            f"not a whole number of {epoch_seconds:g}-s epochs: cannot align the epochs")
    return k


def align(pred: np.ndarray, ref: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """PRED and REF cut so that index ``i`` is the same clock epoch (``offset``: :func:`epoch_offset`)."""
    if offset > 0:
        return pred[offset:], ref
    return pred, ref[-offset:]


# --------------------------------------------------------------------------------------------
# pairing
# --------------------------------------------------------------------------------------------

def recording_key(path: Path) -> str:
    """Name of the recording a hypnogram file belongs to (suffixes and scorer tails removed).

    >>> [recording_key(Path(p)) for p in ("SN001_sleepscoring.edf", "SN001.hypnogram.csv",
    ...                                    "SC4001E0-PSG.STA", "shhs1-200001-nsrr.xml")]
    ['sn001', 'sn001', 'sc4001e0', 'shhs1-200001']
    """
    name = path.name
    for suffix in sorted(HYPNOGRAM_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return _NAME_TAILS.sub("", name).lower()


def is_recording(path: Path) -> bool:
    """Whether an EDF/BDF file is a recording with signals (a PSG, our hypnodensity EDF), not a
    scoring: Sleep-EDF keeps ``SC4001E0-PSG.edf`` next to ``SC4001EC-Hypnogram.edf``."""
    from preprocess.core.edf import is_annotation_only

    return path.name.lower().endswith((".edf", ".bdf")) and not is_annotation_only(path)


def _files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(HYPNOGRAM_SUFFIXES) \
                and not p.name.lower().endswith((".stats.json", "summary.csv", "evaluation.csv")) \
                and not is_recording(p):
            out.append(p)
    # one file per recording: our richest format first
    chosen: dict[str, Path] = {}
    for p in out:
        key = recording_key(p)
        rank = next(i for i, s in enumerate(HYPNOGRAM_SUFFIXES) if p.name.lower().endswith(s))
        if key not in chosen or rank < next(i for i, s in enumerate(HYPNOGRAM_SUFFIXES)
                                            if chosen[key].name.lower().endswith(s)):
            chosen[key] = p
    return list(chosen.values())


def reference_files(folder: Path) -> dict[str, Path]:
    """Recording key → hypnogram file of a reference folder (one file per recording)."""
    return {recording_key(p): p for p in _files(Path(folder))}


def match_reference(key: str, by_key: dict[str, Path], used=()) -> Path | None:
    """The reference of recording ``key``: same key, else the unique key differing only in its
    last character (Sleep-EDF ``SC4001E0`` / ``SC4001EC``) not already ``used``."""
    match = by_key.get(key)
    if match is None:
        near = [k for k in by_key if len(k) == len(key) and k[:-1] == key[:-1] and k not in used]
        match = by_key[near[0]] if len(near) == 1 else None
    return match


def pair_files(pred: Path, ref: Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``(name, pred file, ref file)`` pairs, and one line per file left unpaired.

    Files pair when their :func:`recording_key` is equal; otherwise when one key is the other
    with its last character changed (Sleep-EDF: ``SC4001E0`` PSG, ``SC4001EC`` hypnogram) and
    the match is unique.
    """
    pred, ref = Path(pred), Path(ref)
    if pred.is_file() and ref.is_file():
        return [(recording_key(pred), pred, ref)], []
    if pred.is_dir() != ref.is_dir():
        raise EvaluateError("PRED and REF must both be files or both be folders")
    preds, refs = _files(pred), _files(ref)
    by_key = {recording_key(p): p for p in refs}
    pairs, unpaired, used = [], [], set()
    for p in preds:
        key = recording_key(p)
        match = match_reference(key, by_key, used)
        if match is None:
            unpaired.append(f"{p.name}: no reference hypnogram for {key!r} in {ref}")
            continue
        used.add(recording_key(match))
        pairs.append((key, p, match))
    unpaired += [f"{r.name}: reference without a prediction" for k, r in by_key.items() if k not in used]
    return pairs, unpaired


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------

def agreement(pred: np.ndarray, ref: np.ndarray) -> dict:
    """Accuracy, κ, macro-F1, per-stage F1 and confusion matrix of scored epochs (scikit-learn).

    Examples
    --------
    >>> a = agreement(np.array([0, 2, 2, 4, -1]), np.array([0, 2, 1, 4, 2]))
    >>> a["n_compared"], a["accuracy"], a["confusion"][1][2]
    (4, 0.75, 1)
    """
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

    pred, ref = np.asarray(pred, int), np.asarray(ref, int)
    ok = (pred >= 0) & (ref >= 0)
    p, r = pred[ok], ref[ok]
    out = {"n_compared": int(ok.sum()), "n_unknown_pred": int(np.count_nonzero((pred < 0) & (ref >= 0))),
           "n_unknown_ref": int(np.count_nonzero(ref < 0))}
    if p.size == 0:
        return out | {"accuracy": None, "kappa": None, "macro_f1": None, "f1": dict.fromkeys(STAGE_NAMES),
                      "confusion": np.zeros((5, 5), int).tolist()}
    present = sorted(set(p.tolist()) | set(r.tolist()))
    f1 = f1_score(r, p, labels=list(LABELS), average=None, zero_division=0.0)
    kappa = float(cohen_kappa_score(r, p, labels=list(LABELS))) if len(present) > 1 else (1.0 if np.array_equal(p, r) else 0.0)
    out.update(accuracy=round(float(accuracy_score(r, p)), 6), kappa=round(kappa, 6),
               macro_f1=round(float(f1_score(r, p, labels=present, average="macro", zero_division=0.0)), 6),
               f1={STAGE_NAMES[k]: (round(float(f1[k]), 6) if k in present else None) for k in LABELS},
               confusion=confusion_matrix(r, p, labels=list(LABELS)).tolist())
    return out


def statistic_differences(pred: np.ndarray, ref: np.ndarray, epoch_seconds: float = 30.0) -> dict:
    """``{statistic: {"pred", "ref", "diff"}}`` for every scalar statistic (diff = PRED − REF)."""
    sp, sr = sleep_statistics(pred, epoch_seconds), sleep_statistics(ref, epoch_seconds)
    out = {}
    for k in SCALAR_KEYS:
        a, b = sp.get(k), sr.get(k)
        out[k] = {"pred": a, "ref": b, "diff": None if a is None or b is None else round(a - b, 4)}
    return out


def evaluate_pair(pred: np.ndarray, ref: np.ndarray, epoch_seconds: float = 30.0) -> dict:
    """Agreement and statistic differences of one recording (compared over the common length)."""
    n = min(len(pred), len(ref))
    if n == 0:
        raise EvaluateError("empty hypnogram")
    doc = {"n_epochs_pred": int(len(pred)), "n_epochs_ref": int(len(ref)), "n_epochs": n}
    doc.update(agreement(pred[:n], ref[:n]))
    doc["statistics"] = statistic_differences(pred[:n], ref[:n], epoch_seconds)
    doc["statistics_pred"] = {k: v["pred"] for k, v in doc["statistics"].items()}
    doc["statistics_ref"] = {k: v["ref"] for k, v in doc["statistics"].items()}
    return doc


def pooled(results: dict[str, dict], stages: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Agreement over all compared epochs, and mean / mean absolute statistic differences."""
    p = np.concatenate([a[: min(len(a), len(b))] for a, b in stages.values()])
    r = np.concatenate([b[: min(len(a), len(b))] for a, b in stages.values()])
    doc = {"n_recordings": len(results), **agreement(p, r)}
    diffs = {}
    for k in SCALAR_KEYS:
        vals = [res["statistics"][k]["diff"] for res in results.values() if res["statistics"][k]["diff"] is not None]
        diffs[k] = {"mean_diff": round(float(np.mean(vals)), 4) if vals else None,
                    "mean_abs_diff": round(float(np.mean(np.abs(vals))), 4) if vals else None, "n": len(vals)}
    doc["statistics"] = diffs
    doc["bland_altman"] = statistics_agreement([res["statistics_pred"] for res in results.values()],
                                               [res["statistics_ref"] for res in results.values()])
    return doc


# --------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------

CSV_STATS = ("TST", "SE", "SOL", "WASO", "REM_latency", "N1_pct", "N2_pct", "N3_pct", "REM_pct")


def evaluation_csv(results: dict[str, dict], pool: dict) -> str:
    """One row per recording then ``POOLED``: agreement, per-stage F1, statistic differences."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["name", "n_compared", "accuracy", "kappa", "macro_f1"] + [f"f1_{s}" for s in STAGE_NAMES] + \
        [f"diff_{k}" for k in CSV_STATS]
    w.writerow(head)

    def cell(v):
        return "" if v is None else v

    for name, res in results.items():
        w.writerow([name, res["n_compared"], cell(res["accuracy"]), cell(res["kappa"]), cell(res["macro_f1"])]
                   + [cell(res["f1"][s]) for s in STAGE_NAMES]
                   + [cell(res["statistics"][k]["diff"]) for k in CSV_STATS])
    w.writerow(["POOLED", pool["n_compared"], cell(pool["accuracy"]), cell(pool["kappa"]), cell(pool["macro_f1"])]
               + [cell(pool["f1"][s]) for s in STAGE_NAMES]
               + [cell(pool["statistics"][k]["mean_diff"]) for k in CSV_STATS])
    return buf.getvalue()


def plot_confusion(path: Path, confusion, title: str = "") -> None:
    """Confusion matrix PNG: counts and row percentages (rows = reference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(confusion, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    pct = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0) * 100
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(5):
        for j in range(5):
            ax.text(j, i, f"{int(m[i, j])}\n{pct[i, j]:.0f} %", ha="center", va="center", fontsize=8,
                    color="white" if pct[i, j] > 60 else "black")
    ax.set_xticks(range(5), STAGE_NAMES)
    ax.set_yticks(range(5), STAGE_NAMES)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def evaluate(pred: str | Path, ref: str | Path, out: str | Path = "evaluation", echo=print,
             pred_starts: dict | None = None) -> dict:
    """Evaluate PRED against REF (files or folders); write the outputs; return the JSON document.

    ``pred_starts``: PRED file path (str) → start time, for predictions whose files carry none
    (``inference.py --reference`` passes the recordings' header starts)."""
    pairs, unpaired = pair_files(Path(pred), Path(ref))
    return evaluate_pairs(pairs, unpaired, out, echo, pred_starts, str(pred), str(ref))


def evaluate_pairs(pairs: list, unpaired: list, out: str | Path = "evaluation", echo=print,
                   pred_starts: dict | None = None, pred_label: str = "", ref_label: str = "") -> dict:
    """:func:`evaluate` on given ``(name, pred file, ref file)`` pairs (``unpaired``: lines to report)."""
    pred, ref = pred_label, ref_label
    for line in unpaired:
        echo(f"warning: {line}")
    if not pairs:
        raise EvaluateError(f"no prediction/reference pair found in {pred} and {ref}")
    results, stages, failed = {}, {}, {}
    for name, p, r in pairs:
        try:
            a, b = read_hypnogram(p), read_hypnogram(r)
            p_start = (pred_starts or {}).get(str(p)) or read_start_time(p)
            offset = epoch_offset(p_start, read_start_time(r), where=f"{p.name} / {r.name}: ")
            a, b = align(a, b, offset)
            results[name] = {"pred_file": str(p), "ref_file": str(r), "offset_epochs": offset,
                             **evaluate_pair(a, b)}
            stages[name] = (a, b)
        except EvaluateError as exc:
            failed[name] = str(exc)
            echo(f"FAILED {name}: {exc}")
            continue
        res = results[name]
        length = "" if res["n_epochs_pred"] == res["n_epochs_ref"] else \
            f" (lengths {res['n_epochs_pred']} vs {res['n_epochs_ref']}: compared the first {res['n_epochs']})"
        echo(f"{name}: {res['n_compared']} epochs, accuracy {_fmt(res['accuracy'])}, kappa {_fmt(res['kappa'])}, "
             f"macro-F1 {_fmt(res['macro_f1'])}{length}"
             + (f"; REF starts {offset} epoch(s) after PRED, aligned by clock time" if offset > 0 else
                f"; PRED starts {-offset} epoch(s) after REF, aligned by clock time" if offset < 0 else ""))
    if not results:
        raise EvaluateError("no pair could be evaluated: " + "; ".join(failed.values()))
    pool = pooled(results, stages)
    doc = {"pred": str(pred), "ref": str(ref), "recordings": results, "pooled": pool, "failed": failed,
           "unpaired": unpaired, "software_version": software_version()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "evaluation.json", json.dumps(doc, indent=2) + "\n")
    atomic_write_text(out / "evaluation.csv", evaluation_csv(results, pool))
    plot_confusion(out / "confusion.png", pool["confusion"],
                   f"{len(results)} recording(s), {pool['n_compared']} epochs, kappa {_fmt(pool['kappa'])}")
    plot_bland_altman(out / "bland_altman.png", [r["statistics_pred"] for r in results.values()],
                      [r["statistics_ref"] for r in results.values()],
                      f"PRED vs REF over {len(results)} night(s)")
    echo(f"pooled: {pool['n_compared']} epochs, accuracy {_fmt(pool['accuracy'])}, kappa {_fmt(pool['kappa'])}, "
         f"macro-F1 {_fmt(pool['macro_f1'])}; outputs in {out}/")
    return doc


# --------------------------------------------------------------------------------------------
# several scorers
# --------------------------------------------------------------------------------------------

def pair_scorers(pred: Path, refs: list[Path]) -> tuple[list[tuple[str, Path, list[Path]]], list[str]]:
    """``(name, pred file, [scorer files])`` per recording every scorer scored, and the unpaired lines."""
    pred, refs = Path(pred), [Path(r) for r in refs]
    if pred.is_file():
        if not all(r.is_file() for r in refs):
            raise EvaluateError("PRED is a file: every REF must be a file too")
        return [(recording_key(pred), pred, refs)], []
    if not all(r.is_dir() for r in refs):
        raise EvaluateError("PRED is a folder: every REF must be a folder too")
    tables = [reference_files(r) for r in refs]
    used: list[set] = [set() for _ in refs]
    rows, unpaired = [], []
    for p in _files(pred):
        key = recording_key(p)
        found = [match_reference(key, t, u) for t, u in zip(tables, used)]
        missing = [str(r) for r, f in zip(refs, found) if f is None]
        if missing:
            unpaired.append(f"{p.name}: no scoring for {key!r} in {', '.join(missing)}")
            continue
        for u, f in zip(used, found):
            u.add(recording_key(f))
        rows.append((key, p, found))
    return rows, unpaired


def align_many(pred: np.ndarray, scorings: list[np.ndarray], offsets: list[int]):
    """PRED and each scoring cut to the epochs they all cover (``offsets``: PRED epoch of each
    scoring's first epoch, :func:`epoch_offset`)."""
    start = max([0] + list(offsets))
    stop = min([len(pred)] + [o + len(s) for o, s in zip(offsets, scorings)])
    if stop <= start:
        raise EvaluateError("the scorings do not overlap in time")
    return pred[start:stop], np.stack([s[start - o:stop - o] for o, s in zip(offsets, scorings)])


def evaluate_night(pred: np.ndarray, scorings: np.ndarray, names: list[str],
                   epoch_seconds: float = 30.0) -> tuple[dict, np.ndarray]:
    """One night, several scorers: consensus, model and each scorer against it, pairwise κ.

    Parameters
    ----------
    pred : ndarray, shape (n,)
    scorings : ndarray, shape (k, n)
        Aligned scorings (k ≥ 2).
    names : list of str
        Scorer names.
    """
    cons = consensus(scorings)
    doc = {"n_epochs": int(len(pred)), "scorers": names,
           "reliability": dict(zip(names, np.round(reliability(scorings), 6).tolist())),
           "inter_scorer_kappa": inter_scorer_kappa(scorings),
           "consensus_unscored": int(np.count_nonzero(cons < 0)),
           "model_vs_consensus": agreement(pred, cons),
           "scorer_vs_consensus": {n: agreement(scorings[i], leave_one_out(scorings, i))
                                   for i, n in enumerate(names)},
           "pairwise_kappa": {"order": ["model", *names],
                              "matrix": pairwise_kappa(np.vstack([pred[None], scorings]))}}
    doc["statistics"] = {who: sleep_statistics(h, epoch_seconds) for who, h in
                         [("model", pred), ("consensus", cons), *zip(names, scorings)]}
    doc["statistics_loo_consensus"] = {n: sleep_statistics(leave_one_out(scorings, i), epoch_seconds)
                                       for i, n in enumerate(names)}
    return doc, cons


def evaluate_scorers(pred: str | Path, refs: list, out: str | Path = "evaluation", echo=print,
                     names: list[str] | None = None) -> dict:
    """PRED against two or more scorers (files, or folders paired by recording name).

    Writes ``evaluation.json``, ``evaluation.csv`` (per recording: model and each scorer against
    the consensus, inter-scorer κ), ``confusion.png`` (model vs consensus, pooled) and
    ``bland_altman.png`` (model vs consensus over nights); returns the JSON document.
    """
    refs = [Path(r) for r in refs]
    if len(refs) < 2:
        raise EvaluateError("several scorers need at least two REF")
    names = list(names or [f"scorer{i + 1}" for i in range(len(refs))])
    if len(names) != len(refs) or len(set(names)) != len(names):
        raise EvaluateError(f"--names: {len(refs)} distinct names needed, got {names}")
    rows, unpaired = pair_scorers(Path(pred), refs)
    for line in unpaired:
        echo(f"warning: {line}")
    if not rows:
        raise EvaluateError(f"no recording scored by every scorer in {', '.join(map(str, refs))}")
    nights, failed, pooled_p, pooled_c = {}, {}, [], []
    for key, p, files in rows:
        try:
            a = read_hypnogram(p)
            p_start = read_start_time(p)
            hyps = [read_hypnogram(f) for f in files]
            offsets = [epoch_offset(p_start, read_start_time(f), where=f"{p.name} / {f.name}: ") for f in files]
            a, scorings = align_many(a, hyps, offsets)
            night, cons = evaluate_night(a, scorings, names)
        except EvaluateError as exc:
            failed[key] = str(exc)
            echo(f"FAILED {key}: {exc}")
            continue
        night.update(pred_file=str(p), ref_files=[str(f) for f in files], offsets_epochs=offsets)
        nights[key] = night
        pooled_p.append(a)
        pooled_c.append(cons)
        m = night["model_vs_consensus"]
        echo(f"{key}: {m['n_compared']} epochs; model vs consensus kappa {_fmt(m['kappa'])}; inter-scorer kappa "
             f"{_fmt(night['inter_scorer_kappa'])}; " + ", ".join(
                 f"{n} vs others {_fmt(night['scorer_vs_consensus'][n]['kappa'])}" for n in names))
    if not nights:
        raise EvaluateError("no recording could be evaluated: " + "; ".join(failed.values()))
    stats = [n["statistics"] for n in nights.values()]
    pool = {"n_recordings": len(nights), "model_vs_consensus": agreement(np.concatenate(pooled_p),
                                                                           np.concatenate(pooled_c)),
            "inter_scorer_kappa_mean": round(float(np.mean([n["inter_scorer_kappa"] for n in nights.values()
                                                            if n["inter_scorer_kappa"] is not None] or [np.nan])), 6),
            "bland_altman": {"model_vs_consensus": statistics_agreement([s["model"] for s in stats],
                                                                        [s["consensus"] for s in stats])}}
    for n in names:
        pool["bland_altman"][f"{n}_vs_others"] = statistics_agreement(
            [s[n] for s in stats], [night["statistics_loo_consensus"][n] for night in nights.values()])
    doc = {"pred": str(pred), "refs": [str(r) for r in refs], "scorers": names, "tie_rule": TIE_RULE,
           "recordings": nights, "pooled": pool, "failed": failed, "unpaired": unpaired}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "evaluation.json", json.dumps(doc, indent=2) + "\n")
    atomic_write_text(out / "evaluation.csv", scorers_csv(nights, names))
    mc = pool["model_vs_consensus"]
    plot_confusion(out / "confusion.png", mc["confusion"],
                   f"model vs consensus of {len(names)}: {len(nights)} recording(s), kappa {_fmt(mc['kappa'])}")
    plot_bland_altman(out / "bland_altman.png", [s["model"] for s in stats], [s["consensus"] for s in stats],
                      f"model vs consensus of {len(names)} scorers over {len(nights)} night(s)")
    echo(f"pooled: model vs consensus kappa {_fmt(mc['kappa'])} over {mc['n_compared']} epochs; mean inter-scorer "
         f"kappa {_fmt(pool['inter_scorer_kappa_mean'])}; outputs in {out}/")
    return doc


TIE_RULE = ("majority vote of the scorers who scored the epoch; a tie goes to the stage of the most reliable "
            "scorer among those who voted for a tied stage (reliability: mean Cohen's kappa with the other "
            "scorers on the night; equal reliability: the scorer listed first)")


def scorers_csv(nights: dict, names: list[str]) -> str:
    """One row per recording and comparison: who, against what, epochs, accuracy, κ, macro-F1."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "who", "against", "n_compared", "accuracy", "kappa", "macro_f1", "inter_scorer_kappa"])
    for key, night in nights.items():
        rows = [("model", "consensus", night["model_vs_consensus"])]
        rows += [(n, "consensus of the others", night["scorer_vs_consensus"][n]) for n in names]
        for who, against, a in rows:
            w.writerow([key, who, against, a["n_compared"], _cell(a["accuracy"]), _cell(a["kappa"]),
                        _cell(a["macro_f1"]), _cell(night["inter_scorer_kappa"])])
    return buf.getvalue()


def _cell(v):
    return "" if v is None else v



def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m staging.evaluate", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="exit code: 0 evaluated, 1 a pair failed, 2 nothing to evaluate")
    add_version_argument(p)
    p.add_argument("pred", metavar="PRED", help="predicted hypnogram file, or folder of them (e.g. inference --out)")
    p.add_argument("ref", metavar="REF", nargs="+",
                   help="reference scoring file, or folder (paired by recording name); several REF: several "
                        "scorers of the same nights (consensus, inter-scorer agreement)")
    p.add_argument("--out", default="evaluation", metavar="DIR", help="output folder (default: evaluation)")
    p.add_argument("--names", metavar="A,B,…", help="scorer names for several REF (default scorer1, scorer2, …)")
    args = p.parse_args(argv)
    try:
        for item in [args.pred, *args.ref]:
            if not Path(item).exists():
                raise EvaluateError(f"{item}: no such file or folder")
        if len(args.ref) == 1:
            doc = evaluate(args.pred, args.ref[0], args.out)
        else:
            names = [n.strip() for n in args.names.split(",")] if args.names else None
            doc = evaluate_scorers(args.pred, args.ref, args.out, names=names)
    except EvaluateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if doc["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["TIE_RULE", "YASA_CODES", "EvaluateError", "align_many", "evaluate_night", "evaluate_scorers",
           "is_recording", "pair_scorers", "scorers_csv", "agreement", "align", "epoch_offset", "evaluate", "evaluate_pairs",
           "match_reference", "reference_files", "evaluate_pair", "evaluation_csv", "main", "pair_files",
           "plot_confusion", "pooled", "read_hypnogram", "read_start_time", "recording_key", "statistic_differences"]
