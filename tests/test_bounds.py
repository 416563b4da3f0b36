"""Physical outputs built into the heads: positive targets never negative, fractions in (0, 1]."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nestedae_core.data.synthetic import generate
from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec
from nestedae_core.model.nn import StageLayout, StageNet
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.unit


def _net(bounds: list[str], members: int = 3) -> StageNet:
    torch.manual_seed(0)
    spec = StageSpec(name="s", dataset="d", numeric_inputs=["a", "b"], targets=[TargetSpec(column=f"t{j}", bounds=b) for j, b in enumerate(bounds)], latent_dim=3)
    return StageNet(spec, StageLayout(0, 2, ()), members)


def test_links_keep_every_value_in_its_physical_range() -> None:
    net = _net(["real", "positive", "fraction"])
    mean = np.array([[1.5, 15.0, 0.72]] * 3) + np.arange(3)[:, None] * [0.1, 1.0, 0.01]
    scale = np.array([[0.4, 5.0, 0.1]] * 3)
    net.set_target_standardisation(mean, scale)
    h = torch.cat([torch.linspace(-1e6, 1e6, 2001), torch.randn(2000) * 30]).reshape(1, -1, 1).expand(3, -1, 3)
    for dtype in (torch.float32, torch.float64):
        y = net.target_units(h.to(dtype))
        assert y.dtype == dtype and torch.isfinite(y).all()
        assert (y[..., 1] >= 0).all()  # positive: never negative
        assert (y[..., 2] > 0).all() and (y[..., 2] <= 1).all()  # fraction: in (0, 1]
    # a real target is exactly h * scale + mean
    y = net.target_units(h.double())
    expected = h.double()[..., 0] * torch.as_tensor(scale[:, None, 0]) + torch.as_tensor(mean[:, None, 0])
    assert torch.equal(y[..., 0], expected)
    # a member slice uses those members' standardisation
    assert torch.equal(net.target_units(h.double()[1:3], members=slice(1, 3)), y[1:3])


def test_links_are_the_identity_inside_the_data() -> None:
    net = _net(["positive", "fraction"], members=1)
    net.set_target_standardisation(np.array([[15.0, 0.7]]), np.array([[5.0, 0.08]]))
    # PCE-like: from one standard deviation above zero upwards the softplus is the identity (to 1e-4 scale)
    u = torch.linspace(5.0, 40.0, 200, dtype=torch.float64)
    h = torch.stack([(u - 15.0) / 5.0, torch.zeros_like(u)], dim=-1)[None]
    y = net.target_units(h)[0, :, 0]
    assert torch.allclose(y, u, atol=5e-4)
    # FF-like: the identity away from 0 and 1 (here from 0.1 to 0.9, to 1e-4)
    u = torch.linspace(0.1, 0.9, 81, dtype=torch.float64)
    h = torch.stack([torch.zeros_like(u), (u - 0.7) / 0.08], dim=-1)[None]
    ff = net.target_units(h)[0, :, 1]
    assert torch.allclose(ff, u, atol=1e-4)
    h = torch.tensor([[[0.0, -1e-4], [0.0, 0.0], [0.0, 1e-4]]], dtype=torch.float64)
    # and the loss sees (link - mean) / scale: h itself inside the data
    assert torch.allclose(net.standardised_targets(h), h, atol=1e-6)


def test_real_heads_train_on_the_raw_outputs() -> None:
    """Without bounds, the loss compares the heads' raw outputs (training as before)."""
    net = _net(["real", "real"]).eval()  # no dropout
    net.set_target_standardisation(np.full((3, 2), 3.0), np.full((3, 2), 2.0))
    x = torch.randn(3, 5, 2)
    z, pred, _, _ = net(x)
    assert torch.equal(pred, net.predict_from_latent(z))


# --------------------------------------------------------------------------- a trained chain with bounded heads


def _device_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """The synthetic chain with device targets like PCE (positive, many near 0) and FF (a fraction near 1)."""
    data = generate(n_materials=250, n_devices=900, seed=seed)
    dev = data.devices.copy()
    rng = np.random.default_rng(seed)
    dev["pce"] = np.log1p(np.exp(dev["y2"] - 13.0)) + np.abs(rng.normal(scale=0.05, size=len(dev)))  # >= 0, a third below 0.5
    dev["ff"] = 0.25 + 0.65 / (1.0 + np.exp(-(dev["y2"] - 8.0) / 2.0))  # in (0.25, 0.9), most above 0.7
    return {"materials": data.materials, "devices": dev}


