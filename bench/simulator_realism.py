"""Simulator realism: simulated PSG against real scored PSG, feature by feature, and judged by two
independent stagers trained on real nights (YASA and GSSC).

    python bench/simulator_realism.py [--nights 3] [--seed 0] [--profiles hmc,generic,sleepedf]
                                      [--no-gssc] [--json OUT.json]

Real references (``../shared/data/real``): the DREAMS excerpts 1 and 3 (C3-A1, expert 5-s
hypnograms), the first 5 min of Sleep-EDF SC4001 (wake, Fpz-Cz) and YASA's REM EOG snippet
(LOC/ROC). Simulated: ``--nights`` nights per profile from ``simulate.generate`` (real hypnograms),
read back from the written EDFs at the same derivation (C3-M2; Fpz-Cz in the Sleep-EDF profile).

Features, per 30-s epoch, median over the epochs of a stage (real: per excerpt, shown as a range):
``exp`` aperiodic exponent (slope of log PSD vs log f, 2-24 Hz without 8-16 Hz), ``beta``
relative 16-25 Hz power (of 0.5-25 Hz), ``alpha``/``theta``/``delta`` shares (8-12, 4-8,
0.5-4 Hz), ``sd`` 0.5-25 Hz amplitude (µV); REM eye movements (YASA ``rem_detect``): peak (µV),
rise slope (µV/s) and the LOC-ROC correlation (0.3-5 Hz) over REM.

Judges: Cohen's kappa of YASA and GSSC against the simulated truth per profile, and N1 F1.
Dev-only dependencies: ``pip install yasa gssc``. GSSC 0.0.9's own loader calls ``torch.load``
without ``weights_only`` (fails on torch >= 2.6); this bench loads GSSC's bundled nets with
``weights_only=False`` - acceptable only because it is a benchmark on the developer's machine
running GSSC's own packaged files; shipped code never does this.

Every simulated figure is **simulated data**.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt, welch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simulate  # noqa: E402
from preprocess.core.stages import STAGE_NAMES  # noqa: E402
from simulate.physiology import parse_site  # noqa: E402

STAGES = STAGE_NAMES
FEATURES = ("exp", "beta", "alpha", "theta", "delta", "sd")
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------


def epoch_features(x_uv: np.ndarray, fs: float) -> dict[str, float]:
    """Spectral features of one 30-s epoch (µV) - see the module docstring."""
    f, p = welch(x_uv, fs, nperseg=int(4 * fs), noverlap=int(2 * fs))
    band = lambda lo, hi: float(p[(f >= lo) & (f < hi)].sum())  # noqa: E731
    tot = max(band(0.5, 25.0), 1e-20)
    fit = (f >= 2) & (f <= 24) & ~((f >= 8) & (f <= 16)) & (p > 0)
    slope = np.polyfit(np.log10(f[fit]), np.log10(p[fit]), 1)[0]
    sos = butter(4, [0.5, min(25.0, 0.45 * fs)], "bandpass", fs=fs, output="sos")
    return {
        "exp": float(-slope),
        "beta": band(16.0, 25.0) / tot,
        "alpha": band(8.0, 12.0) / tot,
        "theta": band(4.0, 8.0) / tot,
        "delta": band(0.5, 4.0) / tot,
        "sd": float(np.std(sosfiltfilt(sos, x_uv))),
    }


def stage_medians(x_uv: np.ndarray, fs: float, stages: np.ndarray) -> dict[str, dict[str, float]]:
    """{stage: {feature: median over that stage's epochs}} (stages with >= 2 epochs)."""
    n = int(round(30 * fs))
    out = {}
    for k, name in enumerate(STAGES):
        idx = [i for i in np.flatnonzero(stages == k) if (i + 1) * n <= len(x_uv)]
        if len(idx) < 2:
            continue
        fe = [epoch_features(x_uv[i * n : (i + 1) * n], fs) for i in idx]
        out[name] = {m: float(np.median([d[m] for d in fe])) for m in FEATURES}
        out[name]["n"] = len(idx)
    return out


def rem_features(loc_uv: np.ndarray, roc_uv: np.ndarray, fs: float) -> dict[str, float] | None:
    """Median peak (µV) and rise slope (µV/s) of YASA-detected REMs, and the LOC-ROC correlation."""
    import yasa

    sos = butter(2, [0.3, 5.0], "bandpass", fs=fs, output="sos")
    corr = float(np.corrcoef(sosfiltfilt(sos, loc_uv), sosfiltfilt(sos, roc_uv))[0, 1])
    det = yasa.rem_detect(loc_uv, roc_uv, fs, verbose="ERROR")
    if det is None:
        return {"peak": float("nan"), "slope": float("nan"), "corr": corr, "n": 0}
    s = det.summary()
    peak = np.median(np.r_[s["LOCAbsValPeak"], s["ROCAbsValPeak"]])
    slope = np.median(np.r_[s["LOCAbsRiseSlope"], s["ROCAbsRiseSlope"]])
    return {"peak": float(peak), "slope": float(slope), "corr": corr, "n": int(len(s))}


# ------------------------------------------------------------------------------------------------
# real references
# ------------------------------------------------------------------------------------------------


def edf_uv(path: Path, label: str) -> tuple[np.ndarray, float]:
    """One EDF signal in µV (edfio: physical values; the DREAMS files spell the unit 'µV')."""
    import edfio

    sig = edfio.read_edf(path).get_signal(label)
    scale = {"uv": 1.0, "µv": 1.0, "mv": 1e3, "v": 1e6}.get(sig.physical_dimension.strip().lower(), 1.0)
    return sig.data.astype(np.float64) * scale, float(sig.sampling_frequency)


def real_reference() -> dict:
    """Per-source feature medians of the real files (see module docstring)."""
    from preprocess.core.annotations import read_dreams_hypnogram

    out = {"eeg": {}, "fpz": {}, "rem": None}
    d = REAL / "dreams"
    x1 = np.loadtxt(d / "excerpt1.txt", skiprows=1)
    out["eeg"]["dreams1"] = stage_medians(x1, 100.0, read_dreams_hypnogram(d / "Hypnogram_excerpt1.txt"))
    x3, fs3 = edf_uv(d / "excerpt3.edf", "C3-A1")
    out["eeg"]["dreams3"] = stage_medians(x3, fs3, read_dreams_hypnogram(d / "Hypnogram_excerpt3.txt"))
    se = REAL / "sleep-edf"
    x, fs = edf_uv(se / "SC4001E0-first5min-PSG.edf", "EEG Fpz-Cz")
    st = sleepedf_stages(se / "SC4001EC-Hypnogram.edf", len(x) // int(30 * fs))
    out["fpz"]["sleepedf"] = stage_medians(x, fs, st)
    z = np.load(REAL / "yasa" / "data_EOGs_REM_256Hz.npz")
    out["rem"] = rem_features(z["data"][0], z["data"][1], float(z["sf"]))
    return out


def sleepedf_stages(path: Path, n_epochs: int) -> np.ndarray:
    import mne

    codes = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
             "Sleep stage 4": 3, "Sleep stage R": 4}
    ann = mne.read_annotations(str(path))
    st = np.full(n_epochs, -1, dtype=int)
    for onset, dur, text in zip(ann.onset, ann.duration, ann.description):
        a = int(np.floor(onset / 30 + 0.5))
        st[a : min(n_epochs, a + int(round(dur / 30)))] = codes.get(text, -1)
    return st


# ------------------------------------------------------------------------------------------------
# simulated nights
# ------------------------------------------------------------------------------------------------


def _pick(raw, channels: list[dict], want: tuple[str, str | None]):
    """Data (µV) of the channel recording ``want`` (a derivation), derived from raw channels if needed."""
    by_site = {parse_site(c["site"]): c["label"] for c in channels if c["kind"] == "signal"}
    if want in by_site:
        return raw.get_data(picks=[by_site[want]])[0] * 1e6
    a, b = want
    if (a, None) in by_site and b and (b, None) in by_site:
        return (raw.get_data(picks=[by_site[(a, None)]])[0] - raw.get_data(picks=[by_site[(b, None)]])[0]) * 1e6
    return None


def _first(raw, channels, wants):
    return next((x for w in wants if (x := _pick(raw, channels, w)) is not None), None)


def night_signals(path: Path, channels: list[dict]) -> dict:
    import mne

    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    sig = {
        "fs": raw.info["sfreq"],
        "c3": _first(raw, channels, [("C3", "M2"), ("C3", "M1")]),
        "fpz": _first(raw, channels, [("FPZ", "CZ")]),
        "eeg": _first(raw, channels, [("C4", "M1"), ("C3", "M2"), ("FPZ", "CZ")]),
        "loc": _first(raw, channels, [("E1", "M2"), ("E1", "M1")]),
        "roc": _first(raw, channels, [("E2", "M2"), ("E2", "M1")]),
        "eog": _first(raw, channels, [("E1", "M2"), ("E1", "E2")]),
        "emg": _first(raw, channels, [("CHIN", None)]),
    }
    if sig["emg"] is not None and len(sig["emg"]) != len(sig["eeg"]):  # Sleep-EDF 1-Hz envelope: no EMG
        sig["emg"] = None
    # channels at another rate than the EEG (generic profile): resample onto the EEG grid
    n = len(sig["eeg"])
    for k in ("loc", "roc", "eog", "emg", "c3", "fpz"):
        if sig[k] is not None and len(sig[k]) != n:
            sig[k] = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(sig[k])), sig[k])
    return sig


