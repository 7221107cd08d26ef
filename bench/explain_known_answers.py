"""Known-answer check of the explanations on held-out SIMULATED nights (figures (a)-(c) of docs/explain.md).

For each simulator seed (first 9-channel AASM 100-Hz generic night at or after it; the demo
weights were trained on seeds 100 and 200) a 67-epoch night with W, N1, N2, N3, REM is simulated,
staged with the weights, and up to 8 correctly staged W (with alpha), N2 and REM epochs are
explained. Measured, per night (SIMULATED data):

(a) N2: guided Grad-CAM density inside spindle / K-complex intervals ÷ outside (F3 F4 C3 C4),
    within epoch (each epoch-channel scaled to unit mean, rows that contain events;
    ``explain.within_epoch_ratio``) and, for comparison, pooled over raw maps
    (``mass_ratio``, the first version of this measure);
(b) REM: mean channel Shapley value of E1/E2 and of the six EEG channels;
(c) W with alpha: 8-12 Hz power of the guided-backprop map, O1/O2 ÷ F3/F4/C3/C4.

Usage::

    python bench/explain_known_answers.py [--seeds 1000,2000,3000] [--work DIR] [--figure PNG]

Prints one line per night and one pooled line; ``--figure`` writes the three panels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HYPNOGRAM = [(0, 12), (1, 3), (2, 20), (3, 4), (2, 6), (4, 16), (0, 6)]
EEG = ["F3", "F4", "C3", "C4", "O1", "O2"]

from simulate.formats import aasm_generic_seed  # noqa: E402


def night(seed: int, work: Path, weights: str | None) -> dict:
    """Simulate, stage and explain one night (cached in ``work``)."""
    cache = work / f"exp{seed}.npz"
    if cache.exists():
        z = np.load(cache)
        return {k: z[k] for k in z.files} | {"events": json.loads((work / f"ev{seed}.json").read_text())}
    import simulate
    from explain import event_mask, explain_recording
    from preprocess.core.edf import EdfReader
    from preprocess.core.pipeline import load_montage
    from preprocess.core.signal import SignalParams
    from staging.montage import channel_map_from_arg
    from staging.predict import channel_indices, predict_proba
    from staging.weights import find_weights, load_model

    stages = np.concatenate([np.full(n, s, np.int8) for s, n in HYPNOGRAM])
    rec = simulate.generate(work / f"s{seed}", 1, seed, dataset="generic", stages=[stages])[0]
    events = simulate.read_events(rec["events"])
    chosen = find_weights(weights)
    model = load_model(chosen)
    params = SignalParams.from_dict(chosen.meta.get("preprocessing", {}) or {})
    reader = EdfReader(rec["files"][0])
    mt = load_montage(reader, channel_map_from_arg("auto")[0], params, f"seed {seed}")
    reader.close()
    names = list(mt.channels)
    probs = predict_proba(model, mt.signals, channel_indices(names))
    pred = probs.argmax(1)
    alpha = event_mask(events, np.arange(len(pred)), {"alpha"}).mean(1)
    want = []
    for k in (0, 2, 4):
        ok = np.flatnonzero((pred == k) & (stages[:len(pred)] == k) & ((alpha > 0.5) if k == 0 else True))
        want += list(ok[np.linspace(0, len(ok) - 1, min(8, len(ok))).astype(int)]) if len(ok) else []
    exp = explain_recording(model, mt.signals, channel_indices(names), want, target=pred[want])
    out = {"epochs": np.array(want), "gradcam": exp.gradcam, "gg": exp.guided_gradcam, "gbp": exp.guided_backprop,
           "att": exp.channel_attribution, "target": exp.target, "stages": stages, "names": np.array(names),
           "pred": pred}
    np.savez(cache, **out)
    (work / f"ev{seed}.json").write_text(json.dumps(events))
    return out | {"events": events}


def measures(d: dict) -> dict:
    from explain import band_power, event_mask, mass_ratio, within_epoch_ratio

    names, epochs, st = list(d["names"]), d["epochs"], d["stages"]
    ev = d["events"]
    n2, rem = st[epochs] == 2, st[epochs] == 4
    w = (st[epochs] == 0) & (event_mask(ev, epochs, {"alpha"}).mean(1) > 0.5)
    sal = np.concatenate([d["gg"][n2, c] for c in range(4)])
    inside = np.concatenate([event_mask(ev, epochs[n2], {"spindle", "kcomplex"}, names[c]) for c in range(4)])
    att = d["att"][rem]
    p = band_power(d["gbp"][w], 8.0, 12.0).mean(0)
    acc = float((d["pred"] == st[:len(d["pred"])]).mean()) if "pred" in d else float("nan")
    return {"n": (int(n2.sum()), int(rem.sum()), int(w.sum())), "a": within_epoch_ratio(sal, inside),
            "a_pooled": mass_ratio(sal, inside), "acc": acc,
            "rem_att": att.mean(0), "b_eye": float(att[:, [6, 7]].mean()), "b_eeg": float(att[:, :6].mean()),
            "alpha": p, "c": float(p[4:6].mean() / p[:4].mean()), "names": names}


def figure(path: Path, seeds: list[int], ms: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    ax[0].bar([str(s) for s in seeds], [m["a"] for m in ms], color="tab:purple")
    ax[0].axhline(1, color="k", lw=0.6)
    ax[0].set(title="(a) N2: guided Grad-CAM in / out of spindles\n+ K-complexes (F3 F4 C3 C4), within epoch",
              xlabel="simulator seed", ylabel="density ratio")
    names = ms[0]["names"]
    for i, m in enumerate(ms):
        ax[1].plot(names, m["rem_att"], "o-", label=str(seeds[i]))
        ax[2].plot(names, m["alpha"] / m["alpha"].max(), "o-", label=str(seeds[i]))
    ax[1].axhline(0, color="k", lw=0.6)
    ax[1].set(title="(b) REM: channel Shapley value", ylabel="logit")
    ax[2].set(title="(c) W with alpha: 8-12 Hz power of\nguided backprop (÷ max)")
    for a in ax[1:]:
        a.tick_params(axis="x", labelsize=8)
        a.legend(fontsize=7, title="seed", title_fontsize=7)
    fig.suptitle("SIMULATED held-out nights, DEMO weights", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1000,2000,3000")
    ap.add_argument("--work", default="out/explain_known_answers")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--figure", default=None)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    seeds = [aasm_generic_seed(int(s)) for s in args.seeds.split(",")]
    ms = []
    for seed in seeds:
        m = measures(night(seed, work, args.weights))
        ms.append(m)
        print(f"explain_known_answers seed={seed} staging_acc={m['acc']:.2f} n_N2/REM/W={m['n']} "
              f"(a)_within={m['a']:.2f} (a)_pooled={m['a_pooled']:.2f} "
              f"(b)_eye={m['b_eye']:.2f} (b)_eeg={m['b_eeg']:.2f} (c)_occ_over_ant={m['c']:.2f} [simulated]")
    if args.figure:
        figure(Path(args.figure), seeds, ms)


if __name__ == "__main__":
    main()
