"""Staging a batch of EDF/BDF files: discovery, per-file pipeline, reporting, ``summary.csv``.

Per recording: read (native rate per channel) → montage → :func:`load_montage` (the same signal
chain as preprocessing) → model → outputs. A file that cannot be staged is reported in one
line naming it and the reason, and the batch goes on (unless ``keep_going=False``).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from preprocess.core.channels import CHANNEL_KIND, MontageError
from preprocess.core.edf import EdfError, is_voltage, read_header
from preprocess.core.mne_source import EDF_SUFFIXES, MneSourceError, open_recording
from preprocess.core.pipeline import load_montage
from preprocess.core.signal import SignalParams

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_FORMATS, DEFAULT_STRIDE
from .lights import LightsError, lights_within, resolve_lights
from .montage import (
    applied_band,
    band_limits_staging,
    band_note,
    describe,
    has_eeg,
    has_eeg_or_eog,
    match_layout,
    montage_string,
    substitution,
)
from .night import StagedNight, analyse_night
from .outputs import TEMP_SUFFIX, atomic_write_text, output_paths, software_version, write_outputs
from .predict import channel_indices, encode_recording, predict_proba, vote_windows
from .quality import QualityError, screen

EXTENSIONS = (".edf", ".bdf", ".fif", ".vhdr", ".set")
SUMMARY_FIELDS = ("name", "file", "status", "reason", "epochs", "hours", "channels", "montage", "TST_min",
                  "SE_pct", "SOL_min", "WASO_min", "REM_latency_min", "awakenings", "N1_pct", "N2_pct",
                  "N3_pct", "REM_pct", "seconds", "warnings", "weights", "software")
_STAT_COLUMNS = {"TST_min": "TST", "SE_pct": "SE", "SOL_min": "SOL", "WASO_min": "WASO",
                 "REM_latency_min": "REM_latency", "awakenings": "awakenings", "N1_pct": "N1_pct",
                 "N2_pct": "N2_pct", "N3_pct": "N3_pct", "REM_pct": "REM_pct"}


@dataclass
class Options:
    """How a batch is staged.

    Attributes
    ----------
    out : Path
        Output folder (created).
    stride : int
        Window stride in epochs.
    formats : tuple of str
        Output formats (see :mod:`staging.outputs`).
    batch_size : int
        Windows per forward pass.
    overwrite : bool
        Replace existing outputs (otherwise a recording whose outputs all exist is skipped).
    keep_going : bool
        Continue after a failed recording (default) or stop at the first failure.
    short : {"window", "zeros"}
        Policy for recordings shorter than 20 epochs (see :func:`staging.predict.vote_windows`).
    device : str
        Torch device of the model.
    params : SignalParams
        Signal-chain parameters (those the weights were trained with).
    auto_montage : bool
        The channel map is the shared alias table: a file whose labels match a dataset's layout
        is staged with that dataset's map (see :func:`staging.montage.match_layout`).
    allow_no_eeg : bool
        Stage a recording without any EEG channel from its EOG/EMG (``--allow-no-eeg``), with a
        warning in every output; otherwise such a recording fails.
    """

    out: Path = Path("out")
    stride: int = DEFAULT_STRIDE
    formats: tuple = DEFAULT_FORMATS
    batch_size: int = DEFAULT_BATCH_SIZE
    overwrite: bool = False
    keep_going: bool = True
    short: str = "window"
    device: str = "cpu"
    params: SignalParams = field(default_factory=SignalParams)
    auto_montage: bool = True
    allow_no_eeg: bool = False
    lights_off: str | None = None  # --lights-off: clock time or seconds from the start
    lights_on: str | None = None
    lights_table: dict | None = None  # --lights CSV, read by staging.lights.read_lights_csv
    review_threshold: float | None = None  # --review-threshold: list epochs below this confidence
    explain: str | None = None  # epochs to explain (staging.explain.select_epochs), None = none


@dataclass
class FileResult:
    """Outcome of one input file (one row of ``summary.csv``)."""

    path: Path
    name: str
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""
    n_epochs: int = 0
    channels: list = field(default_factory=list)
    montage: str = ""
    stats: dict = field(default_factory=dict)
    seconds: float = 0.0
    lines: list = field(default_factory=list)  # montage description, warnings
    warnings: list = field(default_factory=list)  # also written into every output of the file
    weights: str = ""
    software: str = ""
    demo: bool = False
    night: StagedNight | None = None  # stages, probabilities, flags (None unless staged)
    write_error: int | None = None  # errno when the outputs could not be written (disk full, read-only)

    @property
    def stages(self):
        """Stage per epoch (0 W … 4 REM, −1 unknown), or None when not staged."""
        return None if self.night is None else self.night.stages

    @property
    def probabilities(self):
        """``(n_epochs, 5)`` probabilities of W, N1, N2, N3, REM, or None when not staged."""
        return None if self.night is None else self.night.probs

    def row(self) -> dict:
        r = {"name": self.name, "file": str(self.path), "status": self.status, "reason": self.reason,
             "epochs": self.n_epochs or "", "hours": f"{self.n_epochs / 120:.2f}" if self.n_epochs else "",
             "channels": " ".join(self.channels), "montage": self.montage, "seconds": f"{self.seconds:.1f}",
             "warnings": " | ".join((["DEMO weights (simulated data)"] if self.demo else []) + self.warnings), "weights": self.weights, "software": self.software}
        for col, key in _STAT_COLUMNS.items():
            v = self.stats.get(key)
            r[col] = "" if v is None else (f"{v:g}" if isinstance(v, float) else v)
        return r


def find_inputs(inputs: Iterable[str | Path], notes: list | None = None) -> list[Path]:
    """Expand files and folders (recursive, ``.edf``/``.bdf`` in any case) into a sorted file list.

    A path given explicitly is kept whatever its extension (and reported if it is not EDF);
    a path that does not exist is kept too, so it is reported as failed. Hidden files and
    temp files are ignored in folders, and so are folders whose name ends in ``.edf``. In a
    folder, a dangling link, a FIFO or an unreadable file with a recording suffix is kept, so
    it gets its one line (:func:`input_problem`) instead of vanishing from the batch.
    The same file reached twice (``a.edf`` and ``./a.edf``, or a file and its folder) is
    staged once; ``notes`` (if given) receives one line per duplicate.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            hits = sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTENSIONS and not f.name.startswith("."))
            found.extend(f for f in hits if not f.is_dir())
            if notes is not None:
                notes.extend(f"{f}: is a folder, not an EDF file (its contents are searched)"
                             for f in hits if f.is_dir())
        else:
            found.append(p)
    unique: dict[Path, Path] = {}
    for p in found:
        key = p.resolve()
        if key in unique:
            if notes is not None:
                notes.append(f"{p}: given more than once (same file as {unique[key]}); staged once")
            continue
        unique[key] = p
    return list(unique.values())


