"""CLI: ``python -m simulate --out DIR --recordings N --seed S [--dataset NAME] [--hours H]``."""

from __future__ import annotations

import argparse
import sys
import time

from preprocess.core.version import add_version_argument

from .formats import PROFILES
from .generator import NOTE, generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulate", description=f"Write simulated PSG nights. {NOTE}")
    add_version_argument(ap)
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--recordings", type=int, default=3, help="number of recordings (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed -> same files)")
    ap.add_argument("--dataset", default="sleepedf", choices=sorted(PROFILES), help="raw layout (default sleepedf)")
    ap.add_argument("--hours", type=float, default=None,
                    help="night length; default: a real hypnogram's length (Markov 8 h when none is available)")
    ap.add_argument("--spread", type=float, default=1.0,
                    help="domain randomisation: widen subject/recording variation (tilt, amplitude, noise, "
                         "filters) by this factor (training data: 2; default 1 = calibrated population)")
    a = ap.parse_args(argv)
    if a.recordings < 1:
        ap.error("--recordings must be >= 1")
    if a.hours is not None and a.hours <= 0:
        ap.error("--hours must be > 0")
    t0 = time.time()
    if a.spread <= 0:
        ap.error("--spread must be > 0")
    try:
        recs = generate(a.out, a.recordings, a.seed, dataset=a.dataset, hours=a.hours, spread=a.spread)
    except OSError as exc:  # --out under a file, read-only or full disk: one line, not a traceback
        print(f"error: --out {a.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for r in recs:
        print(f"{r['id']}: {len(r['stages'])} epochs ({len(r['stages']) / 120:.1f} h), "
              f"hypnogram {r['hypnogram_source']}, files {', '.join(f.name for f in r['files'])}")
    print(f"wrote {len(recs)} simulated {a.dataset} recording(s) to {a.out} in {time.time() - t0:.1f} s "
          f"(simulation.json; {NOTE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
