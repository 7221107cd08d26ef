"""Regenerate the bundled example ``examples/simulated_night.edf`` (SIMULATED PSG, not a person).

    python examples/make_simulated_night.py

Writes, with the project's simulator (``simulate.generate``, generic profile):

- ``simulated_night.edf``: 45 minutes, the full 9-channel AASM montage (``EEG F3-M2`` …
  ``EOG E1-M2``, ``EOG E2-M1``, ``EMG Chin``) at 100 Hz, under 5 MB (9 channels × 100 Hz × 2 bytes
  = 6.5 MB per hour, hence 45 minutes rather than a full night);
- ``simulated_night.stages.txt``: the simulated hypnogram the signals follow, one stage code per
  30-s epoch (W=0, N1=1, N2=2, N3=3, REM=4), to compare with what ``inference.py`` predicts;
- ``simulated_night.events.tsv``: where the simulator placed spindles, K-complexes, eye movements,
  twitches and artefacts (``simulate.read_events``; see docs/simulator.md).

The hypnogram is a compressed first sleep cycle (wake, N1, N2, N3, N2, REM, brief awakening), so
every stage appears in the plot; it is fixed here, the signals are deterministic given the seed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# (stage, epochs): 90 epochs = 45 min
CYCLE = [(0, 10), (1, 6), (2, 20), (3, 22), (2, 12), (4, 14), (1, 2), (0, 4)]


def aasm_100hz_seed() -> int:
    """First seed whose generic-profile plan is the 9-channel AASM montage, all at 100 Hz, no ECG."""
    from simulate.formats import get_profile

    profile = get_profile("generic")
    for seed in range(10_000):
        plan = profile.plan(0, np.random.default_rng([seed, 0]))
        if (plan.extra.get("label_style") == "aasm" and {c.sfreq for c in plan.channels} == {100.0}
                and not any(c.site == "ECG" for c in plan.channels)):
            return seed
    raise RuntimeError("no seed gives the 9-channel AASM montage at 100 Hz")


def main(argv: list[str] | None = None) -> None:
    import argparse

    import simulate
    from preprocess.core.edf import read_header
    from preprocess.core.version import add_version_argument

    p = argparse.ArgumentParser(prog="python examples/make_simulated_night.py", description=__doc__.splitlines()[0])
    add_version_argument(p)
    p.parse_args(argv)  # no options: --help and --version only

    stages = np.concatenate([np.full(n, s, dtype=np.int8) for s, n in CYCLE])
    seed = aasm_100hz_seed()
    with tempfile.TemporaryDirectory() as tmp:
        rec = simulate.generate(tmp, 1, seed, dataset="generic", stages=[stages])[0]
        edf = next(Path(f) for f in rec["files"] if not f.name.endswith("Hypnogram.edf"))
        shutil.copyfile(edf, HERE / "simulated_night.edf")
        shutil.copyfile(rec["events"], HERE / "simulated_night.events.tsv")  # where events were placed
    header = "# SIMULATED hypnogram of simulated_night.edf (seed %d): one code per 30-s epoch, W=0 N1=1 N2=2 N3=3 REM=4\n"
    (HERE / "simulated_night.stages.txt").write_text(header % seed + "".join(f"{s}\n" for s in stages))
    h = read_header(HERE / "simulated_night.edf")
    size = (HERE / "simulated_night.edf").stat().st_size
    print(f"wrote {HERE / 'simulated_night.edf'}: {h.duration / 60:.0f} min, {len(h.signal_labels)} channels "
          f"{h.signal_labels} at {sorted(set(h.sfreqs))} Hz, {size / 1e6:.1f} MB (seed {seed})")


if __name__ == "__main__":
    main()
