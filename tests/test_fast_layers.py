"""The training speed-ups keep the functions they compute: fused heads, the cheap dropout mask, prepared loss weights."""
from __future__ import annotations

import pytest
import torch

from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.model.nn import EnsembleDropout, EnsembleMLP, StageLayout, StageNet, dropped_positions

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
    x = torch.ones(5, 400, 101)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert dropped == pytest.approx(0.1, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / 0.9)]
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        EnsembleDropout(1.0)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropped_positions_are_independent_bernoulli_draws(p: float) -> None:
    torch.manual_seed(2)
    n = 200_000
    pos = dropped_positions(n, p)
    assert pos.dtype == torch.int64 and bool((pos[1:] > pos[:-1]).all()) and int(pos[0]) >= 0 and int(pos[-1]) < n
    mask = torch.zeros(n, dtype=torch.bool)
    mask[pos] = True
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(mask.float().mean().item() - p) < 5 * sd
    # neighbours and every fourth element independent: P(both dropped) = p^2
    for lag in (1, 4):
        both = (mask[lag:] & mask[:-lag]).float().mean().item()
        assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / n) ** 0.5
    # the first position (a gap of one draw) is geometric: P(first element dropped) = p over many draws
    first = [int(bool((dropped_positions(50, p) == 0).any())) for _ in range(2000)]
    assert abs(sum(first) / 2000 - p) < 5 * (p * (1 - p) / 2000) ** 0.5
    assert len(dropped_positions(0, p)) == 0 and len(dropped_positions(10, 0.0)) == 0


