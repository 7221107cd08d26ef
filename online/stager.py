"""Real-time sleep staging from a live stream (Lab Streaming Layer), for closed-loop research.

Every completed 30-s epoch of a live PSG stream is staged seconds after its last sample arrives,
with the same model, montage rules and weights as ``inference.py``::

    python -m online --stream MyAmp --out online/          # a live LSL stream
    python -m online --replay night.edf --speed 60         # a file played through LSL

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

import csv
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from preprocess.core.channels import CHANNEL_INDEX, CHANNEL_KIND, Source
from preprocess.core.signal import EPOCH_SAMPLES, EPOCH_SECONDS, SFREQ, CausalChain, RunningNorm, SignalParams
from preprocess.core.stages import STAGE_NAMES

logger = logging.getLogger(__name__)

GAP_TOLERANCE_S = 0.25
"""A timestamp jump larger than this (beyond one sample period) is a gap: LSL timestamps jitter by
milliseconds, a lost packet of a 256-Hz amplifier is tens of ms; a quarter second is neither."""
UNKNOWN = "unknown"
CSV_FIELDS = ("kind", "epoch", "onset_s", "onset_lsl", "stage", *[f"p_{s}" for s in STAGE_NAMES], "flag",
              "latency_s")


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


__all__ = ["CSV_FIELDS", "CsvLog", "EpochResult", "GAP_TOLERANCE_S", "OnlineStager", "UNKNOWN", "console_line"]
