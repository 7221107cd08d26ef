"""Reading the harmonized HDF5 files for training: recordings, windows, samplers, collate, splits.

Typical use::

    rows = load_recordings(["/data/h5"])                       # manifest rows of every dataset
    split = split_by_subject(rows, val_fraction=0.1, seed=0)   # per dataset, by subject
    train = WindowDataset(split["train"], wake_margin=30, channel_dropout=0.5)
    sampler = WindowSampler(train, mixing="temperature", seed=0, rank=rank, world_size=world)
    loader = DataLoader(train, batch_size=32, sampler=sampler, collate_fn=collate_windows)
"""

from .manifest import class_weights, load_recordings, stage_counts
from .sampler import MIXING_MODES, WindowSampler, mixing_weights, quotas
from .splits import kfold_by_subject, split_by_subject
from .windows import (
    SEQ_LEN,
    WindowDataset,
    choose_channels,
    collate_windows,
    cover_starts,
    sleep_range,
    train_starts,
)

__all__ = [
    "MIXING_MODES",
    "SEQ_LEN",
    "WindowDataset",
    "WindowSampler",
    "choose_channels",
    "class_weights",
    "collate_windows",
    "cover_starts",
    "kfold_by_subject",
    "load_recordings",
    "mixing_weights",
    "quotas",
    "sleep_range",
    "split_by_subject",
    "stage_counts",
    "train_starts",
]
