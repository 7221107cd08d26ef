"""Finding and loading the model weights used for inference.

Search order:

1. ``--weights PATH``: a file (official ``.pth``/``.pt``, or ours ``NAME.safetensors`` /
   ``NAME.json``) or a folder searched as in 2–3;
2. the official LPSGM files in ``weights/``: ``ched32_seqed64_ch9_seql20_block6.pth`` (the
   released inference model), then ``..._block4.pth``;
3. our shipped ``weights/*.safetensors`` with their ``.json`` (weights trained on real data before
   demo weights, then by name).

Demo weights (trained on simulated PSG) are usable but flagged: their JSON says so
(``"trained_on": "simulated"`` or ``"demo": true``) and a warning is printed.
"""

from __future__ import annotations

# The search and the loading live in models.weights (the ONNX export needs them too, and models sits
# below staging); they are importable from here as before.
from models.weights import (  # noqa: F401
    OFFICIAL_NAMES,
    REPO_ROOT,
    WEIGHTS_DIR,
    Weights,
    WeightsError,
    find_weights,
    is_demo,
    load_model,
)

__all__ = ["OFFICIAL_NAMES", "REPO_ROOT", "WEIGHTS_DIR", "Weights", "WeightsError", "find_weights", "is_demo",
           "load_model"]
