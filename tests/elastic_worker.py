"""``train.py`` for the elastic test: rank ``KILL_RANK`` SIGKILLs itself right after optimizer step
``KILL_AT`` of the first attempt (torchrun's ``TORCHELASTIC_RESTART_COUNT`` 0); 0 = never."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine.loop as loop  # noqa: E402
import train  # noqa: E402

KILL_AT = int(os.environ.get("KILL_AT", "0"))
KILL_RANK = os.environ.get("KILL_RANK", "1")

if KILL_AT and os.environ.get("RANK") == KILL_RANK and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
    real_step, done = loop.train_step, [0]

    def train_step_then_die(*args, **kwargs):
        out = real_step(*args, **kwargs)
        done[0] += 1
        if done[0] == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    loop.train_step = train_step_then_die

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train.main(sys.argv[1:])
