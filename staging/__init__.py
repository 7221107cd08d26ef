"""Whole-night inference: EDF → montage → model → probabilities → outputs, stats, plots.

Typical use is the command line (``python inference.py /path/to/edfs``); from Python, a
:class:`Stager` loads the model once and stages recordings in memory (a file, an
``mne.io.BaseRaw`` or an array), and writing files is a separate step::

    from staging import Stager
    night = Stager().stage(raw)            # StagedNight: stages, probabilities, flags, statistics
    night.write("out", ["csv", "stats"])   # files, when wanted

:func:`stage` is the batch form of ``inference.py`` (folders, ``summary.csv``)::

    from staging import stage
    results, code = stage(["night.edf"], out="out")

and the building blocks are importable on their own: :func:`staging.predict.predict_proba`
(windowed voting on preprocessed signals), :func:`staging.stats.sleep_statistics`,
:func:`staging.weights.find_weights`, :mod:`staging.outputs`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from preprocess.core.extras import check, staging_features

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_FORMATS, DEFAULT_STRIDE, FORMATS

if TYPE_CHECKING:
    from .batch import FileResult
    from .stager import Stager

# Heavy submodules (torch, scipy) load on first use, so ``inference.py --help`` stays instant.
_LAZY = {
    "FileResult": "batch", "exit_code": "batch", "find_inputs": "batch",
    "run_batch": "batch", "stage_file": "batch", "OutputOptions": "batch", "ReadOptions": "batch",
    "Stager": "stager", "RunOptions": "stager", "StagingInputError": "stager", "resolve_device": "stager",
    "StagedNight": "night", "encode_recording": "predict", "predict_proba": "predict",
    "vote_windows": "predict", "window_starts": "predict", "sleep_statistics": "stats", "Weights": "weights",
    "WeightsError": "weights", "find_weights": "weights", "load_model": "weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simulated_night.edf"
"""The bundled example: a simulated night (see ``examples/README.md``)."""


def stage(inputs: Sequence[str | Path], out: str | Path = "out", weights: str | Path | None = None,
          channels: str | None = "auto", device: str = "auto", stride: int = DEFAULT_STRIDE,
          formats: Sequence[str] | None = None, batch_size: int = DEFAULT_BATCH_SIZE, overwrite: bool = False,
          keep_going: bool = True, echo: Callable[[str], None] = print,
          progress_bar: bool | None = None, dataset: str | None = None,
          allow_no_eeg: bool = False, lights_off: str | float | None = None,
          lights_on: str | float | None = None, lights_csv: str | Path | None = None,
          review_threshold: float | None = None, int8: bool = False, backend: str = "torch",
          precision: str = "fp32", threads: int = 0, stager: Stager | None = None,
          on_signals: Callable | None = None, shard: str | None = None,
          claim_timeout: float | None = None, prefetch: bool | None = None) -> tuple[list[FileResult], int]:
    """Stage files and folders into ``out``; the Python form of ``inference.py``.

    Parameters
    ----------
    inputs : sequence of path
        Files and/or folders (searched recursively for the suffixes of ``staging.batch.EXTENSIONS``).
    out : path
        Output folder.
    weights, device, stride, batch_size, int8, backend, precision, threads
        Model options of :class:`Stager` (ignored when ``stager`` is given).
    channels : str
        ``"auto"``, ``"published"``, a JSON file path or an inline JSON channel map.
    formats, overwrite, keep_going, review_threshold
        See :class:`staging.batch.OutputOptions`.
    echo : callable
        Where messages go.
    dataset : str, optional
        Force a dataset module's channel map (``--dataset``); default: automatic detection.
    allow_no_eeg : bool
        Stage recordings without EEG from EOG/EMG, with a warning in every output.
    lights_off, lights_on : str or float, optional
        Clock time or seconds from the start (:mod:`staging.lights`), for every input.
    lights_csv : path, optional
        CSV ``name,lights_off,lights_on`` (one row per recording).
    stager : Stager, optional
        An already loaded model (the web worker and repeated calls load it once).
    on_signals : callable(stager, name, montaged, probs) -> str, optional
        Called per recording with its preprocessed signals (``inference.py --explain`` uses it).
    shard : str, optional
        ``"i/n"`` or ``"auto"`` (from the array job's environment): stage only every n-th file
        from the i-th (:mod:`preprocess.core.shards`).
    claim_timeout : float, optional
        Seconds after which another process's claim on a recording is taken over (default
        :data:`staging.sharing.DEFAULT_CLAIM_TIMEOUT_S`); see :mod:`staging.sharing`.
    prefetch : bool, optional
        Read and chain file k+1 on a CPU thread while the model stages file k (default: on a GPU
        only); see :func:`staging.batch.run_batch`.

    Returns
    -------
    tuple
        ``(results, exit code)``: 0 when every file succeeded or was skipped, 1 otherwise.

    Raises
    ------
    WeightsError, ChannelMapError, RuntimeError, ValueError
        Problems with the arguments themselves (no weights, bad JSON map, no GPU, an ``out``
        folder that cannot be created or written); these stop before any file is read.
    """
    from preprocess.core.shards import parse_shard

    from .batch import OutputOptions, ReadOptions, check_output_folder, exit_code, find_inputs, run_batch
    from .lights import read_lights_csv
    from .montage import channel_map_from_arg
    from .sharing import DEFAULT_CLAIM_TIMEOUT_S
    from .stager import Stager

    for feature in staging_features(None, backend, formats or ()):  # before any file is read: a missing
        check(feature)  # package raises MissingPackageError (an ImportError; one found mid-batch stops it too)
    if review_threshold is not None and not 0.0 <= review_threshold <= 1.0:
        raise ValueError(f"--review-threshold must be between 0 and 1, got {review_threshold}")
    lights_table = read_lights_csv(lights_csv) if lights_csv else None
    parse_shard(shard)  # a bad --shard stops here, before the weights load
    if claim_timeout is not None and claim_timeout <= 0:
        raise ValueError(f"--claim-timeout must be > 0 seconds, got {claim_timeout:g}")
    out = Path(out)
    check_output_folder(out)  # before any weights or recording is read: exit 2, one line
    channel_map_from_arg(channels, dataset)  # a bad map stops before the model loads
    if stager is None:
        stager = Stager(weights, device=device, stride=stride, threads=threads, backend=backend,
                        precision=precision, int8=int8, batch_size=batch_size, echo=echo)
    else:
        for line in stager.notes:
            echo(line)
    _, map_origin = stager.channel_map(channels, dataset)
    notes: list[str] = []
    files = find_inputs(inputs, notes)
    for note in notes:
        echo(f"note: {note}")
    echo(f"montage: {map_origin}; device: {stager.run.device}; stride: {stager.run.stride}; "
         f"{len(files)} file(s) -> {out}")
    if not files:
        echo(f"no EDF/BDF file found in {', '.join(map(str, inputs))} (folders are searched recursively "
             "for .edf/.bdf)")
        return [], 1
    read = ReadOptions(channels, dataset, allow_no_eeg, lights_off, lights_on, lights_table)
    outputs = OutputOptions(out, tuple(formats or DEFAULT_FORMATS), overwrite, keep_going, review_threshold, shard,
                            DEFAULT_CLAIM_TIMEOUT_S if claim_timeout is None else claim_timeout)
    results = run_batch(files, stager, read, outputs, echo, progress_bar, on_signals, prefetch)
    return results, exit_code(results)


__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_FORMATS", "DEFAULT_STRIDE", "FORMATS", "EXAMPLE", "FileResult", "OutputOptions",
    "ReadOptions", "RunOptions", "StagedNight", "Stager", "StagingInputError", "Weights", "WeightsError",
    "encode_recording", "exit_code", "find_inputs", "find_weights", "load_model", "predict_proba",
    "resolve_device", "run_batch", "sleep_statistics", "stage", "stage_file", "vote_windows", "window_starts",
]