def _judges(sig: dict, gssc_nets) -> dict[str, np.ndarray]:
    import mne
    import yasa

    fs = sig["fs"]
    names = ["EEG"] + [n for n in ("EOG", "EMG") if sig[n.lower()] is not None]
    data = np.stack([sig["eeg"]] + [sig[n.lower()] for n in names[1:]]) * 1e-6
    types = {"EEG": "eeg", "EOG": "eog", "EMG": "emg"}
    raw = mne.io.RawArray(data, mne.create_info(names, fs, [types[n] for n in names]), verbose=False)
    sls = yasa.SleepStaging(raw, eeg_name="EEG", eog_name="EOG" if "EOG" in names else None,
                            emg_name="EMG" if "EMG" in names else None)
    out = {"yasa": np.asarray(sls.predict().as_int())}
    if gssc_nets is not None:
        out["gssc"] = gssc_stage(raw, "EEG", "EOG" if "EOG" in names else None, gssc_nets)
    return out


def gssc_nets():
    """GSSC's packaged nets, loaded with ``weights_only=False`` (bench only; see module docstring)."""
    from importlib.resources import files

    import torch

    net = torch.load(files("gssc.nets").joinpath("sig_net_v1.pt"), weights_only=False, map_location="cpu")
    con = torch.load(files("gssc.nets").joinpath("gru_net_v1.pt"), weights_only=False, map_location="cpu")
    return net, con


