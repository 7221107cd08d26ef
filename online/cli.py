"""The command line of ``python -m online``: stage a live LSL stream, or replay a recording through one."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from preprocess.core.channels import MontageError
from preprocess.core.extras import ONLINE, require
from preprocess.core.version import add_version_argument

from .lsl import ReplayPlayer, open_inlet, read_for_replay, restrict_lsl_to_this_machine, run_stream


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m online", description="Real-time sleep staging of a live LSL stream (or a replayed recording).")
    add_version_argument(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--stream", help="name of the LSL stream to stage")
    src.add_argument("--replay", type=Path, help="play this recording through a local LSL stream and stage it")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time; e.g. 60)")
    p.add_argument("--channels", default="auto", help="auto, a JSON file or inline JSON map (as inference.py)")
    p.add_argument("--weights", default=None, help="weights file or folder (default: as inference.py)")
    p.add_argument("--out", type=Path, default=Path("online"), help="folder of the CSV log")
    p.add_argument("--norm", choices=("running", "calibration"), default="running")
    p.add_argument("--calibration-s", type=float, default=300.0)
    p.add_argument("--stall-s", type=float, default=10.0, help="report a stall after this many silent seconds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: one epoch at a time is too small a job for more; "
                        "measured 8x fewer CPU-s than 2 threads on a loaded 2-core machine)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    require(ONLINE)  # before any file or stream is opened
    from staging import Stager
    from staging.montage import ChannelMapError, channel_map_from_arg
    from staging.weights import WeightsError

    try:
        channel_map, origin = channel_map_from_arg(args.channels)
        stager = Stager(args.weights, device=args.device, threads=max(1, args.threads))
    except (ChannelMapError, WeightsError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model, params = stager.model, stager.params
    print(f"weights: {stager.weights.describe()}")
    if stager.weights.demo:
        print("WARNING: DEMO weights trained on SIMULATED PSG only: stages are not meaningful for real data")
    print(f"signal chain: causal version of {params.chain}; normalisation: {args.norm}; montage: {origin}")
    player = None
    if args.replay is not None:
        restrict_lsl_to_this_machine()
        if not args.replay.is_file():
            print(f"error: {args.replay}: no such file", file=sys.stderr)
            return 2
        data, labels, sfreq = read_for_replay(args.replay)
        name = f"lpsgm-replay-{os.getpid()}"
        player = ReplayPlayer(data, labels, sfreq, name, speed=args.speed)
        print(f"replaying {args.replay.name} as LSL stream {name!r} at {args.speed:g}x "
              f"({data.shape[1] / sfreq / 3600:.2f} h, {len(labels)} channels at {sfreq:g} Hz)")
    else:
        name = args.stream
    try:
        inlet = open_inlet(name, max_buffered=360.0 if player is None else data.shape[1] / sfreq + 60.0)
        if player is not None:
            player.start()
        stop = (lambda: player.done.is_set()) if player is not None else None
        summary = run_stream(inlet, model, channel_map, params, args.out, name, args.norm, args.calibration_s,
                             stop=stop, stall_s=args.stall_s, keep_results=False,
                             sent=(lambda: player.sent) if player is not None else None)
    except KeyboardInterrupt:
        print("interrupted: the CSV log holds every epoch published so far", file=sys.stderr)
        return 130
    except (RuntimeError, MontageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if player is not None:
            player.stop_flag.set()
    print(f"done: {summary.n_epochs} epochs staged; log: {summary.csv}")
    return 0


__all__ = ["main", "parse_args"]
