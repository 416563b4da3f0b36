"""The training loop's optimiser (nestedae_core.train.optim.FlatAdam) is torch.optim.Adam's update on one flat buffer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nestedae_core.train.optim import FlatAdam, cosine_lr

pytestmark = pytest.mark.unit


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _loss(net: nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)
    return ((net(x) - y) ** 2).mean()


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_flat_adam_follows_torch_adam_with_the_cosine_schedule(weight_decay: float) -> None:
    ours, ref = _net(0), _net(0)
    steps, lr = 60, 5e-2
    opt = FlatAdam(ours.parameters(), lr=lr, weight_decay=weight_decay)
    topt = torch.optim.Adam(ref.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=steps)
    for s in range(steps):
        opt.zero_grad()
        _loss(ours, s).backward()
        opt.step()
        opt.lr = cosine_lr(lr, opt.steps, steps)
        topt.zero_grad()
        _loss(ref, s).backward()
        topt.step()
        sched.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
    moved = max(float((a - b).detach().abs().max()) for a, b in zip(ours.parameters(), _net(0).parameters()))
    assert moved > 0.05  # it trained
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-5), float((a - b).detach().abs().max())


def test_flat_adam_release_gives_each_parameter_its_own_storage() -> None:
    net = _net(1)
    before = [p.detach().clone() for p in net.parameters()]
    opt = FlatAdam(net.parameters(), lr=1e-2)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), before))  # moved into the buffer unchanged
    ptrs = {p.untyped_storage().data_ptr() for p in net.parameters()}
    assert len(ptrs) == 1  # one buffer while training
    opt.zero_grad()
    _loss(net, 0).backward()
    assert float(opt.grad.abs().sum()) > 0  # backward wrote into the flat gradient buffer
    opt.step()
    opt.release()
    ptrs = {p.untyped_storage().data_ptr() for p in net.parameters()}
    assert len(ptrs) == len(before) and all(p.grad is None for p in net.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(net.parameters(), before))


def test_flat_adam_refuses_no_parameters() -> None:
    with pytest.raises(ValueError, match="at least one parameter"):
        FlatAdam([], lr=1e-2)


def test_cosine_lr_ends_at_zero_and_starts_at_the_base() -> None:
    assert cosine_lr(0.02, 0, 100) == pytest.approx(0.02)
    assert cosine_lr(0.02, 50, 100) == pytest.approx(0.01)
    assert cosine_lr(0.02, 100, 100) == pytest.approx(0.0, abs=1e-15)
