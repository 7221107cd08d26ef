"""The command line of ``python -m explain``: stage recordings as ``inference.py`` does, then explain them."""

from __future__ import annotations

import re
from pathlib import Path

from preprocess.core.extras import EXPLAIN, require
from preprocess.core.version import add_version_argument

from .attribution import STAGES
from .render import write_explanation

EPILOG = """\
examples:
  python -m explain                                   # the bundled simulated night, all epochs
  python -m explain night.edf --epochs 100-140 --out expl/
  python -m explain night.edf --epochs low-confidence:0.7 --position first
  python -m explain night.edf --epochs REM --stage N1   # why is REM not N1?

outputs per recording NAME (in --out): NAME.explain.npz (see explain.render.save_npz) and
NAME.explain/epoch_EEEEE.png, one page per explained epoch (at most --max-pages).
"""


def build_parser():
    import argparse

    p = argparse.ArgumentParser(prog="python -m explain", epilog=EPILOG,
                                description="Grad-CAM, guided Grad-CAM and channel attribution for staged epochs.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("inputs", nargs="*", metavar="EDF", help="EDF/BDF files or folders (default: the bundled example)")
    p.add_argument("--epochs", "--explain", dest="epochs", default="all", metavar="SPEC",
                   help="epochs to explain: all, 100-140 (0-based, inclusive), 5,9,12, low-confidence[:P] "
                        "(top probability < P, default 0.6), or a stage W|N1|N2|N3|REM (epochs staged so); "
                        "combine with commas (default: all)")
    p.add_argument("--stage", choices=list(STAGES) + ["R"], help="explain this stage instead of the staged one")
    p.add_argument("--position", default="centre", metavar="centre|first|K",
                   help="position of the explained epoch in its 20-epoch window: centre (10, default), first "
                        "(0, the published Grad-CAM code) or an integer")
    p.add_argument("--out", default="out", metavar="DIR")
    p.add_argument("--weights", metavar="PATH", help="as for inference.py")
    p.add_argument("--channels", default="auto", metavar="JSON|auto", help="montage, as for inference.py")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="explained epochs per backward pass (memory)")
    p.add_argument("--max-pages", type=int, default=50, metavar="N", help="PNG pages per recording (0: none; default 50)")
    p.add_argument("--map", default="gradcam", choices=["gradcam", "guided_gradcam"],
                   help="saliency drawn behind the traces (default gradcam, as in the published figures)")
    return p


def _position_arg(text: str):
    return int(text) if re.fullmatch(r"\d+", text) else text


def explain_file(path: Path, name: str, stager, channels, out: Path, spec: str, stage: str | None,
                 position, batch_size: int, max_pages: int, map_name: str = "gradcam") -> dict:
    """Stage one recording exactly as ``inference.py`` does (the same :class:`staging.Stager`), then
    explain it from the preprocessed signals."""
    info = stager.info
    done = {}

    def hook(montaged, probs):
        done["ex"] = write_explanation(
            out, name, stager.model, montaged.signals, list(montaged.channels), probs, spec, stage, position,
            batch_size, stager.run.device, max_pages, bool(info.get("demo_weights")),
            {"weights": info.get("weights"), "demo_weights": info.get("demo_weights"), "source_file": str(path),
             "montage": montaged.montage}, map_name)

    stager.stage(path, channels, name=name, on_signals=hook)
    return done["ex"]


def main(argv: list[str] | None = None) -> int:
    import sys

    args = build_parser().parse_args(argv)
    require(EXPLAIN)  # before any file is read
    from staging import EXAMPLE, Stager
    from staging.batch import find_inputs, unique_names
    from staging.montage import ChannelMapError
    from staging.weights import WeightsError

    try:
        position = _position_arg(args.position)
        stager = Stager(args.weights, device=args.device)
        _, origin = stager.channel_map(args.channels)
    except (WeightsError, ChannelMapError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"weights: {stager.weights.describe()}; montage: {origin}; device: {stager.run.device}")
    if stager.weights.demo:
        print("WARNING: DEMO weights trained on SIMULATED PSG: explanations show what this demo model learned "
              "from the simulator, nothing about real recordings.")
    inputs = args.inputs or [str(EXAMPLE)]
    files = find_inputs(inputs)
    code = 0
    for path, name in zip(files, unique_names(files)):
        try:
            res = explain_file(path, name, stager, args.channels, Path(args.out), args.epochs, args.stage,
                               position, args.batch_size, args.max_pages, args.map)
        except ImportError:  # a missing package, not this file's fault: stop with it
            raise
        except Exception as exc:  # one bad file must not stop the batch
            print(f"FAILED {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            code = 1
            continue
        print(f"ok {path} -> {res['npz']}: {res['n_epochs']} epochs explained, {len(res['pages'])} pages "
              f"({res['seconds_per_epoch']:.2f} s wall, {res['cpu_seconds_per_epoch']:.2f} s CPU per epoch)")
    return code


__all__ = ["build_parser", "explain_file", "main"]
