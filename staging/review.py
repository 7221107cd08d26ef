"""A scorer's review of an automatic hypnogram: edits with an audit trail, and the reviewed outputs.

A review is a set of edits (epoch → stage; the last edit of an epoch wins) and the audit trail of
every edit in the order it arrived (epoch, old → new stage, UTC time, optional note, who/which
client), so two people editing the same night lose nothing: both edits are in the trail, and the
later one is the epoch's stage. Setting an epoch back to its automatic stage keeps it marked as
reviewed (a scorer confirmed it).

The reviewed outputs are the automatic ones with the reviewed stages (:func:`apply_review`):
every format of :mod:`staging.outputs` (named ``NAME.reviewed.*``), the statistics recomputed on
the reviewed stages, the model's probabilities unchanged (they are the model's, not the
scorer's), each epoch marked ``auto`` or ``reviewed`` (CSV column ``review``; a ``reviewed``
array in the NPZ; a ``# REVIEWED …`` line listing the reviewed epochs in every other format),
and the agreement auto vs reviewed (Cohen's κ, epochs changed) in ``stats.json`` and the report.

A night staged earlier by ``inference.py`` can be reviewed from its outputs
(:func:`night_from_outputs`: ``NAME.hypnogram.csv`` + ``NAME.stats.json``).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .night import UNKNOWN, StagedNight
from .stats import STAGE_NAMES, sleep_statistics

STAGE_CODE = {name: code for code, name in enumerate(STAGE_NAMES)}


class ReviewError(ValueError):
    """An edit or an output file that cannot be used (one line)."""


@dataclass
class Review:
    """Edits and audit trail of one night (JSON-serialisable through :meth:`to_json`).

    Attributes
    ----------
    edits : dict
        Epoch (int) → reviewed stage code (0 W … 4 REM).
    trail : list of dict
        ``{"epoch", "old", "new", "time", "note", "by"}`` per edit, in arrival order (stage names).
    """

    edits: dict = field(default_factory=dict)
    trail: list = field(default_factory=list)

    def edit(self, epoch: int, stage: str, auto: np.ndarray, note: str = "", by: str = "",
             when: dt.datetime | None = None) -> dict:
        """Set ``epoch`` to ``stage`` (``W N1 N2 N3 REM``); returns the trail entry.

        Raises
        ------
        ReviewError
            Epoch out of range or unknown stage.
        """
        if stage not in STAGE_CODE:
            raise ReviewError(f"stage must be one of {', '.join(STAGE_NAMES)}, got {stage!r}")
        if not 0 <= int(epoch) < len(auto):
            raise ReviewError(f"epoch {epoch} is outside the night (0 … {len(auto) - 1})")
        epoch = int(epoch)
        old_code = self.edits.get(epoch, int(auto[epoch]))
        old = STAGE_NAMES[old_code] if old_code >= 0 else "?"
        self.edits[epoch] = STAGE_CODE[stage]
        when = when or dt.datetime.now(dt.timezone.utc)
        entry = {"epoch": epoch, "old": old, "new": stage, "time": when.isoformat(timespec="seconds"),
                 "note": (note or "")[:500], "by": (by or "")[:80]}
        self.trail.append(entry)
        return entry

    def stages(self, auto: np.ndarray) -> np.ndarray:
        """The reviewed hypnogram: ``auto`` with the edits applied."""
        out = np.asarray(auto, dtype=int).copy()
        for e, s in self.edits.items():
            if 0 <= e < len(out):
                out[e] = s
        return out

    def to_json(self) -> dict:
        return {"edits": {str(k): STAGE_NAMES[v] for k, v in sorted(self.edits.items())}, "trail": self.trail}

    @classmethod
    def from_json(cls, doc: dict) -> Review:
        edits = {int(k): STAGE_CODE[v] for k, v in (doc.get("edits") or {}).items()}
        return cls(edits, list(doc.get("trail") or []))


def summary(auto: np.ndarray, review: Review) -> dict:
    """Epochs changed, edits, Cohen's κ and accuracy of auto vs reviewed (epochs known in both)."""
    from .scorers import kappa

    auto = np.asarray(auto, int)
    reviewed = review.stages(auto)
    ok = (auto >= 0) & (reviewed >= 0)
    return {"n_epochs": int(len(auto)), "n_reviewed": len(review.edits),
            "n_changed": int(np.count_nonzero(auto != reviewed)), "n_edits": len(review.trail),
            "changed_epochs": [int(i) for i in np.flatnonzero(auto != reviewed)],
            "kappa_auto_vs_reviewed": kappa(auto, reviewed),
            "accuracy_auto_vs_reviewed": round(float(np.mean(auto[ok] == reviewed[ok])), 6) if ok.any() else None,
            "last_edit": review.trail[-1]["time"] if review.trail else None}


def apply_review(night: StagedNight, review: Review, epoch_seconds: float = 30.0) -> StagedNight:
    """A copy of ``night`` with the reviewed stages, ``reviewed`` marks and recomputed statistics."""
    out = copy.copy(night)
    out.stages = review.stages(night.stages)
    out.reviewed = np.zeros(night.n_epochs, dtype=bool)
    for e in review.edits:
        if 0 <= e < night.n_epochs:
            out.reviewed[e] = True
    out.flags = [f.replace("unknown", "ok") if out.reviewed[i] and out.stages[i] >= 0 and "unknown" in f else f
                 for i, f in enumerate(night.flags)]  # a scorer staged an epoch the model could not
    out.stats = sleep_statistics(out.stages, epoch_seconds, night.lights)
    return out


