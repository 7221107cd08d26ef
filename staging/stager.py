"""``Stager``: weights, signal chain and model loaded once; recordings staged in memory.

The one model-loading path of the project: ``inference.py`` (through :func:`staging.stage` and
:mod:`staging.batch`), the web worker, explanations and online staging all build a
:class:`Stager`. Staging returns a :class:`staging.night.StagedNight`; writing files is a
separate call (:meth:`StagedNight.write <staging.night.StagedNight.write>`).

>>> import mne, staging
>>> raw = mne.io.read_raw_edf(staging.EXAMPLE, verbose="error")
>>> night = staging.Stager(device="cpu", stride=20).stage(raw)
>>> night.probabilities.shape                     # the 45-min example: 90 epochs x (W, N1, N2, N3, REM)
(90, 5)
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from preprocess.core.channels import MontageError
from preprocess.core.memory_source import ArraySource, RawSource

from .defaults import BACKENDS, DEFAULT_BATCH_SIZE, DEFAULT_STRIDE, PRECISIONS
from .predict import channel_indices, encode_recording, predict_proba, vote_features, vote_windows

log = logging.getLogger(__name__)


class StagingInputError(ValueError):
    """A ``source`` :meth:`Stager.stage` cannot take; the message is one line saying what it needs."""


def resolve_device(device: str | None = "auto") -> str:
    """``auto``/None → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA GPU is visible (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {device!r}")
    return device


@dataclass(frozen=True)
class RunOptions:
    """What a model run needs (not the outputs: see :class:`staging.batch.OutputOptions`).

    Attributes
    ----------
    device : str
        Torch device of the model (resolved: ``cpu`` or ``cuda[:i]``).
    stride : int
        Window step in epochs (1 = the published voting over every window).
    batch_size : int
        Windows per forward pass of the sequence encoder.
    short : {"window", "zeros"}
        Policy for recordings shorter than the model's window (:func:`staging.predict.vote_windows`).
    precision : {"fp32", "bf16", "tf32"}
        ``bf16`` runs the model under ``torch.autocast(bfloat16)``; ``tf32`` (CUDA only) lets matmuls and
        convolutions use TensorFloat-32; ``fp32`` on CUDA turns TensorFloat-32 off while the model runs
        (cuDNN allows it by default). Votes are summed in float64 in every case.
    backend : {"torch", "onnxruntime"}
    int8 : bool
        Int8 sequence encoder on the CPU (:mod:`models.quantize`).
    threads : int
        torch CPU threads set when the Stager was built (0 = torch's choice).
    """

    device: str = "cpu"
    stride: int = DEFAULT_STRIDE
    batch_size: int = DEFAULT_BATCH_SIZE
    short: str = "window"
    precision: str = "fp32"
    backend: str = "torch"
    int8: bool = False
    threads: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` (one line, in the CLI's words) for an impossible combination."""
        if self.stride < 1:
            raise ValueError(f"--stride must be >= 1, got {self.stride}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.threads < 0:
            raise ValueError(f"--threads must be >= 0, got {self.threads}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be torch or onnxruntime, got {self.backend!r}")
        if self.backend == "onnxruntime" and (self.device != "cpu" or self.int8 or self.precision != "fp32"):
            raise ValueError("--backend onnxruntime runs on the CPU in float32, without --int8 or --precision bf16")
        if self.int8 and self.device != "cpu":
            raise ValueError("--int8 runs on the CPU only (use --device cpu)")


class Stager:
    """Load weights, signal chain and model once; stage any number of recordings with them.

    Parameters
    ----------
    weights : path, optional
        Weights file or folder (``inference.py --weights``); default: the search order of
        :mod:`staging.weights` (official files first, demo weights flagged).
    device : {"auto", "cpu", "cuda"}, optional
        None or ``auto``: CUDA when a GPU is visible.
    stride, batch_size, short, precision, backend, int8
        See :class:`RunOptions`.
    threads : int
        torch CPU threads (``torch.set_num_threads``, process-wide); 0 leaves torch's choice.
    echo : callable, optional
        Prints each of :attr:`notes` as it is made (the weights line before the model loads, so a
        file that fails to load is named first).

    Attributes
    ----------
    run : RunOptions
    weights : staging.weights.Weights
    model : torch.nn.Module
        Eval-mode model (or its ONNX Runtime stand-in).
    params : SignalParams
        The signal chain the weights were trained on (applied to every recording).
    info : dict
        Provenance written into every output (weights, demo flag, software, model, chain, options).
    notes : list of str
        What a console should say about this model (weights, DEMO warning, options in use).

    Raises
    ------
    WeightsError
        No usable weights (the message says where to put them).
    ValueError, RuntimeError
        Impossible options (``--stride 0``, ``--device cuda`` without a GPU …).
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, device: str | None = None,
                 stride: int = DEFAULT_STRIDE, threads: int = 0, backend: str = "torch", precision: str = "fp32",
                 int8: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, short: str = "window",
                 echo: Callable[[str], None] | None = None):
        import torch

        from preprocess.core.signal import SignalParams

        from .outputs import software_version
        from .weights import find_weights, load_model

        threads = int(threads or 0)
        pre = RunOptions("cpu", int(stride), int(batch_size), short, precision, backend, bool(int8), threads)
        pre.check()  # before any device probe or file access
        self.run = replace(pre, device=resolve_device(device))
        self.run.check()
        if self.run.precision == "tf32" and not self.run.device.startswith("cuda"):
            raise ValueError("--precision tf32 is for CUDA GPUs (TensorFloat-32 tensor cores); on the CPU use fp32 "
                             "or bf16")
        if threads:
            torch.set_num_threads(threads)
        self.weights = find_weights(weights)
        self.notes = _Notes(echo)
        self.notes.append(f"weights: {self.weights.describe()}")
        if self.weights.demo:
            self.notes.append(
                "WARNING: these are DEMO weights trained on SIMULATED PSG only; their hypnograms are not "
                "meaningful for real recordings. Put the official LPSGM file "
                "ched32_seqed64_ch9_seql20_block6.pth in weights/ (or pass --weights) for real use.")
        model = load_model(self.weights, self.run.device)
        self.cfg = model.cfg
        if int8:
            from models.quantize import quantize_sequence_encoder

            model = quantize_sequence_encoder(model)
            self.notes.append("note: --int8: the sequence encoder's Linears run in int8 (opt-in; stages may "
                              "differ from float32 on a few epochs, see docs/benchmarks.md)")
        if backend == "onnxruntime":
            from models.onnx_export import OnnxLPSGM, cached_graphs

            cnn, head, exported = cached_graphs(model, self.weights.path)
            # the torch model is dropped here: only the ONNX sessions stay in memory
            model = OnnxLPSGM(model, threads=torch.get_num_threads(), graphs=(cnn, head))
            self.notes.append(f"backend: onnxruntime ({'exported to' if exported else 'cached graphs in'} "
                              f"{cnn.parent})")
        if precision == "bf16":
            self.notes.append("note: --precision bf16: the model runs under bfloat16 autocast (votes summed "
                              "in float64)")
        if precision == "tf32":
            self.notes.append("note: --precision tf32: matmuls and convolutions use TensorFloat-32 on the GPU "
                              "(votes summed in float64)")
        self.model = model
        self.params = SignalParams.from_dict(self.weights.preprocessing)  # the chain travels with the weights
        self.notes.append(f"signal chain: {self.params.chain} (the chain these weights were trained on)")
        # the weights by file name only: no folder of this machine in any output (the web service hands these out)
        self.info = {"weights": self.weights.path.name, "weights_kind": self.weights.kind,
                     "demo_weights": self.weights.demo, "software_version": software_version(),
                     "model": self.weights.meta.get("model") or self.cfg.to_dict(),
                     "preprocessing": self.params.to_dict()}
        if int8:
            self.info["int8_sequence_encoder"] = True
        if backend != "torch":
            self.info["backend"] = backend
        if precision != "fp32":
            self.info["precision"] = precision
        self._maps: dict = {}

    # ------------------------------------------------------------------ model
    @property
    def seq_len(self) -> int:
        """Epochs per window of the model."""
        return self.cfg.seq_len

    def autocast(self):
        """The precision context every forward pass of this Stager runs in (:func:`precision_context`)."""
        return precision_context(self.run.precision, self.run.device)

    def predict(self, signals: np.ndarray, channels, progress: Callable | None = None) -> np.ndarray:
        """Probabilities ``(n_epochs, 5)`` of preprocessed signals (:func:`staging.predict.predict_proba`)."""
        r = self.run
        with self.autocast():
            return predict_proba(self.model, signals, channels, r.stride, r.batch_size, r.device, r.short,
                                 progress)

    def channel_map(self, channels="auto", dataset: str | None = None) -> tuple[dict, str]:
        """``(channel map, origin)`` from ``channels`` (``"auto"``, ``"published"``, a JSON file or string,
        or a dict canonical → options), cached per value."""
        from .montage import channel_map_from_arg

        arg = json.dumps(channels) if isinstance(channels, dict) else (None if channels is None else str(channels))
        key = (arg, dataset)
        if key not in self._maps:
            self._maps[key] = channel_map_from_arg(arg, dataset)
        return self._maps[key]

    # ------------------------------------------------------------------ staging
    def stage(self, source, channels="auto", lights=None, *, sfreq: float | None = None, ch_names=None,
              name: str | None = None, dataset: str | None = None, allow_no_eeg: bool = False,
              lights_table: dict | None = None, progress: Callable | None = None,
              on_signals: Callable | None = None, lines: list | None = None):
        """Stage one recording in memory.

        Parameters
        ----------
        source : path, mne.io.BaseRaw or array
            A recording file (EDF/BDF, or what MNE reads: ``.fif``, ``.vhdr``, ``.set``), an MNE
            Raw object, or a ``(channels, samples)`` array in volts (then ``sfreq`` and ``ch_names``).
        channels : str or dict
            ``"auto"`` (alias table, or a dataset layout the labels match), ``"published"``, a JSON
            file path, inline JSON, or a dict canonical channel → options (``inference.py --channels``).
        lights : (off, on), optional
            Lights-off/on, each a clock time (``"23:10"``), seconds from the start, or None; by
            default the recording's own lights annotations (and, for files, a scoring file beside it).
        sfreq : float
            Sampling rate in Hz of an array ``source``.
        ch_names : sequence of str
            Channel labels of an array ``source``, one per row.
        name : str, optional
            Output base name (default: the file stem, ``"recording"`` for objects).
        dataset : str, optional
            Force a dataset module's channel map.
        allow_no_eeg : bool
            Stage a recording without EEG from its EOG/EMG, with a warning in every output.
        lights_table : dict, optional
            :func:`staging.lights.read_lights_csv` output (``inference.py --lights``).
        progress : callable(n_done, n_total), optional
            Window progress.
        on_signals : callable(montaged, probs) -> str, optional
            Called with the preprocessed signals before they are freed (``--explain``); returns a line
            for the console (or None).
        lines : list, optional
            Receives the montage description and warnings as they are found (kept when staging fails).

        Returns
        -------
        StagedNight
            Stages, probabilities, confidence, flags, statistics, montage, warnings, provenance.

        Raises
        ------
        StagingInputError
            ``source`` of an unsupported type, or an array without ``sfreq``/``ch_names``.
        FileNotFoundError, EdfError, MontageError, QualityError, LightsError, MneSourceError
            A recording that cannot be staged (one line naming it).
        """
        prepared = self.prepare(source, channels, lights, sfreq=sfreq, ch_names=ch_names, name=name, dataset=dataset,
                                allow_no_eeg=allow_no_eeg, lights_table=lights_table, lines=lines,
                                stream=on_signals is None)
        return self.finish(prepared, progress, on_signals)

    def prepare(self, source, channels="auto", lights=None, *, sfreq: float | None = None, ch_names=None,
                name: str | None = None, dataset: str | None = None, allow_no_eeg: bool = False,
                lights_table: dict | None = None, lines: list | None = None, stream: bool = True) -> PreparedNight:
        """The part of :meth:`stage` before the model: read, lights, quality gate, montage, signal chain.

        Arguments as :meth:`stage`. With ``stream`` (and ``short="window"``) the CNN features of each
        channel are computed here as soon as the chain has produced it, so the preprocessed night never
        exists whole (the memory of a run does not grow with the night); ``stream=False`` keeps the
        preprocessed night and leaves every model call to :meth:`finish` (batch staging reads and chains
        the next file on a thread while the caller's thread runs the model: :mod:`staging.batch`).
        Raises what :meth:`stage` raises for the recording; the file is closed on return.
        """
        lines = [] if lines is None else lines
        with collect_warnings() as warnings_seen:  # the reader's own warnings too (truncated file …)
            reader, name, path = _open_source(source, sfreq, ch_names, name)
            try:
                return self._prepare_reader(reader, name, path, channels, lights, dataset, allow_no_eeg,
                                            lights_table, lines, warnings_seen, stream)
            finally:
                if path is not None:  # opened here; an object's owner closes it
                    reader.close()

    def _prepare_reader(self, reader, name, path, channels, lights, dataset, allow_no_eeg, lights_table,
                        lines, warnings_seen, stream):
        from preprocess.core.edf import is_voltage
        from preprocess.core.heap import trim
        from preprocess.core.pipeline import load_montage

        from .lights import lights_within, resolve_lights
        from .montage import AUTO_ORIGIN, describe, match_layout, montage_warnings
        from .quality import screen

        params, run = self.params, self.run
        channel_map, origin = self.channel_map(channels, dataset)
        header = getattr(reader, "header", None)
        off, on = (None, None) if lights is None else lights
        label = path.name if path is not None else name
        lights_notes: list[str] = []
        night_lights, lights_line = resolve_lights(path, name, reader, off, on, lights_table, lights_notes)
        lines.append(lights_line)
        layout = match_layout(reader.labels) if origin == AUTO_ORIGIN else None
        cmap = layout.channel_map if layout is not None else channel_map
        screened, quality = screen(reader, cmap, label, params.epoch_seconds)
        trim()  # the gate's freed temporaries
        # Memory (issue 23): unless --explain (or short="zeros") needs the preprocessed night, it is never
        # held whole: each channel's CNN features are computed as soon as the chain has produced it.
        streamed = _Streamed(self) if stream and run.short != "zeros" else None
        try:
            montaged = load_montage(screened, cmap, params, label, consume=streamed)
        except MontageError as exc:
            raise MontageError(quality.explain(str(exc))) from None
        sfreqs = {s.canonical: reader.sfreq(s.positive) for s in montaged.sources}
        units = {s.canonical: reader.unit(s.positive) for s in montaged.sources}
        for canonical, why in quality.dropped_channels(montaged.channels).items():
            montaged.dropped.setdefault(canonical, why)
        lines += describe(montaged, sfreqs, params, layout)
        warnings = [w.split(": ", 1)[-1] for w in warnings_seen if ": dropped " not in w]
        warnings += [f"{c} <- {src}: unit {units[c]!r} is not a voltage" for c, src in
                     ((s.canonical, s.describe()) for s in montaged.sources) if not is_voltage(units[c])]
        warnings += montage_warnings(montaged, sfreqs, params, quality)
        night_lights = lights_within(night_lights, montaged.n_epochs * params.epoch_seconds, lights_notes)
        warnings += lights_notes
        channels_used = list(montaged.channels)
        try:
            check_eeg(channels_used, allow_no_eeg, warnings)
        except MontageError as exc:  # say why the EEG is missing when the gate dropped it
            raise MontageError(quality.explain(str(exc))) from None
        lines += [f"warning: {w}" for w in warnings]
        feats = spectrogram = None
        if streamed is not None:
            feats, spectrogram = streamed.finish(montaged)
        return PreparedNight(name, path, montaged, quality, layout, sfreqs, warnings, lines, night_lights,
                             lights_line, dict(header.dropped) if header is not None else {}, feats, spectrogram)

    def finish(self, prepared: PreparedNight, progress: Callable | None = None,
               on_signals: Callable | None = None):
        """The model part of :meth:`stage` on what :meth:`prepare` returned: a :class:`~staging.night.StagedNight`.

        ``progress`` and ``on_signals`` as in :meth:`stage` (``on_signals`` needs a night prepared with
        ``stream=False``).
        """
        from preprocess.core.channels import CHANNEL_KIND
        from preprocess.core.heap import trim

        from .montage import applied_band, derivations_text, has_eeg, montage_string
        from .night import analyse_night
        from .spectrogram import night_spectrogram

        params, run, model = self.params, self.run, self.model
        p = prepared
        montaged, quality, layout, sfreqs, warnings, lines = p.montaged, p.quality, p.layout, p.sfreqs, p.warnings, p.lines
        name, path, night_lights, lights_line = p.name, p.path, p.lights, p.lights_line
        feats, spectrogram = p.feats, p.spectrogram
        p.feats = p.spectrogram = None
        if on_signals is not None and montaged.signals is None:
            raise ValueError("on_signals needs the preprocessed night: prepare(..., stream=False)")
        channels_used = list(montaged.channels)
        idx = channel_indices(channels_used)
        ep = params.epoch_samples
        if feats is None:
            spectrogram = night_spectrogram(montaged.signals, channels_used,  # drawn above the hypnogram
                                            sources=[s.describe() for s in montaged.sources])
            with self.autocast():
                feats = encode_recording(model, montaged.signals, run.device)  # every (epoch, channel) once
        trim()
        with self.autocast():
            probs = vote_features(model, feats, idx, run.stride, run.batch_size, run.short, progress)

        def predict_subset(keep, start, stop):  # epochs whose other channels are unusable
            short = stop - start < self.seq_len
            with self.autocast():
                if short and run.short == "zeros":
                    return predict_proba(model, montaged.signals[keep, start * ep:stop * ep], [idx[k] for k in keep],
                                         run.stride, run.batch_size, run.device, run.short)
                stride = max(1, min(run.stride, stop - start))  # a short span still covers every epoch
                return vote_windows(model, feats[start:stop][:, keep], [idx[k] for k in keep], stride,
                                    run.batch_size, run.short)

        night = analyse_night(probs, channels_used, quality, montaged.sources, predict_subset, night_lights,
                              params.epoch_seconds, self.seq_len)
        if on_signals is not None:
            line = on_signals(montaged, probs)
            if line:
                lines.append(line)
        night.spectrogram = spectrogram
        montaged.signals = None
        feats = None  # the features of the whole night are no longer needed
        trim()
        bands = {c: applied_band(CHANNEL_KIND[c], f, params) for c, f in sfreqs.items()}
        start = montaged.start_time
        night.name, night.channels, night.montage = name, channels_used, montaged.montage
        night.montage_text, night.start_time, night.model_probs = montage_string(montaged), start, probs
        night.channels_text = derivations_text(montaged.sources)
        night.warnings, night.lines, night.epoch_seconds = warnings, lines, params.epoch_seconds
        night.provenance = {
            "recording": name, "source_file": str(path) if path is not None else None,
            "start_time": start.isoformat() if start else None,
            "channels": channels_used, "montage": montaged.montage, "dropped_channels": montaged.dropped,
            "dropped_signals": p.dropped_signals,
            "layout": layout.name if layout else None, "native_sfreq": sfreqs, "filter_bands": bands,
            "warnings": warnings, "quality_dropped": quality.dropped,
            "lights": {"off_s": night_lights[0], "on_s": night_lights[1], "origin": lights_line},
            "quality": night.quality_summary(None), "stride": run.stride, **self.info}
        night.eeg = has_eeg(channels_used)
        return night


@dataclass
class PreparedNight:
    """A recording read, gated, montaged and chained (:meth:`Stager.prepare`), waiting for the model."""

    name: str
    path: Path | None
    montaged: object
    quality: object
    layout: object
    sfreqs: dict
    warnings: list
    lines: list
    lights: tuple
    lights_line: str
    dropped_signals: dict
    feats: object = None  # CNN features when streamed (torch.Tensor), else None
    spectrogram: object = None


class _Streamed:
    """``load_montage(consume=…)`` target: CNN features of each channel as the chain produces it, and a
    copy of the one EEG channel the spectrogram shows (the preferred one so far).

    The features equal :func:`~staging.predict.encode_recording` of the whole montage (each channel's
    epochs are encoded in the same calls); the preprocessed night itself never exists whole.
    """

    def __init__(self, stager: Stager):
        self.stager = stager
        self.columns: list = []  # (n_epochs of the channel, 512) per kept channel
        self.best: tuple | None = None  # (preference rank, source, signal copy)

    def __call__(self, src, row: np.ndarray) -> None:
        from preprocess.core.signal import EPOCH_SAMPLES

        from .spectrogram import CHANNEL_PREFERENCE

        n = len(row) // EPOCH_SAMPLES
        with self.stager.autocast():
            feats = encode_recording(self.stager.model, row[None, : n * EPOCH_SAMPLES], self.stager.run.device)
        self.columns.append(feats[:, 0])
        if src.canonical in CHANNEL_PREFERENCE:
            rank = CHANNEL_PREFERENCE.index(src.canonical)
            if self.best is None or rank < self.best[0]:
                self.best = (rank, src, row[: n * EPOCH_SAMPLES].copy())

    def finish(self, montaged):
        """``(features (n_epochs, n_channels, 512), spectrogram or None)`` of the night ``montaged`` describes."""
        import torch

        from preprocess.core.signal import EPOCH_SAMPLES

        from .spectrogram import night_spectrogram

        n = montaged.n_epochs
        columns, self.columns = self.columns, []
        feats = torch.stack([c[:n] for c in columns], dim=1)
        del columns
        spectrogram = None
        if self.best is not None:
            _, src, x = self.best
            self.best = None
            spectrogram = night_spectrogram(x[None, : n * EPOCH_SAMPLES], [src.canonical], sources=[src.describe()])
        return feats, spectrogram


@contextmanager
def precision_context(precision: str, device: str):
    """Run the model in ``precision`` on ``device`` (see :class:`RunOptions`).

    ``bf16``: ``torch.autocast(bfloat16)``. On CUDA, ``tf32`` turns TensorFloat-32 on for matmuls and cuDNN
    convolutions and ``fp32`` turns it off (cuDNN's default is on), each only inside the context: the
    process's own settings are restored after. On the CPU, ``fp32`` changes nothing.
    """
    import torch

    kind = str(device).split(":")[0]
    if precision == "bf16":
        with torch.autocast(device_type=kind, dtype=torch.bfloat16):
            yield
        return
    if kind != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


class _Notes(list):
    """A list of console lines that also prints each line as it is added (when given ``echo``)."""

    def __init__(self, echo: Callable[[str], None] | None = None):
        super().__init__()
        self.echo = echo

    def append(self, line: str) -> None:
        super().append(line)
        if self.echo is not None:
            self.echo(line)


def _open_source(source, sfreq, ch_names, name):
    """``(signal source, name, path or None)`` of whatever :meth:`Stager.stage` was given."""
    if isinstance(source, (str, os.PathLike)):
        from preprocess.core.mne_source import EDF_SUFFIXES, open_recording

        path = Path(source)
        if sfreq is not None or ch_names is not None:
            raise StagingInputError(f"{path.name}: sfreq and ch_names are for an array source; a file has its own")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        if path.is_dir():
            raise StagingInputError(f"{path}: is a folder; Stager.stage takes one recording "
                                    "(staging.stage or inference.py stage folders)")
        if path.suffix.lower() in EDF_SUFFIXES:
            from preprocess.core.edf import read_header

            if not read_header(path).labels:
                raise MontageError(f"{path.name}: annotation-only EDF+ (no signals to stage)")
        return open_recording(path), name or path.stem, path
    if _is_raw(source):
        if sfreq is not None or ch_names is not None:
            raise StagingInputError("sfreq and ch_names are for an array source; an mne Raw has its own")
        files = [f for f in (getattr(source, "filenames", None) or []) if f]
        name = name or (Path(str(files[0])).stem if files else "recording")
        return RawSource(source, name), name, None
    if isinstance(source, np.ndarray) or (hasattr(source, "__array__") and not isinstance(source, (dict, bytes))):
        if sfreq is None or ch_names is None:
            raise StagingInputError("an array source needs sfreq= (Hz) and ch_names= (one label per row): "
                                    "stage(data, sfreq=256, ch_names=['C3-M2', ...]) with data in volts")
        name = name or "array"
        return ArraySource(source, sfreq, ch_names, name=name), name, None
    raise StagingInputError(f"cannot stage a {type(source).__name__}: give a file path, an mne.io.BaseRaw, "
                            "or a (channels, samples) array in volts with sfreq= and ch_names=")


def _is_raw(obj) -> bool:
    """Whether ``obj`` is an ``mne.io.BaseRaw`` (without importing mne for other inputs)."""
    import sys

    mne = sys.modules.get("mne")
    return mne is not None and isinstance(obj, mne.io.BaseRaw)


_CAPTURE_LOCK = threading.Lock()
_CAPTURING: dict = {}  # logger name -> [open captures, saved (propagate, level)]


@contextmanager
def collect_warnings(logger_name: str = "preprocess"):
    """Capture the signal chain's log warnings (NaN replaced, resampling…) for our own report.

    Only records logged by the calling thread are captured (batch staging prepares the next file on
    another thread while this one stages: each recording gets its own warnings), and the logger's
    state is restored when the last of several concurrent captures ends.
    """
    records: list[str] = []
    me = threading.get_ident()

    class _Handler(logging.Handler):
        def emit(self, record):
            if record.thread in (me, None):  # None: logging.logThreads turned off, nothing to tell apart
                records.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler = _Handler(logging.WARNING)
    with _CAPTURE_LOCK:
        entry = _CAPTURING.setdefault(logger_name, [0, None])
        if entry[0] == 0:
            entry[1] = (logger.propagate, logger.level)
            logger.propagate = False
            # The report must not depend on how the caller configured logging: a "preprocess" logger left at
            # ERROR (by a preprocessing worker, or a user silencing the console) would drop these warnings
            # from the outputs they belong in.
            logger.setLevel(logging.WARNING)
        entry[0] += 1
        logger.addHandler(handler)
    try:
        yield records
    finally:
        with _CAPTURE_LOCK:
            logger.removeHandler(handler)
            entry[0] -= 1
            if entry[0] == 0:
                logger.propagate, level = entry[1]
                logger.setLevel(level)


def check_eeg(channels: list[str], allow_no_eeg: bool, warnings: list[str]) -> None:
    """Refuse a montage without EEG (or, with ``allow_no_eeg``, add the warning every output carries)."""
    from .montage import has_eeg, has_eeg_or_eog

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


__all__ = ["PreparedNight", "RunOptions", "Stager", "precision_context", "StagingInputError", "check_eeg", "collect_warnings", "resolve_device"]
