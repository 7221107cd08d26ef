"""train.py: DDP under torchrun (Gloo, CPU), exact resume, and learning on simulated PSG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from preprocess.core.channels import CANONICAL
from preprocess.core.hdf5 import write_manifest, write_recording

REPO = Path(__file__).resolve().parents[1]


def toy_root(root: Path, datasets: dict[str, int], n_epochs: int = 48, seed: int = 0) -> Path:
    """Small random recordings (one per subject) whose signals depend on the stage.

    ``datasets`` maps a dataset name to its number of subjects. Each recording gets a random
    subset of 1-3 canonical channels; stage k adds a sine of 2k + 1 Hz to noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / 100.0
    for name, n_subjects in datasets.items():
        for s in range(n_subjects):
            stages = rng.integers(-1, 5, n_epochs).astype(np.int8)
            chans = sorted(rng.choice(9, size=int(rng.integers(1, 4)), replace=False))
            x = rng.standard_normal((n_epochs, len(chans), 3000)).astype(np.float32)
            x += np.sin(2 * np.pi * (2 * np.maximum(stages, 0)[:, None, None] + 1) * t)
            write_recording(root / name / f"{name}{s:02d}.h5", x, [CANONICAL[c] for c in chans], stages,
                            dataset=name, subject=f"{name}-s{s}", recording=f"{name}{s:02d}")
        write_manifest(root / name)
    return root


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["OMP_NUM_THREADS"] = "1"
    return e


TINY = ["--model", "lpsgm-small", "--seq-len", "5", "--batch-size", "2", "--workers", "0", "--lr", "1e-3",
        "--warmup-steps", "2", "--log-every", "1", "--val-fraction", "0.25", "--wake-margin", "-1",
        "--channel-dropout", "0.5", "--mixing", "temperature", "--precision", "fp32", "--device", "cpu"]


