"""Defaults shared by the CLI and the pipeline (kept import-light so ``--help`` is instant)."""

DEFAULT_STRIDE = 10
"""Default window stride in epochs; the measurement behind it is in the README (inference)."""

DEFAULT_BATCH_SIZE = 32
"""Windows per forward pass of the sequence encoder."""

FORMATS = ("csv", "stats", "png", "sta", "edf", "bids", "npz", "hypnodensity")
"""Output formats: hypnogram CSV, statistics JSON, PNG plot, .STA, EDF+ annotations, BIDS derivative
events, NumPy hypnodensity, hypnodensity EDF (see :mod:`staging.outputs` and :mod:`staging.exports`)."""

DEFAULT_FORMATS = ("csv", "stats", "png")
