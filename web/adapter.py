"""The only module of ``web/`` that calls ``staging/`` and ``preprocess/``.

Everything the service does with a recording goes through here: the header check and the
automatic montage of an upload, the conversion of an edited montage to a channel map, staging
one file (the same :class:`staging.Stager` and :func:`staging.batch.stage_file` that ``inference.py``
runs, with the same options), reading the outputs back, and the µV display signals of the viewer. When the staging
package changes its public functions, this file is the one to update.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from preprocess.core.atomic import atomic_write

DISPLAY_RATE = 100.0
"""Sampling rate (Hz) of the viewer's signals: raw derivations resampled, not filtered."""

VIEWER_FILE = "viewer.npy"
VIEWER_META = "viewer.json"


class RecordingError(ValueError):
    """An upload that ``inference.py`` would refuse; the message is its one-line reason."""


# --------------------------------------------------------------------------- weights

@dataclass
class WeightsInfo:
    """What the page and the API say about the weights (found without importing torch)."""

    path: str
    kind: str
    demo: bool
    description: str


def find_weights(weights: str | None) -> WeightsInfo:
    """The weights ``inference.py --weights`` would choose (raises ``WeightsError``)."""
    from staging.weights import find_weights as _find

    w = _find(weights)
    return WeightsInfo(str(w.path), w.kind, bool(w.demo), w.describe())


# --------------------------------------------------------------------------- header + montage

def warm_up() -> None:
    """Import the staging modules and fill the dataset layout tables once, at service start, so
    the first upload's header check does not pay for it (≈ 10 s on a loaded 2-core machine)."""
    import staging.batch  # noqa: F401  (imports torch through staging.predict)
    from staging.montage import match_layout

    auto_channel_map()
    match_layout(["EEG C3-M2"])


def all_formats() -> tuple:
    """Every output format of ``inference.py --formats all``."""
    from staging.defaults import FORMATS

    return FORMATS


def canonical_channels() -> list[dict]:
    """Canonical channels in model order with their kind (``eeg``/``eog``/``emg``)."""
    from preprocess.core.channels import CANONICAL, CHANNEL_KIND

    return [{"channel": c, "kind": CHANNEL_KIND[c]} for c in CANONICAL]


def _reason(exc: BaseException, path: Path) -> str:
    """The one-line reason ``inference.py`` prints for this exception."""
    from staging.batch import _reason as staging_reason

    return staging_reason(exc, path)


