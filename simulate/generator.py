"""``simulate.generate``: simulated PSG nights written in a dataset's raw format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .events import events_path, write_events
from .formats import RecordingPlan, _aux_signal, emg_envelope, get_profile
from .hypnogram import (
    EPOCH_SEC,
    MARKOV_STAGE4_FRACTION,
    N1,
    N3,
    STAGE_NAMES,
    Hypnogram,
    choose_hypnogram,
    find_real_hypnograms,
    load_real_hypnogram,
)
from .physiology import draw_subject_params, simulate_sites

FORMAT_VERSION = 1
NOTE = "SIMULATED PSG (LPSGM simulate): synthetic signals, not recorded from people."


def _n3_depth(hyp: Hypnogram, rng: np.random.Generator) -> np.ndarray:
    """Slow-wave share per epoch: R&K stage 4 (>50 % delta) deeper than stage 3 (20-50 %)."""
    depth = rng.uniform(0.2, 0.5, len(hyp))
    depth[hyp.stage4] = rng.uniform(0.55, 0.95, int(hyp.stage4.sum()))
    return depth


def _ensure_stage4(hyp: Hypnogram, rng: np.random.Generator) -> Hypnogram:
    """AASM-scored sources carry no stage 3/4 split: draw one (deeper N3 early in the night)."""
    if hyp.stage4.any() or not (hyp.stages == N3).any():
        return hyp
    n = len(hyp)
    phase = np.minimum(np.arange(n) * 3 // max(n, 1), 2)
    # per epoch within each N3 run (R&K hypnograms alternate 3 and 4 within slow-wave sleep)
    s4 = np.zeros(n, bool)
    i = 0
    while i < n:
        j = i + 1
        while j < n and hyp.stages[j] == hyp.stages[i]:
            j += 1
        if hyp.stages[i] == N3:
            s4[i:j] = rng.random(j - i) < MARKOV_STAGE4_FRACTION[phase[i]] * 1.5
        i = j
    return Hypnogram(hyp.stages, s4, hyp.source, hyp.meta)


def _ensure_movement(hyp: Hypnogram, rng: np.random.Generator, min_count: int = 2) -> Hypnogram:
    """Real nights often have no movement time; mark a few in-sleep epochs -1 (movement) so every
    simulated night exercises the unknown-label path. Recorded in ``meta['added_movement']``."""
    st = hyp.stages.copy()
    sleep = np.flatnonzero(st >= 1)
    have = int(np.sum(st[sleep[0] : sleep[-1] + 1] == -1)) if len(sleep) else 0
    if len(sleep) < 20 or have >= min_count:
        return hyp
    pick = np.sort(rng.choice(np.arange(sleep[0] + 1, sleep[-1]), size=min_count - have, replace=False))
    st[pick] = -1
    s4 = hyp.stage4.copy()
    s4[pick] = False
    return Hypnogram(st, s4, hyp.source, {**hyp.meta, "added_movement": pick.tolist()})


def _excerpt(hyp: Hypnogram, n: int, rng: np.random.Generator) -> Hypnogram:
    """An ``n``-epoch piece of the night starting in sleep (like the scored excerpts users share:
    the file's own SD, which the signal chain normalises by, then comes mostly from N2/N3)."""
    if len(hyp) <= n:
        return hyp
    asleep = np.flatnonzero(hyp.stages >= N1)
    starts = asleep[asleep <= len(hyp) - n] if len(asleep) else np.arange(len(hyp) - n + 1)
    a = int(starts[int(rng.integers(len(starts)))]) if len(starts) else 0
    return Hypnogram(hyp.stages[a : a + n], hyp.stage4[a : a + n], hyp.source,
                     {**hyp.meta, "excerpt_start_epoch": a})


def _channel_requests(plan: RecordingPlan) -> dict[str, tuple[str, float]]:
    req = {}
    for c in plan.channels:
        if c.kind in ("signal", "emg_envelope"):
            req[c.label] = (c.site, c.sim_sfreq)
    return req


def generate(
    out_dir,
    n_recordings: int,
    seed: int,
    dataset: str = "sleepedf",
    hours: float | None = None,
    stages: list | None = None,
    real_root=None,
    spread: float = 1.0,
) -> list[dict]:
    """Write ``n_recordings`` simulated nights in ``dataset``'s raw layout under ``out_dir``.

    Hypnograms: real scored nights from ``../shared/data/real`` (cropped to lights-off, distinct per
    recording while available, at least two in-sleep epochs marked movement/-1) when ``hours`` is
    None, else Markov nights of ``hours``; ``stages``
    (a list of per-recording stage arrays) overrides both (tests). Deterministic given ``seed``
    and the set of real hypnogram files present (the source used is recorded). ``spread`` > 1
    widens subject and amplifier variation (domain randomisation for training data).

    Beside each signal EDF it writes ``<stem>.events.tsv``: where the simulator placed spindles,
    K-complexes, eye movements, twitches, artefacts... (:mod:`simulate.events`; read it back with
    :func:`simulate.read_events`).

    Returns one dict per recording: ``id``, ``subject``, ``files`` (paths), ``events`` (path of the
    events table), ``stages`` (int8 array:
    exactly what the annotation file encodes), ``hypnogram_source``, ``subject_params``.
    Also writes ``simulation.json`` (seed, dataset, per-recording parameters) in ``out_dir``.
    """
    profile = get_profile(dataset)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = find_real_hypnograms(real_root) if (hours is None and stages is None) else []
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(sources)) if sources else []
    records, meta = [], []
    for i in range(n_recordings):
        rng = np.random.default_rng([seed, i])
        plan = profile.plan(i, rng)
        subject = draw_subject_params(np.random.default_rng([seed, 1_000_003, plan.subject_key]), spread=spread)
        subject["seed"] = int(rng.integers(2**31))  # this night's latent sources
        subject["line_freq"] = plan.line_freq
        if stages is not None:
            st = np.asarray(stages[i % len(stages)], dtype=np.int8)
            hyp = Hypnogram(st, np.zeros(len(st), bool), source="given")
        elif sources:
            hyp = _ensure_movement(load_real_hypnogram(sources[order[i % len(sources)]]), rng)
        else:
            hyp = choose_hypnogram(rng, hours=hours if hours is not None else 8.0, sources=[])
        if plan.extra.get("excerpt_epochs"):
            hyp = _excerpt(hyp, int(plan.extra["excerpt_epochs"]), rng)
        hyp = _ensure_stage4(hyp, rng)
        events: list[dict] = []
        sig = simulate_sites(hyp.stages, _channel_requests(plan), rng, subject, n3_depth=_n3_depth(hyp, rng),
                             events=events)
        for c in plan.channels:
            if c.kind == "emg_envelope":
                sig[c.label] = emg_envelope(sig[c.label], c.sim_sfreq, c.sfreq)
            elif c.kind != "signal":
                sig[c.label] = _aux_signal(c.kind, hyp.stages, c.sfreq, rng)
        files = profile.write(out_dir, plan, hyp, sig, subject)
        # where events were placed, beside each signal EDF (not the annotation-only ones)
        ev_file = write_events(events_path(files[0]), events)  # write() returns the PSG first
        counts = {STAGE_NAMES[k]: int(np.sum(hyp.stages == k)) for k in STAGE_NAMES}
        records.append({
            "id": plan.rec_id,
            "subject": plan.subject,
            "files": [Path(f) for f in files],
            "events": ev_file,
            "stages": hyp.stages.copy(),
            "hypnogram_source": hyp.source,
            "subject_params": subject,
        })
        meta.append({
            "id": plan.rec_id,
            "subject": plan.subject,
            "files": [Path(f).name for f in files],
            "events": ev_file.name,
            "start": plan.start.isoformat(),
            "n_epochs": int(len(hyp)),
            "hours": round(len(hyp) * EPOCH_SEC / 3600, 3),
            "stage_counts": counts,
            "stages": "".join("?W123R"[int(k) + 1] for k in hyp.stages),  # one char per 30 s, ? = -1
            "hypnogram_source": hyp.source,
            "hypnogram_crop_epochs": hyp.meta.get("crop_epochs"),
            "added_movement_epochs": hyp.meta.get("added_movement", []),
            "channels": [
                {"label": c.label, "site": c.site, "sfreq": c.sfreq, "dimension": c.dimension, "kind": c.kind}
                for c in plan.channels
            ],
            "plan": plan.extra,
            "subject_params": subject,
        })
    info = {
        "simulated": True,
        "note": NOTE,
        "format_version": FORMAT_VERSION,
        "dataset": profile.name,
        "seed": int(seed),
        "n_recordings": int(n_recordings),
        "hours": hours,
        "recordings": meta,
    }
    (out_dir / "simulation.json").write_text(json.dumps(info, indent=1))
    return records