def unique_names(paths: list[Path]) -> list[str]:
    """Output base names: the file stem, prefixed by parent folders where stems collide."""
    names = [p.stem for p in paths]
    depth = 1
    while len(set(names)) < len(names) and depth < 8:
        counts = {n: names.count(n) for n in names}
        names = ["_".join([*p.resolve().parent.parts[-depth:], p.stem]) if counts[n] > 1 else n
                 for p, n in zip(paths, names)]
        depth += 1
    seen: dict[str, int] = {}
    out = []
    for n in names:  # last resort: a counter
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


@contextmanager
def _collect_warnings(logger_name: str = "preprocess"):
    """Capture the signal chain's log warnings (NaN replaced, resampling…) for our own report."""
    records: list[str] = []

    class _Handler(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler, propagate, level = _Handler(logging.WARNING), logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    # The report must not depend on how the caller configured logging: a "preprocess" logger left at
    # ERROR (by a preprocessing worker, or a user silencing the console) would drop these warnings
    # from the outputs they belong in.
    logger.setLevel(logging.WARNING)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


class OutputWriteError(OSError):
    """The outputs of a recording could not be written (one line naming the output folder)."""


STOP_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}
"""Output-write errors after which the batch stops: every later recording would be read, filtered and
staged only to fail the same way (disk full, read-only, no permission)."""