def inspect_recording(path: Path, channels: dict | None = None) -> dict:
    """Header summary, labels and montage of an uploaded file, as ``inference.py`` would see it.

    Parameters
    ----------
    path : Path
        The uploaded EDF/BDF (possibly a sparse file whose body is still arriving).
    channels : dict, optional
        Explicit montage (canonical → label or ``[a, b]``); default: the automatic montage
        (a dataset layout the labels match, else the shared alias table).

    Raises
    ------
    RecordingError
        Not EDF, empty, no signals, or no EEG channel in the montage; the message is the reason
        ``inference.py`` gives for the same file.
    """
    from preprocess.core.channels import MontageError, resolve_montage
    from preprocess.core.edf import EdfReader, read_header
    from staging.stager import check_eeg

    header = None
    try:
        header = read_header(path)
        if not header.labels:
            raise RecordingError("annotation-only EDF+ (no signals to stage)")
        EdfReader(path).close()  # the reader's own refusals (EDF+D, no readable signal)
        labels = header.signal_labels
        channel_map, layout = _channel_map(labels, channels)
        sources = resolve_montage(labels, channel_map, path.name)
        check_eeg([s.canonical for s in sources], False, [])
    except RecordingError:
        raise
    except Exception as exc:  # EdfError, MontageError, KeyError from a bad map …
        reason = _reason(exc, path)
        if header is not None and header.dropped and isinstance(exc, MontageError):
            reason += "; unusable signals: " + "; ".join(f"{k}: {v}" for k, v in header.dropped.items())
        raise RecordingError(reason) from None
    index = {lab: i for i, lab in enumerate(header.labels)}
    signals = [{"label": lab, "sfreq_hz": header.sfreqs[index[lab]], "unit": header.units[index[lab]]}
               for lab in labels]
    montage = {s.canonical: s.to_json() for s in sources}
    return {
        "variant": header.variant,
        "duration_s": header.duration,
        "n_epochs": int(header.duration // 30),
        "start_time": header.start_time.isoformat() if header.start_time else None,
        "labels": labels,
        "signals": signals,
        "dropped_signals": dict(header.dropped),
        "warnings": list(header.warnings),
        "layout": layout.describe() if layout is not None else None,
        "montage_origin": "explicit" if channels else "auto",
        "montage": montage,
        "montage_table": [{**c, "source": montage.get(c["channel"])} for c in canonical_channels()],
    }


def _channel_map(labels: list[str], montage: dict | None):
    """``(channel map, layout match or None)``: the edited montage, else what ``--channels auto``
    uses for these labels (a matching dataset layout, else the shared alias table)."""
    from staging.montage import match_layout

    if montage:
        return montage_to_channel_map(montage, labels), None
    layout = match_layout(labels)
    return (layout.channel_map, layout) if layout is not None else (auto_channel_map(), None)


def labels_of(path: Path) -> list[str]:
    """Signal labels of a file whose header is readable, else an empty list."""
    from preprocess.core.edf import read_header

    try:
        return read_header(path).signal_labels
    except Exception:
        return []


def auto_channel_map() -> dict:
    """The automatic montage of ``inference.py --channels auto``."""
    from staging.montage import auto_channel_map as _auto

    return _auto()


def montage_to_channels(montage: dict, labels: list[str]) -> dict:
    """An edited montage (canonical → label, ``[a, b]`` or null) → a validated ``--channels`` map
    (JSON-able: canonical → ``[option]``).

    Every label must be one of the file's labels (exact spelling), so the montage staged is
    the one shown; channels mapped to null or omitted are not used.

    Raises
    ------
    RecordingError
        Unknown canonical channel, unknown label, or a malformed entry.
    """
    from staging.montage import ChannelMapError, channel_map_from_arg

    obj = {}
    for name, option in montage.items():
        if option in (None, "", []):
            continue
        parts = [option] if isinstance(option, str) else option
        if not (isinstance(parts, list) and 1 <= len(parts) <= 2 and all(isinstance(p, str) for p in parts)):
            raise RecordingError(f"montage {name}: expected a label or [label, reference], got {option!r}")
        missing = [p for p in parts if p not in labels]
        if missing:
            raise RecordingError(f"montage {name}: no channel {missing[0]!r} in the file (labels: {labels})")
        obj[name] = [parts[0] if len(parts) == 1 else parts]
    if not obj:
        raise RecordingError("montage: no channel selected")
    try:
        channel_map_from_arg(json.dumps(obj))
    except ChannelMapError as exc:
        raise RecordingError(str(exc).replace("--channels (inline JSON): ", "montage: ")) from None
    return obj


def montage_to_channel_map(montage: dict, labels: list[str]) -> dict:
    """:func:`montage_to_channels`, parsed into a channel map (canonical → options)."""
    from staging.montage import channel_map_from_arg

    return channel_map_from_arg(json.dumps(montage_to_channels(montage, labels)))[0]


def channels_argument(montage: dict | None) -> str:
    """The ``inference.py --channels`` value that stages the same montage (``auto`` if None)."""
    if not montage:
        return "auto"
    obj = {k: [v if isinstance(v, str) else list(v)] for k, v in montage.items() if v not in (None, "", [])}
    return json.dumps(obj)


# --------------------------------------------------------------------------- staging (worker process)

@dataclass
class WorkerModel:
    """A worker's loaded :class:`staging.Stager` and the output formats it writes."""

    stager: object
    formats: tuple = field(default_factory=tuple)


def load_stager(weights: str | None, device: str = "cpu", stride: int | None = None,
                formats: tuple | None = None, **model) -> WorkerModel:
    """Load the model once per worker: a :class:`staging.Stager`, as ``inference.py`` builds it.

    ``model``: further Stager keywords (``threads``, ``int8``, ``backend``, ``precision``, ``batch_size``).
    """
    from staging import FORMATS, Stager

    kw = dict(model, **({"stride": stride} if stride else {}))
    return WorkerModel(Stager(weights, device=device, **kw), tuple(formats or FORMATS))


def stage_recording(loaded: WorkerModel, path: Path, name: str, out: Path, montage: dict | None,
                    progress=None) -> dict:
    """Stage one uploaded file into ``out`` with every output format; never raises for bad input.

    Returns
    -------
    dict
        ``status`` (``ok``/``failed``), ``reason``, ``lines`` (montage description and warnings,
        as printed by ``inference.py``), ``n_epochs``, ``channels``, ``montage``.
    """
    from preprocess.core.edf import read_header
    from staging.batch import OutputOptions, ReadOptions, stage_file, write_summary

    try:
        labels = read_header(path).signal_labels
        channels = montage_to_channels(montage, labels) if montage else "auto"
    except Exception as exc:
        return {"status": "failed", "reason": _reason(exc, path), "lines": []}
    # "auto": a matching dataset layout is used, as in inference.py; an edited montage is used as shown.
    outputs = OutputOptions(out=out, formats=loaded.formats, overwrite=True)
    out.mkdir(parents=True, exist_ok=True)
    res = stage_file(path, name, loaded.stager, ReadOptions(channels=channels), outputs, progress)
    if res.status == "ok":
        write_summary(out, [res])
    return {"status": res.status, "reason": res.reason, "lines": list(res.lines), "n_epochs": res.n_epochs,
            "channels": list(res.channels), "montage": res.montage, "seconds": res.seconds}


def write_viewer_signals(path: Path, montage: dict | None, out: Path) -> None:
    """Write the viewer's display signals: each montage channel's raw derivation in µV at
    :data:`DISPLAY_RATE` (anti-aliased resampling, no filter), float16 ``(channels, samples)``.

    Written once per job by the worker, so a page of the viewer is a slice of a memory map.
    """
    from preprocess.core.channels import resolve_montage
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import derive
    from preprocess.core.signal import resample

    reader = EdfReader(path)
    channel_map, _ = _channel_map(reader.labels, montage)
    sources = resolve_montage(reader.labels, channel_map, path.name)
    rows, n = [], None
    for src in sources:
        x, sfreq = derive(reader, src)
        y = resample(np.nan_to_num(x), sfreq, DISPLAY_RATE) * 1e6  # volts → µV
        rows.append(np.clip(y, -60000, 60000).astype(np.float16))
        n = len(y) if n is None else min(n, len(y))
    reader.close()
    arr = np.stack([r[:n] for r in rows])

    def write(tmp: str) -> None:  # a file object: np.save would append .npy to a name
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    atomic_write(out / VIEWER_FILE, write)
    meta = {"channels": [s.canonical for s in sources], "sources": [s.describe() for s in sources],
            "rate_hz": DISPLAY_RATE, "unit": "uV", "n_samples": int(n)}
    (out / VIEWER_META).write_text(json.dumps(meta))


# --------------------------------------------------------------------------- results (server process)

def read_hypnogram(csv_path: Path) -> dict:
    """The hypnogram CSV as JSON columns: ``epoch``, ``onset_s``, ``stage``, ``probabilities``
    (``[[p_W … p_REM], …]``), plus any further columns the CSV carries (flags, confidence…).

    Comment lines (``#``) are skipped; the probabilities are the CSV's 6-decimal values, so
    the JSON and the download are the same numbers. An epoch that could not be staged has stage
    ``?`` and null probabilities.
    """
    text = "".join(line for line in csv_path.read_text().splitlines(keepends=True) if not line.startswith("#"))
    rows = list(csv.DictReader(io.StringIO(text)))
    pcols = [c for c in (rows[0].keys() if rows else []) if c.startswith("p_")]
    out: dict = {"classes": [c[2:] for c in pcols], "epoch": [int(r["epoch"]) for r in rows],
                 "onset_s": [float(r["onset_s"]) for r in rows], "stage": [r["stage"] for r in rows],
                 "probabilities": [[float(r[c]) if r[c] != "" else None for c in pcols] for r in rows]}
    for col in (rows[0].keys() if rows else []):
        if col not in ("epoch", "onset_s", "stage") and col not in pcols:
            out[col] = [r[col] for r in rows]
    return out


def read_stats(json_path: Path) -> dict:
    """``NAME.stats.json`` as written by ``staging``."""
    return json.loads(json_path.read_text())


def viewer_page(out: Path, epoch: int, count: int = 1, epoch_seconds: float = 30.0) -> dict:
    """``count`` epochs of display signals from ``epoch`` (0-based), in µV, mean removed per channel."""
    meta = json.loads((out / VIEWER_META).read_text())
    arr = np.load(out / VIEWER_FILE, mmap_mode="r")
    per_epoch = int(round(meta["rate_hz"] * epoch_seconds))
    n_epochs = max(1, arr.shape[1] // per_epoch)
    epoch = min(max(0, epoch), n_epochs - 1)
    count = max(1, min(count, n_epochs - epoch))
    seg = np.asarray(arr[:, epoch * per_epoch:(epoch + count) * per_epoch], dtype=np.float32)
    seg = seg - seg.mean(axis=1, keepdims=True)  # display only: remove the DC offset
    return {"epoch": epoch, "count": count, "n_epochs": n_epochs, "rate_hz": meta["rate_hz"], "unit": "uV",
            "t0_s": epoch * epoch_seconds, "channels": meta["channels"], "sources": meta["sources"],
            "data": [[round(float(v), 1) for v in row] for row in seg]}
