"""A residual target: the previous stage's prediction plus a bounded correction, in training, predictions and explanations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nestedae_core.data.synthetic import generate
from nestedae_core.errors import ConfigError
from nestedae_core.model.config import ChainSpec
from nestedae_core.perovskite.presets import preset
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.training

BOUND = 0.3


@pytest.fixture(scope="module")
def residual():  # type: ignore[no-untyped-def]
    gen = generate()
    spec = preset("synthetic", folds=3).with_updates(
        stages=[{"epochs": 60}, {"epochs": 60, "residual": [{"target": "y2", "upstream_target": "y1", "bound": BOUND}]}])
    return cross_validate(spec, {"materials": gen.materials, "devices": gen.devices}, device="cpu"), gen


def test_prediction_is_the_upstream_prediction_plus_a_bounded_correction(residual) -> None:  # type: ignore[no-untyped-def]
    result, gen = residual
    model = result.model
    frame = gen.devices.iloc[:50]
    pred = model.predict(frame)
    up = model.predict_stage("materials", frame).members[..., 0]  # each member's y1 on the device rows
    net = model.nets[1].eval()
    with torch.no_grad():
        corr = net.target_units(net.predict_from_latent(torch.as_tensor(pred["devices"].latents, dtype=torch.float32)).double()).numpy()[..., 0]
    assert np.allclose(pred["devices"].members[..., 0], up + corr, atol=1e-5)
    mean = model.prep[1].target_mean[:, None, 0]  # the residuals' training mean, per member
    assert (np.abs(corr - mean) <= BOUND + 1e-6).all()
    assert not np.allclose(corr, mean)  # the correction is learned, not stuck at the offset
    # the out-of-fold predictions of training are the same function
    oof = result.oof["devices"]
    members = model.predict_stage("devices", gen.devices).members[..., 0]
    n = len(gen.devices)
    assert np.allclose(oof["y2_pred"].to_numpy(), members[result.folds["devices"], np.arange(n)], atol=1e-5)
    assert result.metrics["devices"]["y2"]["mae"] < float(np.mean(np.abs(gen.devices["y2"] - gen.devices["y2"].median())))


def test_explanations_add_the_upstream_prediction(residual) -> None:  # type: ignore[no-untyped-def]
    from nestedae_core.explain.explained_function import ExplainedFunction
    from nestedae_core.explain.settings import ExplainSettings

    result, gen = residual
    model = result.model
    frame = gen.devices.iloc[:20]
    expected = model.predict(frame)["devices"].mean[:, 0]
    for inputs in ("chain", "stage"):
        f = ExplainedFunction(model, 1, inputs, [("target", 0)], None, ExplainSettings(dtype="float64"))
        X, _, _ = f.encode_frames(frame, model.backgrounds[1])
        assert np.allclose(f(X), expected, atol=1e-4), inputs


def test_residual_configuration_errors_are_one_message() -> None:
    spec = preset("synthetic")
    with pytest.raises(ConfigError, match="does not predict"):
        spec.with_updates(stages=[{}, {"residual": [{"target": "y2", "upstream_target": "nope"}]}])
    with pytest.raises(ConfigError, match="not one of its targets"):
        spec.with_updates(stages=[{}, {"residual": [{"target": "nope", "upstream_target": "y1"}]}])
    with pytest.raises(ConfigError, match="no upstream"):
        spec.with_updates(stages=[{}, {"upstream": False, "residual": [{"target": "y2", "upstream_target": "y1"}]}])
    # a spec written before the option (no "residual" key) loads with it off
    data = spec.model_dump()
    for st in data["stages"]:
        del st["residual"]
    assert all(st.residual == [] for st in ChainSpec.model_validate(data).stages)
