"""Shared fixtures: real-data location, a tiny EDF writer (edfio) for hand-made inputs, and random
LPSGM-Small weights built once per test session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"


def real_file(*parts: str) -> Path:
    """Path of a file in ../shared/data/real, or skip the test when it is absent."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not available: {path}")
    return path


def write_edf(path: Path, channels: dict[str, tuple[np.ndarray, float]], unit: str = "uV",
              start: dt.datetime = dt.datetime(2020, 1, 1, 22, 0, 0), record_duration: float = 1.0,
              annotations=()) -> Path:
    """Write an EDF with edfio: ``{label: (signal in `unit`, sampling rate Hz)}``."""
    import edfio

    signals = []
    for label, (data, sfreq) in channels.items():
        data = np.asarray(data, dtype=np.float64)
        lo, hi = float(np.min(data)), float(np.max(data))
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        signals.append(edfio.EdfSignal(data, sfreq, label=label, physical_dimension=unit,
                                       physical_range=(lo, hi)))
    edf = edfio.Edf(signals, starttime=start.time(), data_record_duration=record_duration,
                    annotations=[edfio.EdfAnnotation(o, d, t) for o, d, t in annotations] or None,
                    recording=edfio.Recording(startdate=start.date()))
    edf.write(path)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised 1-block LPSGM (seed 0, no dropout) saved in our format and marked as
    demo weights; built once for every test module that stages files."""
    import torch

    from models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("lpsgm-small", dropout=0.0, attn_dropout=0.0, cnn_dropout=0.0).eval()
    w, _ = save_checkpoint(model, tmp_path_factory.mktemp("weights") / "tiny",
                           {"trained_on": "simulated", "note": "random init for tests"})
    return w
