"""Whole-night inference: EDF → montage → model → probabilities → outputs, stats, plots.

Typical use is the command line (``python inference.py /path/to/edfs``); the same pipeline is
available from Python::

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

from .defaults import DEFAULT_BATCH_SIZE, DEFAULT_FORMATS, DEFAULT_STRIDE, FORMATS

if TYPE_CHECKING:
    from .batch import FileResult

# Heavy submodules (torch, scipy) load on first use, so ``inference.py --help`` stays instant.
_LAZY = {
    "FileResult": "batch", "Options": "batch", "exit_code": "batch", "find_inputs": "batch",
    "run_batch": "batch", "stage_file": "batch", "encode_recording": "predict", "predict_proba": "predict",
    "vote_windows": "predict", "window_starts": "predict", "sleep_statistics": "stats", "Weights": "weights",
    "WeightsError": "weights", "find_weights": "weights", "load_model": "weights",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simulated_night.edf"
"""The bundled example: a simulated night (see ``examples/README.md``)."""


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    device = device.lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA GPU is visible (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


def stage(inputs: Sequence[str | Path], out: str | Path = "out", weights: str | Path | None = None,
          channels: str | None = "auto", device: str = "auto", stride: int = DEFAULT_STRIDE,
          formats: Sequence[str] | None = None, batch_size: int = DEFAULT_BATCH_SIZE, overwrite: bool = False,
          keep_going: bool = True, echo: Callable[[str], None] = print,
          progress_bar: bool | None = None, dataset: str | None = None,
          allow_no_eeg: bool = False, lights_off: str | float | None = None,
          lights_on: str | float | None = None, lights_csv: str | Path | None = None,
          review_threshold: float | None = None, explain: str | None = None,
          int8: bool = False, backend: str = "torch", precision: str = "fp32") -> tuple[list[FileResult], int]:
    """Stage EDF/BDF files and folders; the Python form of ``inference.py``.

    Parameters
    ----------
    inputs : sequence of path
        Files and/or folders (searched recursively for ``.edf``/``.bdf``).
    out : path
        Output folder.
    weights : path, optional
        Weights file or folder; default: the search order of :mod:`staging.weights`.
    channels : str
        ``"auto"``, a JSON file path or an inline JSON channel map.
    device : {"auto", "cpu", "cuda"}
    stride, formats, batch_size, overwrite, keep_going
        See :class:`staging.batch.Options`.
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
    review_threshold : float, optional
        List epochs flagged or with a max probability below this.
    int8 : bool
        Opt-in int8 sequence encoder on the CPU (:mod:`models.quantize`; stages may differ from
        float32 on a few epochs, see docs/benchmarks.md); recorded in every ``stats.json``.
    backend : {"torch", "onnxruntime"}
        ``onnxruntime`` (CPU only): the model exported to ONNX (:mod:`models.onnx_export`) and run
        by ONNX Runtime; probabilities equal torch's to ~1e-6.
    precision : {"fp32", "bf16", "tf32"}
        Opt-in reduced precision (:mod:`models.precision`); recorded in every ``stats.json``.

    Returns
    -------
    tuple
        ``(results, exit code)``: 0 when every file succeeded or was skipped, 1 otherwise.

    Raises
    ------
    WeightsError, ChannelMapError, RuntimeError, ValueError
        Problems with the arguments themselves (no weights, bad JSON map, no GPU); these stop
        before any file is read.
    """
    from preprocess.core.signal import SignalParams

    from .batch import Options, exit_code, find_inputs, run_batch
    from .lights import read_lights_csv
    from .montage import AUTO_ORIGIN, channel_map_from_arg
    from .outputs import software_version
    from .weights import find_weights, load_model

    if stride < 1:
        raise ValueError(f"--stride must be >= 1, got {stride}")
    if review_threshold is not None and not 0.0 <= review_threshold <= 1.0:
        raise ValueError(f"--review-threshold must be between 0 and 1, got {review_threshold}")
    lights_table = read_lights_csv(lights_csv) if lights_csv else None
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder (give a folder for the outputs)")
    device = resolve_device(device)
    channel_map, map_origin = channel_map_from_arg(channels, dataset)
    chosen = find_weights(weights)
    echo(f"weights: {chosen.describe()}")
    if chosen.demo:
        echo("WARNING: these are DEMO weights trained on SIMULATED PSG only; their hypnograms are not "
             "meaningful for real recordings. Put the official LPSGM file "
             "ched32_seqed64_ch9_seql20_block6.pth in weights/ (or pass --weights) for real use.")
    model = load_model(chosen, device)
    if int8:
        from models.quantize import quantize_sequence_encoder

        model = quantize_sequence_encoder(model)
        echo("note: --int8: the sequence encoder's Linears run in int8 (opt-in; stages may differ from "
             "float32 on a few epochs, see docs/benchmarks.md)")
    if precision != "fp32":
        if int8 or backend != "torch" or explain:
            raise ValueError("--precision bf16/tf32 runs the torch model, without --int8, --backend or --explain")
        from models.precision import apply_precision

        model = apply_precision(model, precision, device)
        echo(f"note: --precision {precision} (opt-in; stages may differ from float32 on a few epochs, "
             "see docs/benchmarks.md)")
    if backend not in ("torch", "onnxruntime"):
        raise ValueError(f"--backend must be torch or onnxruntime, got {backend!r}")
    if backend == "onnxruntime":
        if device != "cpu" or int8 or explain:
            raise ValueError("--backend onnxruntime runs on the CPU, without --int8 or --explain")
        import torch

        from models.onnx_export import OnnxLPSGM, cached_graphs

        cnn, head, exported = cached_graphs(model, chosen.path)
        # the torch model is dropped here: only the ONNX sessions stay in memory
        model = OnnxLPSGM(model, threads=torch.get_num_threads(), graphs=(cnn, head))
        echo(f"backend: onnxruntime ({'exported to' if exported else 'cached graphs in'} {cnn.parent})")
    params = SignalParams.from_dict(chosen.preprocessing)  # the chain travels with the weights
    echo(f"signal chain: {params.chain} (the chain these weights were trained on)")
    notes: list[str] = []
    files = find_inputs(inputs, notes)
    for note in notes:
        echo(f"note: {note}")
    echo(f"montage: {map_origin}; device: {device}; stride: {stride}; {len(files)} file(s) -> {out}")
    options = Options(out=Path(out), stride=stride, formats=tuple(formats or DEFAULT_FORMATS),
                      batch_size=batch_size, overwrite=overwrite, keep_going=keep_going, device=device,
                      params=params, auto_montage=map_origin == AUTO_ORIGIN, allow_no_eeg=allow_no_eeg,
                      lights_off=lights_off, lights_on=lights_on, lights_table=lights_table,
                      review_threshold=review_threshold, explain=explain)
    info = {"weights": str(chosen.path), "weights_kind": chosen.kind, "demo_weights": chosen.demo,
            "software_version": software_version(),
            "model": chosen.meta.get("model") or model.cfg.to_dict(), "preprocessing": params.to_dict()}
    if int8:
        info["int8_sequence_encoder"] = True
    if precision != "fp32":
        info["precision"] = precision
    if backend != "torch":
        info["backend"] = backend
    if not files:
        echo(f"no EDF/BDF file found in {', '.join(map(str, inputs))} (folders are searched recursively "
             "for .edf/.bdf)")
        return [], 1
    results = run_batch(files, model, channel_map, options, info, echo, progress_bar)
    return results, exit_code(results)


__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_FORMATS", "DEFAULT_STRIDE", "FORMATS", "EXAMPLE", "FileResult", "Options", "Weights", "WeightsError", "encode_recording",
    "exit_code", "find_inputs", "find_weights", "load_model", "predict_proba", "resolve_device", "run_batch",
    "sleep_statistics", "stage", "stage_file", "vote_windows", "window_starts",
]
