"""Real-time staging (online): causal chain, running normalisation, voting, gaps, LSL loopback."""

from __future__ import annotations

import csv
import json
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as sps
import torch

from online import OnlineStager, read_for_replay
from preprocess.core.channels import CHANNEL_INDEX, Source, resolve_montage
from preprocess.core.signal import ANTIALIAS_HZ, SFREQ, CausalChain, RunningNorm, SignalParams, butter_sos

STAGES = ("W", "N1", "N2", "N3", "REM")


# ---- chain ------------------------------------------------------------------------------------------

def reference_chain(x: np.ndarray, fs: float, kind: str) -> np.ndarray:
    """Independent reference: one causal sosfilt over the whole signal, then np.interp onto 100 Hz."""
    p = SignalParams()
    band = (p.emg_highpass, None) if kind == "emg" else p.eeg_band
    sos = [butter_sos(fs, *band, p.filter_order)]
    if fs > SFREQ:
        sos.append(butter_sos(fs, None, ANTIALIAS_HZ, 8))
    sos = np.concatenate([s for s in sos if s is not None])
    y = sps.sosfilt(sos, x, zi=sps.sosfilt_zi(sos) * x[0])[0]
    t_out = np.arange(int(np.floor((x.size - 1) * SFREQ / fs)) + 1) * fs / SFREQ
    return np.interp(t_out, np.arange(x.size), y)