def test_torchrun_two_ranks_keep_identical_weights(tmp_path):
    root = toy_root(tmp_path / "h5", {"aa": 4, "bb": 3})
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "train.py"), "--data", str(root), "--out", str(out), "--max-steps", "4",
           "--eval-every", "2", "--ckpt-every", "2", "--seed", "3", *TINY]
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    done = [r for r in records if r["split"] == "done"]
    assert len(done) == 1 and len(done[0]["weights_sha256"]) == 2
    assert len(set(done[0]["weights_sha256"])) == 1, "ranks diverged"
    assert [r["step"] for r in records if r["split"] == "val"] == [2, 4]
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    # the saved weights are the ranks' weights (hash of the checkpoint = hash both ranks reported)
    from engine.loop import params_sha256
    from models import load_checkpoint

    assert params_sha256(load_checkpoint(out / "last")) == done[0]["weights_sha256"][0]
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 4 and len(state["rng"]) == 2
    assert state["rng"][0]["torch"].tolist() != state["rng"][1]["torch"].tolist()  # own dropout streams
    best = json.loads((out / "best.json").read_text())
    assert best["selected_on"] == "val/macro_f1" and best["step"] in (2, 4)
    assert best["metrics"]["macro_f1"] is not None and best["provenance"]["torch"] == torch.__version__


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    import train

    root = toy_root(tmp_path / "h5", {"aa": 4, "bb": 2}, seed=1)
    common = ["--data", str(root), "--max-steps", "6", "--eval-every", "3", "--ckpt-every", "2",
              "--seed", "5", "--deterministic", *TINY]
    common[common.index("--workers") + 1] = "1"  # exercise a DataLoader worker too
    try:
        full = train.main(common + ["--out", str(tmp_path / "full")])
        part = train.main(common + ["--out", str(tmp_path / "resumed"), "--stop-at", "4"])
        assert part["step"] == 4 and not (tmp_path / "resumed" / "test_metrics.json").exists()
        state = torch.load(tmp_path / "resumed" / "state.pt", weights_only=True)
        assert state["step"] == 4 and state["sampler"]["epoch"] >= 0
        resumed = train.main(common + ["--out", str(tmp_path / "resumed"), "--resume"])
    finally:
        torch.use_deterministic_algorithms(False)  # --deterministic is process-wide; do not leak it
    assert full["step"] == resumed["step"] == 6
    a = load_file(tmp_path / "full" / "last.safetensors")
    b = load_file(tmp_path / "resumed" / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = (torch.load(tmp_path / d / "state.pt", weights_only=True) for d in ("full", "resumed"))
    for k in sa["optimizer"]["state"]:
        assert torch.equal(sa["optimizer"]["state"][k]["exp_avg"], sb["optimizer"]["state"][k]["exp_avg"])
    assert sa["rng"][0]["torch"].tolist() == sb["rng"][0]["torch"].tolist()
    assert full["best_step"] == resumed["best_step"]
    # the resumed run's log reads as one run: each step logged once
    steps = [json.loads(x)["step"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["split"] == "train"]
    assert steps == list(range(1, 7))


# ---- learning on simulated PSG: train on one simulated montage, test on another ---------------

# Measured on simulated data (2-core CPU, this configuration): held-out Sleep-EDF-montage accuracy
# 0.75 after 80 steps (kappa 0.66, 216 s CPU); chance (5 classes) is 0.2, the majority class ~0.35.
# The realism-calibrated simulator (site-dependent spectra, per-recording amplifier filters/gain)
# made the cross-montage task harder: trained on its default spread the model reached 0.54 (the old
# simulator gave 0.85 with the same code). The training nights are therefore domain-randomised
# (spread=2: wider tilt, amplitude, noise, filters, gain), as for the shipped demo weights; the test
# nights keep the default realism.
LEARN_BAR = 0.60


@pytest.mark.slow
def test_learns_simulated_psg_and_transfers_to_another_montage(tmp_path):
    """Train on the simulated HMC montage (C3-M2 + E1-M2, 256 Hz EDF), test on simulated Sleep-EDF
    subjects (Fpz-Cz as F3, Pz-Oz as O1, horizontal ROC-LOC EOG as E1; 100 Hz), both through the
    real preprocessing pipeline. SIMULATED data: the number says that learning happens, nothing
    about real sleep staging."""
    import simulate
    import train
    from data import WindowDataset, load_recordings
    from engine.loop import evaluate
    from models import load_checkpoint
    from preprocess.core.pipeline import run_dataset
    from preprocess.datasets import get_dataset

    t0, cpu0 = time.time(), time.process_time()
    simulate.generate(tmp_path / "raw" / "hmc", 8, seed=11, dataset="hmc", hours=2.0, spread=2.0)
    simulate.generate(tmp_path / "raw" / "sleepedf", 4, seed=12, dataset="sleepedf", hours=2.0)
    run_dataset(get_dataset("hmc"), tmp_path / "raw" / "hmc", tmp_path / "train", progress=False)
    run_dataset(get_dataset("sleepedf"), tmp_path / "raw" / "sleepedf", tmp_path / "test", progress=False)
    t1 = time.time()
    out = tmp_path / "run"
    train.main(["--data", str(tmp_path / "train"), "--channels", "C3", "E1", "--model", "lpsgm-small",
                "--seq-len", "10", "--batch-size", "8", "--lr", "1e-3", "--warmup-steps", "10",
                "--max-steps", "80", "--min-lr-ratio", "0.05", "--val-fraction", "0", "--workers", "0",
                "--channel-dropout", "0.5", "--eval-every", "1000", "--ckpt-every", "1000",
                "--log-every", "20", "--seed", "0", "--device", "cpu", "--out", str(out)])
    t2 = time.time()
    model = load_checkpoint(out / "last")
    test = WindowDataset(load_recordings(tmp_path / "test"), seq_len=10, wake_margin=30)
    assert {c for names in test.channel_names for c in names} == {"F3", "O1", "E1"}
    metrics, _ = evaluate(model, test, torch.device("cpu"), batch_size=16)
    print(f"simulated cross-montage accuracy {metrics['accuracy']:.3f} macro-F1 {metrics['macro_f1']:.3f} "
          f"kappa {metrics['kappa']:.3f} (data {t1 - t0:.0f} s, training {t2 - t1:.0f} s, "
          f"eval {time.time() - t2:.0f} s; CPU time {time.process_time() - cpu0:.0f} s)")
    assert metrics["n_epochs"] > 500
    assert metrics["accuracy"] > LEARN_BAR, metrics["confusion"]
    assert metrics["kappa"] > 0.4
