"""Windows of consecutive 30-s epochs read straight from the harmonized HDF5 files.

A window is addressed by a *key* ``(recording_index, start)`` or ``(recording_index, start,
aug_seed)``. Keys are produced by a sampler (:mod:`data.sampler`) in the main process; the
dataset turns a key into arrays. Everything random about a window (its offset, its channel
subset) is decided from the key, never from the worker's RNG, so a run is reproducible and
resumable whatever the number of DataLoader workers.

Files are opened lazily, once per worker process (:class:`preprocess.core.hdf5.Recording`);
there is no second copy of the data and no cache file.

Reading is shaped for throughput (``bench/loader_throughput.py``): a window is read as one
contiguous slab of all stored channels into a persistent per-process buffer (h5py's fancy
indexing on the channel axis costs ~20× more than the bytes it saves) and the channel subset is
selected in memory; ``dtype="stored"`` keeps the file's float16 up to the model, which casts on
its device (half the bytes through collate, pinning and the host-to-device copy, and no
host-side conversion at all). Batches are identical in content either way. A DataLoader batch
(``__getitems__``) is read straight into the batch array, and the plain layout of the harmonized
files is read from the file's bytes (:class:`RawRows`, ``os.preadv``) rather than through HDF5's
selection machinery.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from h5py import h5s
from torch.utils.data import Dataset

from models.windows import SEQ_LEN, cover_starts, max_offset, train_starts, window_starts  # noqa: F401 (re-exported)
from preprocess.core.channels import CHANNEL_INDEX, CHANNEL_KIND
from preprocess.core.hdf5 import Recording

EPOCHS_PER_MINUTE = 2
EEG_INDICES = frozenset(CHANNEL_INDEX[c] for c, kind in CHANNEL_KIND.items() if kind == "eeg")


def sleep_range(stages: np.ndarray, wake_margin: float | None, lights=None,
                epoch_seconds: float = 30.0) -> tuple[int, int]:
    """Epoch range kept by the lights-off policy.

    Parameters
    ----------
    stages : ndarray of int
        Stage codes of a recording (−1 unknown).
    wake_margin : float or None
        Minutes of recording kept before the first and after the last sleep epoch (N1..REM).
        None keeps the whole recording, as does a recording without any sleep epoch.
    lights : (float, float), optional
        Lights-off and lights-on (s from the signal start, NaN = unknown) found at preprocessing
        (the ``lights`` HDF5 attribute). A known half replaces the margin rule on its side: the
        range starts at the first epoch whose midpoint is after lights-off and ends after the
        last one before lights-on. Ignored when ``wake_margin`` is None.

    Returns
    -------
    tuple of int
        ``(lo, hi)``: epochs ``[lo, hi)`` are used.

    Examples
    --------
    >>> sleep_range(np.array([0] * 100 + [2] * 10 + [0] * 100), wake_margin=30)
    (40, 170)
    >>> sleep_range(np.array([0] * 100 + [2] * 10 + [0] * 100), 30, lights=(1500.0, float("nan")))
    (50, 170)
    """
    n = len(stages)
    sleep = np.flatnonzero(stages >= 1)
    if wake_margin is None:
        return 0, n
    if len(sleep) == 0:
        lo, hi = 0, n
    else:
        margin = int(round(wake_margin * EPOCHS_PER_MINUTE))
        lo, hi = max(0, int(sleep[0]) - margin), min(n, int(sleep[-1]) + 1 + margin)
    off, on = (lights if lights is not None and len(lights) == 2 else (np.nan, np.nan))
    if np.isfinite(off):  # first epoch whose midpoint is at or after lights-off
        lo = int(min(n, max(0, np.ceil(off / epoch_seconds - 0.5))))
    if np.isfinite(on):  # one past the last epoch whose midpoint is at or before lights-on
        hi = int(min(n, max(0, np.floor(on / epoch_seconds - 0.5) + 1)))
    return (lo, hi) if hi > lo else (0, n)


def choose_channels(channel_idx: np.ndarray, rng: np.random.Generator, keep_prob: float = 0.5) -> np.ndarray:
    """Random non-empty channel subset (boolean mask) that keeps at least one EEG channel if any.

    Each channel is kept independently with ``keep_prob``; if no EEG channel survives, one
    random EEG channel is added back (or one random channel when the recording has no EEG).
    """
    keep = rng.random(len(channel_idx)) < keep_prob
    eeg = np.flatnonzero([int(c) in EEG_INDICES for c in channel_idx])
    candidates = eeg if len(eeg) else np.arange(len(channel_idx))
    if not keep[candidates].any():
        keep[rng.choice(candidates)] = True
    return keep


class WindowDataset(Dataset):
    """Windows of ``seq_len`` epochs over a list of harmonized recordings.

    Parameters
    ----------
    rows : sequence of dict
        Manifest rows (:func:`data.manifest.load_recordings`); ``path``, ``dataset``,
        ``channels`` and ``n_epochs`` are used.
    seq_len : int
        Epochs per window (20 for the published model).
    wake_margin : float, optional
        Lights-off policy: minutes of wake kept around the sleep period (see
        :func:`sleep_range`); None uses whole recordings.
    channel_dropout : float
        Probability that a training window (a key carrying an ``aug_seed``) keeps only a random
        channel subset (:func:`choose_channels`) instead of all its channels.
    channels : sequence of str, optional
        Use only these canonical channels (recordings without any of them are dropped).
    gain_range : float
        Training windows only: each channel is multiplied by its own gain drawn log-uniformly in
        ``[1 / gain_range, gain_range]`` (1 = off). The chain z-scores each channel over its whole
        file, so a stage's amplitude as the model sees it depends on what else the file holds
        (artefacts, the share of wake or N3); this varies that, from the key's ``aug_seed``.
    dtype : {"float32", "stored"}
        Type of the windows' ``x``: float32, or the file's own type (float16 for the default
        files; the model casts on its device, values are identical).

    Notes
    -----
    Stage arrays (one int8 per epoch) are read once at construction, which opens every file
    briefly; signals are read only in :meth:`__getitem__`.
    """

    def __init__(self, rows: Sequence[dict], seq_len: int = SEQ_LEN, wake_margin: float | None = None,
                 channel_dropout: float = 0.0, channels: Sequence[str] | None = None,
                 dtype: str = "float32", gain_range: float = 1.0):
        if dtype not in ("float32", "stored"):
            raise ValueError(f"dtype must be 'float32' or 'stored', got {dtype!r}")
        if not gain_range >= 1.0:
            raise ValueError(f"gain_range must be >= 1, got {gain_range!r}")
        self.gain_range = float(gain_range)
        self.dtype = dtype
        self._positions: dict[int, dict[str, int]] = {}  # per process: stored channel → column
        self._buffers: dict[tuple, np.ndarray] = {}  # per process: reused read buffers
        self._handles: dict[int, tuple] = {}  # per process: open signals dataset, shape, dtype
        self.seq_len = int(seq_len)
        self.channel_dropout = float(channel_dropout)
        self.wake_margin = wake_margin
        wanted = set(channels) if channels else None
        self.rows, self.recordings, self.channel_names, self.stages, self.ranges = [], [], [], [], []
        for row in rows:
            names = [c for c in row["channels"] if wanted is None or c in wanted]
            if not names:
                continue
            with Recording(row["path"]) as rec:
                stages = rec.stages
                lights = rec.attrs.get("lights")  # preprocessing found lights-off/on in the scoring
            if stages is None:
                stages = np.full(int(row["n_epochs"]), -1, dtype=np.int64)
            self.rows.append(row)
            self.recordings.append(Recording(row["path"]))
            self.channel_names.append(names)
            self.stages.append(np.asarray(stages, dtype=np.int64))
            self.ranges.append(sleep_range(self.stages[-1], wake_margin,
                                           None if lights is None else np.asarray(lights, dtype=float)))
        self.datasets = [str(r.get("dataset", "")) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def n_epochs(self, i: int) -> int:
        return len(self.stages[i])

    def channel_indices(self, i: int) -> np.ndarray:
        return np.array([CHANNEL_INDEX[c] for c in self.channel_names[i]], dtype=np.int64)

    # ---- window keys --------------------------------------------------------------------------

    def _has_labels(self, i: int, start: int) -> bool:
        lo, hi = self.ranges[i]
        a, b = max(start, lo), min(start + self.seq_len, hi)
        return b > a and bool((self.stages[i][a:b] >= 0).any())

    def train_windows(self, rng: np.random.Generator | None = None) -> list[tuple[int, int]]:
        """Non-overlapping windows of every recording, each with a random offset.

        Parameters
        ----------
        rng : numpy Generator, optional
            Draws one offset in ``[0, seq_len)`` per recording; None uses offset 0.

        Returns
        -------
        list of tuple
            ``(recording_index, start)`` keys; windows whose labels are all −1 are skipped.
        """
        keys = []
        for i in range(len(self)):
            lo, hi = self.ranges[i]
            offset = int(rng.integers(max_offset(lo, hi, self.seq_len))) if rng is not None else 0
            for s in train_starts(lo, hi, self.n_epochs(i), self.seq_len, offset):
                if self._has_labels(i, int(s)):
                    keys.append((i, int(s)))
        return keys

    def cover_windows(self, i: int, stride: int | None = None) -> list[tuple[int, int]]:
        """Keys of windows covering every used epoch of recording ``i`` (for evaluation)."""
        lo, hi = self.ranges[i]
        starts = cover_starts(lo, hi, self.n_epochs(i), self.seq_len, stride or self.seq_len)
        return [(i, int(s)) for s in starts]

    # ---- reading ------------------------------------------------------------------------------

    def _read(self, i: int, start: int, stop: int, names: Sequence[str]) -> np.ndarray:
        """Epochs ``[start, stop)`` of channels ``names``: one contiguous read, then selection.

        Returns ``(stop − start, len(names), 3000)`` float32, or the stored dtype when
        ``dtype="stored"``; values equal :meth:`Recording.read`'s.

        The read goes through h5py's low-level interface with the dataset handle kept per
        process: the high-level ``read_direct`` rebuilt the selection and looked the dataset up
        again on every call, a third of a window's CPU time. With every stored channel wanted the
        slab lands in a new array directly (no second copy).
        """
        _, shape, dtype, _ = self._dataset(i)
        pos = self._positions[i]
        n = stop - start
        cols = [pos[c] for c in names]
        whole = cols == list(range(shape[1]))
        x = np.empty((n,) + shape[1:], dtype) if whole else self._buffer((n,) + shape[1:], dtype)
        if n > 0:
            self._read_rows(i, start, x)
        if not whole:
            x = x[:, cols]
        if self.dtype == "stored" or x.dtype == np.float32:
            return x
        # torch's float16 → float32 cast is vectorised; numpy's costs more than the read itself
        return torch.from_numpy(x).float().numpy()

    def _buffer(self, shape: tuple, dtype) -> np.ndarray:
        """This process's reused read buffer of ``shape`` and ``dtype`` (contents undefined)."""
        key = tuple(shape) + (np.dtype(dtype).str,)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = np.empty(shape, dtype)
        return buf

    def _read_rows(self, i: int, start: int, out: np.ndarray) -> None:
        """Epochs ``start:start + len(out)`` of every stored channel into ``out`` (C-contiguous, the stored
        dtype): straight from the file (:class:`RawRows`) when its layout allows, else through h5py."""
        data, shape, _, raw = self._dataset(i)
        if raw is not None and raw.read_rows(start, out):
            return
        fspace = data.id.get_space()
        fspace.select_hyperslab((start, 0, 0), (out.shape[0],) + shape[1:])
        data.id.read(h5s.create_simple(out.shape), fspace, out)

    def _dataset(self, i: int):
        """``(h5py dataset, shape, dtype, RawRows or None)`` of recording ``i``'s signals, opened once per
        process."""
        got = self._handles.get(i)
        if got is None or got[4] != os.getpid():  # a forked worker opens its own handle
            rec = self.recordings[i]
            data = rec._h5()["signals"]
            self._positions[i] = _stored_positions(rec)
            got = self._handles[i] = (data, tuple(data.shape), data.dtype, RawRows.open(rec.path, data),
                                      os.getpid())
        return got[:4]

    def __getstate__(self):  # picklable for DataLoader workers: never ship an open handle
        return {**self.__dict__, "_handles": {}, "_buffers": {}}

    def __getitems__(self, keys) -> list[dict]:
        """The windows of ``keys`` (a DataLoader batch) read straight into one batch array.

        Each item holds ``self[key]``'s values (``x`` in the batch's dtype, as collated), but its ``x`` is a view of
        one ``(B, L, Cmax, 3000)`` array (shared memory inside a DataLoader worker) that
        :func:`collate_windows` then hands on as it is: no per-window array, no second copy, and
        no fresh megabyte of memory per window (page faults were a third of a window's CPU time).
        """
        plans = [self._plan(k) for k in keys]
        if not plans:
            return []
        L, T = self.seq_len, None
        stored = []
        for i, *_ in plans:
            _, shape, dtype, _ = self._dataset(i)
            T = shape[2] if T is None else T
            stored.append(dtype)
            if shape[2] != T:  # not one batch shape: the plain path (collate refuses it as before)
                return [self[k] for k in keys]
        # an item's dtype as __getitem__ gives it; the batch is float16 only when every item is (as collate_windows)
        item_dtypes = [d if self.dtype == "stored" or d == np.float32 else np.dtype(np.float32) for d in stored]
        if any(d not in (np.float16, np.float32) for d in item_dtypes):
            return [self[k] for k in keys]
        half = all(d == np.float16 for d in item_dtypes)
        cmax = max(len(plan[3]) for plan in plans)
        batch = _shared_empty((len(plans), L, cmax, T), torch.float16 if half else torch.float32)
        bx = batch.numpy()
        items = []
        for b, ((i, start, stop, names, idx, labels, gains), dtype) in enumerate(zip(plans, stored)):
            n, c = stop - start, len(names)
            if n > 0:
                self._read_into(i, start, names, bx[b, :n, :c], dtype)
                if gains is not None:
                    bx[b, :n, :c] *= gains[:, None].astype(bx.dtype)
            if c < cmax:
                bx[b, :n, c:] = 0
            if n < L:  # recording shorter than a window
                bx[b, n:] = 0
            items.append({"x": bx[b, :, :c], "channels": idx, "labels": labels, "rec": i, "start": start,
                          "_batch": batch})
        return items

    def _read_into(self, i: int, start: int, names: Sequence[str], out: np.ndarray, dtype) -> None:
        """Epochs ``start:start + len(out)`` of channels ``names`` into the batch slot ``out``."""
        _, shape, _, _ = self._dataset(i)
        pos = self._positions[i]
        cols = [pos[c] for c in names]
        whole = cols == list(range(shape[1]))
        if whole and out.dtype == dtype and out.flags.c_contiguous:
            self._read_rows(i, start, out)
            return
        buf = self._buffer((out.shape[0],) + shape[1:], dtype)
        self._read_rows(i, start, buf)
        src = buf if whole else buf[:, cols]
        torch.from_numpy(out).copy_(torch.from_numpy(src))  # torch's float16 → float32 cast is vectorised

    def _plan(self, key) -> tuple:
        """``(recording, start, stop, channel names, channel indices, labels, gains)`` of a window key.

        ``gains`` (one per kept channel, float32) is None unless the key is a training key and
        ``gain_range`` > 1.
        """
        i, start = int(key[0]), int(key[1])
        aug_seed = key[2] if len(key) > 2 else None
        names = self.channel_names[i]
        idx = self.channel_indices(i)
        if aug_seed is not None and self.channel_dropout > 0 and len(names) > 1:
            rng = np.random.default_rng(int(aug_seed))
            if rng.random() < self.channel_dropout:
                keep = choose_channels(idx, rng)
                names = [n for n, k in zip(names, keep) if k]
                idx = idx[keep]
        gains = None
        if aug_seed is not None and self.gain_range > 1:
            # its own stream, so the channel subsets above stay those of a run without gains
            log_r = np.log(self.gain_range)
            gains = np.exp(np.random.default_rng([int(aug_seed), 1]).uniform(-log_r, log_r, len(names)))
            gains = gains.astype(np.float32)
        L, n = self.seq_len, self.n_epochs(i)
        stop = min(start + L, n)
        labels = self.stages[i][start:stop].copy()
        lo, hi = self.ranges[i]
        pos = np.arange(start, stop)
        labels[(pos < lo) | (pos >= hi)] = -1  # outside the lights-off range: not scored here
        if stop - start < L:
            labels = np.concatenate([labels, np.full(L - (stop - start), -1, np.int64)])
        return i, start, stop, names, idx, labels, gains

    def __getitem__(self, key) -> dict:
        i, start, stop, names, idx, labels, gains = self._plan(key)
        x = self._read(i, start, stop, names)
        if gains is not None:
            x = x * gains[:, None].astype(x.dtype)
        if stop - start < self.seq_len:  # recording shorter than a window: zero epochs, labels -1 (_plan)
            x = np.concatenate([x, np.zeros((self.seq_len - (stop - start),) + x.shape[1:], x.dtype)])
        return {"x": x, "channels": idx, "labels": labels, "rec": i, "start": start}


