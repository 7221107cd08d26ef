"""Command line: ``python -m preprocess DATASET --src RAW --dst ROOT [--workers N] [--shard i/n]``.

Examples
--------
python -m preprocess --list
python -m preprocess sleepedf --src /data/sleep-edf --dst /data/h5 --workers 8
python -m preprocess hmc --src /data/hmc --dst /data/h5-published --chain published   # to fine-tune the official weights
python -m preprocess shhs --src /data/shhs --dst /data/h5 --shard 3/10     # machine 3 of 10
python -m preprocess --manifest /data/h5                                   # rebuild manifests after sharding
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from preprocess.core.hdf5 import iter_dataset_dirs, write_manifest
from preprocess.core.pipeline import run_dataset
from preprocess.core.signal import CHAINS, SignalParams
from preprocess.core.version import add_version_argument
from preprocess.datasets import get_dataset, registry


def _mismatch(value: str):
    if value in ("dataset", "none"):
        return None if value == "none" else value
    return int(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m preprocess", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("dataset", nargs="?", help="dataset name (see --list)")
    p.add_argument("--list", action="store_true", help="list datasets with layout and source, then exit")
    p.add_argument("--manifest", metavar="ROOT", help="rebuild manifest.csv of every dataset under ROOT")
    p.add_argument("--src", help="raw dataset folder")
    p.add_argument("--dst", help="output root; files go to DST/DATASET/<recording>.h5")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--shard", metavar="i/n", help="process only shard i of n (1-based)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="on-disk signal type")
    p.add_argument("--normalization", choices=["zscore", "robust"], default="zscore")
    p.add_argument("--chain", choices=CHAINS, default="antialiased",
                   help="signal chain (recorded in every file): antialiased (default: sosfiltfilt + polyphase "
                        "resampling) or published (the chain the official LPSGM weights were trained on: "
                        "filtfilt + linear interpolation); see docs/published-weights.md")
    p.add_argument("--overwrite", action="store_true", help="redo recordings that are already done")
    p.add_argument("--max-mismatch", type=_mismatch, default="dataset", metavar="N|none",
                   help="scored epochs the scoring may differ from the signal length (default: the dataset's)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    if args.list:
        for name, spec in sorted(registry().items()):
            print(f"{name:12s} {spec.description}\n{'':12s} layout: {spec.layout}\n{'':12s} source: {spec.url}")
        return 0
    if args.manifest:
        for d in iter_dataset_dirs(args.manifest):
            print(f"manifest: {write_manifest(d)}")
        return 0
    if not (args.dataset and args.src and args.dst):
        p.error("give DATASET --src RAW --dst ROOT (or --list / --manifest ROOT)")
    try:
        spec = get_dataset(args.dataset)
    except KeyError as exc:
        p.error(str(exc.args[0]))
    params = SignalParams(chain=args.chain, normalization=args.normalization)
    try:
        results = run_dataset(spec, Path(args.src), Path(args.dst), workers=args.workers, shard_spec=args.shard,
                              params=params, dtype=args.dtype, overwrite=args.overwrite,
                              progress=not args.no_progress, max_mismatch_epochs=args.max_mismatch)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
