"""The labelled cohort: subjects, their recordings and the windows read from the HDF5 files.

A *window* is ``seq_len`` (20) consecutive 30-s epochs of one recording; its label is the class
of the recording's subject. Evaluation windows tile each whole recording with a stride
(:func:`data.windows.cover_starts`; the last window is aligned to the end). Training windows
(``full`` / ``scratch``) tile it from a random offset each epoch
(:func:`data.windows.train_starts`). Diagnostic datasets such as MNC are unscored, so there is
no lights-off trimming: every epoch of the recording is used. Recordings shorter than one
window are left out.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from torch.utils.data import Dataset

from data.manifest import load_recordings
from data.windows import SEQ_LEN, WindowDataset, cover_starts, max_offset, train_starts
from preprocess.core.subject_tables import join

from .labels import Task, assign_labels, subject_key


class LabelledWindows(Dataset):
    """A :class:`data.windows.WindowDataset` whose items carry the subject class as ``labels``.

    Keys are those of ``WindowDataset`` (``(recording, start)`` or ``(recording, start,
    aug_seed)``); :func:`data.windows.collate_windows` then stacks the labels into a ``(B,)``
    tensor.
    """

    def __init__(self, windows: WindowDataset, rec_class: np.ndarray):
        self.windows = windows
        self.rec_class = np.asarray(rec_class, dtype=np.int64)
        #: ``joint`` strategy: ``labels`` = [subject class, stage of each epoch (−1 unscored)]
        self.with_stages = False

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key) -> dict:
        item = self.windows[key]
        cls = self.rec_class[int(key[0])]
        item["labels"] = np.concatenate([[cls], item["labels"]]) if self.with_stages else cls
        return item


@dataclass
class Cohort:
    """Recordings of the labelled subjects and their evaluation windows.

    Attributes
    ----------
    data : LabelledWindows
        Window reader over the kept recordings (index = recording).
    subjects : list of str
        Subject keys ``DATASET/SUBJECT``, sorted; index = subject.
    y : ndarray of int
        Class of each subject.
    raw_labels : list of str
        Label text of each subject (before normalisation).
    rec_subject : ndarray of int
        Subject index of each recording.
    win_rec, win_start : ndarray of int
        Evaluation windows: recording index and first epoch.
    simulated : bool
        True when any recording is labelled ``simulated`` (numbers must be reported as such).
    """

    data: LabelledWindows
    subjects: list[str]
    y: np.ndarray
    raw_labels: list[str]
    rec_subject: np.ndarray
    win_rec: np.ndarray
    win_start: np.ndarray
    simulated: bool
    excluded: list = field(default_factory=list)

    @property
    def rows(self) -> list[dict]:
        return self.data.windows.rows

    @property
    def seq_len(self) -> int:
        return self.data.windows.seq_len

    @property
    def win_subject(self) -> np.ndarray:
        return self.rec_subject[self.win_rec]

    def recording_names(self) -> list[str]:
        return [f"{r.get('dataset', '')}/{r['recording']}" for r in self.rows]

    def windows_of(self, subjects: np.ndarray) -> np.ndarray:
        """Indices of the evaluation windows of the given subject indices."""
        return np.flatnonzero(np.isin(self.win_subject, subjects))

    def eval_keys(self, windows: np.ndarray) -> list[tuple[int, int]]:
        return [(int(self.win_rec[w]), int(self.win_start[w])) for w in windows]

    def train_keys(self, subjects: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, int]]:
        """Shuffled non-overlapping training windows of ``subjects``, random offset per recording.

        Each key carries an augmentation seed (channel-subset augmentation of
        :class:`data.windows.WindowDataset`, when its ``channel_dropout`` > 0).
        """
        L, keys = self.seq_len, []
        for i in np.flatnonzero(np.isin(self.rec_subject, subjects)):
            n = self.data.windows.n_epochs(int(i))
            offset = int(rng.integers(max_offset(0, n, L)))
            keys += [(int(i), int(s)) for s in train_starts(0, n, n, L, offset)]
        order = rng.permutation(len(keys))
        seeds = rng.integers(0, 2**31 - 1, size=len(keys))
        return [(*keys[j], int(a)) for j, a in zip(order, seeds)]


def build_cohort(roots: str | os.PathLike | Sequence[str | os.PathLike], task: Task,
                 datasets: Sequence[str] | None = None, label_key: str | None = None,
                 labels_csv: dict[str, str] | None = None, channels: Sequence[str] | None = None,
                 stride: int = SEQ_LEN, channel_dropout: float = 0.0, seq_len: int = SEQ_LEN,
                 tables: dict | None = None) -> Cohort:
    """List the labelled recordings under harmonized roots and their evaluation windows.

    Parameters
    ----------
    roots : path or sequence of paths
        Harmonized roots (or dataset folders), read through their ``manifest.csv``.
    task : Task
        Decides which subjects are kept and their class.
    datasets : sequence of str, optional
        Dataset folders to use (default: all under the roots).
    label_key, labels_csv
        Where the subject label comes from (see :func:`nar_cls.labels.assign_labels`).
    tables : dict, optional
        Dataset → :class:`preprocess.core.subject_tables.SubjectTable`: labels joined by subject id
        (a recording whose subject is absent is reported in ``Cohort.excluded``, never labelled).
    channels : sequence of str, optional
        Canonical channels to use (default: every channel of each recording).
    stride : int
        Stride of the evaluation windows (``seq_len`` = non-overlapping).
    channel_dropout : float
        Channel-subset augmentation probability for training windows (``full`` / ``scratch``).
    seq_len : int
        Epochs per window (20 for the published models).

    Returns
    -------
    Cohort
    """
    rows = load_recordings(roots, datasets, scored_only=False)
    excluded: list[dict] = []
    table_values = None
    if tables:
        table_values, missing = join(rows, tables)
        for m in missing:
            excluded.append({"subject": f"{m['dataset']}/{m['subject']}", "reason": m["reason"]})
    classes, raw = assign_labels(rows, task, label_key, labels_csv, table_values, excluded)
    short = [r["recording"] for r in rows if int(r["n_epochs"]) < seq_len]
    if short:
        warnings.warn(f"{len(short)} recordings shorter than {seq_len} epochs left out: {short[:5]}", stacklevel=2)
    rows = [r for r in rows if subject_key(r) in classes and int(r["n_epochs"]) >= seq_len]
    windows = WindowDataset(rows, seq_len=seq_len, wake_margin=None, channel_dropout=channel_dropout,
                            channels=channels)
    if not len(windows):
        raise ValueError("no labelled recording with the requested channels was found")
    subjects = sorted({subject_key(r) for r in windows.rows})
    index = {s: i for i, s in enumerate(subjects)}
    rec_subject = np.array([index[subject_key(r)] for r in windows.rows], dtype=np.int64)
    y = np.array([classes[s] for s in subjects], dtype=np.int64)
    win_rec, win_start = [], []
    for i in range(len(windows)):
        n = windows.n_epochs(i)
        starts = cover_starts(0, n, n, seq_len, stride)
        win_rec += [i] * len(starts)
        win_start += starts.tolist()
    simulated = any(bool((r.get("labels") or {}).get("simulated")) for r in windows.rows)
    return Cohort(data=LabelledWindows(windows, y[rec_subject]), subjects=subjects, y=y,
                  raw_labels=[raw[s] for s in subjects], rec_subject=rec_subject,
                  win_rec=np.array(win_rec, dtype=np.int64), win_start=np.array(win_start, dtype=np.int64),
                  simulated=simulated, excluded=_dedup(excluded))


def _dedup(rows: list[dict]) -> list[dict]:
    """One exclusion row per subject (its first reason), in first-seen order."""
    seen, out = set(), []
    for r in rows:
        if r["subject"] not in seen:
            seen.add(r["subject"])
            out.append(r)
    return out
