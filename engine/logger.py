"""Run logging on rank 0: TensorBoard scalars, ``metrics.jsonl`` and provenance."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from pathlib import Path
from typing import Mapping

import torch

from preprocess.core.version import software_info, software_version

from .metrics import json_safe


def provenance() -> dict:
    """Where a result came from: software version, git commit (and whether the tree was dirty), versions,
    host, command."""
    info = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
            "python": platform.python_version(), "torch": torch.__version__,
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    return {**software_info(), "software_version": software_version(), **info}


class RunLogger:
    """TensorBoard + JSON-lines logger that is silent on ranks other than 0.

    Parameters
    ----------
    out_dir : path-like
        Run folder; TensorBoard events go to ``out_dir/tb`` and records to ``out_dir/metrics.jsonl``.
    enabled : bool
        False on ranks other than 0.
    resume_step : int, optional
        When resuming, records (and TensorBoard events) after this step, written by the
        interrupted run after its last checkpoint, are dropped so the logs read as one run.
    """

    def __init__(self, out_dir: str | os.PathLike, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        from torch.utils.tensorboard import SummaryWriter  # imported lazily: slow import

        self.writer = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=resume_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def record(self, record: Mapping) -> None:
        """Append one JSON line (NaN written as null)."""
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(json_safe(dict(record)), sort_keys=True) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
