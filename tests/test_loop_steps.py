"""The shared optimisation loop (engine.loop.train_steps): device-side losses, one read per log line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.loop import LossMeter, train_step, train_steps, weighted_cross_entropy
from models import unwrap


class Tiny(nn.Module):
    """``model(x, channels)`` -> (B, L, 5) logits from the mean of each epoch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 5)

    def forward(self, x, channels):
        return self.lin(x.mean(dim=(2, 3)).unsqueeze(-1))


def batches(n, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        labels = torch.randint(-1, 5, (4, 3), generator=g)
        x = labels.clamp_min(0).float()[..., None, None].expand(4, 3, 1, 8) + 0.1 * torch.randn(4, 3, 1, 8, generator=g)
        yield {"x": x, "channels": torch.zeros(4, 1, dtype=torch.long), "labels": labels}


def test_train_step_returns_device_tensors_equal_to_the_loss():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = next(batches(1))
    with torch.no_grad():
        want = weighted_cross_entropy(model(batch["x"], batch["channels"]), batch["labels"])
    stats = train_step(model, batch, opt, torch.device("cpu"), bf16=False)
    assert isinstance(stats["loss"], torch.Tensor) and stats["loss"].dim() == 0
    assert not stats["loss"].requires_grad
    assert float(stats["loss"]) == pytest.approx(float(want), rel=1e-6)
    assert float(stats["grad_norm"]) > 0
    assert np.isnan(float(train_step(model, batch, opt, torch.device("cpu"), grad_clip=0, bf16=False)["grad_norm"]))


def test_train_steps_steps_the_scheduler_and_learns():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.99)
    meter, first = LossMeter(), None
    for i, (_, stats) in enumerate(train_steps(model, batches(60), opt, sched, torch.device("cpu"), bf16=False)):
        meter.add(stats["loss"])
        if i == 9:
            first = meter.mean()
    assert sched.last_epoch == 60
    assert meter.mean() < first  # mean loss of steps 11-60 below that of steps 1-10


def test_loss_meter_reads_once_and_resets():
    m = LossMeter()
    for v in (0.5, 1.0, 3.0):
        m.add(torch.tensor(v))
    assert m.mean() == pytest.approx(1.5)
    assert np.isnan(m.mean())


def test_unwrap_strips_nested_wrappers():
    model = Tiny()

    class Compiled(nn.Module):  # what torch.compile returns: the model under _orig_mod
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

    assert unwrap(Compiled(nn.DataParallel(model))) is model
    assert unwrap(model) is model


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_no_host_sync_inside_a_training_step():
    device = torch.device("cuda")
    model = Tiny().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    data = [{k: v.to(device) for k, v in b.items()} for b in batches(3)]
    w = torch.ones(5, device=device)
    next(train_steps(model, data[:1], opt, sched, device, w, bf16=False))  # warm-up (lazy init may sync)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in train_steps(model, data[1:], opt, sched, device, w, bf16=False):
            pass
    finally:
        torch.cuda.set_sync_debug_mode(0)