def input_problem(path: Path) -> str | None:
    """One-line reason why ``path`` cannot be read as a recording without opening it, or None.

    A dangling symbolic link, something that is not a regular file (a FIFO would block the
    reader forever), a file the user may not read.
    """
    if path.is_symlink() and not path.exists():
        return f"dangling symbolic link (its target {os.readlink(path)} does not exist)"
    if not path.exists():
        return "no such file"
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return "is a folder, not a recording"
    if not stat.S_ISREG(mode):
        what = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else \
            "a device"
        return f"not a regular file ({what}): not read"
    if not _can_read(path):
        return "cannot read the file (permission denied)"
    return None


def _can_read(path: Path) -> bool:
    return os.access(path, os.R_OK)


def check_output_folder(out: Path) -> None:
    """Create ``out`` and prove it writable before any recording is read.

    Raises
    ------
    ValueError
        One line: ``--out`` is a file, cannot be created, or cannot be written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder (give a folder for the outputs)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    probe = out / f".lpsgm_write_probe_{os.getpid()}{TEMP_SUFFIX}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"x")
    except OSError as exc:
        raise ValueError(f"--out {out}: the folder is not writable ({exc.strerror or exc})") from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def _reason(exc: BaseException, path: Path) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for prefix in (f"{path.name}: ", f"{path}: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if not isinstance(exc, (EdfError, MontageError, FileNotFoundError, QualityError, LightsError, MneSourceError,
                            OutputWriteError)):
        text = f"{type(exc).__name__}: {text}"
    return text


def stage_file(path: Path, name: str, model, channel_map, options: Options, info: dict | None = None,
               progress=None) -> FileResult:
    """Stage one file and write its outputs; never raises for bad input (status ``failed``).

    Parameters
    ----------
    path : Path
        EDF/EDF+/BDF file.
    name : str
        Output base name.
    model : LPSGM
        Eval-mode model on ``options.device``.
    channel_map : mapping
        Canonical name → options (the alias table, or the user's explicit map).
    options : Options
    info : dict, optional
        Provenance added to ``NAME.stats.json`` (weights, …).
    progress : callable(n_done, n_total), optional
        Window progress.
    """
    t0 = time.perf_counter()
    info = {"software_version": software_version()} | (info or {})
    res = FileResult(path, name, "failed", weights=Path(str(info.get("weights", ""))).name,
                     software=info.get("software_version", ""), demo=bool(info.get("demo_weights")))
    paths = output_paths(options.out, name, options.formats)
    existing = [f for f, p in paths.items() if p.exists()]
    if existing and not options.overwrite:
        if len(existing) == len(paths):
            res.status, res.reason = "skipped", "outputs exist (use --overwrite to replace them)"
            _fill_from_existing(res, options.out / f"{name}.stats.json")
            return res
        res.lines.append(f"kept existing {', '.join(paths[f].name for f in existing)} (no --overwrite)")
        paths = {f: p for f, p in paths.items() if f not in existing}
    header = quality = None
    try:
        problem = input_problem(path)
        if problem is not None:
            raise FileNotFoundError(f"{path}: {problem}")
        if path.suffix.lower() in EDF_SUFFIXES:
            header = read_header(path)
            if not header.labels:
                res.status, res.reason = "skipped", "annotation-only EDF+ (no signals to stage)"
                return res
        with _collect_warnings() as warnings_seen:
            reader = open_recording(path)
            lights_notes: list[str] = []
            lights, lights_line = resolve_lights(path, name, reader, options.lights_off, options.lights_on,
                                                 options.lights_table, lights_notes)
            res.lines.append(lights_line)
            layout = match_layout(reader.labels) if options.auto_montage else None
            cmap = layout.channel_map if layout is not None else channel_map
            screened, quality = screen(reader, cmap, path.name, options.params.epoch_seconds)
            montaged = load_montage(screened, cmap, options.params, path.name)
        sfreqs = {s.canonical: reader.sfreq(s.positive) for s in montaged.sources}
        units = {s.canonical: reader.unit(s.positive) for s in montaged.sources}
        reader.close()
        for canonical, why in quality.dropped_channels(montaged.channels).items():
            montaged.dropped.setdefault(canonical, why)
        res.lines += describe(montaged, sfreqs, options.params, layout)
        res.warnings += [w.split(": ", 1)[-1] for w in warnings_seen if ": dropped " not in w]
        res.warnings += _montage_warnings(montaged, sfreqs, options.params, quality)
        lights = lights_within(lights, montaged.n_epochs * options.params.epoch_seconds, lights_notes)
        res.warnings += lights_notes
        res.warnings += [f"{c} <- {src}: unit {units[c]!r} is not a voltage" for c, src in
                         ((s.canonical, s.describe()) for s in montaged.sources) if not is_voltage(units[c])]
        res.channels, res.montage = list(montaged.channels), montage_string(montaged)
        _check_eeg(montaged.channels, options.allow_no_eeg, res.warnings)
        res.lines += [f"warning: {w}" for w in res.warnings]
        res.n_epochs = montaged.n_epochs
        probs = predict_proba(model, montaged.signals, channel_indices(montaged.channels), options.stride,
                              options.batch_size, options.device, options.short, progress)
        idx = channel_indices(montaged.channels)
        ep = options.params.epoch_samples
        feats = {}

        def predict_subset(keep, start, stop):  # epochs whose other channels are unusable
            short = stop - start < getattr(getattr(model, "cfg", None), "seq_len", 20)
            if short and options.short == "zeros":
                return predict_proba(model, montaged.signals[keep, start * ep:stop * ep], [idx[k] for k in keep],
                                     options.stride, options.batch_size, options.device, options.short)
            if "all" not in feats:  # CNN features of every (epoch, channel) once, shared by every subset
                feats["all"] = encode_recording(model, montaged.signals, options.device)
            stride = max(1, min(options.stride, stop - start))  # a short span still covers every epoch
            return vote_windows(model, feats["all"][start:stop][:, keep], [idx[k] for k in keep], stride,
                                options.batch_size, options.short)

        night = analyse_night(probs, montaged.channels, quality, montaged.sources, predict_subset, lights,
                              options.params.epoch_seconds, getattr(getattr(model, "cfg", None), "seq_len", 20))
        if options.explain:
            res.lines.append(_explain(options, name, model, montaged, probs, info or {}))
        del montaged.signals
        feats.clear()  # the features of the whole night are no longer needed
        res.night, res.stats = night, night.stats
        bands = {c: applied_band(CHANNEL_KIND[c], f, options.params) for c, f in sfreqs.items()}
        doc = {"recording": name, "source_file": str(path),
               "start_time": montaged.start_time.isoformat() if montaged.start_time else None,
               "channels": res.channels, "montage": montaged.montage, "dropped_channels": montaged.dropped,
               "dropped_signals": header.dropped if header is not None else {}, "layout": layout.name if layout else None,
               "native_sfreq": sfreqs, "filter_bands": bands, "warnings": res.warnings,
               "quality_dropped": quality.dropped,
               "lights": {"off_s": lights[0], "on_s": lights[1], "origin": lights_line},
               "quality": night.quality_summary(options.review_threshold),
               "stride": options.stride, **info}
        if options.review_threshold is not None:
            review = doc["quality"]["review_epochs"]
            res.lines.append(f"review: {len(review)} epoch(s) flagged or below confidence "
                             f"{options.review_threshold:g}" + (f": {_epoch_list(review)}" if review else ""))
        title = (f"{name}   TST {res.stats['TST']:.0f} min   SE {res.stats['SE']:.0f} %   "
                 f"{len(res.channels)} ch: {derivations_text(montaged.sources)}"
                 + ("   [DEMO weights trained on simulated data]" if doc.get("demo_weights") else "")
                 + ("   [no EEG]" if not has_eeg(res.channels) else "")
                 + (f"   [{len(res.warnings)} warning(s): see stats.json]" if res.warnings else ""))
        _write_all(paths, options.out, lambda: write_outputs(paths, probs, res.stats, doc, montaged.start_time,
                                                             title, options.params.epoch_seconds, night=night))
        res.status = "ok"
    except Exception as exc:  # one bad file must not stop the batch
        res.status, res.reason = "failed", _reason(exc, path)
        if isinstance(exc, OutputWriteError):
            res.write_error = exc.errno
        if header is not None and header.dropped and isinstance(exc, MontageError):
            res.reason += "; unusable signals: " + "; ".join(f"{k}: {v}" for k, v in header.dropped.items())
        unsaid = {k: v for k, v in (quality.dropped if quality is not None else {}).items()
                  if f"{k}: {v}" not in res.reason}  # why the montage lost them, when the reason does not say
        if unsaid and isinstance(exc, MontageError):
            res.reason += "; dropped by the quality gate: " + "; ".join(
                f"{quality.canonical[k]} {k}: {v}" for k, v in unsaid.items())
    res.seconds = time.perf_counter() - t0
    return res


def _write_all(paths: dict, out: Path, write: Callable[[], object]) -> None:
    """Run ``write``; on an OS error remove this recording's new outputs and raise :class:`OutputWriteError`.

    Each file is atomic, so none is half-written; removing the ones already finished keeps the
    rule "a failed recording has no outputs", and a rerun stages it again.
    """
    try:
        write()
    except OSError as exc:
        for p in paths.values():
            for f in (Path(p), Path(p).with_suffix(".json")) if str(p).endswith("_events.tsv") else (Path(p),):
                try:  # the BIDS events TSV has a JSON sidecar
                    f.unlink(missing_ok=True)
                except OSError:
                    pass
        err = OutputWriteError(f"cannot write the outputs to {out}: {exc.strerror or exc}")
        err.errno = exc.errno
        raise err from None


_AASM_REF = {"F3": ("M2",), "C3": ("M2",), "O1": ("M2",), "F4": ("M1",), "C4": ("M1",), "O2": ("M1",),
             "E1": ("M2",), "E2": ("M2", "M1"), "Chin": ()}


def derivations_text(sources) -> str:
    """``F3←Fpz-Cz O1←Pz-Oz E1←horizontal C3``: each canonical channel, with the derivation feeding
    it when that is not the AASM one (``C3`` alone for ``EEG C3-M2``; the chin EMG by its name).
    What the PNG title shows."""
    from preprocess.core.channels import normalize_label

    parts = []
    for s in sources:
        text = s.describe().replace(" - ", "-")
        norm = normalize_label(text)
        name = s.canonical.upper()
        plain = norm == name or norm in {name + ref for ref in _AASM_REF.get(s.canonical, ())} or \
            (s.canonical == "Chin" and (norm.startswith("CHIN") or norm.startswith("EMG")))
        parts.append(s.canonical if plain else f"{s.canonical}\u2190{_short_label(text)}")
    return " ".join(parts)


def _short_label(text: str) -> str:
    for prefix in ("EEG ", "EOG ", "EMG "):
        text = text.replace(prefix, "")
    return text


def _montage_warnings(montaged, sfreqs: dict, params: SignalParams, quality) -> list[str]:
    """What the montage substituted or gave up, as warnings every output carries.

    Substitutions for the AASM derivation (:func:`staging.montage.substitution`), bands the
    sampling rate limits (:func:`staging.montage.band_note`), channels the quality gate dropped,
    and its notes on kept channels (coarse quantisation).
    """
    out = []
    for s in montaged.sources:
        note = substitution(s)
        if note:
            out.append(f"{s.canonical} <- {s.describe()}: {note}")
        band = applied_band(CHANNEL_KIND[s.canonical], sfreqs[s.canonical], params) if s.canonical in sfreqs else None
        if band is not None and band_limits_staging(band):
            out.append(f"{s.canonical} <- {s.describe()}: {band_note(band, sfreqs[s.canonical])} the weights were "
                       "trained on")
    if quality is not None:
        out += [f"{quality.canonical[lab]} {lab} dropped: {why}" for lab, why in quality.dropped.items()]
        out += list(quality.warnings)
    return out


def _explain(options: Options, name: str, model, montaged, probs, info: dict) -> str:
    """Write NAME.explain.npz and pages (``--explain``); returns the line reported for the file."""
    from .explain import write_explanation

    ex = write_explanation(options.out, name, model, montaged.signals, list(montaged.channels), probs,
                           options.explain, device=options.device, demo=bool(info.get("demo_weights")),
                           info={"weights": info.get("weights"), "demo_weights": info.get("demo_weights")})
    return (f"explained {ex['n_epochs']} epochs -> {ex['npz'].name}, {len(ex['pages'])} pages "
            f"({ex['seconds_per_epoch']:.2f} s per epoch)")


def _epoch_list(epochs: list[int], limit: int = 40) -> str:
    """``3-5, 9, 12-14`` (0-based epochs), at most ``limit`` ranges."""
    ranges, start = [], None
    for i, e in enumerate(epochs):
        if start is None:
            start = e
        if i + 1 == len(epochs) or epochs[i + 1] != e + 1:
            ranges.append(f"{start}" if start == e else f"{start}-{e}")
            start = None
    more = f" … (+{len(ranges) - limit} ranges)" if len(ranges) > limit else ""
    return ", ".join(ranges[:limit]) + more


def _check_eeg(channels: list[str], allow_no_eeg: bool, warnings: list[str]) -> None:
    """Refuse a montage without EEG (or, with ``allow_no_eeg``, add the warning every output carries)."""
    if has_eeg(channels):
        return
    found = ", ".join(channels)
    if not has_eeg_or_eog(channels):
        raise MontageError(f"no usable EEG or EOG channel (only {found}); "
                           "pass --channels with an explicit map if the labels are unusual")
    if not allow_no_eeg:
        raise MontageError(f"no EEG channel (only {found}): a hypnogram from EOG/EMG alone is not reliable; "
                           "pass --allow-no-eeg to stage it anyway, or --channels/--dataset if the EEG "
                           "has unusual labels")
    warnings.append(f"staged WITHOUT EEG, from {found} only (--allow-no-eeg): less reliable than an EEG montage")


def _fill_from_existing(res: FileResult, stats_path: Path) -> None:
    """Statistics, channels and montage of a recording skipped on resume, from its stats JSON."""
    try:
        doc = json.loads(stats_path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(doc, dict):
        return
    res.stats = doc.get("statistics") or {}
    res.n_epochs = int(res.stats.get("n_epochs") or 0)
    res.channels = list(doc.get("channels") or [])
    montage = doc.get("montage") or {}
    res.montage = "; ".join(f"{c}={v if isinstance(v, str) else ' - '.join(v)}" for c, v in montage.items())
    res.warnings = list(doc.get("warnings") or [])
    res.weights = Path(str(doc.get("weights", ""))).name or res.weights
    res.software = doc.get("software_version", res.software)
    res.demo = bool(doc.get("demo_weights", res.demo))


def write_summary(out_dir: Path, results: list[FileResult]) -> Path:
    """Write ``summary.csv`` (one row per recording); rows of earlier batches in the same folder
    whose names are not in this batch are kept."""
    path = Path(out_dir) / "summary.csv"
    rows: dict[str, dict] = {}
    if path.exists():
        try:
            with open(path, newline="") as fh:
                rows = {r["name"]: r for r in csv.DictReader(fh) if r.get("name")}
        except (OSError, csv.Error, KeyError):
            rows = {}
    for r in results:
        rows[r.name] = r.row()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows.values():
        w.writerow({k: r.get(k, "") for k in SUMMARY_FIELDS})
    return atomic_write_text(path, buf.getvalue())


def format_result(i: int, n: int, res: FileResult) -> str:
    """The one status line of a file."""
    head = f"[{i}/{n}]"
    if res.status == "failed":
        return f"{head} FAILED {res.path}: {res.reason}"
    if res.status == "skipped":
        return f"{head} skipped {res.path}: {res.reason}"
    s = res.stats
    tail = ""
    if res.warnings:  # what was tolerated, on the file's own line
        more = f" (+{len(res.warnings) - 1} more)" if len(res.warnings) > 1 else ""
        tail = f"; warning: {res.warnings[0]}{more}"
    return (f"{head} ok {res.path} -> {res.name}: {res.n_epochs} epochs ({res.n_epochs / 120:.1f} h), "
            f"{len(res.channels)} channels, TST {s['TST']:.1f} min, SE {s['SE']:.1f} % ({res.seconds:.1f} s)"
            f"{tail}")


def run_batch(files: list[Path], model, channel_map, options: Options, info: dict | None = None,
              echo: Callable[[str], None] = print, progress_bar: bool | None = None) -> list[FileResult]:
    """Stage every file; print the montage and one status line per file; write ``summary.csv``.

    Returns
    -------
    list of FileResult
        In input order; stops early after a failure when ``options.keep_going`` is False.
    """
    from tqdm import tqdm

    Path(options.out).mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temp_files(options.out)
    if stale:
        echo(f"removed {stale} stale temp file(s) left in {options.out} by an interrupted run")
    names = unique_names(files)
    results: list[FileResult] = []
    # disable=None: a bar only on an interactive terminal.
    bar = tqdm(total=len(files), unit="file", desc="staging", leave=False,
               disable=None if progress_bar is None else not progress_bar)
    say = echo if bar.disable else bar.write
    try:
        for i, (path, name) in enumerate(zip(files, names), start=1):
            bar.set_postfix_str(path.name)
            res = stage_file(path, name, model, channel_map, options, info)
            for line in res.lines:
                say(f"    {line}")
            say(format_result(i, len(files), res))
            results.append(res)
            bar.update(1)
            if res.status == "failed" and not options.keep_going:
                say(f"stopping at the first failure (--fail-fast); {len(files) - i} file(s) not staged")
                break
            if res.write_error in STOP_ERRNOS and i < len(files):
                say(f"stopping: the output folder {options.out} cannot be written ({os.strerror(res.write_error)}); "
                    f"{len(files) - i} file(s) not staged: free space or choose another --out, then rerun to resume")
                break
    finally:  # also on Ctrl-C: the files finished so far are in summary.csv
        bar.close()
        try:
            write_summary(options.out, results)
        except OSError as exc:
            say(f"summary.csv not written to {options.out}: {exc.strerror or exc}")
    return results


def remove_stale_temp_files(out_dir: Path) -> int:
    """Delete the hidden temp files (``.NAME.*.tmp``) a killed run left in ``out_dir``; return how many.

    Only names made by :func:`staging.outputs.atomic_write` are touched; a finished output is never
    a temp file, so nothing staged is lost.
    """
    n = 0
    for p in Path(out_dir).glob(f".*{TEMP_SUFFIX}"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def exit_code(results: list[FileResult]) -> int:
    """0 when no file failed (skipped files count as success), else 1."""
    return 0 if results and all(r.status != "failed" for r in results) else 1


__all__ = ["FileResult", "Options", "OutputWriteError", "STOP_ERRNOS", "check_output_folder", "derivations_text",
           "exit_code", "find_inputs", "format_result", "input_problem", "run_batch", "stage_file",
           "unique_names", "write_summary"]