@pytest.mark.parametrize("fs,kind", [(256.0, "eeg"), (200.0, "emg"), (100.0, "eog"), (512.0, "eeg")])
def test_causal_chain_equals_reference_for_any_chunking(fs, kind):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(int(fs * 95)) * 20e-6
    ref = reference_chain(x, fs, kind)
    chain = CausalChain(fs, kind)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 40, replace=False))
    out = np.concatenate([chain.push(part) for part in np.split(x, cuts)])
    assert out.size == ref.size
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_causal_chain_is_causal():
    """Changing the future never changes outputs already produced."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(256 * 60)
    a, b = CausalChain(256.0, "eeg"), CausalChain(256.0, "eeg")
    first = a.push(x[: 256 * 30])
    y = x.copy()
    y[256 * 30:] += 100.0
    np.testing.assert_array_equal(first, b.push(y[: 256 * 30]))


def test_running_norm_ends_at_the_whole_signal_zscore():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(30_000) * 3 + 5
    norm = RunningNorm("running")
    for part in np.split(x, 10):
        norm.update(part)
    np.testing.assert_allclose(norm.apply(x), (x - x.mean()) / x.std(), atol=1e-9)
    cal = RunningNorm("calibration", calibration_s=30.0)  # 3000 samples, then frozen
    cal.update(x[:3000])
    cal.update(x[3000:] * 100)
    np.testing.assert_allclose(cal.apply(x[:10]), (x[:10] - x[:3000].mean()) / x[:3000].std(), atol=1e-9)


# ---- stager (no transport) --------------------------------------------------------------------------

class Recording:
    """Wrap a model to keep every CNN feature the stager computes (for the known-answer voting test)."""

    def __init__(self, model):
        self.model, self.cfg, self.feats = model, model.cfg, []

    def encode_epochs(self, x):
        f = self.model.encode_epochs(x)
        self.feats.append(f.clone())
        return f

    def forward_features(self, feats, channels):
        return self.model.forward_features(feats, channels)


@pytest.fixture(scope="module")
def demo_model():
    from staging.weights import find_weights, load_model

    w = find_weights(None)
    return load_model(w, "cpu"), SignalParams.from_dict(w.preprocessing)


@pytest.fixture(scope="module")
def example():
    from staging import EXAMPLE

    data, labels, fs = read_for_replay(EXAMPLE)
    return data[:, : int(fs * 30 * 40)], labels, fs  # 40 epochs: two windows' worth, cheap


def feed(stager, data, fs, chunk_s=1.0, t0=1000.0, skip=None):
    ts = t0 + np.arange(data.shape[1]) / fs
    step = int(chunk_s * fs)
    for i in range(0, data.shape[1], step):
        if skip is not None and skip[0] <= i < skip[1]:
            continue
        stager.push(data[:, i:i + step].T, ts[i:i + step])
    stager.finish()


def test_refined_stages_are_stride_1_voting_over_the_features_computed_once(demo_model, example):
    from staging.montage import auto_channel_map
    from staging.predict import vote_windows

    model, params = demo_model
    data, labels, fs = example
    rec = Recording(model)
    sources = resolve_montage(labels, auto_channel_map())
    stager = OnlineStager(rec, sources, labels, fs, params)
    feed(stager, data, fs)
    n = stager.n_epochs
    assert n == 40 and len(rec.feats) == n  # every epoch encoded exactly once
    feats = torch.stack(rec.feats)
    ch = [CHANNEL_INDEX[s.canonical] for s in sources]
    offline = vote_windows(model, feats, ch, stride=1)
    refined = {r.epoch: r for r in stager.results if r.kind == "refined"}
    immediate = {r.epoch: r for r in stager.results if r.kind == "immediate"}
    assert sorted(refined) == sorted(immediate) == list(range(n))
    np.testing.assert_allclose(np.stack([refined[e].probs for e in range(n)]), offline, atol=1e-6)
    # the immediate stage of epoch e is the last position of the window ending at e
    e = 30
    with torch.inference_mode():
        logits = model.forward_features(feats[e - 19:e + 1][None], torch.tensor(ch)[None])
    np.testing.assert_allclose(immediate[e].probs, torch.softmax(logits[0, -1].double(), -1).numpy(), atol=1e-6)
    # results are published in order: each epoch's immediate stage before its refined one
    order = [(r.kind, r.epoch) for r in stager.results]
    assert all(order.index(("immediate", e)) < order.index(("refined", e)) for e in range(n))


def test_gap_marks_the_epochs_around_it_unknown_and_keeps_the_clock(demo_model, example):
    from staging.montage import auto_channel_map

    model, params = demo_model
    data, labels, fs = example
    sources = resolve_montage(labels, auto_channel_map())
    stager = OnlineStager(model, sources, labels, fs, params)
    lost = (int(fs * 30 * 10 + fs * 5), int(fs * 30 * 10 + fs * 50))  # 45 s lost inside epoch 10 → into 11
    feed(stager, data, fs, chunk_s=1.0, skip=lost)
    assert stager.n_epochs == 40  # the lost time is kept on the epoch grid, not stitched
    imm = {r.epoch: r for r in stager.results if r.kind == "immediate"}
    unknown = sorted(e for e, r in imm.items() if r.stage == "unknown")
    assert unknown == [10, 11, 12]  # touched by the gap (10, 11) + the filters' restart (12)
    assert all(imm[e].flag == "gap" for e in unknown)
    assert all(imm[e].flag == "ok" and imm[e].probs is not None for e in imm if e not in unknown)
    assert imm[20].onset_lsl == pytest.approx(1000.0 + 600.0)
    assert any("gap of 45.00 s" in note for note in stager.notes)


class Cheap:
    """A stand-in model with the LPSGM interface and no cost (memory-growth test)."""

    class cfg:  # noqa: N801 - mirrors model.cfg
        seq_len = 20

    def encode_epochs(self, x):
        return torch.zeros(x.shape[0], 512)

    def forward_features(self, feats, channels):
        return torch.zeros(feats.shape[0], feats.shape[1], 5)


def test_ten_hour_stream_does_not_grow_memory():
    fs, hours = 100.0, 10
    labels = ["C3-M2", "E1-M2"]
    sources = [Source("C3", "C3-M2"), Source("E1", "E1-M2")]
    stager = OnlineStager(Cheap(), sources, labels, fs, keep_results=False)
    rng = np.random.default_rng(3)
    block = rng.standard_normal((int(fs * 600), 2)) * 20e-6  # 10 min, reused
    tracemalloc.start()
    t = 0.0
    sizes = []
    for k in range(hours * 6):
        stager.push(block, t + np.arange(block.shape[0]) / fs)
        t += block.shape[0] / fs
        if k in (5, hours * 6 - 1):
            sizes.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    assert stager.n_epochs == hours * 120
    assert stager.memory_footprint()["slots"] == 20
    assert sizes[1] - sizes[0] < 256 * 1024, sizes  # hour 1 → hour 10: no growth beyond noise


# ---- LSL loopback -----------------------------------------------------------------------------------

def test_replay_over_lsl_publishes_markers_and_a_csv(demo_model, example, tmp_path):
    pytest.importorskip("mne_lsl")
    from mne_lsl.lsl import StreamInlet, resolve_streams

    from online import ReplayPlayer, open_inlet, restrict_lsl_to_this_machine, run_stream
    from staging.montage import auto_channel_map

    restrict_lsl_to_this_machine()
    model, params = demo_model
    data, labels, fs = example
    data = data[:, : int(fs * 30 * 24)]  # 24 epochs
    name = f"lpsgm-test-{np.random.default_rng().integers(1e9)}"
    player = ReplayPlayer(data, labels, fs, name, speed=200.0, pause_at_s=300.0, pause_s=40.0)
    inlet = open_inlet(name, max_buffered=24 * 30 + 60)
    got: list[dict] = []
    listener_ready = threading.Event()

    def listen():
        found = resolve_streams(timeout=10, name=f"{name}-stages")
        markers = StreamInlet(found[0])
        markers.open_stream(timeout=10)
        listener_ready.set()
        while len(got) < 48 and not player.stop_flag.is_set():
            sample, ts = markers.pull_sample(timeout=0.5)
            if sample is not None and len(sample):
                got.append(json.loads(sample[0]))

    lines: list[str] = []
    started = threading.Event()

    def start_when_outlet_exists(msg):
        lines.append(msg)

    listener = threading.Thread(target=listen, daemon=True)

    def stop():
        if not started.is_set():  # the marker outlet exists once run_stream pulls: start listener+player
            started.set()
            listener.start()
            listener_ready.wait(10)
            player.start()
            return False
        return player.done.is_set()

    summary = run_stream(inlet, model, auto_channel_map(), params, tmp_path, name, echo=start_when_outlet_exists,
                         stop=stop, sent=lambda: player.sent)
    player.stop_flag.set()
    listener.join(10)
    assert summary.n_epochs == 24  # 40 s lost at 300 s are kept on the grid
    with open(summary.csv) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["kind"] for r in rows].count("immediate") == 24
    assert [r["kind"] for r in rows].count("refined") == 24
    gap = sorted({int(r["epoch"]) for r in rows if r["flag"] == "gap"})
    assert gap == [10, 11, 12]  # 300-340 s touches epochs 10 and 11, + the restart transient
    assert any("gap of" in line for line in lines)
    assert sum(line.startswith("epoch ") for line in lines) == 48
    kinds = [(m["kind"], m["epoch"]) for m in got]
    assert ("immediate", 0) in kinds and ("refined", 23) in kinds
    assert all(set(m) >= {"stage", "probs", "onset_lsl", "flag"} for m in got)
    latency = [float(r["latency_s"]) for r in rows if r["kind"] == "immediate"]
    assert max(latency) < 30.0  # published well within one epoch of its last sample, even on a loaded CI


# ---- agreement with offline staging -----------------------------------------------------------------

@pytest.mark.slow
def test_online_agrees_with_offline_inference(demo_model, tmp_path):
    """A 2-h simulated night: online (causal chain, running z-score) vs offline ``inference.py``."""
    from simulate import generate
    from staging import stage
    from staging.montage import auto_channel_map

    model, params = demo_model
    rec = generate(tmp_path / "sim", 1, seed=11, dataset="generic", hours=2.0)[0]
    edf = [f for f in map(Path, rec["files"]) if f.suffix == ".edf" and "Hypnogram" not in f.name][0]
    results, code = stage([edf], out=tmp_path / "off", stride=1, formats=["csv"], echo=lambda s: None,
                          progress_bar=False)
    assert code == 0
    with open(tmp_path / "off" / f"{edf.stem}.hypnogram.csv") as fh:
        offline = [r["stage"] for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    data, labels, fs = read_for_replay(edf)
    stager = OnlineStager(model, resolve_montage(labels, auto_channel_map()), labels, fs, params)
    feed(stager, data, fs, chunk_s=2.0)
    imm = [r.stage for r in sorted((r for r in stager.results if r.kind == "immediate"), key=lambda r: r.epoch)]
    ref = [r.stage for r in sorted((r for r in stager.results if r.kind == "refined"), key=lambda r: r.epoch)]
    n = len(offline)
    assert len(imm) == len(ref) == n
    agree_imm = np.mean([a == b for a, b in zip(imm, offline)])
    agree_ref = np.mean([a == b for a, b in zip(ref, offline)])
    print(f"online vs offline (simulated 2-h night): immediate {agree_imm:.3f}, refined {agree_ref:.3f}")
    assert agree_ref >= 0.75 and agree_imm >= 0.70


def test_cli_replay_of_the_bundled_example(tmp_path, capsys):
    """The README command (faster): a stage per epoch on the console, the CSV log, exit 0."""
    pytest.importorskip("mne_lsl")
    from online import main
    from staging import EXAMPLE

    prev = torch.get_num_threads()
    try:
        code = main(["--replay", str(EXAMPLE), "--speed", "2000", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(prev)
    assert code == 0
    out = capsys.readouterr().out
    n = sum(line.startswith("epoch ") and "immediate" in line for line in out.splitlines())
    assert n == 90  # the 45-min example
    logs = list(tmp_path.glob("*.online.csv"))
    assert len(logs) == 1
    with open(logs[0]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * n and {r["kind"] for r in rows} == {"immediate", "refined"}


class _LateInlet:
    """An LSL inlet stand-in whose last chunk arrives only after the source has said it is done (the
    delivery lag of a loaded machine, made deterministic): chunks, then one empty pull, then the tail."""

    def __init__(self, data, labels, fs, chunk):
        self.fs, self.labels, self.t = fs, list(labels), 0
        ts = 1000.0 + np.arange(data.shape[1]) / fs
        pieces = [(data[:, i:i + chunk].T, ts[i:i + chunk]) for i in range(0, data.shape[1], chunk)]
        empty = (np.zeros((0, len(labels))), np.zeros(0))
        self.queue = pieces[:-1] + [empty] + pieces[-1:]
        self.pulled = 0

    def get_sinfo(self):
        inlet = self

        class Info:
            n_channels, sfreq = len(inlet.labels), inlet.fs

            @staticmethod
            def get_channel_names():
                return inlet.labels

        return Info()

    def pull_chunk(self, timeout=0.0):
        if not self.queue:
            return np.zeros((0, len(self.labels))), np.zeros(0)
        data, ts = self.queue.pop(0)
        self.pulled += len(ts)
        return data, ts


def test_end_of_replay_waits_for_samples_in_flight(demo_model, example):
    """The cause of the CLI replay's 89 != 90 under load: the stop poll saw the player done while the
    last chunk was still on its way. With ``sent`` the loop waits for every sample sent; without it,
    the same sequence loses the last epoch."""
    from online import run_stream
    from staging.montage import auto_channel_map

    model, params = demo_model
    data, labels, fs = example
    data = data[:, : int(fs * 30 * 3)]  # 3 epochs; the last 30 s come after the "done" poll
    n_sent = data.shape[1]
    for sent, epochs in ((lambda: n_sent, 3), (None, 2)):
        inlet = _LateInlet(data, labels, fs, chunk=int(fs * 30))
        summary = run_stream(inlet, model, auto_channel_map(), params, None, "late", echo=lambda s: None,
                             stop=lambda: True, markers=False, sent=sent)
        assert summary.n_epochs == epochs
