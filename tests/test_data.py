"""data/: windows, lights-off trimming, channel subsets, collate, splits, mixing, sampler, weights."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from data import (
    WindowDataset,
    WindowSampler,
    choose_channels,
    class_weights,
    collate_windows,
    cover_starts,
    kfold_by_subject,
    load_recordings,
    mixing_weights,
    quotas,
    sleep_range,
    split_by_subject,
    train_starts,
)
from data.windows import EEG_INDICES
from preprocess.core.channels import CHANNEL_INDEX
from preprocess.core.hdf5 import write_manifest, write_recording


def write_indexed(root: Path, dataset: str, rec: str, subject: str, stages, channels) -> Path:
    """A recording whose sample 0 holds the epoch index and sample 1 the canonical channel index."""
    stages = np.asarray(stages, dtype=np.int8)
    n = len(stages)
    x = np.zeros((n, len(channels), 3000), np.float32)
    x[:, :, 0] = np.arange(n)[:, None]
    x[:, :, 1] = [CHANNEL_INDEX[c] for c in channels]
    return write_recording(root / dataset / f"{rec}.h5", x, channels, stages, dataset=dataset,
                           subject=subject, recording=rec)


def make_root(root: Path, spec: dict[str, list[tuple[str, str, list[int], list[str]]]]) -> Path:
    for dataset, recs in spec.items():
        for rec, subject, stages, channels in recs:
            write_indexed(root, dataset, rec, subject, stages, channels)
        write_manifest(root / dataset)
    return root


@pytest.fixture()
def root(tmp_path):
    night = [0] * 30 + [1, 2, 2, 3, 3, 2, 4, 4] * 5 + [0] * 30  # 100 epochs, sleep in [30, 70)
    return make_root(tmp_path, {
        "alpha": [("a1", "s1", night, ["C3", "E1", "Chin"]), ("a2", "s1", night, ["C3", "E1", "Chin"]),
                  ("a3", "s2", night, ["F4", "C4"]), ("a4", "s3", night, ["C3"]),
                  ("a5", "s4", night, ["O1", "E2"])],
        "beta": [("b1", "t1", [2] * 25, ["C4", "E1"]), ("b2", "t2", [-1] * 20 + [2] * 20, ["C4"])],
    })


# ---- windows --------------------------------------------------------------------------------


def test_sleep_range_trims_wake_and_keeps_margin():
    stages = np.array([0] * 100 + [2] * 10 + [0] * 100)
    assert sleep_range(stages, 30) == (40, 170)          # 30 min = 60 epochs each side
    assert sleep_range(stages, 0) == (100, 110)
    assert sleep_range(stages, None) == (0, 210)
    assert sleep_range(np.zeros(50, int), 10) == (0, 50)   # no sleep: whole recording
    assert sleep_range(np.array([-1, 2, -1]), 100) == (0, 3)


def test_window_starts_known_answers():
    assert train_starts(0, 100, 100, 20, 0).tolist() == [0, 20, 40, 60, 80]
    assert train_starts(0, 100, 100, 20, 7).tolist() == [7, 27, 47, 67]
    assert train_starts(10, 25, 100, 20, 0).tolist() == [10]     # short range: one window
    assert train_starts(0, 12, 12, 20, 0).tolist() == [0]        # short recording: padded later
    assert cover_starts(0, 45, 45, 20, 20).tolist() == [0, 20, 25]
    assert cover_starts(5, 50, 60, 20, 10).tolist() == [5, 15, 25, 30]
    for lo, hi, stride in [(0, 97, 20), (3, 64, 7), (0, 20, 5), (11, 200, 1)]:
        starts = cover_starts(lo, hi, 250, 20, stride)
        covered = np.zeros(250, bool)
        for s in starts:
            covered[s:s + 20] = True
        assert covered[lo:hi].all()
    with pytest.raises(ValueError):
        cover_starts(0, 100, 100, 20, 21)  # a stride > window would leave gaps


def test_window_reads_the_right_epochs_channels_and_labels(root):
    rows = load_recordings(root, ["alpha"])
    ds = WindowDataset(rows, seq_len=10, wake_margin=5)
    assert ds.ranges[0] == (20, 80)                       # sleep [30, 70) +- 10 epochs
    item = ds[(0, 15)]
    assert item["x"].shape == (10, 3, 3000) and item["x"].dtype == np.float32
    assert item["x"][:, 0, 0].tolist() == list(range(15, 25))
    assert item["x"][0, :, 1].tolist() == [CHANNEL_INDEX[c] for c in ["C3", "E1", "Chin"]]
    assert item["channels"].tolist() == [2, 6, 8]
    assert item["labels"].tolist() == [-1] * 5 + [0] * 5  # epochs before lo=20 are not used


def test_short_recording_is_padded_with_ignored_epochs(root):
    rows = [r for r in load_recordings(root, ["beta"]) if r["recording"] == "b1"]
    ds = WindowDataset(rows, seq_len=40)
    assert ds.train_windows(None) == [(0, 0)]
    item = ds[(0, 0)]
    assert item["x"].shape == (40, 2, 3000)
    assert item["labels"].tolist() == [2] * 25 + [-1] * 15
    assert np.all(item["x"][25:] == 0)


def test_windows_with_only_unknown_labels_are_skipped(root):
    rows = [r for r in load_recordings(root, ["beta"]) if r["recording"] == "b2"]
    ds = WindowDataset(rows, seq_len=10)
    assert ds.train_windows(None) == [(0, 20), (0, 30)]   # [0, 20) is all -1
    starts = {s for _, s in ds.train_windows(np.random.default_rng(3))}
    assert all(s + 10 > 20 for s in starts)


def test_channel_subsets_are_random_non_empty_and_keep_eeg():
    rng = np.random.default_rng(0)
    idx = np.array([2, 3, 6, 7, 8])  # C3 C4 E1 E2 Chin
    seen = set()
    for _ in range(300):
        keep = choose_channels(idx, rng)
        assert keep.any() and any(int(c) in EEG_INDICES for c in idx[keep])
        seen.add(tuple(keep))
    assert len(seen) > 10
    no_eeg = np.array([6, 8])
    for _ in range(50):
        assert choose_channels(no_eeg, rng).any()


def test_channel_dropout_is_decided_by_the_key(root):
    rows = load_recordings(root, ["alpha"])
    ds = WindowDataset(rows, seq_len=10, channel_dropout=1.0)
    sizes = set()
    for seed in range(40):
        a, b = ds[(0, 30, seed)], ds[(0, 30, seed)]
        assert a["channels"].tolist() == b["channels"].tolist()      # same key, same subset
        assert 2 in a["channels"].tolist()                            # C3 is the only EEG: always kept
        assert a["x"][0, :, 1].tolist() == a["channels"].tolist()     # signals follow the subset
        sizes.add(len(a["channels"]))
    assert sizes == {1, 2, 3}
    assert ds[(0, 30)]["channels"].tolist() == [2, 6, 8]             # no seed (evaluation): all channels


def test_gain_range_scales_each_channel_of_a_training_window_by_one_gain(root):
    """--gain-range: a training key's window is the plain window with each channel times its own gain,
    log-uniform in [1/R, R], the same for every epoch of the window and for the same key; the channel
    subsets are those of a run without gains, and evaluation keys (no seed) are untouched."""
    rows = load_recordings(root, ["alpha"])
    plain = WindowDataset(rows, seq_len=10, channel_dropout=0.5)
    jittered = WindowDataset(rows, seq_len=10, channel_dropout=0.5, gain_range=2.0)
    gains = []
    for seed in range(60):
        a, b = plain[(0, 30, seed)], jittered[(0, 30, seed)]
        assert a["channels"].tolist() == b["channels"].tolist()
        assert np.array_equal(b["x"], jittered[(0, 30, seed)]["x"])      # same key, same gains
        ratio = b["x"][1:, :, 0] / a["x"][1:, :, 0]                      # sample 0 = epoch index > 0
        assert np.allclose(ratio, ratio[0], rtol=1e-6)                  # one gain per channel
        gains.extend(ratio[0].tolist())
    gains = np.log(gains) / np.log(2.0)
    assert gains.min() >= -1 and gains.max() <= 1
    assert gains.min() < -0.8 and gains.max() > 0.8                      # the whole range is used
    assert abs(gains.mean()) < 0.2                                       # log-uniform: centred on gain 1
    assert np.array_equal(jittered[(0, 30)]["x"], plain[(0, 30)]["x"])   # evaluation: no gain
    with pytest.raises(ValueError, match="gain_range"):
        WindowDataset(rows, seq_len=10, gain_range=0.5)


def test_collate_pads_channels_and_labels():
    a = {"x": np.ones((4, 3, 3000), np.float32), "channels": np.array([0, 2, 8]),
         "labels": np.array([0, 1, 2, 3]), "rec": 0, "start": 5}
    b = {"x": np.full((4, 1, 3000), 2, np.float32), "channels": np.array([6]),
         "labels": np.array([-1, 4, 4, -1]), "rec": 3, "start": 0}
    batch = collate_windows([a, b])
    assert batch["x"].shape == (2, 4, 3, 3000)
    assert batch["channels"].tolist() == [[0, 2, 8], [6, -1, -1]]
    assert batch["labels"].tolist() == [[0, 1, 2, 3], [-1, 4, 4, -1]]
    assert float(batch["x"][1, :, 1:].abs().sum()) == 0.0
    assert float(batch["x"][1, :, 0].mean()) == 2.0
    assert batch["rec"].tolist() == [0, 3] and batch["start"].tolist() == [5, 0]


def test_dataloader_workers_read_the_same_batches(root):
    from engine.loop import make_loader

    ds = WindowDataset(load_recordings(root), seq_len=10, channel_dropout=0.5)
    sampler = WindowSampler(ds, seed=1)
    sampler.set_epoch(2)
    keys = list(sampler)
    b0 = list(make_loader(ds, 4, keys, workers=0))
    b2 = list(make_loader(ds, 4, keys, workers=2))
    assert len(b0) == len(b2)
    for u, v in zip(b0, b2):
        assert all(bool((u[k] == v[k]).all()) for k in u)


@pytest.mark.parametrize("dtype", ["float32", "stored"])
def test_batch_read_straight_into_the_batch_equals_item_by_item(root, tmp_path, dtype):
    """WindowDataset.__getitems__ (what the DataLoader calls) reads the windows straight into one batch, from the
    file's bytes (RawRows, os.preadv) where the layout allows: the collated batch is the one of the item-by-item
    path, windows across chunk boundaries, short recordings and channel subsets included; a compressed
    file goes through h5py with the same values."""
    import h5py

    from data.windows import RawRows

    ds = WindowDataset(load_recordings(root), seq_len=30, channel_dropout=0.5, dtype=dtype, gain_range=1.5)
    sampler = WindowSampler(ds, seed=3)
    keys = [k for e in range(3) for k in (sampler.set_epoch(e) or list(sampler))]
    assert any(ds.n_epochs(k[0]) < 30 for k in keys)  # a recording shorter than a window
    assert all(ds._dataset(i)[3] is not None for i in range(len(ds)))  # the plain layout: read from the bytes
    for size in (1, 4, 7):
        for b in range(0, len(keys), size):
            one, many = collate_windows([ds[k] for k in keys[b:b + size]]), collate_windows(ds.__getitems__(keys[b:b + size]))
            assert one.keys() == many.keys()
            for name in one:
                assert one[name].dtype == many[name].dtype and torch.equal(one[name], many[name]), (name, b, size)
    # every (start, length) across the 20-epoch chunks of a 100-epoch file: the bytes read equal HDF5's
    rec = ds.recordings[0]
    with h5py.File(rec.path, "r") as f:
        whole = f["signals"][()]
        raw = RawRows.open(rec.path, f["signals"])
        for start in range(0, 100, 7):
            for n in (1, 13, 20, 30):
                out = np.empty((min(n, 100 - start),) + whole.shape[1:], whole.dtype)
                assert raw.read_rows(start, out) and np.array_equal(out, whole[start:start + len(out)])
        assert not raw.read_rows(95, np.empty((10,) + whole.shape[1:], whole.dtype))  # past the end: h5py's turn
    packed = tmp_path / "packed.h5"
    with h5py.File(packed, "w") as f:
        f.create_dataset("signals", data=whole, chunks=(20,) + whole.shape[1:], compression="gzip")
    with h5py.File(packed, "r") as f:
        assert RawRows.open(packed, f["signals"]) is None


# ---- manifests, splits, weights -------------------------------------------------------------


def test_load_recordings_filters_and_merges_roots(root, tmp_path):
    other = make_root(tmp_path / "second", {"gamma": [("g1", "u1", [0, 2, 2], ["C3"])]})
    rows = load_recordings([root, other])
    assert [r["dataset"] for r in rows].count("alpha") == 5
    assert {r["dataset"] for r in rows} == {"alpha", "beta", "gamma"}
    assert {r["dataset"] for r in load_recordings([root, other], ["GAMMA"])} == {"gamma"}
    (other / "gamma" / "manifest.csv").unlink()  # no manifest: rows are read from the files
    assert load_recordings(other)[0]["n_N2"] == 2
    with pytest.raises(FileNotFoundError):
        load_recordings(root, ["nope"])


def _subjects(rows):
    return {(r["dataset"], r["subject"]) for r in rows}


def test_splits_are_subject_disjoint_per_dataset_and_deterministic():
    rows = [{"dataset": d, "subject": f"{d}{s}", "recording": f"{d}{s}_{v}"}
            for d, n in [("A", 30), ("B", 5), ("C", 1)] for s in range(n) for v in range(2)]
    split = split_by_subject(rows, val_fraction=0.2, test_fraction=0.1, seed=7)
    parts = [_subjects(split[k]) for k in ("train", "val", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(len(split[k]) for k in split) == len(rows)
    counts = Counter(d for d, _ in parts[1])
    assert counts == {"A": 6, "B": 1}                         # per dataset; C (1 subject) stays in train
    assert Counter(d for d, _ in parts[2]) == {"A": 3, "B": 1}
    assert split == split_by_subject(rows, val_fraction=0.2, test_fraction=0.1, seed=7)
    assert _subjects(split["val"]) != _subjects(split_by_subject(rows, 0.2, 0.1, seed=8)["val"])
    # adding a dataset does not reshuffle the others
    more = rows + [{"dataset": "D", "subject": f"D{s}", "recording": f"D{s}"} for s in range(9)]
    assert {s for s in _subjects(split_by_subject(more, 0.2, 0.1, seed=7)["val"]) if s[0] == "A"} == \
        {s for s in parts[1] if s[0] == "A"}


def test_kfold_holds_out_every_subject_once():
    rows = [{"dataset": "X", "subject": f"s{s}", "recording": f"s{s}_{v}"} for s in range(11) for v in range(2)]
    held = []
    for k in range(4):
        train, test = kfold_by_subject(rows, 4, k, seed=3)
        assert not (_subjects(train) & _subjects(test))
        assert len(train) + len(test) == len(rows)
        held.append(_subjects(test))
    assert sorted(len(h) for h in held) == [2, 3, 3, 3]
    assert set().union(*held) == _subjects(rows)
    assert kfold_by_subject(rows, 4, 1, seed=3) == kfold_by_subject(rows, 4, 1, seed=3)
    with pytest.raises(ValueError):
        kfold_by_subject(rows[:4], 3, 0)


def test_class_weights_known_answer():
    rows = [{"n_W": 60, "n_N1": 25, "n_N2": 100, "n_N3": 50, "n_REM": 25},
            {"n_W": 40, "n_N1": 0, "n_N2": 0, "n_N3": 0, "n_REM": 0}]
    w = class_weights(rows)                    # counts 100, 25, 100, 50, 25 -> 1 : 4 : 1 : 2 : 4
    np.testing.assert_allclose(w, np.array([1, 4, 1, 2, 4]) / 2.4, rtol=1e-6)
    np.testing.assert_allclose(class_weights(rows, "none"), np.ones(5))
    np.testing.assert_allclose(class_weights([{**rows[0], "n_N3": 0}], "inverse")[3], 0.0)


# ---- mixing and the sampler -----------------------------------------------------------------


def test_mixing_weights_known_answers():
    sizes = {"a": 300, "b": 100}
    assert mixing_weights(sizes, "proportional") == {"a": 0.75, "b": 0.25}
    assert mixing_weights(sizes, "equal") == {"a": 0.5, "b": 0.5}
    t2 = mixing_weights(sizes, "temperature", 2.0)
    assert t2["a"] == pytest.approx(3 ** 0.5 / (1 + 3 ** 0.5)) and sum(t2.values()) == pytest.approx(1)
    assert mixing_weights(sizes, "temperature", 1.0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert mixing_weights({"a": 900, "b": 100, "c": 0}, "temperature", 1e9) == pytest.approx(
        {"a": 0.5, "b": 0.5, "c": 0.0}, abs=1e-6)
    assert quotas({"a": 0.5, "b": 0.25, "c": 0.25}, 7) == {"a": 3, "b": 2, "c": 2}


def test_sampler_mixing_sharding_and_resume(root):
    ds = WindowDataset(load_recordings(root), seq_len=10)
    equal = WindowSampler(ds, mixing="equal", seed=0)
    assert equal.sizes == {"alpha": 50, "beta": 4}
    plan = equal.plan(0)
    assert Counter(ds.datasets[k[0]] for k in plan) == {"alpha": 27, "beta": 27}
    prop = WindowSampler(ds, mixing="proportional", seed=0)
    assert Counter(ds.datasets[k[0]] for k in prop.plan(0)) == {"alpha": 50, "beta": 4}
    assert prop.plan(1) == prop.plan(1) and prop.plan(1) != prop.plan(2)

    shards = []
    for rank in range(4):
        s = WindowSampler(ds, seed=0, rank=rank, world_size=4)
        s.set_epoch(5)
        shards.append(list(s))
        assert len(s) == len(shards[-1]) == 14          # 54 windows padded to 56 = 4 x 14
    full = prop.plan(5)
    assert sorted(k for sh in shards for k in sh) == sorted(full + full[:2])
    s = WindowSampler(ds, seed=0, rank=1, world_size=4)
    s.set_epoch(5, start=9)
    assert list(s) == shards[1][9:] and len(s) == 5
