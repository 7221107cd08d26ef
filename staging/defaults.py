"""Defaults shared by the CLI and the pipeline (kept import-light so ``--help`` is instant)."""

DEFAULT_STRIDE = 1
"""Default window stride in epochs; the measurement behind it is in the README (inference)."""

DEFAULT_BATCH_SIZE = 32
"""Windows per forward pass of the sequence encoder."""

FORMATS = ("csv", "stats", "png", "sta", "edf")
"""Output formats: hypnogram CSV, statistics JSON, PNG plot, .STA, EDF+ annotations."""

DEFAULT_FORMATS = ("csv", "stats", "png")