def test_fused_dropout_gives_reference_dropout_values_and_gradients() -> None:
    """An MLP's fused ReLU + dropout (scale folded into the next layer) equals relu -> x * keep / (1 - p) -> linear, gradients included."""
    torch.manual_seed(3)
    mlp = EnsembleMLP(3, 4, [50], 2, dropout=0.2).double().train()
    x = torch.randn(3, 7, 4, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(11)
    y = mlp(x)
    torch.manual_seed(11)
    first, last = mlp.linear_layers()
    keep = torch.ones(3 * 7 * 50, dtype=torch.float64)
    keep[dropped_positions(keep.numel(), 0.2)] = 0.0
    x_ref = x.detach().clone().requires_grad_(True)
    hidden = torch.relu(torch.baddbmm(first.bias, x_ref, first.weight)) * keep.view(3, 7, 50) / 0.8
    y_ref = torch.baddbmm(last.bias, hidden, last.weight)
    assert torch.allclose(y, y_ref, atol=1e-12)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *mlp.parameters()], g)
    grads_ref = torch.autograd.grad(y_ref, [x_ref, *mlp.parameters()], g)
    for a, b in zip(grads, grads_ref):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fused_dropout_passes_gradcheck(activation: str) -> None:
    torch.manual_seed(4)
    mlp = EnsembleMLP(2, 3, [6], 2, activation=activation, dropout=0.3).double().train()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)

    def seeded(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(21)  # the same drops at every evaluation
        return mlp(inp)

    assert (seeded(x) != mlp.eval()(x)).any()  # something is dropped
    mlp.train()
    assert torch.autograd.gradcheck(seeded, (x,))


def test_cheap_dropout_is_seeded() -> None:
    drop = EnsembleDropout(0.3).train()
    x = torch.ones(2, 10, 9)
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    assert torch.equal(drop(x), a)


@pytest.mark.parametrize("members", [None, slice(1, 3)])
def test_columnwise_links_are_the_per_target_links(members: slice | None) -> None:
    """Real, positive and fraction targets linked all at once give the per-target links' values and gradients."""
    torch.manual_seed(6)
    spec = StageSpec(
        name="s", dataset="d", numeric_inputs=["a"], latent_dim=2, head_hidden=[3],
        targets=[TargetSpec(column="r"), TargetSpec(column="p", bounds="positive"), TargetSpec(column="f", bounds="fraction")],
    )
    net = StageNet(spec, StageLayout(0, 1, ()), members=3)
    net.set_target_standardisation(torch.rand(3, 3).numpy(), (0.1 + torch.rand(3, 3)).numpy())
    h = (3 * torch.randn(3 if members is None else 2, 40, 3, dtype=torch.float64)).requires_grad_(True)
    assert net._columnwise
    fast = net.standardised_targets(h, members)
    g_fast, = torch.autograd.grad(fast.sum(), h)
    net._columnwise = False
    slow = net.standardised_targets(h, members)
    g_slow, = torch.autograd.grad(slow.sum(), h)
    assert torch.allclose(fast, slow, atol=1e-12) and torch.allclose(g_fast, g_slow, atol=1e-12)
    assert not torch.allclose(fast, h)  # the links bend somewhere: the comparison is not trivially met


def test_dropout_as_a_bool_mask_drops_the_same_elements_as_positions() -> None:
    """The mask form (other devices than the CPU) zeroes exactly what the positions form zeroes, gradients included."""
    from nestedae_core.model.nn import _ReluDrop

    torch.manual_seed(8)
    x = torch.randn(2, 30, 7)
    pos = dropped_positions(x.numel(), 0.3)
    mask = torch.zeros(x.numel(), dtype=torch.bool)
    mask[pos] = True
    outs, grads = [], []
    for drop in (pos, mask.view(x.shape)):
        xi = x.clone().requires_grad_(True)
        out = _ReluDrop.apply(xi * 1.0, drop)
        out.backward(torch.ones_like(out))
        outs.append(out.detach())
        grads.append(xi.grad)
    assert torch.equal(outs[0], outs[1]) and torch.equal(grads[0], grads[1])
    assert torch.equal(outs[0], torch.relu(x).masked_fill(mask.view(x.shape), 0.0))


def test_target_standardisation_works_in_and_after_inference_mode() -> None:
    """The converted target mean/scale (cached per dtype) never hands autograd a tensor made in inference mode,
    and buffers set in inference mode (a bundle loaded inside ``torch.inference_mode``) still convert."""
    net = _net([7]).eval()
    h = torch.randn(3, 6, 4)
    net.set_target_standardisation(torch.zeros(3, 4).numpy(), torch.ones(3, 4).numpy())
    expected = net.target_units(h).detach()
    net.set_target_standardisation(torch.zeros(3, 4).numpy(), torch.ones(3, 4).numpy())
    with torch.inference_mode():  # the first float32 conversion after the change happens here
        assert torch.allclose(net.target_units(h), expected)
    hg = h.clone().requires_grad_(True)
    net.target_units(hg).sum().backward()  # would raise: "Inference tensors cannot be saved for backward"
    assert hg.grad is not None and bool((hg.grad > 0).all())
    with torch.inference_mode():
        net.set_target_standardisation(torch.zeros(3, 4).numpy(), torch.ones(3, 4).numpy())
        assert torch.allclose(net.target_units(h), expected)  # would raise: "Inference tensors do not track version counter"
    with torch.no_grad():
        assert torch.allclose(net.target_units(h), expected)


def test_bound_columns_are_made_once_per_device_and_serve_autograd_after_inference_mode() -> None:
    """The positive/fraction column masks are built once (no host-to-device copy every step), outside inference mode."""
    net = _net([7]).eval()
    h = torch.randn(3, 6, 4)
    with torch.inference_mode():  # the first use of the masks happens here
        first = net.target_units(h)
    mask = net._bound_columns("positive", h.device)
    assert mask.tolist() == [False, True, True, True] and mask is net._bound_columns("positive", h.device)
    assert not mask.is_inference()
    hg = h.clone().requires_grad_(True)
    out = net.target_units(hg)
    out.sum().backward()  # would raise if the mask had been made in inference mode
    assert torch.allclose(out.detach(), first) and hg.grad is not None
