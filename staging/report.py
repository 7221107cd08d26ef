"""One-page sleep report per night (PDF, A4 portrait, matplotlib): what a physician reads.

Contents, top to bottom: the recording (name, start, duration, montage, dropped channels), the
weights (file name, with the DEMO mark when they were trained on simulated data) and the
software version; the whole-night spectrogram (:mod:`staging.spectrogram`), the hypnogram and the
hypnodensity on one time axis; the AASM statistics with units (time in bed, total sleep time,
efficiency, latencies, wake after sleep onset, minutes and percentages per stage); a quality
section (flagged, unknown and low-confidence epochs, dropped channels, warnings); the review
status (automatic, or reviewed: epochs changed and agreement with the automatic hypnogram).

matplotlib writes the PDF itself (``savefig(format="pdf")``, vector, fonts embedded), so no
further library is needed; ``pdftoppm -png`` renders it for a look.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import numpy as np

from .stats import STAGE_NAMES, UNITS

A4_INCHES = (8.27, 11.69)
STAGE_COLORS = ("#f2c14e", "#9ad1d4", "#3d7ea6", "#1b3a5c", "#d1495b")  # W N1 N2 N3 REM
LEVEL = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}  # W on top, then REM, N1, N2, N3

STAT_ROWS = (
    ("TIB", "time in bed"), ("TST", "total sleep time"), ("SE", "sleep efficiency (TST / TIB)"),
    ("SOL", "sleep onset latency (from lights-off)"), ("LPS", "latency to persistent sleep (10 min)"),
    ("WASO", "wake after sleep onset"), ("SPT", "sleep period time (onset to last sleep)"),
    ("REM_latency", "REM latency (from sleep onset)"), ("N3_latency", "N3 latency (from sleep onset)"),
    ("awakenings", "awakenings (in the sleep period)"), ("SFI", "sleep fragmentation (to W per h)"),
    ("cycles", "NREM-REM cycles"),
)


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = f"{v:.1f}"
    return f"{v} {unit}".strip()


def header_lines(name: str, info: dict, stats: dict, start: dt.datetime | None, epoch_seconds: float) -> list[str]:
    """Recording, montage, weights and software lines at the top of the report."""
    n = stats.get("n_epochs") or 0
    hours = n * epoch_seconds / 3600
    montage = info.get("montage") or {}
    mont = "; ".join(f"{c}={v if isinstance(v, str) else ' - '.join(v)}" for c, v in montage.items()) or "n/a"
    weights = Path(str(info.get("weights") or "?")).name
    demo = "  [DEMO weights trained on SIMULATED PSG: not meaningful for a real recording]" \
        if info.get("demo_weights") else ""
    lines = [f"recording: {name}   start: {start:%Y-%m-%d %H:%M:%S}" if start is not None
             else f"recording: {name}   start: unknown",
             f"duration: {hours:.2f} h ({n} epochs of {epoch_seconds:g} s)   lights: "
             f"off {_fmt(stats.get('lights_off'), 'min')}, on {_fmt(stats.get('lights_on'), 'min')} from the start",
             f"montage: {mont}"]
    dropped = info.get("dropped_channels") or {}
    if dropped:
        lines.append("dropped channels: " + "; ".join(f"{k}: {v}" for k, v in dropped.items()))
    lines.append(f"weights: {weights}{demo}")
    lines.append(f"software: {info.get('software_version') or 'unknown'}   report made "
                 f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return lines


def statistics_lines(stats: dict) -> list[str]:
    """The AASM statistics table: quantity, value with unit."""
    rows = [f"{label:<44} {_fmt(stats.get(key), UNITS.get(key, '').replace('count', ''))}"
            for key, label in STAT_ROWS]
    rows.append("")
    rows.append(f"{'stage':<8}{'minutes':>9}{'% of TST':>10}")
    for s in STAGE_NAMES:
        pct = stats.get(f"{s}_pct") if s != "W" else None
        rows.append(f"{s:<8}{_fmt(stats.get(s)):>9}{('' if s == 'W' else _fmt(pct)):>10}")
    return rows


def quality_lines(night, info: dict, width: int = 58) -> list[str]:
    """Flagged epochs, dropped channels, warnings."""
    q = night.quality_summary()
    kinds = ", ".join(f"{k} {v}" for k, v in q["flag_counts"].items() if k != "outside_tib") or "none"
    lines = [f"flagged epochs: {q['flagged_epochs']} ({kinds})",
             f"unknown epochs: {q['unknown_epochs']}",
             f"low confidence (< {q['low_confidence_threshold']:g}): {q['low_confidence_epochs']}",
             f"mean confidence: {_fmt(q['mean_confidence'])}"]
    warnings = list(info.get("warnings") or [])
    lines.append(f"warnings: {len(warnings)}" + ("" if warnings else " (none)"))
    for w in warnings[:8]:
        lines += textwrap.wrap(f"- {w}", width, subsequent_indent="  ")
    if len(warnings) > 8:
        lines.append(f"  … {len(warnings) - 8} more in stats.json")
    return lines


def review_lines(info: dict, width: int = 58) -> list[str]:
    """Review status: automatic, or the review summary (:mod:`staging.review`)."""
    review = info.get("review")
    if not review:
        return ["AUTOMATIC hypnogram: not reviewed by a scorer"]
    lines = [f"REVIEWED: {review.get('n_changed', 0)} of {review.get('n_epochs', '?')} epochs changed "
             f"({review.get('n_edits', 0)} edits)",
             "agreement auto vs reviewed: kappa " + ("n/a" if review.get("kappa_auto_vs_reviewed") is None
                                                     else f"{review['kappa_auto_vs_reviewed']:.3f}"),
             f"last edit: {review.get('last_edit') or 'n/a'}"]
    return [ln for line in lines for ln in textwrap.wrap(line, width)]


def _hypnogram(ax, stages: np.ndarray, t: np.ndarray, night) -> None:
    known = np.where(stages >= 0, stages, 0)
    y = np.array([LEVEL[s] for s in known] + [LEVEL[known[-1]]], dtype=float)
    y[:-1][stages < 0] = np.nan
    ax.step(t, y, where="post", color="black", lw=0.8)
    rem = np.where(np.append(known, known[-1]) == 4, y, np.nan)
    ax.step(t, rem, where="post", color=STAGE_COLORS[4], lw=2.2)
    ax.set_yticks([4, 3, 2, 1, 0], ["W", "REM", "N1", "N2", "N3"], fontsize=7)
    ax.set_ylim(-0.5, 4.5)
    flagged = night.signal_flagged()
    for i in np.flatnonzero(flagged):
        ax.axvspan(t[i], t[i + 1], ymin=0, ymax=0.05, color="#d62728", lw=0)
    if night.reviewed is not None:
        for i in np.flatnonzero(night.reviewed):
            ax.axvspan(t[i], t[i + 1], ymin=0.95, ymax=1.0, color="#2ca02c", lw=0)
    for a, b in _runs(~night.in_bed):
        ax.axvspan(t[a], t[b], color="0.6", alpha=0.3, lw=0)
    ax.set_ylabel("stage", fontsize=8)


def _runs(mask):
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(int)))
    return list(zip(d[::2], d[1::2]))


def write_report(path: Path, night, stats: dict, info: dict, start: dt.datetime | None = None,
                 epoch_seconds: float = 30.0) -> None:
    """Write the one-page PDF report of a staged (or reviewed) night.

    Parameters
    ----------
    path : Path
        ``NAME.report.pdf``.
    night : StagedNight
        Stages, probabilities, flags (and ``spectrogram``, ``reviewed`` when present).
    stats : dict
        :func:`staging.stats.sleep_statistics` of the night (of the reviewed stages after a review).
    info : dict
        The ``stats.json`` document (recording, montage, weights, warnings, ``review``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from preprocess.core.atomic import atomic_write

    from .spectrogram import draw

    name = info.get("recording") or Path(path).name.split(".")[0]
    fig = plt.figure(figsize=A4_INCHES)
    fig.text(0.06, 0.965, f"Sleep report: {name}", fontsize=15, weight="bold")
    status = "REVIEWED" if info.get("review") else "AUTOMATIC (not reviewed)"
    fig.text(0.94, 0.965, status, fontsize=9, ha="right", color="#2ca02c" if info.get("review") else "#b35900")
    y = 0.945
    for line in header_lines(name, info, stats, start, epoch_seconds):
        for part in textwrap.wrap(line, 118):
            fig.text(0.06, y, part, fontsize=7.2, family="monospace",
                     color="#b30000" if "DEMO" in part else "black")
            y -= 0.0125
    if info.get("demo_weights"):
        fig.text(0.5, 0.5, "DEMO WEIGHTS - SIMULATED", fontsize=40, color="#d62728", alpha=0.08, rotation=30,
                 ha="center", va="center")
    n = night.n_epochs
    t = np.arange(n + 1) * epoch_seconds / 3600
    top = y - 0.01
    heights = (0.12, 0.11, 0.09)
    axes = []
    for h in heights:
        axes.append(fig.add_axes((0.09, top - h, 0.84, h - 0.012), sharex=axes[0] if axes else None))
        top -= h
    ax_sp, ax_h, ax_d = axes
    if night.spectrogram is not None:
        draw(ax_sp, night.spectrogram, epoch_seconds / 3600, colorbar=False)
        ax_sp.title.set_fontsize(7)
    else:
        ax_sp.text(0.5, 0.5, "no EEG spectrogram (no EEG channel, or outputs read back without signals)",
                   ha="center", va="center", fontsize=8, transform=ax_sp.transAxes)
        ax_sp.set_yticks([])
    _hypnogram(ax_h, night.stages, t, night)
    probs = np.nan_to_num(night.probs, nan=0.0)
    ax_d.stackplot(t, np.vstack([probs, probs[-1:]]).T, colors=STAGE_COLORS, labels=STAGE_NAMES, step="post")
    ax_d.set_ylim(0, 1)
    ax_d.set_xlim(0, t[-1])
    ax_d.set_ylabel("probability", fontsize=8)
    clock = f" (start {start:%H:%M})" if start is not None else ""
    ax_d.set_xlabel(f"hours from the recording start{clock}", fontsize=8)
    ax_d.legend(loc="upper left", bbox_to_anchor=(0.0, -0.32), ncol=5, fontsize=7, frameon=False)
    for ax in axes:
        ax.tick_params(labelsize=7)
        if ax is not ax_d:
            plt.setp(ax.get_xticklabels(), visible=False)
    fig.text(0.09, top - 0.055, "hypnogram strips: red = flagged epoch (signal problem or unknown), green = set by "
             "a scorer; grey = outside time in bed", fontsize=6.5, color="0.3")
    y = top - 0.085
    fig.text(0.06, y, "Sleep statistics (AASM, on the time in bed)", fontsize=10, weight="bold")
    fig.text(0.56, y, "Quality", fontsize=10, weight="bold")
    y -= 0.018
    for i, line in enumerate(statistics_lines(stats)):
        fig.text(0.06, y - i * 0.0128, line, fontsize=7.2, family="monospace")
    q = quality_lines(night, info)
    for i, line in enumerate(q):
        fig.text(0.56, y - i * 0.0128, line, fontsize=7.2, family="monospace")
    ry = y - (len(q) + 1) * 0.0128 - 0.01
    fig.text(0.56, ry, "Review", fontsize=10, weight="bold")
    for i, line in enumerate(review_lines(info)):
        fig.text(0.56, ry - 0.018 - i * 0.0128, line, fontsize=7.2, family="monospace")
    fig.text(0.06, 0.02, "Generated by LPSGM (automatic sleep staging). Statistics definitions: docs/clinical.md. "
             "An automatic hypnogram must be reviewed by a qualified scorer before clinical use.",
             fontsize=6.5, color="0.35")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="pdf"))
    plt.close(fig)


__all__ = ["STAT_ROWS", "header_lines", "quality_lines", "review_lines", "statistics_lines", "write_report"]