def night_from_outputs(csv_path: Path, stats_path: Path) -> tuple[StagedNight, dict]:
    """Rebuild a staged night from ``NAME.hypnogram.csv`` and ``NAME.stats.json`` (``inference.py``'s).

    Returns
    -------
    tuple
        ``(night, info)``: info is the ``stats.json`` document without ``statistics``/``units``.

    Raises
    ------
    ReviewError
        A file that is not one of ours (one line naming it).
    """
    csv_path, stats_path = Path(csv_path), Path(stats_path)
    try:
        text = "".join(ln for ln in csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
                       if not ln.startswith("#"))
        rows = list(csv.DictReader(io.StringIO(text)))
        pcols = [f"p_{s}" for s in STAGE_NAMES]
        if not rows or any(c not in rows[0] for c in ["stage", *pcols]):
            raise ReviewError(f"{csv_path.name}: not an LPSGM hypnogram CSV (columns stage, p_W … p_REM expected)")
        probs = np.array([[float(r[c]) if r[c] not in ("", None) else np.nan for c in pcols] for r in rows])
        stages = np.array([STAGE_CODE.get(r["stage"], UNKNOWN) for r in rows], dtype=int)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        if isinstance(exc, ReviewError):
            raise
        raise ReviewError(f"{csv_path.name}: cannot read as an LPSGM hypnogram CSV ({exc})") from None
    try:
        doc = json.loads(stats_path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "statistics" not in doc:
            raise ValueError("no 'statistics'")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReviewError(f"{stats_path.name}: cannot read as an LPSGM stats.json ({exc})") from None
    n = len(rows)
    col = {c: [r.get(c, "") for r in rows] for c in ("confidence", "entropy", "flag", "flag_channels")}
    conf = np.array([float(v) if v else np.nan for v in col["confidence"]]) if rows[0].get("confidence") is not None \
        else np.nanmax(probs, axis=1)
    ent = np.array([float(v) if v else np.nan for v in col["entropy"]]) if rows[0].get("entropy") is not None \
        else np.full(n, np.nan)
    flags = [v or "ok" for v in col["flag"]]
    lights_doc = doc.get("lights") or {}
    lights = (lights_doc.get("off_s"), lights_doc.get("on_s"))
    epoch_seconds = float((doc.get("statistics") or {}).get("epoch_seconds") or 30.0)
    from .stats import tib_mask

    night = StagedNight(probs, stages, flags, [v or "" for v in col["flag_channels"]], conf, ent,
                        tib_mask(n, lights, epoch_seconds), lights)
    night.stats = sleep_statistics(stages, epoch_seconds, lights)
    info = {k: v for k, v in doc.items() if k not in ("statistics", "units")}
    return night, info


def review_marks(summ: dict, stats: dict, auto_stats: dict) -> list[str]:
    """The ``# REVIEWED …`` lines every reviewed output carries (what changed, κ, TST before/after)."""
    from .batch import _epoch_list

    changed = summ["changed_epochs"]
    kappa = summ["kappa_auto_vs_reviewed"]
    return [f"REVIEWED by a scorer: {summ['n_reviewed']} epoch(s) reviewed, {summ['n_changed']} changed "
            f"(0-based: {_epoch_list(changed) if changed else 'none'}); kappa auto vs reviewed "
            f"{'n/a' if kappa is None else f'{kappa:.3f}'}; last edit {summ['last_edit'] or 'n/a'}",
            f"statistics recomputed on the reviewed stages: TST {stats['TST']:g} min (auto {auto_stats['TST']:g}), "
            f"SE {stats['SE']:g} % (auto {auto_stats['SE']:g})"]


def write_reviewed(out_dir: Path, name: str, night: StagedNight, info: dict, review: Review, formats,
                   start: dt.datetime | None = None, epoch_seconds: float = 30.0) -> list[Path]:
    """Write every format in ``formats`` for the reviewed night as ``NAME.reviewed.*``, plus
    ``NAME.reviewed.review.json`` (edits, audit trail, summary); returns the paths."""
    from .outputs import atomic_write_text, output_paths, write_outputs

    reviewed = apply_review(night, review, epoch_seconds)
    summ = summary(night.stages, review)
    doc = dict(info)
    doc["review"] = summ
    doc["review_reviewed_epochs"] = [int(i) for i in np.flatnonzero(reviewed.reviewed)]
    doc["statistics_auto"] = night.stats
    doc["review_marks"] = review_marks(summ, reviewed.stats, night.stats)
    base = f"{name}.reviewed"
    paths = output_paths(Path(out_dir), base, formats)
    title = (f"{base}   TST {reviewed.stats['TST']:.0f} min   SE {reviewed.stats['SE']:.0f} %   REVIEWED: "
             f"{summ['n_changed']} epoch(s) changed, kappa auto vs reviewed "
             f"{'n/a' if summ['kappa_auto_vs_reviewed'] is None else format(summ['kappa_auto_vs_reviewed'], '.3f')}"
             + ("   [DEMO weights]" if info.get("demo_weights") else ""))
    written = write_outputs(paths, night.probs, reviewed.stats, doc, start, title, epoch_seconds, night=reviewed)
    trail = Path(out_dir) / f"{base}.review.json"
    atomic_write_text(trail, json.dumps({"recording": name, **review.to_json(), "summary": summ}, indent=2) + "\n")
    return [*written, trail]


__all__ = ["Review", "ReviewError", "STAGE_CODE", "apply_review", "night_from_outputs", "review_marks", "summary",
           "write_reviewed"]
