"""Finding and loading the model weights used for inference.

Search order:

1. ``--weights PATH``: a file (official ``.pth``/``.pt``, or ours ``NAME.safetensors`` /
   ``NAME.json``) or a folder searched as in 2–3;
2. the official LPSGM files in ``weights/``: ``ched32_seqed64_ch9_seql20_block6.pth`` (the
   released inference model), then ``..._block4.pth``, then ``..._block1.pth``;
3. our shipped ``weights/*.safetensors`` with their ``.json`` (weights trained on real data before
   demo weights, then by name).

Demo weights (trained on simulated PSG) are usable but flagged: their JSON says so
(``"trained_on": "simulated"`` or ``"demo": true``) and a warning is printed.

Command line: ``python -m staging.weights fetch official`` downloads, verifies and installs the
official weights (:mod:`staging.fetch`); ``python -m staging.weights show`` prints the weights
``inference.py`` would use.
"""

from __future__ import annotations

import argparse
import sys

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
from preprocess.core.extras import FETCH, require
from preprocess.core.version import add_version_argument

__all__ = ["OFFICIAL_NAMES", "REPO_ROOT", "WEIGHTS_DIR", "Weights", "WeightsError", "find_weights", "is_demo",
           "load_model"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m staging.weights",
                                description="Fetch the official LPSGM weights, or show the weights inference uses.")
    add_version_argument(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    f = sub.add_parser("fetch", help="download, verify (keys, shapes, sha256) and install the official weights",
                       description="Download the published Google Drive file with gdown, unpack it if it is an "
                                   "archive, check every checkpoint against the published key/shape list and "
                                   "install it in weights/ (sha256 recorded in NAME.source.json).")
    f.add_argument("source", choices=["official"], help="what to fetch: official = the published LPSGM weights")
    f.add_argument("--dest", default=str(WEIGHTS_DIR), metavar="DIR",
                   help="folder to install into (default: weights/, where inference.py looks)")
    f.add_argument("--url", help="download from this address instead of Google Drive (a mirror, a local copy "
                                 "served over http)")
    f.add_argument("--force", action="store_true", help="replace an installed checkpoint whose content differs")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.add_parser("show", help="print the weights inference.py would use")
    s.add_argument("--weights", metavar="PATH", help="as inference.py --weights (default: the search order)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit code: 0 done, 1 the download or a checkpoint was refused, 2 bad arguments or a missing package."""
    args = build_parser().parse_args(argv)
    if args.command == "show":
        try:
            print(find_weights(args.weights).describe())
        except WeightsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    require(FETCH)  # before anything is downloaded
    from .fetch import FetchError, fetch

    try:
        fetch(args.source, args.dest, url=args.url, force=args.force, quiet=args.quiet)
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
