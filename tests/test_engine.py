"""engine/: LR schedule, metrics, loss, state files, distributed helpers, whole-recording evaluation."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.distributed import all_gather_object, setup_distributed
from engine.loop import evaluate, predict, weighted_cross_entropy
from engine.metrics import evaluate_predictions, staging_metrics
from engine.optim import WarmupCosine, build_optimizer, lr_factor, param_groups
from engine.state import atomic_torch_save, get_rng_state, load_state, save_state, set_rng_state

# ---- learning-rate schedule -------------------------------------------------------------------


@pytest.mark.parametrize("warmup,total,ratio", [(10, 100, 0.01), (0, 50, 1e-4), (1, 1, 0.5), (30, 20, 0.1)])
def test_lr_never_zero_and_has_warmup_cosine_shape(warmup, total, ratio):
    f = np.array([lr_factor(s, warmup, total, ratio) for s in range(total + 20)])
    assert f.min() >= ratio > 0
    assert f[0] > 0                                   # step 0 of warmup already trains
    assert f.max() == pytest.approx(1.0)
    w = min(warmup, total)
    assert np.all(np.diff(f[: w]) > 0)                # warmup increases (strictly: no flat start)
    assert np.all(np.diff(f[w:total + 1]) <= 1e-12)   # cosine decreases
    if total > warmup:
        assert f[total] == pytest.approx(ratio) and np.all(f[total:] == pytest.approx(ratio))


def test_lr_factor_known_values():
    assert [round(lr_factor(s, 2, 6, 0.1), 3) for s in range(7)] == [0.55, 1.0, 1.0, 0.868, 0.55, 0.232, 0.1]
    assert lr_factor(0, 1000, 2000, 0.01) == pytest.approx(0.01 + 0.99 / 1000)  # never 0 at step 0
    mid = lr_factor(1500, 1000, 2000, 0.0 + 1e-9)
    assert mid == pytest.approx(0.5, abs=1e-6)        # half way through the cosine


def test_scheduler_scales_each_group_and_round_trips():
    backbone, head = nn.Linear(3, 3), nn.Linear(3, 2)
    opt = build_optimizer(param_groups(backbone.named_parameters(), 1e-4, 0.1, "backbone")
                          + param_groups(head.named_parameters(), 1e-2, 0.1, "head"))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0, 0.1, 0.0]  # no decay on biases
    sched = WarmupCosine(opt, warmup_steps=4, total_steps=10, min_ratio=0.1)
    assert sched.get_last_lr() == pytest.approx([3.25e-5, 3.25e-5, 3.25e-3, 3.25e-3])  # 0.1 + 0.9 / 4
    for _ in range(6):
        sched.step()
    state = sched.state_dict()
    lrs = sched.get_last_lr()
    opt2 = build_optimizer(param_groups(backbone.named_parameters(), 1e-4, 0.1)
                           + param_groups(head.named_parameters(), 1e-2, 0.1))
    sched2 = WarmupCosine(opt2, 4, 10, 0.1)
    sched2.load_state_dict(state)
    assert sched2.get_last_lr() == pytest.approx(lrs)


# ---- metrics ----------------------------------------------------------------------------------


def test_metrics_match_a_hand_computed_confusion():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, -1, -1]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 0, 4, 0]
    m = staging_metrics(y_true, y_pred)
    cm = np.array([[2, 1, 0, 0, 0],
                   [0, 1, 1, 0, 0],
                   [0, 0, 3, 1, 0],
                   [0, 0, 0, 1, 0],
                   [1, 0, 0, 0, 1]])
    assert m["confusion"] == cm.tolist() and m["n_epochs"] == 12
    assert m["accuracy"] == pytest.approx(8 / 12)
    tp, fp, fn = np.diag(cm), cm.sum(0) - np.diag(cm), cm.sum(1) - np.diag(cm)
    f1 = 2 * tp / (2 * tp + fp + fn)                  # W 4/6, N1 2/4, N2 6/8, N3 2/4, REM 2/3
    assert list(m["f1"].values()) == pytest.approx(f1.tolist())
    assert m["macro_f1"] == pytest.approx(f1.mean())
    n = cm.sum()
    po, pe = np.trace(cm) / n, (cm.sum(0) * cm.sum(1)).sum() / n**2
    assert m["kappa"] == pytest.approx((po - pe) / (1 - pe))


def test_metrics_pooled_and_per_recording():
    per = {"a": (np.array([0, 0, 2, 2]), np.array([0, 0, 2, 2])),
           "b": (np.array([2, 2, -1, 3]), np.array([0, 2, 2, 3]))}
    m = evaluate_predictions(per)
    assert m["n_epochs"] == 7 and m["accuracy"] == pytest.approx(6 / 7)
    assert m["per_recording"]["a"]["accuracy"] == 1.0
    assert m["per_recording"]["b"]["accuracy"] == pytest.approx(2 / 3)
    assert m["mean_recording"]["accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    # a class absent from truth and prediction has no F1 and does not drag the macro average
    assert np.isnan(m["per_recording"]["a"]["f1"]["N1"]) and m["per_recording"]["a"]["macro_f1"] == 1.0


# ---- loss ----------------------------------------------------------------------------------


def test_weighted_cross_entropy_ignores_unknown_and_matches_torch():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, requires_grad=True)
    labels = torch.tensor([[0, 1, -1, 4], [2, 2, 3, -1], [-1, -1, 0, 1]])
    w = torch.tensor([0.5, 2.0, 1.0, 1.5, 1.0])
    ours = weighted_cross_entropy(logits, labels, w)
    ref = F.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), weight=w, ignore_index=-1)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    empty = weighted_cross_entropy(logits, torch.full((3, 4), -1), w)
    empty.backward()                                  # still differentiable (DDP needs a graph)
    assert empty.item() == 0.0 and logits.grad.abs().sum().item() == 0.0


# ---- state -----------------------------------------------------------------------------------


def test_state_round_trip_with_weights_only(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    opt = build_optimizer(param_groups(model.named_parameters(), 1e-3, 0.01))
    sched = WarmupCosine(opt, 2, 10)
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    sched.step()
    rng = get_rng_state()
    expect = (random.random(), np.random.rand(), torch.rand(3).tolist())
    path = save_state(tmp_path / "state.pt", model=model, optimizer=opt, scheduler=sched, step=7,
                      sampler={"epoch": 2, "consumed": 64}, rng=[rng], extra={"best": 0.5})
    assert not list(tmp_path.glob(".*tmp"))           # atomic: no temp file left behind
    state = load_state(path)                          # weights_only=True inside
    assert state["step"] == 7 and state["sampler"] == {"epoch": 2, "consumed": 64}
    assert state["extra"]["best"] == 0.5 and state["scheduler"]["last_step"] == 1
    torch.testing.assert_close(state["model"]["1.running_mean"], model[1].running_mean)
    opt2 = build_optimizer(param_groups(model.named_parameters(), 1e-3, 0.01))
    opt2.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"][0])
    assert (random.random(), np.random.rand(), torch.rand(3).tolist()) == expect


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    path = atomic_torch_save({"a": 1}, tmp_path / "x.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True) == {"a": 1}
    assert not list(tmp_path.glob(".*tmp"))


# ---- distributed helpers (single process) ----------------------------------------------------


def test_single_process_without_torchrun(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    info = setup_distributed(device="cpu")
    assert (info.rank, info.world_size, info.is_main, info.distributed) == (0, 1, True, False)
    assert info.device == torch.device("cpu")
    assert all_gather_object({"x": 1}) == [{"x": 1}]


# ---- whole-recording evaluation --------------------------------------------------------------


class EpochEcho(nn.Module):
    """Stub model: predicts stage (epoch index % 5) read from sample 0, as a one-hot logit."""

    def __init__(self):
        super().__init__()
        self.cfg = SimpleNamespace(n_classes=5)
        self.calls = 0

    def forward(self, x, channels):
        self.calls += 1
        idx = x[:, :, 0, 0].round().long()            # (B, L) epoch index of each position
        return F.one_hot(idx % 5, 5).float()


def test_predict_covers_every_epoch_and_sums_overlapping_windows(tmp_path):
    from data import WindowDataset, load_recordings
    from tests.test_data import make_root

    stages = [i % 5 for i in range(47)]
    stages[3] = -1
    root = make_root(tmp_path, {"d": [("r1", "s1", stages, ["C3"]), ("r2", "s2", stages[:13], ["C4", "E1"])]})
    ds = WindowDataset(load_recordings(root), seq_len=10)
    model = EpochEcho()
    sums = predict(model, ds, [0, 1], torch.device("cpu"), batch_size=3, stride=4)
    assert sums[0].shape == (47, 5) and not np.isnan(sums[0]).any()
    starts = ds.cover_windows(0, 4)
    expected_counts = np.zeros(47)
    for _, s in starts:
        expected_counts[s:s + 10] += 1
    # one probability vector per covering window (softmax sums are 1 to float64 rounding)
    np.testing.assert_allclose(sums[0].sum(1), expected_counts, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(sums[0].argmax(1), np.arange(47) % 5)
    np.testing.assert_array_equal(sums[1].argmax(1), np.arange(13) % 5)
    metrics, preds = evaluate(model, ds, torch.device("cpu"), batch_size=4, stride=10)
    assert metrics["accuracy"] == 1.0 and metrics["n_epochs"] == 46 + 12
    y_true, y_pred = preds["d/r1"]
    assert y_true[3] == -1 and y_pred[3] == 3
