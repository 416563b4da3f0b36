"""The training speed-ups keep the functions they compute: fused heads, the cheap dropout mask, prepared loss weights."""
from __future__ import annotations

import pytest
import torch

from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.model.nn import EnsembleDropout, StageLayout, StageNet

pytestmark = pytest.mark.unit


def _net(head_hidden: list[int], dropout: float = 0.1, targets: int = 4) -> StageNet:
    torch.manual_seed(0)
    spec = StageSpec(
        name="s", dataset="d", numeric_inputs=["a", "b", "c"], categorical_inputs=["k"],
        targets=[TargetSpec(column=f"y{j}", bounds="positive" if j else "real") for j in range(targets)],
        latent_dim=5, head_hidden=head_hidden, head_dropout=dropout,
    )
    return StageNet(spec, StageLayout(0, 3, (("u", "v"),)), members=3)


@pytest.mark.parametrize("members", [None, slice(1, 3), slice(0, 1)])
def test_fused_heads_compute_what_the_heads_compute_one_by_one(members: slice | None) -> None:
    net = _net([7]).eval()
    z = torch.randn(3, 6, 5)
    zs = z if members is None else z[members]
    one_by_one = torch.cat([h(zs, members) for h in net.heads], dim=-1)
    fused = net.predict_from_latent(zs, members)
    assert fused.shape == one_by_one.shape == (zs.shape[0], 6, 4)
    assert torch.allclose(fused, one_by_one, atol=1e-6)


def test_fused_heads_keep_members_independent_and_train_every_head() -> None:
    net = _net([7]).train()
    out = net.predict_from_latent(torch.randn(3, 6, 5))
    out[1, :, 2].sum().backward()  # member 1, head 2 only
    for j, head in enumerate(net.heads):
        first, last = head.linear_layers()
        for p in (first.weight, last.weight):
            assert torch.count_nonzero(p.grad[0]) == 0 and torch.count_nonzero(p.grad[2]) == 0
            assert (torch.count_nonzero(p.grad[1]) > 0) == (j == 2)


def test_heads_of_other_depths_are_not_fused() -> None:
    net = _net([4, 3]).eval()
    z = torch.randn(3, 2, 5)
    assert torch.equal(net.predict_from_latent(z), torch.cat([h(z) for h in net.heads], dim=-1))


def test_cheap_dropout_drops_at_its_rate_and_keeps_the_mean() -> None:
    torch.manual_seed(1)
    drop = EnsembleDropout(0.1).train()
    x = torch.ones(5, 400, 101)  # an odd element count: the last 64-bit draw is only partly used
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(0.1, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / 0.9)]
    # every one of the four 16-bit lanes of a draw is used alike
    lanes = (y.flatten()[: (y.numel() // 4) * 4].view(-1, 4) == 0).float().mean(dim=0)
    assert torch.all((lanes - 0.1).abs() < 0.01)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        EnsembleDropout(1.0)


def test_cheap_dropout_is_seeded() -> None:
    drop = EnsembleDropout(0.3).train()
    x = torch.ones(2, 10, 9)
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    assert torch.equal(drop(x), a)