def gssc_stage(raw, eeg: str, eog: str | None, nets) -> np.ndarray:
    """GSSC stages (0-4) of an MNE Raw, one EEG (and EOG) channel."""
    import contextlib
    import io

    from gssc.infer import EEGInfer

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inf = EEGInfer(net=nets[0], con_net=nets[1], use_cuda=False)
        res = inf.mne_infer(raw.copy().pick([c for c in (eeg, eog) if c]), eeg=[eeg], eog=[eog] if eog else [],
                            eog_drop=eog is None, eeg_drop=False)  # no EOG: GSSC's EEG-only path
    return np.asarray(res[0]).astype(int)


def simulated(profile: str, nights: int, seed: int, nets, keep: Path | None) -> dict:
    from sklearn.metrics import cohen_kappa_score, f1_score

    with tempfile.TemporaryDirectory() as tmp:
        out = keep / profile if keep else Path(tmp)
        t0 = time.process_time()
        recs = simulate.generate(out, nights, seed=seed, dataset=profile)
        sim_cpu = time.process_time() - t0
        info = {r["id"]: r for r in json.loads((out / "simulation.json").read_text())["recordings"]}
        eeg_feats, fpz_feats, rems = [], [], []
        truth, preds = {}, {}
        for rec in recs:
            edf = next(f for f in rec["files"] if "Hypnogram" not in f.name and "sleepscoring" not in f.name)
            sig = night_signals(edf, info[rec["id"]]["channels"])
            st = rec["stages"].astype(int)
            fs = sig["fs"]
            if sig["c3"] is not None:
                eeg_feats.append(stage_medians(sig["c3"], fs, st))
            if sig["fpz"] is not None:
                fpz_feats.append(stage_medians(sig["fpz"], fs, st))
            if sig["loc"] is not None and sig["roc"] is not None:
                n = int(30 * fs)
                idx = np.flatnonzero(st == 4)
                if len(idx):
                    loc, roc = (np.concatenate([sig[k][i * n : (i + 1) * n] for i in idx]) for k in ("loc", "roc"))
                    rems.append(rem_features(loc, roc, fs))
            for k, p in _judges(sig, nets).items():
                m = min(len(p), len(st))  # GSSC drops a trailing partial epoch
                ok = st[:m] >= 0  # movement / unknown epochs ignored
                preds.setdefault(k, []).append(p[:m][ok])
                truth.setdefault(k, []).append(st[:m][ok])
        res = {"eeg": _pool(eeg_feats), "fpz": _pool(fpz_feats), "rem": _pool_flat(rems), "judges": {},
               "sim_cpu_s": sim_cpu}
        for k, p in preds.items():
            t, p = np.concatenate(truth[k]), np.concatenate(p)
            f1 = f1_score(t, p, labels=[0, 1, 2, 3, 4], average=None, zero_division=0)
            res["judges"][k] = {"kappa": float(cohen_kappa_score(t, p)), "n1_f1": float(f1[1]),
                                "f1": [round(float(v), 3) for v in f1],
                                "rem_as_w": int(np.sum((t == 4) & (p == 0))), "n_rem": int(np.sum(t == 4))}
        return res


