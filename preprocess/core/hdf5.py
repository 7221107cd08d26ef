"""The harmonized recording file (HDF5, format version 1; DESIGN §6) and the per-dataset manifest.

Writing is atomic: the file is written under a temporary name in the same folder and renamed
into place, so an interrupted run never leaves a half file under the final name. A file is
*valid* when it opens, carries ``format_version == 1`` and its ``complete`` flag; re-runs skip
valid files.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from .atomic import atomic_write, atomic_write_csv
from .channels import CANONICAL, CHANNEL_INDEX
from .signal import EPOCH_SAMPLES, EPOCH_SECONDS, SFREQ
from .stages import STAGE_NAMES

FORMAT_VERSION = 1
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ["recording", "subject", "n_epochs", "channels", "n_W", "n_N1", "n_N2", "n_N3",
                   "n_REM", "n_unknown", "scored", "labels", "file"]


def recording_path(root: str | os.PathLike, dataset: str, recording_id: str) -> Path:
    """``<root>/<DATASET>/<recording_id>.h5``."""
    return Path(root) / dataset / f"{recording_id}.h5"


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def write_recording(path: str | os.PathLike, signals: np.ndarray, channels: Sequence[str],
                    stages: np.ndarray | None, *, dataset: str, subject: str, recording: str,
                    start_time: str = "", source_files: Sequence[str] = (), montage: dict | None = None,
                    preprocessing: dict | None = None, labels: dict | None = None,
                    dtype: str = "float16", extra_attrs: dict | None = None) -> Path:
    """Write one harmonized recording atomically.

    Parameters
    ----------
    path : path-like
        Final file path.
    signals : ndarray, shape (n_epochs, n_channels, 3000)
        Normalised signals at 100 Hz, channels in canonical index order.
    channels : sequence of str
        Canonical names of the channels, same order as axis 1 of ``signals``.
    stages : ndarray of int or None
        ``(n_epochs,)`` stage codes 0..4, −1 unknown; None for unscored data.
    dtype : {"float16", "float32"}
        On-disk signal type. float16 halves the size; z-scored signals are clamped to ±10 by the
        model, well inside float16's exact range (~3 decimal digits).
    """
    path = Path(path)
    signals = np.asarray(signals)
    if signals.ndim != 3:
        raise ValueError(f"signals must be (n_epochs, n_channels, samples), got shape {signals.shape}")
    if list(channels) != sorted(channels, key=CHANNEL_INDEX.__getitem__):
        raise ValueError(f"channels must be in canonical order {CANONICAL}, got {list(channels)}")
    if signals.shape[2] != EPOCH_SAMPLES:
        raise ValueError(f"epochs must hold {EPOCH_SAMPLES} samples (30 s at 100 Hz), got {signals.shape[2]}")
    if signals.shape[1] != len(channels):
        raise ValueError(f"{len(channels)} channel names for {signals.shape[1]} signal channels")
    if stages is not None and len(stages) != signals.shape[0]:
        raise ValueError(f"{len(stages)} stages for {signals.shape[0]} epochs")
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            n_epochs, n_channels, n_samples = signals.shape
            chunks = (min(20, max(1, n_epochs)), n_channels, n_samples) if n_epochs else None
            f.create_dataset("signals", data=signals.astype(dtype), chunks=chunks)
            if stages is not None:
                f.create_dataset("stages", data=np.asarray(stages, dtype=np.int8))
            attrs = {
                "format_version": FORMAT_VERSION, "dataset": dataset, "subject": str(subject),
                "recording": str(recording), "channels": list(channels), "sfreq": SFREQ,
                "epoch_seconds": EPOCH_SECONDS, "start_time": start_time,
                # the signal chain, also inside "preprocessing"; top level so a reader need not parse JSON
                "chain": str((preprocessing or {}).get("chain", "antialiased")),
                "source_files": [str(s) for s in source_files],
                "montage": _json(montage or {}), "preprocessing": _json(preprocessing or {}),
                "labels": _json(labels or {}),
            }
            attrs.update(extra_attrs or {})
            for key, value in attrs.items():
                f.attrs[key] = value
            f.attrs["complete"] = True  # written last: a file without it is not valid

    return atomic_write(path, write)


def is_valid(path: str | os.PathLike) -> bool:
    """True when ``path`` is a complete harmonized file of the current format version."""
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False)) and int(f.attrs.get("format_version", -1)) == FORMAT_VERSION \
                and "signals" in f
    except (OSError, ValueError):
        return False


@dataclass
class RecordingInfo:
    """Cheap summary of a harmonized file (attributes and stage counts only)."""

    path: Path
    dataset: str
    recording: str
    subject: str
    n_epochs: int
    channels: list[str]
    stages: np.ndarray | None
    labels: dict


class Recording:
    """Read access to one harmonized file without loading the night.

    Opens lazily (on first access), so a ``Recording`` can be created in the main process and
    used inside DataLoader workers (each worker opens its own handle).

    Examples
    --------
    >>> rec = Recording("out/h5/sleepedf/SC4001E0.h5")          # doctest: +SKIP
    >>> x = rec.read(100, 120, ["C3", "E1"])   # (20, 2, 3000) float32   # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    @property
    def attrs(self) -> dict:
        return dict(self._h5().attrs)

    @property
    def channels(self) -> list[str]:
        return [str(c) for c in self._h5().attrs["channels"]]

    @property
    def channel_indices(self) -> np.ndarray:
        """Canonical index of each stored channel."""
        return np.array([CHANNEL_INDEX[c] for c in self.channels], dtype=np.int64)

    @property
    def n_epochs(self) -> int:
        return int(self._h5()["signals"].shape[0])

    @property
    def stages(self) -> np.ndarray | None:
        f = self._h5()
        return f["stages"][()].astype(np.int64) if "stages" in f else None

    @property
    def labels(self) -> dict:
        return json.loads(self._h5().attrs.get("labels", "{}"))

    def read(self, start: int, stop: int, channels: Sequence[str] | None = None) -> np.ndarray:
        """Epochs ``[start, stop)`` of the given canonical channels as float32 ``(n, c, 3000)``."""
        data = self._h5()["signals"]
        if channels is None:
            out = data[start:stop]
        else:
            stored = self.channels
            idx = [stored.index(c) for c in channels]
            order = np.argsort(idx)
            sel = data[start:stop, sorted(idx)]  # h5py needs increasing indices
            out = sel[:, np.argsort(order)]
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):  # picklable for DataLoader workers: never ship an open handle
        return {"path": self.path, "_file": None, "_pid": None}


