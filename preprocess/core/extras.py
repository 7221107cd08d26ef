"""Packages of the optional features, checked before any work starts.

Every package is declared in ``requirements.txt`` (the Quick start installs them all), but a
feature that is used rarely (explanations, the web page, online staging, the ONNX Runtime backend,
fetching the official weights) may still meet an environment without its package. Such a feature
asks :func:`check` (library) or :func:`require` (entry point) before it reads a single file, so
the user gets one line naming the package and the command that installs it instead of a traceback
in the middle of a batch::

    >>> missing(["numpy", "no_such_package"])
    ['no_such_package']
    >>> check(ONLINE)  # mne-lsl is installed: nothing happens; otherwise MissingPackageError, e.g.
    ... # online staging: the Python package mne-lsl is not installed; install it with:
    ... # python3 -m pip install mne-lsl (or everything: python3 -m pip install -r requirements.txt)

Presence is asked of the import system (:func:`importlib.util.find_spec`) without importing the
package, so the check costs microseconds and ``--help`` stays instant.
"""

from __future__ import annotations

import importlib.util
import sys

DISTRIBUTIONS = {"sklearn": "scikit-learn", "mne_lsl": "mne-lsl", "mne_bids": "mne-bids", "PIL": "pillow"}
"""Import name → distribution name (``pip install NAME``) where the two differ; otherwise they are equal."""

EXPLAIN = "explanations (--explain)"
WEB = "the web service (python -m web)"
ONLINE = "online staging"
ONNXRUNTIME = "the ONNX Runtime backend (--backend onnxruntime)"
BIDS = "BIDS outputs (--formats bids)"
FETCH = "fetching the official weights"
ONNX_EXPORT = "the ONNX export (python -m models.onnx_export)"
YASA = "the yasa conversion (StagedNight.to_yasa)"

FEATURES = {
    EXPLAIN: ("captum",),
    WEB: ("fastapi", "uvicorn", "plotly"),
    ONLINE: ("mne_lsl",),
    ONNXRUNTIME: ("onnxruntime", "onnx"),  # onnx: torch.onnx.export writes the graphs with it
    BIDS: ("mne_bids",),
    FETCH: ("gdown",),
    ONNX_EXPORT: ("onnx",),
    YASA: ("yasa", "pandas"),
}
"""Optional feature (as the user names it; the constants above) → the modules it needs beyond the core ones."""


class MissingPackageError(ImportError):
    """A feature's package is not installed; the message is one line: the package and how to install it."""


def distribution(module: str) -> str:
    """The distribution that provides top-level ``module`` (what ``pip install`` takes)."""
    return DISTRIBUTIONS.get(module, module)


def missing(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (absent, or blocked in ``sys.modules``)."""
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken entry in sys.modules
            found = False
        if not found:
            gone.append(name)
    return gone


def check(feature: str) -> None:
    """Raise :class:`MissingPackageError` when a package of ``feature`` (a key of :data:`FEATURES`) is missing."""
    gone = [distribution(m) for m in missing(FEATURES[feature])]
    if gone:
        what = f"package {gone[0]} is" if len(gone) == 1 else f"packages {', '.join(gone)} are"
        raise MissingPackageError(
            f"{feature}: the Python {what} not installed; install it with: python3 -m pip install {' '.join(gone)} "
            "(or everything: python3 -m pip install -r requirements.txt)")


def staging_features(explain=None, backend: str = "torch", formats=()) -> list[str]:
    """The optional features a staging run with these options uses (``formats``: names or the ``--formats`` text)."""
    if isinstance(formats, str):
        formats = ["bids"] if formats.strip() == "all" else [f.strip() for f in formats.split(",")]
    return [f for f, used in ((EXPLAIN, explain), (ONNXRUNTIME, backend == "onnxruntime"),
                              (BIDS, "bids" in formats)) if used]


def require(*features: str) -> None:
    """Entry-point form of :func:`check`: print ``error: <one line>`` to stderr and exit 2 when missing."""
    for feature in features:
        try:
            check(feature)
        except MissingPackageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