def _pool(per_night: list[dict]) -> dict:
    out = {}
    for name in STAGES:
        rows = [d[name] for d in per_night if name in d]
        if rows:
            out[name] = {m: float(np.median([r[m] for r in rows])) for m in FEATURES}
    return out


def _pool_flat(rows: list[dict]) -> dict | None:
    rows = [r for r in rows if r]
    if not rows:
        return None
    return {k: float(np.nanmedian([r[k] for r in rows])) for k in rows[0]}


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


def _verdict(v: float, lo: float, hi: float) -> str:
    """ok when inside the real range or within ±25 % of its nearest end."""
    if lo - 0.25 * abs(lo) <= v <= hi + 0.25 * abs(hi):
        return "ok"
    return "OFF"


def report(real: dict, sims: dict[str, dict]) -> list[str]:
    lines = ["feature table: real = DREAMS excerpts 1, 3 (C3-A1) | sim = C3-M2 [SIMULATED], median per stage"]
    for name in STAGES:
        for m in FEATURES:
            vals = [src[name][m] for src in real["eeg"].values() if name in src]
            if not vals:
                continue
            lo, hi = min(vals), max(vals)
            cells = []
            for prof, s in sims.items():
                if name in s["eeg"]:
                    v = s["eeg"][name][m]
                    cells.append(f"{prof}={v:.3g} {_verdict(v, lo, hi)}")
            lines.append(f"  {name:<3} {m:<5} real {lo:.3g}-{hi:.3g} | " + "  ".join(cells))
    fr = real["fpz"].get("sleepedf", {}).get("W")
    if fr:
        for m in ("alpha", "delta", "beta", "exp", "sd"):
            cells = [f"{p}={s['fpz']['W'][m]:.3g} {_verdict(s['fpz']['W'][m], fr[m], fr[m])}"
                     for p, s in sims.items() if "W" in s["fpz"]]
            lines.append(f"  W   {m:<5} Fpz-Cz real(Sleep-EDF) {fr[m]:.3g} | " + "  ".join(cells))
    rr = real["rem"]
    if rr:
        for m, unit in (("peak", "uV"), ("slope", "uV/s"), ("corr", "")):
            cells = [f"{p}={s['rem'][m]:.3g} {_verdict(s['rem'][m], rr[m], rr[m])}" for p, s in sims.items() if s["rem"]]
            lines.append(f"  REM eye {m:<5} real(YASA LOC/ROC) {rr[m]:.3g}{unit} | " + "  ".join(cells))
    lines.append("judges vs simulated truth [SIMULATED]: kappa, N1 F1, F1 per stage W/N1/N2/N3/REM, REM called W")
    for prof, s in sims.items():
        for k, j in s["judges"].items():
            lines.append(f"  {prof:<8} {k:<4} kappa={j['kappa']:.3f} N1_F1={j['n1_f1']:.2f} F1={j['f1']} "
                         f"REM->W {j['rem_as_w']}/{j['n_rem']}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profiles", default="hmc,generic,sleepedf")
    ap.add_argument("--no-gssc", action="store_true")
    ap.add_argument("--keep", default=None, help="keep the simulated files under this folder")
    ap.add_argument("--json", default=None, help="also write all figures as JSON here")
    a = ap.parse_args(argv)

    warnings.filterwarnings("ignore")
    import mne

    mne.set_log_level("ERROR")
    t0, c0 = time.time(), time.process_time()
    real = real_reference()
    nets = None if a.no_gssc else gssc_nets()
    sims = {p: simulated(p, a.nights, a.seed, nets, Path(a.keep) if a.keep else None) for p in a.profiles.split(",")}
    for line in report(real, sims):
        print(line)
    if a.json:
        Path(a.json).write_text(json.dumps({"real": real, "simulated": sims}, indent=1))
    ks = " ".join(f"{p}:{k}={j['kappa']:.2f}" for p, s in sims.items() for k, j in s["judges"].items())
    print(f"simulator_realism: {ks} nights={a.nights} wall={time.time() - t0:.0f}s "
          f"cpu={time.process_time() - c0:.0f}s (simulated data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