def read_info(path: str | os.PathLike) -> RecordingInfo:
    with Recording(path) as rec:
        a = rec.attrs
        return RecordingInfo(path=Path(path), dataset=str(a["dataset"]), recording=str(a["recording"]),
                             subject=str(a["subject"]), n_epochs=rec.n_epochs, channels=rec.channels,
                             stages=rec.stages, labels=rec.labels)


def manifest_row(info: RecordingInfo) -> dict:
    counts = {f"n_{name}": 0 for name in STAGE_NAMES}
    n_unknown = info.n_epochs
    if info.stages is not None:
        values = np.bincount(info.stages[info.stages >= 0], minlength=5)
        counts = {f"n_{name}": int(values[i]) for i, name in enumerate(STAGE_NAMES)}
        n_unknown = int((info.stages < 0).sum())
    return {"recording": info.recording, "subject": info.subject, "n_epochs": info.n_epochs,
            "channels": " ".join(info.channels), **counts, "n_unknown": n_unknown,
            "scored": int(info.stages is not None), "labels": _json(info.labels), "file": info.path.name}


def write_manifest(dataset_dir: str | os.PathLike) -> Path:
    """Rebuild ``manifest.csv`` of a dataset folder from its valid ``.h5`` files (atomic)."""
    dataset_dir = Path(dataset_dir)
    rows = [manifest_row(read_info(p)) for p in sorted(dataset_dir.glob("*.h5")) if is_valid(p)]
    return atomic_write_csv(dataset_dir / MANIFEST, rows, MANIFEST_FIELDS)


def read_manifest(dataset_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``manifest.csv`` with typed fields (``channels`` as list, ``labels`` as dict)."""
    path = Path(dataset_dir) / MANIFEST
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for key in ["n_epochs", "scored", "n_unknown"] + [f"n_{s}" for s in STAGE_NAMES]:
                row[key] = int(row[key])
            row["channels"] = row["channels"].split()
            row["labels"] = json.loads(row["labels"])
            row["path"] = str(Path(dataset_dir) / row["file"])
            rows.append(row)
    return rows


def iter_dataset_dirs(root: str | os.PathLike) -> Iterable[Path]:
    """Dataset folders (those with ``.h5`` files) below a harmonized root."""
    for d in sorted(Path(root).iterdir()):
        if d.is_dir() and any(d.glob("*.h5")):
            yield d


def read_preprocessing(path: str | os.PathLike) -> dict:
    """The ``preprocessing`` attribute of a harmonized file (signal-chain parameters).

    Files written before the chain was recorded carry no ``chain``: they went through the
    antialiased chain, so it is filled in.
    """
    with h5py.File(path, "r") as f:
        params = json.loads(f.attrs.get("preprocessing", "{}") or "{}")
        chain = f.attrs.get("chain")
    params.setdefault("chain", str(chain) if chain is not None else "antialiased")
    return params


def training_preprocessing(rows: Iterable[dict]) -> dict:
    """Signal-chain parameters shared by the files of manifest rows (what a checkpoint records).

    Raises
    ------
    ValueError
        The files went through different chains (a model must be trained on one chain: the
        chain travels with the weights).
    """
    by_chain: dict[str, tuple[dict, str]] = {}
    for row in rows:
        params = read_preprocessing(row["path"])
        by_chain.setdefault(params["chain"], (params, str(row["path"])))
    if len(by_chain) > 1:
        example = "; ".join(f"{c}: {p}" for c, (_, p) in sorted(by_chain.items()))
        raise ValueError(f"training files come from different signal chains ({example}); "
                         "preprocess them all with the same --chain")
    return next(iter(by_chain.values()))[0] if by_chain else {"chain": "antialiased"}
