"""Lab Streaming Layer transport of online staging: find and read a stream, publish stage markers,
replay a recording as a stream, and the loop that feeds a stream into an :class:`OnlineStager`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from preprocess.core.channels import CHANNEL_KIND, MontageError, resolve_montage
from preprocess.core.signal import SignalParams

from .stager import CsvLog, EpochResult, OnlineStager, console_line


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
               markers: bool = True, max_epochs: int | None = None,
               sent: Callable[[], int] | None = None) -> RunSummary:
    """Stage the stream behind ``inlet`` until ``stop()`` is true (or ``max_epochs`` are staged).

    ``stop`` is polled whenever the inlet has no new sample (end of a replay, Ctrl-C handling).
    ``sent`` (a replay: the samples its player has pushed) makes the end wait for the data still
    in flight: a source that has finished sending is not the end of the stream until every sample
    it sent has been received (else the last epoch is lost whenever delivery lags the stop poll,
    as on a loaded machine). Samples that never arrive (liblsl's buffer overflowed) end the wait
    after ``stall_s`` seconds of silence, with a warning.
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
    stalled, n_notes, received = False, 0, 0
    try:
        while max_epochs is None or stager.n_epochs < max_epochs:
            data, ts = inlet.pull_chunk(timeout=0.2)
            received += len(ts)
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
                missing = 0 if sent is None else sent() - received
                if missing <= 0:
                    break
                if time.perf_counter() - idle_since > stall_s:  # lost on the way: do not wait forever
                    echo(f"WARNING: {missing} sample(s) sent by the source never arrived")
                    break
                continue
            if not stalled and time.perf_counter() - idle_since > stall_s:
                echo(f"WARNING: stream {name!r} stalled: no sample for {stall_s:g} s (waiting)")
                stalled = True
        stager.finish()
    finally:
        if log is not None:
            log.close()
    return RunSummary(stager.n_epochs, stager.results, stager.notes, log.path if log else None, montage)


__all__ = ["ReplayPlayer", "RunSummary", "marker_outlet", "open_inlet", "read_for_replay",
           "restrict_lsl_to_this_machine", "run_stream"]
