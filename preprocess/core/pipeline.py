"""The shared preprocessing pipeline: read → montage → signal chain → labels → write.

:func:`load_montage` is also what inference uses, so a recording is processed identically for
training and for staging.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .annotations import align_to_signal
from .channels import CHANNEL_KIND, ChannelMap, MontageError, Source, resolve_montage
from .dataset import DatasetSpec, Record, SignalSource, as_scoring
from .hdf5 import is_valid, recording_path, write_manifest, write_recording
from .signal import (
    EPOCH_SAMPLES,
    ChannelDropped,
    SignalParams,
    fft_upsample,
    process_channel,
    resample,
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
    """

    signals: np.ndarray
    channels: list[str]
    sources: list[Source]
    start_time: object
    dropped: dict = field(default_factory=dict)

    @property
    def n_epochs(self) -> int:
        return self.signals.shape[1] // EPOCH_SAMPLES

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


def _chain_inputs(source: SignalSource, sources: list[Source], params: SignalParams):
    """``(source, raw signal, rate)`` per canonical channel, as the chain of ``params`` expects them."""
    if params.chain == "published":
        labels = {lab for s in sources for lab in (s.positive, s.negative) if lab is not None}
        rate = max(_rate(source, lab) for lab in labels)
        for src in sources:
            yield src, derive_at_rate(source, src, rate), rate
    else:
        for src in sources:
            yield (src, *derive(source, src))


def load_montage(source: SignalSource, channel_map: ChannelMap, params: SignalParams = SignalParams(),
                 name: str = "") -> Montaged:
    """Resolve the montage and run the signal chain of ``params.chain`` on every canonical channel.

    The antialiased chain reads each channel at its own native rate; the published chain first
    brings every channel read to the highest rate among them (:func:`derive_at_rate`).

    Raises
    ------
    MontageError
        No canonical channel can be formed, or every one is unusable (flat, NaN, rate too low).
    """
    sources = resolve_montage(source.labels, channel_map, name)
    kept, outs, dropped = [], [], {}
    for src, x, sfreq in _chain_inputs(source, sources, params):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outs.append(process_channel(x, sfreq, CHANNEL_KIND[src.canonical], params))
            for w in caught:
                log.warning("%s: %s (%s): %s", name, src.canonical, src.describe(), w.message)
            kept.append(src)
        except ChannelDropped as exc:
            dropped[src.canonical] = f"{src.describe()}: {exc}"
            log.warning("%s: dropped %s (%s): %s", name, src.canonical, src.describe(), exc)
    if not kept:
        reasons = "; ".join(f"{k} {v}" for k, v in dropped.items())
        raise MontageError(f"{name}: no usable channel ({reasons})")
    n = min(len(o) for o in outs)
    n -= n % EPOCH_SAMPLES
    if n == 0:
        raise MontageError(f"{name}: recording shorter than one {params.epoch_seconds:g}-s epoch")
    signals = np.stack([o[:n] for o in outs])
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
    """Records of shard ``i/n`` (1-based ``i``): every n-th record, so shards are balanced."""
    if not shard_spec:
        return records
    try:
        i, n = (int(v) for v in shard_spec.split("/"))
        assert 1 <= i <= n
    except (ValueError, AssertionError):
        raise ValueError(f"--shard must be i/n with 1 <= i <= n, got {shard_spec!r}") from None
    return records[i - 1::n]


def run_dataset(spec: DatasetSpec, src: str | os.PathLike, dst: str | os.PathLike, *, workers: int = 1,
                shard_spec: str | None = None, params: SignalParams = SignalParams(), dtype: str = "float16",
                overwrite: bool = False, progress: bool = True, manifest: bool = True,
                max_mismatch_epochs="dataset") -> list[Result]:
    """Preprocess every recording of a dataset; log and summarise; rebuild the manifest."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: raw folder of {spec.name} does not exist")
    found = spec.find(src)
    if not found:  # a wrong folder or dataset name, not "0 done": the command exits non-zero
        raise FileNotFoundError(f"{src}: no {spec.name} recording found there (layout: {spec.layout})")
    records = shard(found, shard_spec)
    out_dir = dst / spec.name
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.h5*.tmp"):  # left by a killed run; the final files are intact
        stale.unlink(missing_ok=True)
    log_path = out_dir / "preprocess.log"
    jobs = [(spec.name, r, dst, params, dtype, overwrite, max_mismatch_epochs) for r in records]
    results: list[Result] = []
    bar = tqdm(total=len(jobs), desc=spec.name, unit="rec", disable=not progress)
    with open(log_path, "a") as log_file:
        log_file.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {spec.name} src={src} shard={shard_spec}\n")
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
    if manifest:
        write_manifest(out_dir)
    print(summary)
    for r in results:
        if r.status == "failed":
            print(f"  failed {r.record}: {r.reason}")
    return results


def _log_result(log_file, res: Result, bar) -> None:
    log_file.write(f"{res.status}\t{res.record}\t{res.seconds:.1f}s\t{res.reason}\n")
    log_file.flush()
    bar.update(1)
