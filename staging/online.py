"""Real-time sleep staging from a live stream (Lab Streaming Layer), for closed-loop research.

Every completed 30-s epoch of a live PSG stream is staged seconds after its last sample arrives,
with the same model, montage rules and weights as ``inference.py``::

    python -m staging.online --stream MyAmp --out online/          # a live LSL stream
    python -m staging.online --replay night.edf --speed 60         # a file played through LSL

What differs from offline staging, and why
-------------------------------------------
The offline chain (:mod:`preprocess.core.signal`) filters forward and backward (zero phase) and
z-scores each channel over the whole night. Neither is possible while the night is recorded, so the
online chain (:class:`CausalChain`) is:

1. the same Butterworth design (order 4, EEG/EOG 0.3–35 Hz band-pass, chin 10 Hz high-pass, edges
   limited by :func:`preprocess.core.signal.usable_band`) run **forward only** (``sosfilt`` with
   carried state): the magnitude response is that of one pass, not its square, and there is a
   frequency-dependent phase lag;
2. a causal anti-alias low-pass (Butterworth order 8 at 45 Hz, forward only) when the stream is
   faster than 100 Hz, then linear interpolation onto the 100-Hz grid (needs one future sample);
3. **running normalisation** (:class:`RunningNorm`): each epoch is z-scored with the mean and
   standard deviation of everything filtered so far (default ``--norm running``: by the end of the
   night this is the offline z-score of the filtered signal), or with those of a calibration period
   at the start of the night (``--norm calibration``, first ``--calibration-s`` seconds, running
   until then).

Staging. When epoch ``e`` completes, its CNN features are computed once and kept for the 20
epochs a window can span. The **immediate** stage of ``e`` comes from the window that ends at it
(epochs ``e−19 … e``, fewer at the start of the night, ``e`` in the last position). Every
full-length window also adds its softmax probabilities to each epoch it contains; once 19 more
epochs have arrived an epoch has received all of them and its **refined** stage is published —
the sum over the same windows as offline stride-1 voting (:mod:`staging.predict`), so refined
stages differ from offline ones only through the causal chain and the running normalisation.
At the end of the stream the last epochs are refined with the windows they have.

Gaps. Timestamps are checked against the stream's nominal rate: a jump of more than
:data:`GAP_TOLERANCE_S` means samples were lost (or the stream restarted). The missing time is
inserted as flat signal on the epoch grid — never stitched — the filters restart, and every epoch
the gap touches, plus the one after it (the filters' transient), is published with stage
``unknown`` and flag ``gap``. A stream that stalls (no sample for ``--stall-s`` seconds) is
reported on the console; a stream that disappears is looked up again by name.

Outputs: an LSL marker outlet ``<stream>-stages`` (one JSON string per immediate and refined stage:
``kind, epoch, stage, probs, onset_lsl, onset_s, flag``), ``<out>/<stream>.online.csv`` written as
it goes (one row per immediate and per refined stage, flushed and fsync'ed per row so it is readable
after a crash), and a console line per epoch.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.signal as sps
import torch

from preprocess.core.channels import CHANNEL_INDEX, CHANNEL_KIND, MontageError, Source, resolve_montage
from preprocess.core.extras import ONLINE, require
from preprocess.core.signal import EPOCH_SAMPLES, EPOCH_SECONDS, SFREQ, SignalParams, usable_band
from preprocess.core.stages import STAGE_NAMES
from preprocess.core.version import add_version_argument

logger = logging.getLogger(__name__)

GAP_TOLERANCE_S = 0.25
"""A timestamp jump larger than this (beyond one sample period) is a gap: LSL timestamps jitter by
milliseconds, a lost packet of a 256-Hz amplifier is tens of ms; a quarter second is neither."""
ANTIALIAS_HZ = 45.0
"""Edge of the causal anti-alias low-pass before the 100-Hz grid (Nyquist 50 Hz)."""
UNKNOWN = "unknown"
CSV_FIELDS = ("kind", "epoch", "onset_s", "onset_lsl", "stage", *[f"p_{s}" for s in STAGE_NAMES], "flag",
              "latency_s")


# ---- causal signal chain ----------------------------------------------------------------------------

def _band(kind: str, params: SignalParams) -> tuple[float | None, float | None]:
    if kind == "emg":
        return params.emg_highpass, None
    return params.eog_band if kind == "eog" else params.eeg_band


def _butter_sos(sfreq: float, low: float | None, high: float | None, order: int) -> np.ndarray | None:
    low, high = usable_band(sfreq, low, high)
    if low is None and high is None:
        return None
    if low is not None and high is not None:
        return sps.butter(order, [low, high], btype="bandpass", fs=sfreq, output="sos")
    if low is not None:
        return sps.butter(order, low, btype="highpass", fs=sfreq, output="sos")
    return sps.butter(order, high, btype="lowpass", fs=sfreq, output="sos")


class CausalChain:
    """Causal filter + resampling to 100 Hz of one channel, fed chunk by chunk.

    Parameters
    ----------
    sfreq : float
        Stream rate (Hz).
    kind : {"eeg", "eog", "emg"}
    params : SignalParams
        Band edges and filter order (the offline chain's; run forward only here).

    Notes
    -----
    Output sample ``k`` is the filtered signal at ``k / 100`` s after the first input sample, by
    linear interpolation between the two input samples around it. The output of any split of the
    input into chunks is the same as of the whole input at once (tested).
    """

    def __init__(self, sfreq: float, kind: str, params: SignalParams = SignalParams()) -> None:
        self.sfreq = float(sfreq)
        sections = []
        band = _butter_sos(self.sfreq, *_band(kind, params), params.filter_order)
        if band is not None:
            sections.append(band)
        if self.sfreq > SFREQ:
            aa = _butter_sos(self.sfreq, None, ANTIALIAS_HZ, 8)
            if aa is not None:
                sections.append(aa)
        self.sos = np.concatenate(sections) if sections else None
        self.reset()

    def reset(self) -> None:
        """Forget the filter state and the interpolation position (after a gap)."""
        self.zi = None if self.sos is None else np.zeros((self.sos.shape[0], 2))
        self.n_in = 0          # input samples consumed since the last reset
        self.n_out = 0         # output samples produced since the last reset
        self.last = 0.0        # last filtered input sample (for interpolation across chunks)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Filter ``x`` (1-D, volts) and return the new 100-Hz samples it completes."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return np.empty(0)
        if self.sos is not None:
            if self.n_in == 0:  # start from the first value (no step transient from zero)
                self.zi = sps.sosfilt_zi(self.sos) * x[0]
            x, self.zi = sps.sosfilt(self.sos, x, zi=self.zi)
        if self.sfreq == SFREQ:
            self.n_in += x.size
            self.n_out += x.size
            return x
        # positions (in input samples since reset) of the outputs this chunk completes: an output at
        # position p needs input samples floor(p) and floor(p)+1 (the latter only when p is not whole)
        step = self.sfreq / SFREQ
        first_needed = self.n_in - 1 if self.n_in else 0
        joined = np.concatenate([[self.last], x]) if self.n_in else x
        n_total = self.n_in + x.size
        k_end = int(np.floor((n_total - 1) / step)) + 1  # outputs with position ≤ last input index
        k = np.arange(self.n_out, k_end)
        out = np.interp(k * step - first_needed, np.arange(joined.size), joined)
        self.n_in = n_total
        self.n_out = k_end
        self.last = float(x[-1])
        return out


class RunningNorm:
    """Z-score of one channel with statistics of the signal seen so far.

    Parameters
    ----------
    mode : {"running", "calibration"}
        ``running``: mean and SD of every sample up to the end of the current epoch;
        ``calibration``: frozen after the first ``calibration_s`` seconds (running before).
    calibration_s : float
    """

    def __init__(self, mode: str = "running", calibration_s: float = 300.0) -> None:
        if mode not in ("running", "calibration"):
            raise ValueError(f"--norm must be running or calibration, got {mode!r}")
        self.mode, self.limit = mode, int(calibration_s * SFREQ)
        self.n, self.s, self.ss = 0, 0.0, 0.0

    def update(self, x: np.ndarray) -> None:
        if self.mode == "calibration" and self.n >= self.limit:
            return
        self.n += x.size
        self.s += float(x.sum())
        self.ss += float(np.dot(x, x))

    def apply(self, x: np.ndarray) -> np.ndarray:
        mean = self.s / max(self.n, 1)
        var = max(self.ss / max(self.n, 1) - mean * mean, 0.0)
        sd = np.sqrt(var)
        return (x - mean) / sd if sd > 0 else np.zeros_like(x)


# ---- staging of completed epochs ---------------------------------------------------------------------

@dataclass
class EpochResult:
    """One published stage (immediate or refined)."""

    kind: str                   # "immediate" or "refined"
    epoch: int
    onset_s: float              # seconds from the first sample of the stream
    onset_lsl: float            # the stream's clock (LSL timestamp of the epoch's first sample)
    probs: np.ndarray | None    # (5,) or None when unknown
    flag: str = "ok"            # "ok" or "gap"
    latency_s: float = float("nan")  # publish time − arrival of the epoch's last sample

    @property
    def stage(self) -> str:
        return UNKNOWN if self.probs is None else STAGE_NAMES[int(np.argmax(self.probs))]

    def row(self) -> dict:
        p = self.probs if self.probs is not None else [float("nan")] * len(STAGE_NAMES)
        return {"kind": self.kind, "epoch": self.epoch, "onset_s": f"{self.onset_s:.2f}",
                "onset_lsl": f"{self.onset_lsl:.6f}", "stage": self.stage,
                **{f"p_{s}": f"{v:.6f}" for s, v in zip(STAGE_NAMES, p)}, "flag": self.flag,
                "latency_s": f"{self.latency_s:.4f}"}

    def marker(self) -> str:
        return json.dumps({"kind": self.kind, "epoch": self.epoch, "stage": self.stage,
                           "probs": None if self.probs is None else [round(float(v), 6) for v in self.probs],
                           "onset_lsl": self.onset_lsl, "onset_s": self.onset_s, "flag": self.flag})


@dataclass
class _Slot:
    """What is kept of one of the last ``seq_len`` epochs."""

    epoch: int
    feats: torch.Tensor        # (C, 512)
    gap: bool
    votes: torch.Tensor        # (5,) float64: summed probabilities of full windows so far
    arrival: float


class OnlineStager:
    """Stage a stream chunk by chunk; transport-free (the LSL loop feeds :meth:`push`).

    Parameters
    ----------
    model : LPSGM
        Eval-mode model (any size; ``model.cfg.seq_len`` epochs per window).
    sources : list of Source
        The montage: canonical channel ← stream label (or ``a − b``), from :func:`resolve_montage`.
    labels : sequence of str
        The stream's channel labels, in stream order.
    sfreq : float
        Nominal stream rate (Hz).
    params : SignalParams
    norm, calibration_s
        See :class:`RunningNorm`.
    publish : callable(EpochResult), optional
        Called for every immediate and refined result, in order.
    keep_results : bool
        Keep every result in :attr:`results` (tests, benches); off for a long live night.
    """

    def __init__(self, model, sources: Sequence[Source], labels: Sequence[str], sfreq: float,
                 params: SignalParams = SignalParams(), norm: str = "running", calibration_s: float = 300.0,
                 publish: Callable[[EpochResult], None] | None = None, keep_results: bool = True) -> None:
        self.model = model
        self.sfreq = float(sfreq)
        self.sources = list(sources)
        index = {lab: i for i, lab in enumerate(labels)}
        self._pos = np.array([index[s.positive] for s in self.sources])
        self._neg = np.array([index[s.negative] if s.negative is not None else -1 for s in self.sources])
        self.channels = torch.tensor([CHANNEL_INDEX[s.canonical] for s in self.sources], dtype=torch.long)
        self.chains = [CausalChain(self.sfreq, CHANNEL_KIND[s.canonical], params) for s in self.sources]
        self.norms = [RunningNorm(norm, calibration_s) for _ in self.sources]
        self.seq_len = model.cfg.seq_len
        self.publish = publish
        self.keep_results = keep_results
        self.results: list[EpochResult] = []
        self.notes: list[str] = []
        self._buf = np.zeros((len(self.sources), EPOCH_SAMPLES))
        self._fill = 0               # 100-Hz samples in the current epoch
        self._epoch = 0              # index of the epoch being filled
        self._gap_epochs: set[int] = set()
        self._slots: deque[_Slot] = deque(maxlen=self.seq_len)
        self._t0: float | None = None      # LSL time of the first sample
        self._next_ts: float | None = None  # expected timestamp of the next sample
        self._zero_feats: torch.Tensor | None = None

    # -- input ----------------------------------------------------------------------------------------
    def push(self, data: np.ndarray, timestamps: np.ndarray, arrival: float | None = None) -> None:
        """Feed samples ``(n, n_stream_channels)`` with their LSL timestamps ``(n,)``."""
        arrival = time.perf_counter() if arrival is None else arrival
        data = np.asarray(data, dtype=np.float64)
        ts = np.asarray(timestamps, dtype=np.float64)
        if data.shape[0] == 0:
            return
        if self._t0 is None:
            self._t0 = self._next_ts = float(ts[0])
        period = 1.0 / self.sfreq
        jumps = np.flatnonzero(np.abs(np.diff(ts) - period) > GAP_TOLERANCE_S) + 1
        for part, part_ts in zip(np.split(data, jumps), np.split(ts, jumps)):
            jump = float(part_ts[0]) - self._next_ts
            if abs(jump) > GAP_TOLERANCE_S:
                self._gap(jump)
            self._consume(part, arrival)
            self._next_ts = float(part_ts[-1]) + period

    def _gap(self, jump: float) -> None:
        """Lost samples (``jump`` > 0) or a restart (``jump`` < 0): insert flat time, restart filters."""
        start_epoch = self._epoch
        what = (f"gap of {jump:.2f} s in the stream" if jump > 0 else
                f"stream restarted (timestamps went back {-jump:.2f} s)")
        n_missing = int(round(max(jump, 0.0) * SFREQ))
        while n_missing > 0:  # flat signal on the epoch grid: the epochs keep their clock time
            take = min(n_missing, EPOCH_SAMPLES - self._fill)
            self._buf[:, self._fill:self._fill + take] = np.nan
            self._fill += take
            n_missing -= take
            self._gap_epochs.add(self._epoch)
            if self._fill == EPOCH_SAMPLES:
                self._complete_epoch(time.perf_counter())
        self._gap_epochs.update({self._epoch, self._epoch + 1})  # the filters' restart transient
        for chain in self.chains:
            chain.reset()
        note = f"{what} at epoch {start_epoch}: epochs {start_epoch}–{self._epoch + 1} marked unknown"
        self.notes.append(note)
        logger.warning(note)
        if jump > 0:
            self._next_ts += jump

    def _consume(self, part: np.ndarray, arrival: float) -> None:
        raw = part[:, self._pos] - np.where(self._neg >= 0, part[:, np.maximum(self._neg, 0)], 0.0)
        out = [chain.push(raw[:, c]) for c, chain in enumerate(self.chains)]
        n = min(o.size for o in out)  # the chains advance together; equal lengths by construction
        done = 0
        while done < n:
            take = min(n - done, EPOCH_SAMPLES - self._fill)
            for c, o in enumerate(out):
                self._buf[c, self._fill:self._fill + take] = o[done:done + take]
            self._fill += take
            done += take
            if self._fill == EPOCH_SAMPLES:
                self._complete_epoch(arrival)

    # -- staging --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _complete_epoch(self, arrival: float) -> None:
        e = self._epoch
        gap = e in self._gap_epochs or bool(np.isnan(self._buf).any())
        x = np.nan_to_num(self._buf, nan=0.0)
        if gap:
            feats = self._zero_features()
        else:
            for norm, row in zip(self.norms, x):
                norm.update(row)
            z = np.stack([norm.apply(row) for norm, row in zip(self.norms, x)]).astype(np.float32)
            feats = self.model.encode_epochs(torch.from_numpy(z))  # (C, 512), computed once
        self._slots.append(_Slot(e, feats, gap, torch.zeros(len(STAGE_NAMES), dtype=torch.float64), arrival))
        self._gap_epochs.discard(e)
        self._epoch += 1
        self._fill = 0
        probs = self._window_probs(list(self._slots))  # (L, 5): the window ending at e
        now_slot = self._slots[-1]
        self._emit(EpochResult("immediate", e, e * EPOCH_SECONDS, self._t0 + e * EPOCH_SECONDS,
                               None if gap else probs[-1].numpy(), "gap" if gap else "ok"), now_slot)
        if len(self._slots) == self.seq_len:
            for slot, p in zip(self._slots, probs):
                slot.votes += p
            self._refine(self._slots[0])  # it has now been in every window that contains it

    def _zero_features(self) -> torch.Tensor:
        if self._zero_feats is None:
            zero = torch.zeros(len(self.sources), EPOCH_SAMPLES)
            self._zero_feats = self.model.encode_epochs(zero)
        return self._zero_feats

    def _window_probs(self, slots: list[_Slot]) -> torch.Tensor:
        feats = torch.stack([s.feats for s in slots])[None]  # (1, L, C, 512)
        logits = self.model.forward_features(feats, self.channels[None])
        return torch.softmax(logits[0].double(), dim=-1)

    def _refine(self, slot: _Slot, votes: torch.Tensor | None = None) -> None:
        votes = slot.votes if votes is None else votes
        probs = None if slot.gap or float(votes.sum()) == 0 else (votes / votes.sum()).numpy()
        e = slot.epoch
        self._emit(EpochResult("refined", e, e * EPOCH_SECONDS, self._t0 + e * EPOCH_SECONDS, probs,
                               "gap" if slot.gap else "ok"), slot)

    def _emit(self, res: EpochResult, slot: _Slot) -> None:
        res.latency_s = time.perf_counter() - slot.arrival
        if self.keep_results:
            self.results.append(res)
        if self.publish is not None:
            self.publish(res)

    @torch.inference_mode()
    def finish(self) -> None:
        """End of stream: refine the epochs still waiting (a trailing partial epoch is dropped).

        A night shorter than one window is refined with one window of its own length, as offline
        staging does; otherwise the remaining epochs keep the full windows they were in.
        """
        slots = list(self._slots)
        if not slots:
            return
        if len(slots) < self.seq_len:  # no full window ever ran
            probs = self._window_probs(slots)
            for slot, p in zip(slots, probs):
                self._refine(slot, p)
            return
        for slot in slots[1:]:  # slots[0] was refined when the last full window ran
            self._refine(slot)
        self._slots.clear()

    @property
    def n_epochs(self) -> int:
        return self._epoch

    def memory_footprint(self) -> dict:
        """Sizes of the internal buffers (all bounded: for the no-growth test)."""
        return {"slots": len(self._slots), "buffer_samples": int(self._buf.size),
                "pending_gap_epochs": len(self._gap_epochs),
                "results": len(self.results), "notes": len(self.notes)}


# ---- outputs ------------------------------------------------------------------------------------------

class CsvLog:
    """``NAME.online.csv``: one row per published result, flushed and fsync'ed per row."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self._fh = open(path, "a", newline="", encoding="utf-8")
        self._w = csv.DictWriter(self._fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        if new:
            self._w.writeheader()

    def write(self, res: EpochResult) -> None:
        self._w.writerow(res.row())
        self._fh.flush()
        os.fsync(self._fh.fileno())  # readable up to the last epoch after a crash or power loss

    def close(self) -> None:
        self._fh.close()


def console_line(res: EpochResult) -> str:
    """``epoch   12  00:06:00  N2 (0.93)  immediate  latency 41 ms``."""
    t = int(res.onset_s)
    conf = "" if res.probs is None else f" ({float(np.max(res.probs)):.2f})"
    flag = "" if res.flag == "ok" else f"  [{res.flag}]"
    return (f"epoch {res.epoch:5d}  {t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}  {res.stage:>7}{conf:<7}"
            f"  {res.kind:<9}  latency {res.latency_s * 1e3:.0f} ms{flag}")


# ---- LSL transport ------------------------------------------------------------------------------------

def restrict_lsl_to_this_machine() -> None:
    """Keep LSL discovery on this machine (replays and tests): set before the first LSL object.

    liblsl has no bind-address setting for its data sockets; ``ResolveScope = machine`` keeps the
    stream from being announced to (or found on) other hosts.
    """
    from mne_lsl.lsl import set_config_content

    set_config_content("[multicast]\nResolveScope = machine\n[lab]\nKnownPeers = {127.0.0.1}\n")


def open_inlet(name: str, timeout: float = 10.0, max_buffered: float = 360.0):
    """Find the LSL stream ``name`` and open an inlet on it (labels, rate).

    ``max_buffered`` (seconds of signal) is what liblsl holds while the stager is busy; beyond it
    the oldest samples are lost and the stager reports a gap. Six minutes suit a live stream; a
    replay faster than real time needs the length of the file.
    """
    from mne_lsl.lsl import StreamInlet, resolve_streams

    found = resolve_streams(timeout=timeout, name=name)
    if not found:
        raise RuntimeError(f"no LSL stream named {name!r} found within {timeout:g} s")
    inlet = StreamInlet(found[0], max_buffered=int(np.ceil(max_buffered)))  # liblsl takes whole seconds
    inlet.open_stream(timeout=timeout)
    return inlet


def marker_outlet(stream_name: str):
    """LSL outlet of stage markers: type ``Markers``, one string channel, irregular rate."""
    from mne_lsl.lsl import StreamInfo, StreamOutlet

    info = StreamInfo(f"{stream_name}-stages", "Markers", 1, 0.0, "string", f"lpsgm-online-{stream_name}")
    return StreamOutlet(info)


class ReplayPlayer(threading.Thread):
    """Play a recording through a local LSL outlet, optionally faster than real time.

    mne-lsl's ``PlayerLSL`` plays in real time only and stamps samples with the local clock; a
    replay for tests and demos needs ``speed`` > 1 and the file's own time base, so this small
    player pushes through mne-lsl's ``StreamOutlet`` with timestamps ``t0 + n / sfreq``.

    Parameters
    ----------
    data : ndarray (n_channels, n_samples)
        Volts.
    labels : list of str
    sfreq : float
    name : str
        LSL stream name.
    speed : float
        Playback speed (1 = real time).
    chunk_s : float
        Seconds of signal per push.
    pause_at_s, pause_s : float, optional
        Simulate a transmission drop: at ``pause_at_s`` of the file, ``pause_s`` seconds of signal
        are never sent (the timestamps jump), and playback waits ``pause_s / speed``.
    """

    def __init__(self, data: np.ndarray, labels: Sequence[str], sfreq: float, name: str, speed: float = 1.0,
                 chunk_s: float = 0.25, pause_at_s: float | None = None, pause_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        from mne_lsl.lsl import StreamInfo, StreamOutlet

        self.data = np.ascontiguousarray(np.asarray(data, dtype=np.float32).T)  # (n, C)
        self.sfreq, self.speed, self.name = float(sfreq), float(speed), name
        self.chunk = max(1, int(round(chunk_s * sfreq)))
        self.pause_at = None if pause_at_s is None else int(pause_at_s * sfreq)
        self.pause_n = int(round(pause_s * sfreq))
        info = StreamInfo(name, "EEG", len(labels), self.sfreq, "float32", f"lpsgm-replay-{name}")
        info.set_channel_names(list(labels))
        self.outlet = StreamOutlet(info, chunk_size=self.chunk)
        self.done = threading.Event()
        self.stop_flag = threading.Event()
        self.sent = 0

    def run(self) -> None:
        from mne_lsl.lsl import local_clock

        t0_lsl, t0_wall = local_clock(), time.perf_counter()
        n, i, skipped = self.data.shape[0], 0, 0
        try:
            while i < n and not self.stop_flag.is_set():
                if self.pause_at is not None and i >= self.pause_at and skipped == 0 and self.pause_n:
                    i += self.pause_n  # these samples are lost in transmission
                    skipped = self.pause_n
                    continue
                j = min(i + self.chunk, n)
                due = t0_wall + j / (self.sfreq * self.speed)
                delay = due - time.perf_counter()
                if delay > 0:
                    self.stop_flag.wait(delay)  # paced playback, not a test timing
                self.outlet.push_chunk(self.data[i:j], timestamp=t0_lsl + np.arange(i, j) / self.sfreq)
                self.sent += j - i
                i = j
        finally:
            self.done.set()


def read_for_replay(path: Path) -> tuple[np.ndarray, list[str], float]:
    """A recording as one rate for an LSL stream: every channel at the file's highest rate.

    An LSL stream has one nominal rate, so channels recorded slower are brought to the highest one
    by MNE's reader (as an amplifier streaming them together would); returns ``(volts, labels, Hz)``.
    """
    import mne

    raw = mne.io.read_raw(str(path), preload=True, verbose="error")
    return raw.get_data(), list(raw.ch_names), float(raw.info["sfreq"])


@dataclass
class RunSummary:
    """What :func:`run_stream` did."""

    n_epochs: int
    results: list[EpochResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    csv: Path | None = None
    montage: list[str] = field(default_factory=list)


def run_stream(inlet, model, channel_map, params: SignalParams, out: Path | None, name: str,
               norm: str = "running", calibration_s: float = 300.0, echo: Callable[[str], None] = print,
               stop: Callable[[], bool] | None = None, stall_s: float = 10.0, keep_results: bool = True,
               markers: bool = True, max_epochs: int | None = None) -> RunSummary:
    """Stage the stream behind ``inlet`` until ``stop()`` is true (or ``max_epochs`` are staged).

    ``stop`` is polled whenever the inlet has no new sample (end of a replay, Ctrl-C handling).
    """
    sinfo = inlet.get_sinfo()
    labels = list(sinfo.get_channel_names() or [f"ch{i}" for i in range(sinfo.n_channels)])
    sfreq = float(sinfo.sfreq)
    if sfreq <= 0:
        raise ValueError(f"stream {name!r} has an irregular rate; a PSG stream needs a nominal rate")
    sources = resolve_montage(labels, channel_map, source=f"stream {name!r}")
    kinds = {CHANNEL_KIND[s.canonical] for s in sources}
    if "eeg" not in kinds:
        raise MontageError(f"stream {name!r}: no EEG channel among the labels {labels}")
    montage = [f"{s.canonical:<4} <- {s.describe()}" for s in sources]
    for line in montage:
        echo(f"    {line}")
    log = CsvLog(out / f"{name}.online.csv") if out is not None else None
    outlet = marker_outlet(name) if markers else None

    def publish(res: EpochResult) -> None:
        if outlet is not None:
            outlet.push_sample([res.marker()])
        if log is not None:
            log.write(res)
        echo(console_line(res))

    stager = OnlineStager(model, sources, labels, sfreq, params, norm, calibration_s, publish, keep_results)
    idle_since = time.perf_counter()
    stalled, n_notes = False, 0
    try:
        while max_epochs is None or stager.n_epochs < max_epochs:
            data, ts = inlet.pull_chunk(timeout=0.2)
            if len(ts):
                if stalled:
                    echo(f"stream {name!r} resumed after {time.perf_counter() - idle_since:.1f} s")
                stalled = False
                stager.push(data, ts)
                idle_since = time.perf_counter()
                for note in stager.notes[n_notes:]:  # gaps and restarts, as they happen
                    echo(f"WARNING: {note}")
                n_notes = len(stager.notes)
                continue
            if stop is not None and stop():
                break
            if not stalled and time.perf_counter() - idle_since > stall_s:
                echo(f"WARNING: stream {name!r} stalled: no sample for {stall_s:g} s (waiting)")
                stalled = True
        stager.finish()
    finally:
        if log is not None:
            log.close()
    return RunSummary(stager.n_epochs, stager.results, stager.notes, log.path if log else None, montage)


# ---- command line -------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m staging.online", description=__doc__.split("\n\n")[0])
    add_version_argument(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stream", help="name of the LSL stream to stage")
    src.add_argument("--replay", type=Path, help="play this recording through a local LSL stream and stage it")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time; e.g. 60)")
    p.add_argument("--channels", default="auto", help="auto, a JSON file or inline JSON map (as inference.py)")
    p.add_argument("--weights", default=None, help="weights file or folder (default: as inference.py)")
    p.add_argument("--out", type=Path, default=Path("online"), help="folder of the CSV log")
    p.add_argument("--norm", choices=("running", "calibration"), default="running")
    p.add_argument("--calibration-s", type=float, default=300.0)
    p.add_argument("--stall-s", type=float, default=10.0, help="report a stall after this many silent seconds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: one epoch at a time is too small a job for more; "
                        "measured 8x fewer CPU-s than 2 threads on a loaded 2-core machine)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require(ONLINE)  # before any file or stream is opened
    from staging import Stager
    from staging.montage import ChannelMapError, channel_map_from_arg
    from staging.weights import WeightsError

    try:
        channel_map, origin = channel_map_from_arg(args.channels)
        stager = Stager(args.weights, device=args.device, threads=max(1, args.threads))
    except (ChannelMapError, WeightsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model, params = stager.model, stager.params
    print(f"weights: {stager.weights.describe()}")
    if stager.weights.demo:
        print("WARNING: DEMO weights trained on SIMULATED PSG only: stages are not meaningful for real data")
    print(f"signal chain: causal version of {params.chain}; normalisation: {args.norm}; montage: {origin}")
    player = None
    if args.replay is not None:
        restrict_lsl_to_this_machine()
        if not args.replay.is_file():
            print(f"error: {args.replay}: no such file", file=sys.stderr)
            return 2
        data, labels, sfreq = read_for_replay(args.replay)
        name = f"lpsgm-replay-{os.getpid()}"
        player = ReplayPlayer(data, labels, sfreq, name, speed=args.speed)
        print(f"replaying {args.replay.name} as LSL stream {name!r} at {args.speed:g}x "
              f"({data.shape[1] / sfreq / 3600:.2f} h, {len(labels)} channels at {sfreq:g} Hz)")
    else:
        name = args.stream
    try:
        inlet = open_inlet(name, max_buffered=360.0 if player is None else data.shape[1] / sfreq + 60.0)
        if player is not None:
            player.start()
        stop = (lambda: player.done.is_set()) if player is not None else None
        summary = run_stream(inlet, model, channel_map, params, args.out, name, args.norm, args.calibration_s,
                             stop=stop, stall_s=args.stall_s, keep_results=False)
    except KeyboardInterrupt:
        print("interrupted: the CSV log holds every epoch published so far", file=sys.stderr)
        return 130
    except (RuntimeError, MontageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if player is not None:
            player.stop_flag.set()
    print(f"done: {summary.n_epochs} epochs staged; log: {summary.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
