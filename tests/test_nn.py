"""Ensemble-batched layers: members are independent models."""
from __future__ import annotations

import pytest
import torch

from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.model.nn import EnsembleLinear, StageLayout, StageNet

pytestmark = pytest.mark.unit


def test_ensemble_linear_matches_per_member_affine_maps() -> None:
    torch.manual_seed(0)
    layer = EnsembleLinear(3, 4, 2)
    x = torch.randn(3, 5, 4)
    y = layer(x)
    for m in range(3):
        assert torch.allclose(y[m], x[m] @ layer.weight[m] + layer.bias[m][0], atol=1e-6)


def test_members_do_not_share_gradients() -> None:
    torch.manual_seed(0)
    spec = StageSpec(name="s", dataset="d", numeric_inputs=["a", "b", "c"], categorical_inputs=["k"], targets=[TargetSpec(column="y")], latent_dim=2)
    net = StageNet(spec, StageLayout(0, 3, (("u", "v"),)), members=3)
    x = torch.randn(3, 8, 5)
    z, pred, cont, logits = net(x)
    assert z.shape == (3, 8, 2) and pred.shape == (3, 8, 1) and cont is not None and cont.shape == (3, 8, 3)
    assert logits[0].shape == (3, 8, 2)
    pred[1].sum().backward()  # a loss of member 1 only
    with_grad = [p for p in net.parameters() if p.grad is not None]
    assert any(torch.count_nonzero(p.grad[1]) for p in with_grad)  # member 1 learns ...
    for p in with_grad:
        assert torch.count_nonzero(p.grad[0]) == 0 and torch.count_nonzero(p.grad[2]) == 0  # ... alone
    assert net.l1_penalty().shape == (3,)


def test_a_member_slice_runs_only_those_members() -> None:
    """``members=slice`` gives the selected members' outputs of the full ensemble (how one fold model is explained)."""
    torch.manual_seed(0)
    spec = StageSpec(name="s", dataset="d", numeric_inputs=["a", "b"], categorical_inputs=["k"], targets=[TargetSpec(column="y")], latent_dim=2, head_dropout=0.5)
    net = StageNet(spec, StageLayout(0, 2, (("u", "v", "w"),)), members=4).eval()
    x = torch.randn(4, 6, 5)
    with torch.no_grad():
        z = net.encode(x)
        y = net.predict_from_latent(z)
        for sel in (slice(1, 2), slice(2, 4), slice(None)):
            zs = net.encode(x[sel], members=sel)
            assert zs.shape == z[sel].shape
            assert torch.allclose(zs, z[sel], atol=1e-6)
            assert torch.allclose(net.predict_from_latent(zs, members=sel), y[sel], atol=1e-6)
    assert torch.equal(net.encode(x), z)  # None: every member, as before


def test_target_standardisation_is_not_part_of_the_saved_weights() -> None:
    """Bundles keep the target mean/scale in preprocessing.json: the state dict is what it always was."""
    import numpy as np
    import pytest

    spec = StageSpec(name="s", dataset="d", numeric_inputs=["a"], targets=[TargetSpec(column="y", bounds="positive"), TargetSpec(column="f", bounds="fraction")], latent_dim=2)
    net = StageNet(spec, StageLayout(0, 1, ()), members=2)
    assert not any("target" in k for k in net.state_dict())
    assert net.bounds == ("positive", "fraction")
    net.set_target_standardisation(np.array([[1.0, 0.5], [2.0, 0.6]]), np.array([[0.1, 0.1], [0.2, 0.1]]))
    assert net.target_mean.shape == (2, 1, 2) and net.target_mean.dtype == torch.float64
    again = StageNet(spec, StageLayout(0, 1, ()), members=2)
    again.load_state_dict(net.state_dict(), strict=True)
    with pytest.raises(ValueError, match="shape"):
        net.set_target_standardisation(np.zeros((3, 2)), np.ones((3, 2)))
