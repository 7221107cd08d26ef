"""Output files of a staged recording; every file is written atomically (temp file + rename).

===========================  ===================================================================
``NAME.hypnogram.csv``       ``# ...`` comment lines first (software version, weights, DEMO mark,
                             warnings: read with ``comment="#"``), then
                             ``epoch,onset_s,stage,p_W,p_N1,p_N2,p_N3,p_REM,confidence,entropy,
                             flag,flag_channels``: one row per 30-s epoch, ``epoch`` 0-based,
                             ``onset_s`` seconds from the recording start, ``stage`` the most
                             probable of W/N1/N2/N3/REM (``?`` unknown), probabilities with 6
                             decimals (each row sums to 1), ``confidence`` the max probability,
                             ``entropy`` in bits, ``flag`` ``ok`` or the problems of the epoch
                             (``docs/clinical.md``), ``flag_channels`` the channels they hit.
``NAME.stats.json``          sleep statistics (:mod:`staging.stats`) with units, plus provenance
                             (montage, weights, stride).
``NAME.png``                 hypnogram above the hypnodensity (stacked stage probabilities).
``NAME.STA``                 one line per epoch, ``<epoch>\\t<code>``: epoch 1-based, code in the
                             Compumedics/Profusion convention 0=W 1=N1 2=N2 3=N3 5=REM (9 unknown); preceded by
                             ``# ...`` lines only when the night carries a mark (DEMO weights,
                             warnings), so an unmarked file stays importable as it is.
``NAME.report.pdf``          one-page sleep report (:mod:`staging.report`).
``NAME.annotations.edf``     EDF+C with only an annotation signal: one ``Sleep stage W|N1|N2|N3|R``
                             annotation of 30 s per epoch, starting at the recording's start time
                             (``mne.read_annotations`` reads it); the recording field names the
                             software, and marks (DEMO weights, warnings) are 0-s annotations at 0.
===========================  ===================================================================
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np

from preprocess.core.atomic import atomic_write, atomic_write_text
from preprocess.core.version import software_version  # re-exported: written into every output

from .defaults import DEFAULT_FORMATS, FORMATS
from .exports import edf_field
from .stats import EDF_TEXT, STAGE_NAMES, UNITS

__all__ = ["DEFAULT_FORMATS", "FORMATS", "TEMP_SUFFIX", "atomic_write", "output_marks", "software_version", "atomic_write_text", "hypnogram_csv", "output_paths",
           "parse_formats", "plot_hypnogram", "sta_text", "stats_json", "write_edf_annotations", "write_outputs"]
SUFFIX = {
    "csv": ".hypnogram.csv",
    "stats": ".stats.json",
    "png": ".png",
    "sta": ".STA",
    "edf": ".annotations.edf",
    "npz": ".hypnodensity.npz",
    "hypnodensity": ".hypnodensity.edf",
    "report": ".report.pdf",
}
STA_CODES = (0, 1, 2, 3, 5)
""".STA code of W, N1, N2, N3, REM (Compumedics convention: REM is 5, 4 was R&K stage 4)."""
STA_UNKNOWN = 9
""".STA code of an epoch that could not be staged (Profusion's 'unscored')."""
TEMP_SUFFIX = ".tmp"
"""Suffix of the hidden temp files of :func:`atomic_write` (``.NAME.xxxx.tmp``)."""
DEMO_MARK = ("DEMO weights trained on SIMULATED PSG only: this hypnogram is not meaningful for a real "
             "recording")


def output_marks(info: dict) -> list[str]:
    """Marks every output of a recording carries: DEMO weights, then the recording's warnings."""
    marks = [DEMO_MARK] if info.get("demo_weights") else []
    return marks + [f"WARNING: {w}" for w in info.get("warnings") or []] + list(info.get("review_marks") or [])


def parse_formats(text: str) -> tuple[str, ...]:
    """``"csv,stats,png"`` → validated tuple; ``"all"`` gives every format."""
    items = [t.strip().lower() for t in text.split(",") if t.strip()]
    if items == ["all"]:
        return FORMATS
    bad = [t for t in items if t not in FORMATS]
    if bad or not items:
        raise ValueError(f"--formats: unknown {bad or 'empty list'}; choose from {','.join(FORMATS)} or all")
    return tuple(dict.fromkeys(items))


def output_paths(out_dir: Path, name: str, formats) -> dict[str, Path]:
    """Format → output path for recording ``name`` (``bids``: the events TSV of the BIDS folder)."""
    from .exports import bids_path

    return {f: bids_path(out_dir, name) if f == "bids" else Path(out_dir) / f"{name}{SUFFIX[f]}" for f in formats}


def _comment_lines(lines) -> str:
    return "".join(f"# {line}\n" for line in lines)


def hypnogram_csv(probs: np.ndarray, epoch_seconds: float = 30.0, comments=(), night=None) -> str:
    """CSV text of the per-epoch stage and probabilities, after ``# comment`` lines if any
    (``night``: with the clinical columns, :func:`clinical_csv`)."""
    if night is not None:
        return clinical_csv(night, epoch_seconds, comments)
    buf = io.StringIO()
    buf.write(_comment_lines(comments))
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", "onset_s", "stage"] + [f"p_{s}" for s in STAGE_NAMES])
    stages = probs.argmax(axis=1)
    for i, (st, p) in enumerate(zip(stages, probs)):
        w.writerow([i, f"{i * epoch_seconds:g}", STAGE_NAMES[st]] + [f"{v:.6f}" for v in p])
    return buf.getvalue()


CLINICAL_COLUMNS = ("confidence", "entropy", "flag", "flag_channels")
"""Columns after the probabilities in ``NAME.hypnogram.csv`` (see :class:`staging.night.StagedNight`)."""


def clinical_csv(night, epoch_seconds: float = 30.0, comments=()) -> str:
    """Hypnogram CSV with ``confidence, entropy, flag, flag_channels`` after the probabilities;
    an unknown epoch has stage ``?`` and empty probabilities."""
    buf = io.StringIO()
    buf.write(_comment_lines(comments))
    w = csv.writer(buf, lineterminator="\n")
    reviewed = getattr(night, "reviewed", None)  # a reviewed night: one more column, auto/reviewed
    w.writerow(["epoch", "onset_s", "stage"] + [f"p_{s}" for s in STAGE_NAMES] + list(CLINICAL_COLUMNS)
               + (["review"] if reviewed is not None else []))
    names = night.stage_names()
    for i in range(night.n_epochs):
        p = night.probs[i]
        known = bool(np.isfinite(p).all())
        w.writerow([i, f"{i * epoch_seconds:g}", names[i]] + [f"{v:.6f}" if known else "" for v in p]
                   + [f"{night.confidence[i]:.6f}" if known else "", f"{night.entropy[i]:.6f}" if known else "",
                      night.flags[i], night.flag_channels[i]]
                   + (["reviewed" if reviewed[i] else "auto"] if reviewed is not None else []))
    return buf.getvalue()


def sta_text(stages: np.ndarray, comments=()) -> str:
    """``.STA`` text: ``<1-based epoch>\\t<code>`` per line (0 W, 1 N1, 2 N2, 3 N3, 5 REM, 9 unknown).

    ``comments`` (marks such as DEMO weights) come first as ``# ...`` lines.
    """
    return _comment_lines(comments) + "".join(f"{i + 1}\t{STA_CODES[s] if s >= 0 else STA_UNKNOWN}\n"
                                              for i, s in enumerate(stages))


def stats_json(stats: dict, info: dict) -> str:
    """JSON text: ``{"statistics": ..., "units": ..., **info}``."""
    doc = dict(info)
    doc["statistics"] = stats
    doc["units"] = {k: UNITS[k] for k in stats}
    return json.dumps(doc, indent=2, default=str) + "\n"


def write_edf_annotations(path: Path, stages: np.ndarray, start: dt.datetime | None,
                          epoch_seconds: float = 30.0, marks=(), software: str = "") -> None:
    """EDF+C annotation file with one 30-s ``Sleep stage …`` annotation per epoch (edfio).

    ``marks`` (DEMO weights, warnings) become 0-s annotations at onset 0 and, shortened, part of
    the recording field; ``software`` is written as the equipment code.
    """
    import edfio

    anns = [edfio.EdfAnnotation(0.0, 0.0, m[:200]) for m in marks]
    anns += [edfio.EdfAnnotation(i * epoch_seconds, epoch_seconds, EDF_TEXT[s] if s >= 0 else "Sleep stage ?")
             for i, s in enumerate(stages)]
    # The recording field holds 80 characters: "Startdate dd-MMM-yyyy X X <equipment> <additional>".
    demo = ("DEMO_simulated_weights",) if DEMO_MARK in marks else ()
    recording = edfio.Recording(startdate=start.date() if start is not None else None,
                                equipment_code=edf_field(software, 28) if software else "X", additional=demo)
    kw = {"recording": recording}
    if start is not None:
        kw["starttime"] = start.time().replace(microsecond=0)
    edf = edfio.Edf([], annotations=anns, **kw)
    atomic_write(path, lambda tmp: edf.write(tmp))


def plot_hypnogram(path: Path, probs: np.ndarray, title: str = "", start: dt.datetime | None = None,
                   epoch_seconds: float = 30.0, night=None, notes=()) -> None:
    """PNG: hypnogram (top) over the hypnodensity (bottom), time in hours from the start.

    ``notes`` (DEMO mark, warnings) are printed under the plots, one line each (at most
    :data:`PNG_NOTE_LINES`, then how many more are in ``NAME.stats.json``).

    With ``night`` (:class:`staging.night.StagedNight`) the time outside time in bed is shaded
    grey on both panels, and a strip under the hypnogram marks flagged epochs (red) and
    low-confidence epochs (orange, max probability below 0.5).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ("#f2c14e", "#9ad1d4", "#3d7ea6", "#1b3a5c", "#d1495b")  # W N1 N2 N3 REM
    stages = probs.argmax(axis=1) if night is None else np.where(night.stages >= 0, night.stages, 0)
    probs = probs if night is None else np.nan_to_num(night.probs, nan=0.0)
    n = len(stages)
    t = np.arange(n + 1) * epoch_seconds / 3600.0
    # Vertical order W, REM, N1, N2, N3 (top to bottom), as on clinical hypnograms.
    level = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}
    y = np.array([level[s] for s in stages] + [level[stages[-1]]])
    spec = getattr(night, "spectrogram", None)
    if spec is not None:  # the whole-night spectrogram above the hypnogram (staging.spectrogram)
        from .spectrogram import draw

        fig, (ax0, ax1, ax2) = plt.subplots(3, 1, figsize=(12, 7.5), sharex=True,
                                            gridspec_kw={"height_ratios": [1.0, 1.1, 1]})
        draw(ax0, spec, epoch_seconds / 3600.0, colorbar=False)
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
        title = ""
    else:
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True,
                                       gridspec_kw={"height_ratios": [1.1, 1]})
    ax1.step(t, y, where="post", color="black", lw=1.0)
    rem = np.ma.masked_where(np.append(stages, stages[-1]) != 4, y)
    ax1.step(t, rem, where="post", color=colors[4], lw=3.0)
    ax1.set_yticks([4, 3, 2, 1, 0], ["W", "REM", "N1", "N2", "N3"])
    ax1.set_ylim(-0.5, 4.5)
    ax1.set_ylabel("stage")
    ax1.grid(axis="x", alpha=0.3)
    ax1.set_title(title, fontsize=10, loc="left")
    ax2.stackplot(t, np.vstack([probs, probs[-1:]]).T, colors=colors, labels=STAGE_NAMES, step="post")
    ax2.set_ylim(0, 1)
    ax2.set_xlim(0, t[-1])
    ax2.set_ylabel("probability")
    clock = f" (start {start:%H:%M:%S})" if start is not None else ""
    ax2.set_xlabel(f"time from recording start (h){clock}")
    ax2.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if night is not None:
        mark_night(ax1, ax2, night, t)
    fig.tight_layout()
    _footer(fig, notes)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100,
                                               metadata={"Software": software_version()}))
    plt.close(fig)


PNG_NOTE_LINES = 6
"""Warning lines printed under the PNG's plots; the rest are counted (all are in ``NAME.stats.json``)."""


def _footer(fig, notes) -> None:
    """Print ``notes`` under the axes of ``fig`` (grown to make room), longest lines cut at 170 chars."""
    notes = list(notes)
    if not notes:
        return
    shown = notes[:PNG_NOTE_LINES]
    if len(notes) > len(shown):
        shown.append(f"... {len(notes) - len(shown)} more warning(s) in the stats.json")
    w, h = fig.get_size_inches()
    extra = 0.17 * len(shown) + 0.1
    fig.set_size_inches(w, h + extra)
    fig.subplots_adjust(bottom=(fig.subplotpars.bottom * h + extra) / (h + extra),
                        top=1 - (1 - fig.subplotpars.top) * h / (h + extra))
    text = "\n".join(n if len(n) <= 170 else n[:167] + "..." for n in shown)
    fig.text(0.01, 0.01, text, fontsize=7, va="bottom", ha="left", color="#b00000", family="monospace")


def mark_night(ax1, ax2, night, t: np.ndarray) -> None:
    """Shade outside time in bed; strip of flagged (red) and low-confidence (orange) epochs."""
    from .defaults import DEFAULT_LOW_CONFIDENCE

    for a, b in _runs_of(~night.in_bed):
        for ax in (ax1, ax2):
            ax.axvspan(t[a], t[b], color="0.6", alpha=0.35, lw=0)
    flagged = night.signal_flagged()
    low = ~(night.confidence >= DEFAULT_LOW_CONFIDENCE) & ~flagged
    for mask, color in ((low, "#f28e2b"), (flagged, "#d62728")):
        for a, b in _runs_of(mask):
            ax1.axvspan(t[a], t[b], ymin=0.0, ymax=0.04, color=color, lw=0)
    if (~night.in_bed).any() or flagged.any() or low.any():
        ax1.text(1.0, -0.02, f"grey: outside time in bed   red: flagged ({int(flagged.sum())})   "
                 f"orange: confidence < {DEFAULT_LOW_CONFIDENCE:g} ({int(low.sum())})", transform=ax1.transAxes,
                 ha="right", va="top", fontsize=7)


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True values."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(int)))
    return list(zip(d[::2], d[1::2]))


def write_outputs(paths: dict[str, Path], probs: np.ndarray, stats: dict, info: dict,
                  start: dt.datetime | None = None, title: str = "", epoch_seconds: float = 30.0,
                  night=None) -> list[Path]:
    """Write the requested outputs (``paths``: format → path); returns the paths written.

    ``night`` (:class:`staging.night.StagedNight`) supplies the stages (−1 unknown), flags and
    confidence; it is needed for the ``bids``, ``npz`` and ``hypnodensity`` formats.
    """
    from . import exports

    stages = probs.argmax(axis=1) if night is None else night.stages
    marks = output_marks(info)
    software = info.get("software_version") or ""
    head = [f"LPSGM hypnogram; software: {software or 'unknown'}; weights: {Path(str(info.get('weights', '?'))).name}"]
    writers = {
        "csv": lambda p: atomic_write_text(p, hypnogram_csv(probs, epoch_seconds, head + marks, night)),
        "stats": lambda p: atomic_write_text(p, stats_json(stats, info)),
        "png": lambda p: plot_hypnogram(p, probs, title, start, epoch_seconds, night, marks),
        "bids": lambda p: exports.write_bids(p, _need(night), info, epoch_seconds, marks),
        "npz": lambda p: exports.write_npz(p, _need(night), epoch_seconds, marks),
        "hypnodensity": lambda p: exports.write_hypnodensity_edf(p, _need(night), start, epoch_seconds, marks),
        "sta": lambda p: atomic_write_text(p, sta_text(stages, marks)),
        "edf": lambda p: write_edf_annotations(p, stages, start, epoch_seconds, marks, software),
        "report": lambda p: _report(p, _need(night), stats, info, start, epoch_seconds),
    }
    written = []
    for fmt, path in paths.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writers[fmt](path)
        written.append(path)
    return written


def _report(path, night, stats, info, start, epoch_seconds):
    from .report import write_report

    write_report(path, night, stats, info, start, epoch_seconds)


def _need(night):
    if night is None:
        raise ValueError("the bids, npz, hypnodensity and report formats need the StagedNight (night=...)")
    return night
