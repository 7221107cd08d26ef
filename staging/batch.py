"""Staging a batch of EDF/BDF files: discovery, per-file pipeline, reporting, ``summary.csv``.

Per recording, :meth:`staging.Stager.stage` (read at the native rate per channel → montage → quality
gate → the signal chain of preprocessing → model → :class:`~staging.night.StagedNight`), then
:meth:`StagedNight.write <staging.night.StagedNight.write>`. A file that cannot be staged is reported
in one line naming it and the reason, and the batch goes on (unless ``keep_going=False``).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from preprocess.core.channels import MontageError
from preprocess.core.claims import Owner
from preprocess.core.edf import EdfError, read_header
from preprocess.core.memory_source import MemorySourceError
from preprocess.core.mne_source import EDF_SUFFIXES, MneSourceError
from preprocess.core.shards import select

from .defaults import DEFAULT_FORMATS
from .lights import LightsError
from .night import StagedNight
from .outputs import TEMP_SUFFIX, atomic_write_text, output_paths
from .quality import QualityError
from .sharing import DEFAULT_CLAIM_TIMEOUT_S, SharedOut
from .stager import Stager, StagingInputError

EXTENSIONS = (".edf", ".bdf", ".fif", ".vhdr", ".set")
SUMMARY_FIELDS = ("name", "file", "status", "reason", "epochs", "hours", "channels", "montage", "TST_min",
                  "SE_pct", "SOL_min", "WASO_min", "REM_latency_min", "awakenings", "N1_pct", "N2_pct",
                  "N3_pct", "REM_pct", "seconds", "warnings", "weights", "software")
_STAT_COLUMNS = {"TST_min": "TST", "SE_pct": "SE", "SOL_min": "SOL", "WASO_min": "WASO",
                 "REM_latency_min": "REM_latency", "awakenings": "awakenings", "N1_pct": "N1_pct",
                 "N2_pct": "N2_pct", "N3_pct": "N3_pct", "REM_pct": "REM_pct"}


@dataclass(frozen=True)
class OutputOptions:
    """What the outputs of a batch need (the model run's options are :class:`staging.stager.RunOptions`).

    Attributes
    ----------
    out : Path
        Output folder (created).
    formats : tuple of str
        Output formats (see :mod:`staging.outputs`).
    overwrite : bool
        Replace existing outputs (otherwise a recording whose outputs all exist is skipped).
    keep_going : bool
        Continue after a failed recording (default) or stop at the first failure.
    review_threshold : float, optional
        List the epochs flagged or below this confidence (``--review-threshold``).
    shard : str, optional
        ``--shard i/n|auto``: stage only this static share of the files.
    claim_timeout : float
        ``--claim-timeout``: seconds after which another process's claim is taken over.
    """

    out: Path = Path("out")
    formats: tuple = DEFAULT_FORMATS
    overwrite: bool = False
    keep_going: bool = True
    review_threshold: float | None = None
    shard: str | None = None
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT_S


@dataclass(frozen=True)
class ReadOptions:
    """How each recording of a batch is read: montage and time in bed.

    Attributes
    ----------
    channels : str or dict
        ``--channels``: ``auto`` (a file whose labels match a dataset's layout is staged with that
        dataset's map, see :func:`staging.montage.match_layout`), ``published``, JSON, or a dict.
    dataset : str, optional
        ``--dataset``: force a dataset module's channel map.
    allow_no_eeg : bool
        Stage a recording without any EEG channel from its EOG/EMG (``--allow-no-eeg``), with a
        warning in every output; otherwise such a recording fails.
    lights_off, lights_on : str, optional
        ``--lights-off``/``--lights-on``: clock time or seconds from the start.
    lights_table : dict, optional
        ``--lights`` CSV, read by :func:`staging.lights.read_lights_csv`.
    """

    channels: object = "auto"
    dataset: str | None = None
    allow_no_eeg: bool = False
    lights_off: str | None = None
    lights_on: str | None = None
    lights_table: dict | None = None


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
    write_error: int | None = None  # errno when the outputs could not be written (disk full, read-only)
    night: StagedNight | None = None  # stages, probabilities, flags (None unless staged)

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
                                MemorySourceError, StagingInputError, OutputWriteError)):
        text = f"{type(exc).__name__}: {text}"
    return text


def stage_file(path: Path, name: str, stager: Stager, read: ReadOptions = ReadOptions(),
               outputs: OutputOptions = OutputOptions(), progress=None,
               on_signals: Callable | None = None, prepared: Prefetched | None = None) -> FileResult:
    """Stage one file and write its outputs; never raises for bad input (status ``failed``).

    Parameters
    ----------
    path : Path
        A recording (EDF/EDF+/BDF, or a format MNE reads).
    name : str
        Output base name.
    stager : Stager
        The loaded model and its run options.
    read : ReadOptions
        Montage and lights.
    outputs : OutputOptions
    progress : callable(n_done, n_total), optional
        Window progress.
    on_signals : callable(stager, name, montaged, probs) -> str, optional
        Called with the preprocessed signals before they are freed (``--explain``); its line is reported.
    prepared : Prefetched, optional
        This file already read and chained on another thread (:class:`Prefetcher`): its result (or its
        error, reported here as if this call had met it) is used instead of reading the file again.
    """
    t0 = time.perf_counter()
    info = stager.info
    res = FileResult(path, name, "failed", weights=Path(str(info.get("weights", ""))).name,
                     software=info.get("software_version", ""), demo=bool(info.get("demo_weights")))
    paths = output_paths(outputs.out, name, outputs.formats)
    existing = [f for f, p in paths.items() if p.exists()]
    if existing and not outputs.overwrite:
        if len(existing) == len(paths):
            res.status, res.reason = "skipped", "outputs exist (use --overwrite to replace them)"
            _fill_from_existing(res, outputs.out / f"{name}.stats.json")
            return res
        res.lines.append(f"kept existing {', '.join(paths[f].name for f in existing)} (no --overwrite)")
        paths = {f: p for f, p in paths.items() if f not in existing}
    header = None
    try:
        problem = input_problem(path)
        if problem is not None:
            raise FileNotFoundError(f"{path}: {problem}")
        if path.suffix.lower() in EDF_SUFFIXES:
            header = read_header(path)
            if not header.labels:
                res.status, res.reason = "skipped", "annotation-only EDF+ (no signals to stage)"
                return res
        hook = None if on_signals is None else (lambda montaged, probs: on_signals(stager, name, montaged, probs))
        if prepared is None:
            night = stager.stage(path, read.channels, (read.lights_off, read.lights_on), name=name,
                                 dataset=read.dataset, allow_no_eeg=read.allow_no_eeg, lights_table=read.lights_table,
                                 progress=progress, on_signals=hook, lines=res.lines)
        else:
            night = stager.finish(prepared.result(res.lines), progress, hook)
        res.night, res.stats, res.n_epochs = night, night.stats, night.n_epochs
        res.channels, res.montage, res.warnings = list(night.channels), night.montage_text, night.warnings
        if outputs.review_threshold is not None:
            review = night.review(outputs.review_threshold)
            res.lines.append(f"review: {len(review)} epoch(s) flagged or below confidence "
                             f"{outputs.review_threshold:g}" + (f": {_epoch_list(review)}" if review else ""))
        _write_all(paths, outputs.out, lambda: night.write(outputs.out, outputs.formats, outputs.review_threshold,
                                                           paths=paths))
        res.status = "ok"
    except ImportError:  # a missing package is the installation's fault, not this file's: stop the batch
        raise
    except Exception as exc:  # one bad file must not stop the batch
        res.status, res.reason = "failed", _reason(exc, path)
        if isinstance(exc, OutputWriteError):
            res.write_error = exc.errno
        if header is not None and header.dropped and isinstance(exc, MontageError):
            res.reason += "; unusable signals: " + "; ".join(f"{k}: {v}" for k, v in header.dropped.items())
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
    """Write the rows of ``results`` and rebuild ``summary.csv`` (one row per recording); rows of
    earlier batches (and of other processes sharing the folder) whose names are not in ``results``
    are kept."""
    shared = SharedOut(Path(out_dir), SUMMARY_FIELDS)
    for r in results:
        shared.write_row(r.row())
    return shared.write_summary()


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


def run_batch(files: list[Path], stager: Stager, read: ReadOptions = ReadOptions(),
              outputs: OutputOptions = OutputOptions(), echo: Callable[[str], None] = print,
              progress_bar: bool | None = None, on_signals: Callable | None = None,
              prefetch: bool | None = None) -> list[FileResult]:
    """Stage every file; print the montage and one status line per file; write ``summary.csv``.

    Several processes (on any hosts) may run this on the same files and ``outputs.out``: each
    recording is staged by one of them (:mod:`staging.sharing`). A recording another process is
    staging is come back to after the others, until that process has finished it or its claim can
    be taken over (process gone, or older than ``outputs.claim_timeout``), so when every process
    has ended every recording is staged. ``outputs.shard`` splits the files statically instead.

    Parameters
    ----------
    files : list of Path
    stager : Stager
    read : ReadOptions
    outputs : OutputOptions
    echo : callable
        Where messages go.
    progress_bar : bool, optional
        None: a bar only on an interactive terminal.
    on_signals : callable(stager, name, montaged, probs) -> str, optional
        See :func:`stage_file`.
    prefetch : bool, optional
        Read and chain the next file on a CPU thread while the model stages this one (one file ahead,
        :class:`Prefetcher`); results, their order and each file's errors are those of a plain run.
        Default (None): on when the model runs on a GPU, whose nights would otherwise wait for the CPU.

    Returns
    -------
    list of FileResult
        In input order; stops early after a failure when ``outputs.keep_going`` is False.
    """
    from tqdm import tqdm

    Path(outputs.out).mkdir(parents=True, exist_ok=True)
    # the writer looked up at call time: the same atomic writer as every output (and tests' fault injection)
    shared = SharedOut(outputs.out, SUMMARY_FIELDS, outputs.claim_timeout, echo,
                       lambda path, text: atomic_write_text(path, text))
    stale = shared.remove_stale_temp_files()
    if stale:
        echo(f"removed {stale} stale temp file(s) left in {outputs.out} by an interrupted run")
    # Names come from the whole list, so every shard and every process names a file alike.
    todo = list(enumerate(select(list(zip(files, unique_names(files))), outputs.shard), start=1))
    n, done = len(todo), {}
    # disable=None: a bar only on an interactive terminal.
    bar = tqdm(total=n, unit="file", desc="staging", leave=False,
               disable=None if progress_bar is None else not progress_bar)
    say = echo if bar.disable else bar.write

    if prefetch is None:
        prefetch = str(getattr(getattr(stager, "run", None), "device", "cpu")).startswith("cuda")
    ahead = Prefetcher(stager, read, outputs) if prefetch else None
    following: dict = {}  # (path, name) -> the file after it in this pass

    def stage(path: Path, name: str) -> FileResult:
        prepared = None
        if ahead is not None:
            prepared = ahead.take(path, name)
            nxt = following.get((path, name))
            if nxt is not None:  # the next file is read and chained while the model stages this one
                ahead.start(*nxt)
        return stage_file(path, name, stager, read, outputs, on_signals=on_signals, prepared=prepared)

    try:
        while todo:
            held = []
            following = {tuple(a): tuple(b) for (_, a), (_, b) in zip(todo, todo[1:])}
            for i, (path, name) in todo:
                bar.set_postfix_str(path.name)
                res = _stage_claimed(path, name, stage, shared)
                if isinstance(res, Owner):
                    held.append((i, (path, name)))
                    say(f"    {path}: being staged by another process ({res.describe()}); coming back to it")
                    continue
                for line in res.lines:
                    say(f"    {line}")
                say(format_result(i, n, res))
                done[i] = res
                bar.update(1)
                if res.status == "failed" and not outputs.keep_going:
                    say(f"stopping at the first failure (--fail-fast); {n - len(done)} file(s) not staged")
                    return [done[k] for k in sorted(done)]
                if res.write_error in STOP_ERRNOS and len(done) < n:
                    say(f"stopping: the output folder {outputs.out} cannot be written ({os.strerror(res.write_error)}); "
                        f"{n - len(done)} file(s) not staged: free space or choose another --out, then rerun to resume")
                    return [done[k] for k in sorted(done)]
            if held:
                _wait_for_others(min(CLAIM_POLL_S, outputs.claim_timeout))
            todo = held
    finally:  # also on Ctrl-C: the files finished so far are in summary.csv
        if ahead is not None:
            ahead.close()
        bar.close()
        try:
            shared.write_summary()
        except OSError as exc:
            say(f"summary.csv not written to {outputs.out}: {exc.strerror or exc}")
        shared.tidy()
    return [done[k] for k in sorted(done)]


class Prefetched:
    """A file being read and chained on the prefetch thread (:meth:`Prefetcher.start`)."""

    def __init__(self, future, lines: list):
        self._future, self._lines = future, lines

    def result(self, lines: list):
        """The :class:`~staging.stager.PreparedNight` (waiting for it), its console lines appended to
        ``lines`` first; the file's own error is raised here, after the lines it produced."""
        try:
            prepared = self._future.result()
        except BaseException:
            lines.extend(self._lines)
            raise
        lines.extend(self._lines)
        prepared.lines = lines  # later lines (explanations) go where a plain run puts them
        return prepared


class Prefetcher:
    """Reads and chains one file ahead on a thread, for :func:`run_batch` (``prefetch``).

    The thread runs :meth:`Stager.prepare <staging.stager.Stager.prepare>` with ``stream=False``
    (no model call: the model stays on the caller's thread) and nothing else: no output, no claim,
    no console line. A file whose outputs all exist (without ``overwrite``) is not read ahead.
    Bounded: at most one file is prepared ahead, and one not taken is dropped.
    """

    def __init__(self, stager: Stager, read: ReadOptions, outputs: OutputOptions):
        from concurrent.futures import ThreadPoolExecutor

        self.stager, self.read, self.outputs = stager, read, outputs
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lpsgm-prefetch")
        self._pending: tuple | None = None  # (path, name, Prefetched)

    def start(self, path: Path, name: str) -> bool:
        """Begin preparing ``path`` (False when one is already pending or its outputs all exist)."""
        if self._pending is not None:
            return False
        paths = output_paths(self.outputs.out, name, self.outputs.formats)
        if not self.outputs.overwrite and all(p.exists() for p in paths.values()):
            return False
        r, lines = self.read, []
        future = self._pool.submit(self.stager.prepare, path, r.channels, (r.lights_off, r.lights_on), name=name,
                                   dataset=r.dataset, allow_no_eeg=r.allow_no_eeg, lights_table=r.lights_table,
                                   lines=lines, stream=False)
        self._pending = (path, name, Prefetched(future, lines))
        return True

    def take(self, path: Path, name: str) -> Prefetched | None:
        """The file prepared ahead when it is ``(path, name)``; otherwise drop whatever is pending."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        if pending[:2] == (path, name):
            return pending[2]
        pending[2]._future.cancel()  # not taken (claimed by another process meanwhile): dropped
        return None

    def close(self) -> None:
        if self._pending is not None:
            self._pending[2]._future.cancel()
            self._pending = None
        self._pool.shutdown(wait=True)


CLAIM_POLL_S = 5.0
"""Seconds between two looks at the recordings other processes are staging."""


def _wait_for_others(seconds: float) -> None:
    time.sleep(seconds)


def _stage_claimed(path: Path, name: str, stage: Callable[[Path, str], FileResult],
                   shared: SharedOut) -> FileResult | Owner:
    """``stage(path, name)`` under a claim on ``name``, its row written; the owner of the claim when
    another live process holds it; skipped when another process finished it since this one
    started (its row is left to that process)."""
    claim = shared.claim(name)
    if isinstance(claim, Owner):
        return claim
    with claim:
        done = shared.done_since_start(name)
        if done is not None:
            return FileResult(path, name, "skipped", f"staged by another process during this run ({done})")
        res = stage(path, name)
        try:
            shared.write_row(res.row())
        except OSError as exc:  # a full or read-only disk: the outputs' own errors say more
            res.lines.append(f"summary row not written to {shared.rows}: {exc.strerror or exc}")
    return res


def exit_code(results: list[FileResult]) -> int:
    """0 when no file failed (skipped files count as success), else 1."""
    return 0 if results and all(r.status != "failed" for r in results) else 1


__all__ = ["FileResult", "OutputOptions", "OutputWriteError", "Prefetched", "Prefetcher", "ReadOptions", "STOP_ERRNOS", "check_output_folder",
           "exit_code", "find_inputs", "format_result", "input_problem", "run_batch", "stage_file",
           "unique_names", "write_summary"]
