"""Simulator realism: stage simulated nights with YASA (trained on real PSG) and compare to the
simulated truth. A high agreement means the simulated physiology looks like real sleep to an
independent, established stager. Dev-only dependency: ``pip install yasa``.

    python bench/simulator_realism.py [--nights 3] [--seed 0] [--dataset hmc|generic|sleepedf]

Prints one line: ``simulator_realism: yasa kappa=0.xx acc=0.xx nights=3 (simulated data)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulate  # noqa: E402
from simulate.physiology import parse_site  # noqa: E402


def _pick(raw, channels: list[dict], want: tuple[str, str | None]):
    """Data (volts) of the channel recording ``want`` (a derivation), derived from raw channels if needed."""
    by_site = {parse_site(c["site"]): c["label"] for c in channels if c["kind"] == "signal"}
    if want in by_site:
        return raw.get_data(picks=[by_site[want]])[0]
    a, b = want
    if (a, None) in by_site and b and (b, None) in by_site:
        return raw.get_data(picks=[by_site[(a, None)]])[0] - raw.get_data(picks=[by_site[(b, None)]])[0]
    return None


def _night_signals(path: Path, channels: list[dict]):
    import mne

    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    eeg = next((x for w in [("C4", "M1"), ("C3", "M2"), ("FPZ", "CZ")] if (x := _pick(raw, channels, w)) is not None), None)
    eog = next((x for w in [("E1", "M2"), ("E1", "E2")] if (x := _pick(raw, channels, w)) is not None), None)
    emg = _pick(raw, channels, ("CHIN", None))
    if emg is not None and len(emg) != len(eeg):  # 1-Hz envelope (Sleep-EDF) is not an EMG for YASA
        emg = None
    return raw.info["sfreq"], eeg, eog, emg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="hmc", choices=["hmc", "generic", "sleepedf"])
    ap.add_argument("--out", default=None, help="keep the simulated files here (default: temporary)")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-night figures and confusion matrix")
    a = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    import mne
    import yasa
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

    mne.set_log_level("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        recs = simulate.generate(out, a.nights, seed=a.seed, dataset=a.dataset)
        info = {r["id"]: r for r in json.loads((out / "simulation.json").read_text())["recordings"]}
        truth, pred = [], []
        for rec in recs:
            edf = next(f for f in rec["files"] if "Hypnogram" not in f.name and "sleepscoring" not in f.name)
            sf, eeg, eog, emg = _night_signals(edf, info[rec["id"]]["channels"])
            data = [eeg] + [x for x in (eog, emg) if x is not None]
            names = ["EEG"] + [n for n, x in (("EOG", eog), ("EMG", emg)) if x is not None]
            raw = mne.io.RawArray(np.stack(data), mne.create_info(names, sf, ["eeg", "eog", "emg"][: len(names)]))
            sls = yasa.SleepStaging(raw, eeg_name="EEG", eog_name="EOG" if eog is not None else None,
                                    emg_name="EMG" if emg is not None else None)
            p = np.asarray(sls.predict().as_int())
            t = rec["stages"].astype(int)
            ok = t >= 0  # movement / unknown epochs ignored
            truth.append(t[ok])
            pred.append(p[: len(t)][ok])
            if a.verbose:
                print(f"  {rec['id']} ({rec['hypnogram_source']}): kappa={cohen_kappa_score(t[ok], p[ok]):.3f} "
                      f"acc={accuracy_score(t[ok], p[ok]):.3f}")
    t, p = np.concatenate(truth), np.concatenate(pred)
    if a.verbose:
        print(confusion_matrix(t, p, labels=[0, 1, 2, 3, 4]))
    print(f"simulator_realism: yasa kappa={cohen_kappa_score(t, p):.2f} acc={accuracy_score(t, p):.2f} "
          f"nights={a.nights} (simulated data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
