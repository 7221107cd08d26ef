"""Sleep staging of whole-night PSG recordings (EDF/BDF) with LPSGM.

Thin command line over :func:`staging.stage`; run ``python inference.py --help``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from preprocess.core.extras import require, staging_features
from preprocess.core.version import add_version_argument

EPILOG = """\
examples:
  python inference.py                              # stage the bundled simulated night into out/
  python inference.py night.edf --out results/     # one file
  python inference.py /data/psg /data/more.bdf     # folders (recursive) and files
  python inference.py /data/psg --formats all --stride 1 --device cuda
  python inference.py night.edf --channels '{"C3": [["C3", "M2"]], "E1": "LOC", "Chin": [["Chin1", "Chin2"]]}'
  python inference.py night.edf --reference night_sleepscoring.edf   # + agreement with a scorer
  python inference.py night.edf --channels my_montage.json --weights weights/ched32_seqed64_ch9_seql20_block6.pth

outputs per recording NAME (in --out): NAME.hypnogram.csv, NAME.stats.json, NAME.png
[, NAME.STA, NAME.annotations.edf], and summary.csv for the batch; with --reference also
evaluation.json, evaluation.csv and confusion.png (agreement with the manual scoring).
exit code: 0 when every file was staged (or skipped because its outputs exist), 1 when any
file failed, 2 for invalid arguments (no weights, bad --channels, no GPU for --device cuda,
--out being a file or not writable), 130 when interrupted (Ctrl-C; rerun to resume).
A full or read-only output disk fails the file being written (its outputs removed) and stops
the batch: every later file would fail the same way; rerun to resume once there is space.
"""

DEFAULT_THREADS = 0
"""torch CPU threads (0 = torch's choice, one per core): on the 8-h night all cores cost 10-50 % more
CPU-seconds than one thread but 15-50 % less wall time (docs/benchmarks.md, bench/inference_speed.py)."""


def build_parser() -> argparse.ArgumentParser:
    from staging.cli import add_model_options
    from staging.defaults import FORMATS

    p = argparse.ArgumentParser(
        prog="python inference.py", description=__doc__.splitlines()[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(p)
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="recording (EDF/BDF, or FIF, BrainVision .vhdr, EEGLAB .set read with MNE) or folder "
                        "(searched recursively for those suffixes, any case); several "
                        "allowed. Without INPUT the bundled simulated example night is staged.")
    p.add_argument("--out", default="out", metavar="DIR",
                   help="output folder, created if needed (default: out)")
    p.add_argument("--channels", default="auto", metavar="JSON|auto",
                   help="montage: 'auto' detects it from the shared alias table (default, chin included); "
                        "'published' = the published inference.py map (F3..E2, no chin; "
                        "staging/published_channels.json); otherwise a "
                        "JSON file or inline JSON mapping canonical channels (F3 F4 C3 C4 O1 O2 E1 E2 Chin) to "
                        "ordered options, each a label or a [a, b] pair meaning a - b, "
                        "e.g. '{\"C4\": [\"C4-M1\", [\"C4\", \"M1\"]]}'")
    p.add_argument("--dataset", metavar="NAME",
                   help="use the channel map of a dataset module (e.g. shhs, mesa) for every file; by default "
                        "a file whose labels match a dataset's layout is recognised automatically")
    p.add_argument("--allow-no-eeg", action="store_true",
                   help="stage recordings without any EEG channel from their EOG/EMG, with a warning in every "
                        "output (default: such a recording fails)")
    p.add_argument("--formats", default="csv,stats,png", metavar="LIST",
                   help=f"comma-separated outputs among {','.join(FORMATS)}, or 'all' (default: csv,stats,png)")
    add_model_options(p.add_argument_group("model (the same options as python -m web)"), threads=DEFAULT_THREADS)
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: a recording whose outputs exist is skipped)")
    p.add_argument("--keep-going", action=argparse.BooleanOptionalAction, default=True,
                   help="after a file fails, report it and continue (default); --no-keep-going stops at "
                        "the first failure")
    p.add_argument("--fail-fast", dest="keep_going", action="store_false",
                   help="same as --no-keep-going")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("time in bed and review (docs/clinical.md)")
    g.add_argument("--lights-off", metavar="TIME",
                   help="lights-off as a clock time (23:10[:30]) or seconds from the recording start; statistics "
                        "are computed on time in bed. Default: --lights CSV, then lights annotations in the file "
                        "or in a scoring file beside it, else the recording start")
    g.add_argument("--lights-on", metavar="TIME", help="lights-on, same syntax (default: the recording end)")
    g.add_argument("--lights", metavar="CSV", dest="lights_csv",
                   help="CSV with one row per recording: name,lights_off,lights_on")
    g.add_argument("--review-threshold", type=float, metavar="P",
                   help="list the epochs to review: flagged ones and those whose max probability is below P "
                        "(printed, and stored in NAME.stats.json)")
    g.add_argument("--reference", metavar="SCORING",
                   help="manual scoring to compare with after staging: a hypnogram file in any format "
                        "python -m staging.evaluate reads (one recording), or a folder of them paired by "
                        "recording name; writes evaluation.json, evaluation.csv and confusion.png into --out")
    p.add_argument("--explain", metavar="EPOCHS",
                   help="also explain these epochs (Grad-CAM + channel attribution, docs/explain.md): all, "
                        "100-140, low-confidence[:P] or a stage W|N1|N2|N3|REM; writes NAME.explain.npz and "
                        "NAME.explain/ pages (python -m explain has more options)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require(*staging_features(args.explain, args.backend, args.formats))  # before any file is read
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    from staging import EXAMPLE, stage
    from staging.cli import stager_kwargs
    from staging.montage import ChannelMapError
    from staging.outputs import parse_formats
    from staging.weights import WeightsError

    inputs = args.inputs
    if not inputs:
        if not EXAMPLE.exists():
            print(f"error: no INPUT given and the bundled example {EXAMPLE} is missing", file=sys.stderr)
            return 2
        print(f"no INPUT given: staging the bundled SIMULATED example {EXAMPLE.name}")
        inputs = [str(EXAMPLE)]
    try:
        formats = parse_formats(args.formats)
        on_signals = None
        if args.explain:
            if args.backend != "torch":
                raise ValueError("--explain needs the torch backend (not --backend onnxruntime)")
            from explain import explain_hook  # above staging: the script joins them

            on_signals = explain_hook(args.explain, args.out)
        results, code = stage(inputs, out=args.out, channels=args.channels, formats=formats,
                              overwrite=args.overwrite,
                              keep_going=args.keep_going, progress_bar=False if args.no_progress else None,
                              dataset=args.dataset, allow_no_eeg=args.allow_no_eeg,
                              lights_off=args.lights_off, lights_on=args.lights_on, lights_csv=args.lights_csv,
                              review_threshold=args.review_threshold, on_signals=on_signals,
                              **stager_kwargs(args))
    except (WeightsError, ChannelMapError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted (Ctrl-C): the recordings finished so far are in {args.out}/ and its summary.csv; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except ImportError as exc:  # a package found missing while a file was staged: never that file's failure
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    from pathlib import Path

    summary = f"{args.out}/summary.csv" if (Path(args.out) / "summary.csv").is_file() else "not written, see above"
    print(f"done: {counts['ok']} staged, {counts['skipped']} skipped, {counts['failed']} failed; "
          f"outputs in {args.out}/ (summary: {summary})")
    if args.reference:
        code = max(code, compare_with_reference(results, args.out, args.reference))
    return code


def compare_with_reference(results, out: str, reference: str) -> int:
    """Agreement of the staged recordings with a manual scoring (:mod:`staging.evaluate`).

    Returns 0 when every staged recording was evaluated, 1 otherwise (reasons printed)."""
    from pathlib import Path

    from staging.evaluate import (
        EvaluateError,
        evaluate_pairs,
        match_reference,
        read_start_time,
        recording_key,
        reference_files,
    )

    ref = Path(reference)
    done = [r for r in results if r.status in ("ok", "skipped")]
    preds = {}
    for r in done:  # our richest hypnogram output of each recording
        found = [Path(out) / f"{r.name}{s}" for s in (".hypnogram.csv", ".hypnodensity.npz", ".annotations.edf")]
        found = [f for f in found if f.is_file()]
        if found:
            preds[r.name] = (r, found[0])
    lost = [f"{r.name}: no hypnogram output to compare (add csv to --formats)" for r in done if r.name not in preds]
    pairs, starts = [], {}
    try:
        if ref.is_dir():
            by_key, used = reference_files(ref), set()
            for name, (_r, f) in preds.items():
                match = match_reference(recording_key(f), by_key, used)
                if match is None:
                    lost.append(f"{name}: no reference scoring for it in {ref}")
                    continue
                used.add(recording_key(match))
                pairs.append((name, f, match))
        elif ref.is_file():
            if len(preds) != 1:
                raise EvaluateError(f"--reference {ref.name} is one file but {len(preds)} recordings were staged; "
                                    "give a folder of scorings paired by recording name")
            ((name, (r, f)),) = preds.items()
            pairs.append((name, f, ref))
        else:
            raise EvaluateError(f"--reference {reference}: no such file or folder")
        for name, f, _ in pairs:  # clock alignment: the recording's own start when the output has none
            r = preds[name][0]
            if read_start_time(f) is None and Path(r.path).suffix.lower() in (".edf", ".bdf"):
                starts[str(f)] = read_start_time(r.path)
        print(f"agreement with the reference scoring {reference}:")
        doc = evaluate_pairs(pairs, lost, out, print, starts, str(out), str(reference))
    except EvaluateError as exc:
        print(f"error: --reference: {exc}", file=sys.stderr)
        return 1
    return 1 if doc["failed"] or lost else 0


if __name__ == "__main__":
    sys.exit(main())