def _bounded_spec(bounds: tuple[str, str] = ("positive", "fraction"), epochs: int = 250) -> ChainSpec:
    feats = [f"x{i}" for i in range(10)]
    return ChainSpec(
        name="bounded",
        stages=[
            StageSpec(name="materials", dataset="synthetic", numeric_inputs=feats, targets=[TargetSpec(column="y1", bounds="positive")],
                      latent_dim=6, head_hidden=[32], head_dropout=0.0, l1=1e-2, reconstruction_weight=0.1, epochs=epochs),
            StageSpec(name="devices", dataset="synthetic-devices", upstream=True, numeric_inputs=["d0", "d1", "d2"], categorical_inputs=["stack"],
                      targets=[TargetSpec(column="pce", bounds=bounds[0]), TargetSpec(column="ff", bounds=bounds[1])],
                      latent_dim=6, head_hidden=[32], head_dropout=0.0, l1=1e-2, epochs=epochs),
        ],
        folds=3,
    )


@pytest.fixture(scope="module")
def bounded():  # type: ignore[no-untyped-def]
    return cross_validate(_bounded_spec(), _device_tables(), device="cpu")


def _random_inputs(n: int, scale: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(scale=scale, size=(n, 10)), columns=[f"x{i}" for i in range(10)])
    for c in ("d0", "d1", "d2"):
        df[c] = rng.normal(scale=scale, size=n)
    df["stack"] = rng.choice(["layer_A", "layer_B", "layer_C"], size=n)
    return df


def test_random_and_extreme_inputs_give_physical_predictions(bounded) -> None:
    model = bounded.model
    frames = [_random_inputs(500, s, seed) for seed, s in enumerate((1.0, 10.0, 1e3))]
    extreme = _random_inputs(8, 1.0, 9)
    extreme.iloc[:, :13] = np.array([1e6, -1e6] * 4)[:, None] * np.sign(np.random.default_rng(1).normal(size=(8, 13)))
    for frame in (*frames, extreme):
        preds = model.predict(frame)
        pce, ff = preds["devices"].members[..., 0], preds["devices"].members[..., 1]
        assert np.isfinite(pce).all() and np.isfinite(ff).all()
        assert (pce >= 0).all()  # every fold model, every row
        assert (ff > 0).all() and (ff <= 1).all()
        assert (preds["materials"].members >= 0).all()
        lo, hi = preds["devices"].lower, preds["devices"].upper
        assert lo is not None and hi is not None
        assert (lo[:, 0] >= 0).all() and (lo[:, 1] >= 0).all() and (hi[:, 1] <= 1).all()



def test_without_bounds_the_same_chain_goes_unphysical() -> None:
    """The check above can fail: real heads on the same data predict negative PCE and FF above 1 somewhere."""
    model = cross_validate(_bounded_spec(("real", "real")), _device_tables(), device="cpu").model
    members = model.predict(_random_inputs(500, 1e3, 1))["devices"].members
    assert (members[..., 0] < 0).any() and ((members[..., 1] > 1) | (members[..., 1] <= 0)).any()


def test_bounded_heads_still_converge(bounded) -> None:
    oof = bounded.oof["devices"]
    for t in ("pce", "ff"):
        y, pred = oof[f"{t}_true"].to_numpy(), oof[f"{t}_pred"].to_numpy()
        baseline = np.mean(np.abs(y - np.median(y)))  # predicting the median
        assert np.mean(np.abs(y - pred)) < 0.5 * baseline, t
    assert bounded.metrics["devices"]["pce"]["r2"] > 0.8 and bounded.metrics["devices"]["ff"]["r2"] > 0.8


def test_explanations_run_the_same_bounded_heads(bounded) -> None:
    """The explained function goes through StageNet's own link: its outputs are the predictions, bounds included."""
    from nestedae_core.explain.explained_function import ExplainedFunction
    from nestedae_core.explain.settings import ExplainSettings

    model = bounded.model
    frame = _random_inputs(40, 10.0, 4)
    expected = model.predict(frame)["devices"]
    for dtype in ("float32", "float64"):
        f = ExplainedFunction(model, 1, "chain", [("target", 0), ("target", 1)], None, ExplainSettings(dtype=dtype))
        X, _, _ = f.encode_frames(frame, model.backgrounds[1])
        out = f(X)
        assert out.shape == (40, 2)
        assert np.allclose(out, expected.mean, rtol=1e-4, atol=1e-4)
        assert (out[:, 0] >= 0).all() and (out[:, 1] > 0).all() and (out[:, 1] <= 1).all()
