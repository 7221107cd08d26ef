"""Defaults shared by the CLI and the pipeline (kept import-light so ``--help`` is instant)."""

DEFAULT_STRIDE = 1
"""Default window stride in epochs: 1 = the published voting (every window of 20 epochs, softmax
probabilities summed per epoch), so official weights give the published hypnogram. Larger strides
(``--stride 2`` … ``20``) are faster and agree less; the measured table of agreement vs CPU seconds
that chose this default is in ``docs/published-weights.md`` (``python bench/fidelity.py --table``)."""

DEFAULT_BATCH_SIZE = 32
"""Windows per forward pass of the sequence encoder."""

FORMATS = ("csv", "stats", "png", "sta", "edf", "bids", "npz", "hypnodensity", "report")
"""Output formats: hypnogram CSV, statistics JSON, PNG plot, .STA, EDF+ annotations, BIDS derivative
events, NumPy hypnodensity, hypnodensity EDF, one-page PDF sleep report (see :mod:`staging.outputs`,
:mod:`staging.exports` and :mod:`staging.report`)."""

DEFAULT_FORMATS = ("csv", "stats", "png")

PRECISIONS = ("fp32", "bf16", "tf32")
"""Model precisions: float32 (on a GPU too: TensorFloat-32 off while the model runs), bfloat16 autocast
(``--precision bf16``, CPU or CUDA), or TensorFloat-32 matmuls and convolutions (``--precision tf32``, CUDA
only); votes are summed in float64 in every case."""

BACKENDS = ("torch", "onnxruntime")
"""Model runtimes: torch, or the model exported to ONNX and run by ONNX Runtime on the CPU."""

DEFAULT_LOW_CONFIDENCE = 0.5
"""Confidence (max probability) below which the PNG marks an epoch as low-confidence."""
