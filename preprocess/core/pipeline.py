"""The shared preprocessing pipeline: read → montage → signal chain → labels → write.

:func:`load_montage` is also what inference uses, so a recording is processed identically for
training and for staging.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from .annotations import align_to_signal
from .channels import CHANNEL_KIND, ChannelMap, MontageError, Source, resolve_montage
from .claims import host_tag, remove_stale_temp_files
from .dataset import DatasetSpec, Record, SignalSource, as_scoring
from .hdf5 import is_valid, recording_path, write_manifest, write_recording
from .shards import parse_shard, select
from .signal import (
    EPOCH_SAMPLES,
    ChainNotFinite,
    ChannelDropped,
    SignalParams,
    chain_notes,
    clean_nan,
    fft_upsample,
    output_length,
    resample,
    run_chain,
    to_epochs,
)

log = logging.getLogger("preprocess")


@dataclass
class Montaged:
    """A recording after montage and signal chain, before epoching/labels.

    Attributes
    ----------
    signals : ndarray, shape (n_channels, n_samples)
        float32 at 100 Hz, canonical order, trimmed to whole epochs.
    channels : list of str
        Canonical names.
    sources : list of Source
        Raw labels/derivation used for each kept channel.
    dropped : dict
        Canonical name → reason, for channels found but unusable.
    length : int
        Samples per channel when ``signals`` is None (a night streamed to ``load_montage(consume=…)``).
    """

    signals: np.ndarray | None
    channels: list[str]
    sources: list[Source]
    start_time: object
    dropped: dict = field(default_factory=dict)
    length: int = 0

    @property
    def n_epochs(self) -> int:
        return (self.signals.shape[1] if self.signals is not None else self.length) // EPOCH_SAMPLES

    @property
    def montage(self) -> dict:
        return {s.canonical: s.to_json() for s in self.sources}


def derive(source: SignalSource, src: Source) -> tuple[np.ndarray, float]:
    """Read the raw signal of one canonical channel: a label, or the derivation ``a − b``."""
    x, fx = source.read(src.positive)
    if src.negative is None:
        return x, fx
    y, fy = source.read(src.negative)
    if fx != fy:  # different native rates: bring the reference to the channel's rate first
        y = resample(y, fy, fx)
    n = min(len(x), len(y))
    return x[:n] - y[:n], fx


def _rate(source: SignalSource, label: str) -> float:
    """Native rate of ``label``, from the header when the source exposes it (no data read)."""
    rate_of = getattr(source, "sfreq", None)
    return float(rate_of(label)) if callable(rate_of) else float(source.read(label)[1])


def derive_at_rate(source: SignalSource, src: Source, rate: float) -> np.ndarray:
    """The derivation ``a − b`` with both labels first brought to ``rate`` by FFT upsampling.

    What the published reader (``mne.io.read_raw_edf`` on the included channels) hands to the
    published chain: every channel at the highest rate among those read, then the subtraction.
    """
    out = None
    for label, sign in ((src.positive, 1.0), (src.negative, -1.0)):
        if label is None:
            continue
        x, fx = source.read(label)
        x = fft_upsample(x, int(round(len(x) * rate / fx)))
        out = sign * x if out is None else out[: len(x)] + sign * x[: len(out)]
    return out


def _span_input(source: SignalSource, src: Source, rate: float | None = None):
    """``(read(start, stop), n_samples, sfreq)`` of one derivation read span by span, or None.

    None when the source cannot read spans (only EDF readers can) or when the labels of the
    derivation are not all at one rate (``rate`` for the published chain, which FFT-upsamples
    slower channels: a whole-signal operation): those channels are read whole.
    """
    read_span, n_of, rate_of = (getattr(source, k, None) for k in ("read_span", "n_samples", "sfreq"))
    if not (callable(read_span) and callable(n_of) and callable(rate_of)):
        return None
    labels = [lab for lab in (src.positive, src.negative) if lab is not None]
    rates = {float(rate_of(lab)) for lab in labels}
    if len(rates) != 1 or (rate is not None and rates != {float(rate)}):
        return None
    n = min(int(n_of(lab)) for lab in labels)
    if src.negative is None:
        return (lambda a, b: read_span(src.positive, a, b)), n, rates.pop()
    return (lambda a, b: read_span(src.positive, a, b) - read_span(src.negative, a, b)), n, rates.pop()


def _whole_input(source: SignalSource, src: Source, params: SignalParams, rate: float | None):
    """``(read, n_samples, sfreq)`` of one derivation read whole (NaN replaced by the median)."""
    x, sfreq = (derive_at_rate(source, src, rate), rate) if params.chain == "published" else derive(source, src)
    x = clean_nan(np.asarray(x, dtype=np.float64))
    return (lambda a, b: x[a:b]), len(x), sfreq


def _chain_inputs(source: SignalSource, sources: list[Source], params: SignalParams):
    """``(source, input)`` per canonical channel; ``input`` is :func:`_span_input`'s triple or None
    (read whole: :func:`_whole_input`)."""
    rate = None
    if params.chain == "published":
        labels = {lab for s in sources for lab in (s.positive, s.negative) if lab is not None}
        rate = max(_rate(source, lab) for lab in labels)
    for src in sources:
        yield src, _span_input(source, src, rate), rate


def _run_channel(source, src, span, rate, params: SignalParams, row: np.ndarray) -> int:
    """Chain one canonical channel into ``row``; returns its output length at 100 Hz."""
    kind = CHANNEL_KIND[src.canonical]
    if span is not None:
        read, n, sfreq = span
        n_out = output_length(n, sfreq, params)
        try:
            run_chain(read, n, sfreq, kind, params, row[: min(len(row), n_out)])
            return n_out
        except ChainNotFinite:  # NaN/inf samples: the median replacement needs the whole channel
            pass
    read, n, sfreq = _whole_input(source, src, params, rate)
    n_out = output_length(n, sfreq, params)
    run_chain(read, n, sfreq, kind, params, row[: min(len(row), n_out)])
    return n_out


def _expected_length(source, src, span, rate, params: SignalParams) -> int:
    """Output samples of a channel, from the header when the source can say (else its whole read)."""
    if span is not None:
        return output_length(span[1], span[2], params)
    n_of, rate_of = getattr(source, "n_samples", None), getattr(source, "sfreq", None)
    if callable(n_of) and callable(rate_of):
        labels = [lab for lab in (src.positive, src.negative) if lab is not None]
        fx = float(rate_of(labels[0]))
        n = min(int(round(int(n_of(lab)) * fx / float(rate_of(lab)))) for lab in labels)
        if params.chain == "published":
            n = min(int(round(int(n_of(lab)) * rate / float(rate_of(lab)))) for lab in labels)
            return output_length(n, rate, params)
        return output_length(n, fx, params)
    return 0  # unknown before reading: the channel is read whole once to learn it


def _chain_whole(source, src: Source, params: SignalParams, rate):
    """One channel read whole and chained (sources that cannot read spans)."""
    read, n, sfreq = _whole_input(source, src, params, rate)
    return run_chain(read, n, sfreq, CHANNEL_KIND[src.canonical], params)


def _chain_one(name: str, src: Source, dropped: dict, run: Callable, *args):
    """``run(*args)`` for one canonical channel, what the chain tolerated logged with the channel named.

    Returns ``run(*args)``'s result, or None when the channel is dropped (:class:`ChannelDropped`): the
    reason then goes into ``dropped`` and the log. The chain's messages are collected per thread
    (:func:`preprocess.core.signal.chain_notes`), so a file chained ahead on another thread keeps its own.
    """
    try:
        with chain_notes() as caught:
            out = run(*args)
    except ChannelDropped as exc:
        dropped[src.canonical] = f"{src.describe()}: {exc}"
        log.warning("%s: dropped %s (%s): %s", name, src.canonical, src.describe(), exc)
        return None
    for message in caught:
        log.warning("%s: %s (%s): %s", name, src.canonical, src.describe(), message)
    return out


def _require_some(name: str, kept: list, dropped: dict) -> None:
    """Raise :class:`MontageError` listing every drop when no channel was kept."""
    if not kept:
        reasons = "; ".join(f"{k} {v}" for k, v in dropped.items())
        raise MontageError(f"{name}: no usable channel ({reasons})")


def load_montage(source: SignalSource, channel_map: ChannelMap, params: SignalParams = SignalParams(),
                 name: str = "", consume: Callable[[Source, np.ndarray], None] | None = None) -> Montaged:
    """Resolve the montage and run the signal chain of ``params.chain`` on every canonical channel.

    The antialiased chain reads each channel at its own native rate; the published chain first
    brings every channel read to the highest rate among them (:func:`derive_at_rate`). Channels
    of an EDF are read and chained block by block (:func:`preprocess.core.signal.run_chain`)
    straight into the one float32 array returned, so memory does not grow with the night beyond
    that array (100 Hz float32: 11.5 MB per channel per 8 h).

    ``consume(source, row)`` streams the night instead: each kept channel, as soon as it is chained,
    is handed over (``row``: float32 at 100 Hz, the channel's own length up to whole epochs of the
    longest, in a buffer the next channel reuses, so a consumer copies what it keeps) and the
    result has ``signals=None`` and ``length`` (the night's samples per channel, as above). Only one
    channel is then in memory: staging computes its CNN features this way (issue 23).

    Raises
    ------
    MontageError
        No canonical channel can be formed, or every one is unusable (flat, NaN, rate too low).
    """
    sources = resolve_montage(source.labels, channel_map, name)
    inputs = list(_chain_inputs(source, sources, params))
    lengths = [_expected_length(source, src, span, rate, params) for src, span, rate in inputs]
    if min(lengths) == 0:  # a source that cannot tell lengths: the plain path
        whole = _load_montage_whole(source, sources, params, name)
        if consume is None:
            return whole
        for src, row in zip(whole.sources, whole.signals):
            consume(src, row)
        return replace(whole, signals=None, length=whole.signals.shape[1])
    width = max(lengths) - max(lengths) % EPOCH_SAMPLES
    if consume is None:
        signals = np.empty((len(inputs), width), dtype=np.float32)
    else:
        buffer = np.empty(width, dtype=np.float32)  # one channel at a time
    kept, dropped, n_outs = [], {}, []
    for src, span, rate in inputs:
        row = signals[len(kept)] if consume is None else buffer
        n_out = _chain_one(name, src, dropped, _run_channel, source, src, span, rate, params, row)
        if n_out is not None:
            n_outs.append(n_out)
            kept.append(src)
            if consume is not None:
                consume(src, row[:min(width, n_out)])
    _require_some(name, kept, dropped)
    n = min(min(n_outs), width)
    n -= n % EPOCH_SAMPLES
    if n == 0:
        raise MontageError(f"{name}: recording shorter than one {params.epoch_seconds:g}-s epoch")
    if consume is not None:
        return Montaged(None, [s.canonical for s in kept], kept, source.start_time, dropped, length=n)
    signals = signals[: len(kept)]  # leading rows of a C-contiguous array: still contiguous
    if n < width:  # channels of different lengths (rare): the shortest sets the night
        signals = np.ascontiguousarray(signals[:, :n])
    return Montaged(signals, [s.canonical for s in kept], kept, source.start_time, dropped)


def _load_montage_whole(source: SignalSource, sources: list[Source], params: SignalParams,
                        name: str) -> Montaged:
    """:func:`load_montage` for sources that cannot tell a channel's length before reading it."""
    rate = None
    if params.chain == "published":
        labels = {lab for s in sources for lab in (s.positive, s.negative) if lab is not None}
        rate = max(_rate(source, lab) for lab in labels)
    kept, outs, dropped = [], [], {}
    for src in sources:
        out = _chain_one(name, src, dropped, _chain_whole, source, src, params, rate)
        if out is not None:
            outs.append(out)
            kept.append(src)
    _require_some(name, kept, dropped)
    n = min(len(o) for o in outs)
    n -= n % EPOCH_SAMPLES
    if n == 0:
        raise MontageError(f"{name}: recording shorter than one {params.epoch_seconds:g}-s epoch")
    signals = np.empty((len(outs), n), dtype=np.float32)
    for i in range(len(outs)):
        signals[i] = outs[i][:n]
        outs[i] = None  # free each channel as it is copied
    return Montaged(signals, [s.canonical for s in kept], kept, source.start_time, dropped)


@dataclass
class Result:
    record: str
    status: str  # "done" | "skipped" | "failed"
    reason: str = ""
    seconds: float = 0.0


def process_record(spec: DatasetSpec, record: Record, dst: Path, params: SignalParams = SignalParams(),
                   dtype: str = "float16", overwrite: bool = False, max_mismatch_epochs="dataset") -> Result:
    """Preprocess one recording into ``<dst>/<dataset>/<id>.h5``; never raises for bad data.

    ``max_mismatch_epochs`` overrides the dataset's tolerance between scoring and signal length
    (``"dataset"`` keeps the dataset's own value; None crops/pads freely).
    """
    if max_mismatch_epochs == "dataset":
        max_mismatch_epochs = spec.max_mismatch_epochs
    t0 = time.perf_counter()
    out = recording_path(dst, spec.name, record.id)
    if not overwrite and is_valid(out):
        return Result(record.id, "skipped", "already done")
    try:
        for path in record.files:
            if not Path(path).exists():
                raise FileNotFoundError(f"{Path(path).name}: missing")
        source = spec.open_signals(record)
        m = load_montage(source, spec.channel_map, params, Path(record.signal).name)
        if not any(CHANNEL_KIND[c] in ("eeg", "eog") for c in m.channels):
            # a chin-only (or EMG-only) training file would teach the model nothing about sleep stages
            raise MontageError(f"{Path(record.signal).name}: no usable EEG or EOG channel "
                               f"(only {', '.join(m.channels)}); not written")
        stages, lights = None, None
        if spec.read_stages is not None:
            scoring = as_scoring(spec.read_stages(record, m.start_time))
            if scoring is not None:  # lights-off/on (s from the signal start) come back with the stages
                name = Path(record.annotation or record.signal).name
                stages = align_to_signal(scoring.stages, m.n_epochs, name, max_mismatch_epochs)
                lights = scoring.lights
        write_recording(
            out, to_epochs(m.signals), m.channels, stages,
            dataset=spec.name, subject=record.subject, recording=record.id,
            start_time=m.start_time.isoformat() if m.start_time else "",
            source_files=[Path(p).name for p in record.files], montage=m.montage,
            preprocessing=params.to_dict(), labels=record.labels, dtype=dtype,
            extra_attrs={"dropped_channels": str(m.dropped)} | (
                {"lights": [np.nan if v is None else float(v) for v in lights]} if lights else {}),
        )
    except Exception as exc:  # one bad recording must not stop the dataset
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Result(record.id, "failed", f"{type(exc).__name__}: {reason}", time.perf_counter() - t0)
    return Result(record.id, "done", "", time.perf_counter() - t0)


def _worker(args) -> Result:
    spec_name, record, dst, params, dtype, overwrite, mismatch = args
    from preprocess.datasets import get_dataset

    logging.getLogger("preprocess").setLevel(logging.ERROR)  # a worker shows no warnings; its Result carries the reason
    return process_record(get_dataset(spec_name), record, dst, params, dtype, overwrite, mismatch)


def shard(records: list[Record], shard_spec: str | None) -> list[Record]:
    """Records of shard ``i/n`` (1-based ``i``) or ``auto`` (from the array job's environment):
    every n-th record, so shards are balanced (:mod:`preprocess.core.shards`)."""
    return select(records, shard_spec)


def log_name(shard_spec: str | None) -> str:
    """``preprocess.log``, or ``preprocess.shard-I-of-N.log`` for a shard (one writer per log file)."""
    got = parse_shard(shard_spec)
    return "preprocess.log" if got is None else f"preprocess.shard-{got[0]}-of-{got[1]}.log"


def run_dataset(spec: DatasetSpec, src: str | os.PathLike, dst: str | os.PathLike, *, workers: int = 1,
                shard_spec: str | None = None, params: SignalParams = SignalParams(), dtype: str = "float16",
                overwrite: bool = False, progress: bool = True, manifest: bool | None = None,
                max_mismatch_epochs="dataset") -> list[Result]:
    """Preprocess every recording of a dataset (or of one shard); log and summarise.

    Shards may run at the same time on different hosts sharing ``dst``: each writes only its own
    recordings (atomic, owner-tagged temp files), removes only temp files whose owner is gone
    (:func:`preprocess.core.claims.remove_stale_temp_files`) and logs to its own file. The
    manifest is rebuilt at the end of an unsharded run (``manifest=None``, the default); after
    shards, rebuild it once they have all finished: ``python -m preprocess --manifest DST``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: raw folder of {spec.name} does not exist")
    found = spec.find(src)
    if not found:  # a wrong folder or dataset name, not "0 done": the command exits non-zero
        raise FileNotFoundError(f"{src}: no {spec.name} recording found there (layout: {spec.layout})")
    records = shard(found, shard_spec)
    out_dir = dst / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir, ".*.h5*.tmp")  # left by killed runs; live writers' files stay
    log_path = out_dir / log_name(shard_spec)
    jobs = [(spec.name, r, dst, params, dtype, overwrite, max_mismatch_epochs) for r in records]
    results: list[Result] = []
    bar = tqdm(total=len(jobs), desc=spec.name, unit="rec", disable=not progress)
    with open(log_path, "a") as log_file:
        log_file.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {spec.name} src={src} shard={shard_spec} "
                       f"host={host_tag()} pid={os.getpid()}\n")
        if workers > 1 and len(jobs) > 1:
            with mp.get_context("spawn").Pool(workers) as pool:
                iterator = pool.imap_unordered(_worker, jobs)
                for res in iterator:
                    results.append(res)
                    _log_result(log_file, res, bar)
        else:
            for job in jobs:
                res = process_record(spec, *job[1:])
                results.append(res)
                _log_result(log_file, res, bar)
        counts = Counter(r.status for r in results)
        summary = (f"{spec.name}: {counts['done']} done, {counts['skipped']} skipped, "
                   f"{counts['failed']} failed (log: {log_path})")
        log_file.write(summary + "\n")
    bar.close()
    if manifest is None:
        manifest = not shard_spec
    if manifest:
        write_manifest(out_dir)
    print(summary)
    for r in results:
        if r.status == "failed":
            print(f"  failed {r.record}: {r.reason}")
    if shard_spec and not manifest:
        print(f"{spec.name}: manifest not rebuilt by a shard; once every shard has finished run: "
              f"python -m preprocess --manifest {dst}")
    return results


def _log_result(log_file, res: Result, bar) -> None:
    log_file.write(f"{res.status}\t{res.record}\t{res.seconds:.1f}s\t{res.reason}\n")
    log_file.flush()
    bar.update(1)
