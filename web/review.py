"""Reviews on the server: one JSON file per night, safe under several tabs, threads and processes.

A night is identified by the SHA-256 of its EDF bytes, so a review is found again when the same
recording is uploaded again — after a reload, a restart of the service, or when it is opened with
the outputs ``inference.py`` wrote for it. The files live in ``<data dir>/reviews/`` (kept across
restarts when ``--data-dir`` is given; the job folders are not).

Every edit is one read-modify-write of the night's file under an exclusive lock (a thread lock
and ``fcntl.flock`` on a lock file beside it), written atomically (temp file + rename): two tabs
editing the same night never lose an edit; the later edit of an epoch wins and both are in the
audit trail (:class:`staging.review.Review`).
"""

from __future__ import annotations

import fcntl
import json
import re
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from preprocess.core.atomic import atomic_write_text
from preprocess.core.digest import files_sha256
from staging.review import Review, ReviewError, summary

NIGHT_KEY = re.compile(r"^[0-9a-f]{64}$")


def night_key(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes: the identity of a night."""
    return files_sha256([path])


class ReviewStore:
    """Reviews of every night under ``root`` (``root/<night key>.json``)."""

    def __init__(self, root: Path):
        self.root = Path(root)  # created at the first edit
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        if not NIGHT_KEY.match(key or ""):
            raise ValueError("bad night key")
        return self.root / f"{key}.json"

    @contextmanager
    def _locked(self, key: str):
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.root / f".{key}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def load(self, key: str) -> Review:
        """The night's review (empty when none was saved)."""
        path = self._path(key)
        if not path.exists():
            return Review()
        return Review.from_json(json.loads(path.read_text(encoding="utf-8")))

    def edit(self, key: str, epoch: int, stage: str, auto: np.ndarray, note: str = "", by: str = "",
             recording: str = "") -> Review:
        """Apply one edit and save it (atomically, under the night's lock); returns the review."""
        with self._locked(key):
            review = self.load(key)
            review.edit(epoch, stage, auto, note, by)
            doc = {"night": key, "recording": recording, **review.to_json()}
            atomic_write_text(self._path(key), json.dumps(doc, indent=1) + "\n")
        return review


__all__ = ["NIGHT_KEY", "Review", "ReviewError", "ReviewStore", "night_key", "summary"]


# --------------------------------------------------------------------------- a job's night and outputs

def job_night(out: Path, name: str):
    """``(StagedNight, info)`` of a job's automatic outputs (``NAME.hypnogram.csv`` + ``stats.json``)."""
    from staging.review import night_from_outputs

    return night_from_outputs(out / f"{name}.hypnogram.csv", out / f"{name}.stats.json")


def viewer_spectrogram(out: Path):
    """Whole-night spectrogram of the preferred EEG channel of the job's display signals (µV),
    or None when the montage has no EEG (see :mod:`staging.spectrogram`)."""
    from staging.spectrogram import night_spectrogram

    from .adapter import VIEWER_FILE, VIEWER_META

    meta = json.loads((out / VIEWER_META).read_text())
    arr = np.load(out / VIEWER_FILE, mmap_mode="r")
    return night_spectrogram(arr, meta["channels"], meta["rate_hz"], sources=meta["sources"],
                             unit="dB re 1 µV²/Hz (raw derivation)")


def write_reviewed_outputs(out: Path, dest: Path, name: str, review: Review, formats) -> list[Path]:
    """Every format for the reviewed night into ``dest`` (replaced), named ``NAME.reviewed.*``."""
    import datetime as dt
    import shutil

    from staging.review import write_reviewed

    night, info = job_night(out, name)
    try:
        night.spectrogram = viewer_spectrogram(out)
    except (OSError, ValueError, KeyError):
        night.spectrogram = None
    start = dt.datetime.fromisoformat(info["start_time"]) if info.get("start_time") else None
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    return write_reviewed(dest, name, night, info, review, formats, start)


__all__ += ["job_night", "viewer_spectrogram", "write_reviewed_outputs"]
