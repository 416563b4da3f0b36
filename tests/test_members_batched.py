"""Issue 19, item 1: the k members of a stage train at once, as one batched network, and that is the
same as training them one at a time.

The batched loop (:func:`nestedae_core.train.loop.fit_stage`) runs every member's forward pass as one
batched matrix product and takes one optimiser step for all members; each member's loss only reaches
its own weights, and Adam's state is per weight. So member ``m`` of a batched run, started from the
same weights, ends where a one-member run of member ``m`` ends: **the same predictions within
floating-point tolerance** (not bitwise: the batched products sum in another order). That holds for
full-batch training without random draws (dropout, input noise), which is what these tests compare;
with dropout the masks are drawn for all members in one draw, so only accuracy within fold noise can
be compared (the side-by-side benchmark does that). Masks for missing targets and each member's own
rows, the cosine schedule and the early-stopping best-epoch logic are covered here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.model.nn import StageLayout, StageNet
from nestedae_core.model.stacked import StackedModule
from nestedae_core.threads import limit_cpu_threads
from nestedae_core.train.loop import fit_stage
from nestedae_core.train.losses import StageData, loss_weights, member_rows_only, stage_losses

pytestmark = pytest.mark.unit

M, N = 3, 90


def _spec(**kw: object) -> StageSpec:
    base: dict[str, object] = dict(
        name="s", dataset="d", numeric_inputs=["a", "b", "c"], categorical_inputs=["k"],
        targets=[TargetSpec(column="y"), TargetSpec(column="f", bounds="fraction", loss="mse")],
        latent_dim=3, head_hidden=[16], head_dropout=0.0, input_noise=0.0, lr=2e-2, epochs=120, l2=1e-4,
    )
    base.update(kw)
    return StageSpec(**base)  # type: ignore[arg-type]


def _data(seed: int = 0) -> tuple[StageData, np.ndarray, np.ndarray]:
    """Random stage data: 3 numeric inputs + one categorical (2 levels); targets ``y`` (real) and ``f``
    (a fraction, missing on a third of the rows); member-specific standardisation; rows with duplicate inputs."""
    g = torch.Generator().manual_seed(seed)
    U = 60  # distinct inputs; N rows map onto them
    num = torch.randn(U, 3, generator=g)
    cat = torch.randint(0, 2, (U,), generator=g)
    x1 = torch.cat([num, torch.nn.functional.one_hot(cat, 2).float()], dim=1)
    inverse = torch.cat([torch.arange(U), torch.randint(0, U, (N - U,), generator=g)])
    y = torch.stack([num[inverse, 0] - num[inverse, 1] ** 2, torch.sigmoid(num[inverse, 2])], dim=1)
    ymask = torch.ones_like(y)
    ymask[torch.randperm(N, generator=g)[: N // 3], 1] = 0.0
    # each member standardises with its own (slightly different) mean/scale, as after per-fold preprocessing
    mean = np.array([[0.1 * m, 0.5] for m in range(M)])
    scale = np.array([[1.0 + 0.1 * m, 0.2] for m in range(M)])
    ystd = (y[None].double() - torch.as_tensor(mean)[:, None]) / torch.as_tensor(scale)[:, None]
    d = StageData(
        x=x1.expand(M, -1, -1).clone(), inverse=inverse,
        y=(ystd * ymask).float(), ymask=ymask.expand(M, -1, -1).clone(), cat_idx=[cat],
    )
    return d, mean, scale


def _member_masks(seed: int = 1, val: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each member trains on the rows outside its fold (3 folds); with ``val``, a tenth of them early-stop it."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(np.arange(N) % M)
    train = np.stack([fold != m for m in range(M)]).astype(np.float32)
    if not val:
        return torch.as_tensor(train), None
    valm = np.zeros_like(train)
    for m in range(M):
        own = np.flatnonzero(train[m])
        take = rng.choice(own, size=len(own) // 10, replace=False)
        valm[m, take], train[m, take] = 1.0, 0.0
    return torch.as_tensor(train), torch.as_tensor(valm)


def _one(d: StageData, m: int) -> StageData:
    return StageData(x=d.x[m : m + 1], inverse=d.inverse, y=d.y[m : m + 1], ymask=d.ymask[m : m + 1], cat_idx=d.cat_idx)


def _predict(net: StageNet, d: StageData) -> torch.Tensor:
    with torch.no_grad():
        return net.target_units(net.predict_from_latent(net.encode(d.x)).double())


def _plain_head() -> nn.Module:
    """A head written for one model (no ensemble dimension), as a physics head would be."""
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))


def _batched_and_one_at_a_time(spec: StageSpec, val: bool, plain_heads: bool = False) -> tuple[torch.Tensor, list[torch.Tensor], int, list[int]]:
    with limit_cpu_threads(1):  # as training runs (nestedae_core.threads); many threads only contend here
        return _compare(spec, val, plain_heads)


def _compare(spec: StageSpec, val: bool, plain_heads: bool) -> tuple[torch.Tensor, list[torch.Tensor], int, list[int]]:
    d, mean, scale = _data()
    train, valm = _member_masks(val=val)
    layout = StageLayout(0, 3, (("u", "v"),))
    torch.manual_seed(0)
    net = StageNet(spec, layout, M).set_target_standardisation(mean, scale)
    if plain_heads:
        net.heads = nn.ModuleList(StackedModule.from_factory(_plain_head, M) for _ in spec.targets)
    start = {k: v.detach().clone() for k, v in net.state_dict().items()}
    kw = dict(seed=0, report=lambda *a: None, should_stop=None)
    epochs_batched = fit_stage(net, spec, d, train, valm, **kw)  # type: ignore[arg-type]
    batched = _predict(net, d)
    singles, epochs_single = [], []
    for m in range(M):
        one = StageNet(spec, layout, 1).set_target_standardisation(mean[m : m + 1], scale[m : m + 1])
        if plain_heads:
            one.heads = nn.ModuleList(StackedModule([_plain_head()]) for _ in spec.targets)
        one.load_state_dict({k: v[m : m + 1] for k, v in start.items()})
        epochs_single.append(fit_stage(one, spec, _one(d, m), train[m : m + 1], None if valm is None else valm[m : m + 1], **kw))  # type: ignore[arg-type]
        singles.append(_predict(one, _one(d, m))[0])
    return batched, singles, epochs_batched, epochs_single


def test_batched_members_predict_as_members_trained_one_at_a_time() -> None:
    batched, singles, _, _ = _batched_and_one_at_a_time(_spec(epochs=60), val=False)
    for m in range(M):
        assert torch.allclose(batched[m], singles[m], atol=2e-4, rtol=1e-4), (m, float((batched[m] - singles[m]).abs().max()))
    # the members really differ (their rows and standardisation differ): the comparison is not trivially met
    assert float((batched[0] - batched[1]).abs().max()) > 1e-2
    # and training moved them away from their start
    d, mean, scale = _data()
    torch.manual_seed(0)
    untrained = _predict(StageNet(_spec(epochs=60), StageLayout(0, 3, (("u", "v"),)), M).set_target_standardisation(mean, scale), d)
    assert float((untrained - batched).abs().max()) > 1e-2


def test_early_stopping_keeps_each_members_own_best_epoch() -> None:
    """With patience, a batched member keeps the weights a one-member run keeps: its best epoch before it
    stalled for ``patience`` epochs, even though the batch goes on while another member still improves."""
    spec = _spec(patience=15, epochs=400, lr=5e-2, schedule="constant")
    batched, singles, epochs_batched, epochs_single = _batched_and_one_at_a_time(spec, val=True)
    assert min(epochs_single) < 400  # early stopping happened ...
    assert epochs_batched == max(epochs_single)  # ... and the batch ran until its last member stopped
    for m in range(M):
        assert torch.allclose(batched[m], singles[m], atol=2e-4, rtol=1e-4), (m, float((batched[m] - singles[m]).abs().max()))


def test_any_module_trains_batched_through_stacked_parameters() -> None:
    """The batching is generic: heads written for one model (plain ``nn.Linear`` layers) stacked with
    :class:`StackedModule` (``stack_module_state`` + ``vmap`` over ``functional_call``) train batched
    exactly as each member alone."""
    batched, singles, _, _ = _batched_and_one_at_a_time(_spec(epochs=60), val=False, plain_heads=True)
    for m in range(M):
        assert torch.allclose(batched[m], singles[m], atol=2e-4, rtol=1e-4), (m, float((batched[m] - singles[m]).abs().max()))
    assert float((batched[0] - batched[1]).abs().max()) > 1e-2


def test_stacked_module_is_its_members_side_by_side() -> None:
    torch.manual_seed(0)
    heads = [_plain_head() for _ in range(4)]
    stacked = StackedModule(heads)
    x = torch.randn(4, 5, 3)
    y = stacked(x)
    for m in range(4):
        assert torch.allclose(y[m], heads[m](x[m]), atol=1e-6)
        assert torch.allclose(stacked.member(m)(x[m]), heads[m](x[m]), atol=1e-6)
    assert torch.allclose(stacked(x[1:3], members=slice(1, 3)), y[1:3], atol=1e-6)
    y[2].sum().backward()  # member 2's loss reaches member 2's weights only
    for p in stacked.parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad[2]) > 0
        assert torch.count_nonzero(p.grad[[0, 1, 3]]) == 0
    with pytest.raises(ValueError, match="one architecture"):
        StackedModule([nn.Linear(3, 1), nn.Sequential(nn.Linear(3, 1))])


@pytest.mark.parametrize("val", [False, True])
def test_member_rows_only_keeps_every_loss(val: bool) -> None:
    """Each member reduced to its own rows (member_rows_only, what a full-batch fit trains on) has the losses and
    gradients of the full data, where the other rows carried weight 0."""
    spec = _spec()
    d, mean, scale = _data()
    train, valm = _member_masks(val=val)
    torch.manual_seed(0)
    net = StageNet(spec, StageLayout(0, 3, (("u", "v"),)), M).set_target_standardisation(mean, scale).eval()
    masks = [train] if valm is None else [train, valm]
    small, small_masks = member_rows_only(d, masks)
    assert small.x.shape[1] < d.x.shape[1] and small.y.shape[1] < d.y.shape[1]  # really fewer rows
    for full_mask, own_mask in zip(masks, small_masks):
        assert torch.allclose(own_mask.sum(dim=1), full_mask.sum(dim=1))
        lw_full = loss_weights(spec, d, None, full_mask / full_mask.sum(dim=1, keepdim=True))
        lw_own = loss_weights(spec, small, None, own_mask / own_mask.sum(dim=1, keepdim=True))
        total_full, target_full = stage_losses(net, spec, d, lw_full)
        grads_full = torch.autograd.grad(total_full.sum(), list(net.parameters()))
        total_own, target_own = stage_losses(net, spec, small, lw_own)
        grads_own = torch.autograd.grad(total_own.sum(), list(net.parameters()))
        assert torch.allclose(total_full, total_own, atol=1e-6) and torch.allclose(target_full, target_own, atol=1e-6)
        for a, b in zip(grads_full, grads_own):
            assert torch.allclose(a, b, atol=1e-6)


def test_categorical_loss_is_the_cross_entropy() -> None:
    """The categorical reconstruction term (logsumexp minus the picked logit) is torch's cross-entropy, weighted per input."""
    d, mean, scale = _data()
    train, _ = _member_masks()
    torch.manual_seed(0)
    spec = _spec(categorical_weight=1.0)
    net = StageNet(spec, StageLayout(0, 3, (("u", "v"),)), M).set_target_standardisation(mean, scale).eval()
    lw = loss_weights(spec, d, None, train / train.sum(dim=1, keepdim=True))
    with_ce, _ = stage_losses(net, spec, d, lw)
    without, _ = stage_losses(net, _spec(categorical_weight=0.0), d, lw)
    _, _, _, logits = net(d.x)
    ce = torch.nn.functional.cross_entropy(logits[0].reshape(-1, 2), d.cat_idx[0].expand(M, -1).reshape(-1), reduction="none").view(M, -1)
    expected = (ce * lw.inputs).sum(dim=1)
    assert float(expected.min()) > 0.1
    assert torch.allclose(with_ce - without, expected, atol=1e-6)