class RawRows:
    """Epochs of an uncompressed harmonized ``signals`` dataset read straight from the file (``os.preadv``).

    The harmonized files store ``(epochs, channels, 3000)`` in chunks of whole epochs (all channels,
    all samples) without filters, so the epochs ``[a, b)`` of a chunk are one contiguous byte range:
    a window is one or two ``preadv`` calls into the caller's buffer, the same bytes HDF5 would copy,
    without its per-call selection and chunk bookkeeping (half of a window's CPU time). Any other
    layout (compression, filters, partial chunks, a foreign byte order) gets ``None`` from
    :meth:`open` and is read through h5py.
    """

    def __init__(self, path, rows_per_chunk: int, offsets: np.ndarray, row_bytes: int, n_rows: int):
        self._fd = os.open(path, os.O_RDONLY)
        self.rows_per_chunk, self.offsets, self.row_bytes, self.n_rows = rows_per_chunk, offsets, row_bytes, n_rows

    @classmethod
    def open(cls, path, data) -> RawRows | None:
        """A reader of ``data`` (an h5py dataset of file ``path``), or None when its layout is not the plain one."""
        if not hasattr(os, "preadv"):
            return None
        try:
            shape, itemsize = tuple(data.shape), data.dtype.itemsize
            if len(shape) != 3 or not data.dtype.isnative or data.id.get_create_plist().get_nfilters() != 0:
                return None
            row_bytes = shape[1] * shape[2] * itemsize
            if data.chunks is None:  # contiguous layout
                offset = data.id.get_offset()
                if offset is None:
                    return None
                return cls(path, max(1, shape[0]), np.array([offset], dtype=np.int64), row_bytes, shape[0])
            k = int(data.chunks[0])
            if tuple(data.chunks[1:]) != shape[1:]:
                return None
            n_chunks = -(-shape[0] // k)
            if data.id.get_num_chunks() != n_chunks:
                return None  # a chunk never written (fill value): HDF5 knows what it holds
            offsets = np.full(n_chunks, -1, dtype=np.int64)
            for j in range(n_chunks):
                info = data.id.get_chunk_info(j)
                if info.filter_mask != 0 or info.size != k * row_bytes or info.chunk_offset[0] % k:
                    return None
                offsets[info.chunk_offset[0] // k] = info.byte_offset
            if (offsets < 0).any():
                return None
            return cls(path, k, offsets, row_bytes, shape[0])
        except Exception:  # an older HDF5 without chunk queries, an odd file: the h5py path
            return None

    def read_rows(self, start: int, out: np.ndarray) -> bool:
        """Fill ``out`` (C-contiguous, ``(n, channels, samples)``) with epochs ``start:start + n``; False
        when that cannot be done (the caller then reads through h5py)."""
        n, k = out.shape[0], self.rows_per_chunk
        if start < 0 or start + n > self.n_rows or not out.flags.c_contiguous or out.nbytes != n * self.row_bytes:
            return False
        flat = memoryview(out.reshape(-1).view(np.uint8))
        a = start
        while a < start + n:
            j = a // k
            b = min(start + n, (j + 1) * k)
            want = (b - a) * self.row_bytes
            dst = flat[(a - start) * self.row_bytes:(a - start) * self.row_bytes + want]
            if os.preadv(self._fd, [dst], int(self.offsets[j]) + (a - j * k) * self.row_bytes) != want:
                return False
            a = b
        return True

    def __del__(self):
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass


def _stored_positions(rec: Recording) -> dict[str, int]:
    return {c: j for j, c in enumerate(rec.channels)}


def _shared_empty(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """Uninitialised tensor, in shared memory inside a DataLoader worker.

    A worker hands its batch to the main process through shared memory; allocating it there
    directly (as ``default_collate`` does) saves a full copy of the batch per step.
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    numel = int(np.prod(shape))
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(numel)
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def collate_windows(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Stack windows with different channel sets into one padded batch.

    Returns
    -------
    dict of Tensor
        ``x`` (B, L, Cmax, 3000) with zeros at padding channels, float32 (or float16 when the
        windows are, see ``WindowDataset(dtype="stored")``); ``channels`` (B, Cmax) long, −1 at
        padding; ``labels`` (B, L) long, −1 = ignore; ``rec`` and ``start`` (B,).
    """
    B = len(items)
    L, _, T = items[0]["x"].shape
    cmax = max(it["x"].shape[1] for it in items)
    dtype = torch.float16 if all(it["x"].dtype == np.float16 for it in items) else torch.float32
    ready = items[0].get("_batch")  # WindowDataset.__getitems__ read the windows into their batch already
    if ready is not None and all(it.get("_batch") is ready for it in items) and \
            tuple(ready.shape) == (B, L, cmax, T) and ready.dtype == dtype:
        x = ready
    else:
        x = _shared_empty((B, L, cmax, T), dtype)
        for b, it in enumerate(items):
            c = it["x"].shape[1]
            x[b, :, :c] = torch.from_numpy(it["x"])
            if c < cmax:
                x[b, :, c:] = 0.0  # only the padding is zero-filled, not the whole batch
    channels = torch.full((B, cmax), -1, dtype=torch.long)
    for b, it in enumerate(items):
        c = it["x"].shape[1]
        channels[b, :c] = torch.from_numpy(np.asarray(it["channels"], dtype=np.int64))
    labels = torch.from_numpy(np.stack([np.asarray(it["labels"], dtype=np.int64) for it in items]))
    rec = torch.tensor([it["rec"] for it in items], dtype=torch.long)
    start = torch.tensor([it["start"] for it in items], dtype=torch.long)
    return {"x": x, "channels": channels, "labels": labels, "rec": rec, "start": start}
