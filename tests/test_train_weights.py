"""Per-row training weights (``StageSpec.weight_column``): a weight of 0 leaves a row out of the loss, 1 changes nothing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nestedae_core.errors import SchemaError
from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec
from nestedae_core.train import fit

pytestmark = pytest.mark.unit


def table(outlier_weight: float) -> pd.DataFrame:
    x = np.linspace(0.0, 1.0, 41)
    y = 2.0 * x
    y[20] = 10.0  # a planted wrong label at x = 0.5 (truth 1.0)
    w = np.ones_like(x)
    w[20] = outlier_weight
    return pd.DataFrame({"x": x, "y": y, "w": w})


def spec(weight_column: str | None, batch_size: int | None = None) -> ChainSpec:
    stage = StageSpec(name="s", dataset="synthetic", numeric_inputs=["x"], targets=[TargetSpec(column="y", loss="mse")],
                      weight_column=weight_column, latent_dim=4, head_hidden=[16], head_dropout=0.0, l1=0.0,
                      reconstruction_weight=0.0, epochs=200, lr=1e-2, batch_size=batch_size)
    return ChainSpec(name="weights", stages=[stage], folds=2, seed=3)


def at_outlier(model, frame: pd.DataFrame) -> float:  # type: ignore[no-untyped-def]
    return float(model.predict(frame.iloc[[20]])["s"].mean[0, 0])


@pytest.mark.parametrize("batch_size", [None, 8])
def test_weight_zero_leaves_the_planted_label_out(batch_size):
    torch.set_num_threads(1)
    weighted = fit(spec("w", batch_size), {"s": table(0.0)}, device="cpu", members=1)
    plain = fit(spec(None, batch_size), {"s": table(0.0)}, device="cpu", members=1)
    assert abs(at_outlier(weighted, table(0.0)) - 1.0) < 0.3  # the clean line through x = 0.5
    assert at_outlier(plain, table(0.0)) > at_outlier(weighted, table(0.0)) + 0.3  # the unweighted fit is pulled up


def test_unit_weights_change_nothing():
    torch.set_num_threads(1)
    a = fit(spec("w"), {"s": table(1.0)}, device="cpu", members=1)
    b = fit(spec(None), {"s": table(1.0)}, device="cpu", members=1)
    frame = table(1.0)
    np.testing.assert_allclose(a.predict(frame)["s"].mean, b.predict(frame)["s"].mean, rtol=1e-5, atol=1e-6)


def test_weight_column_is_checked():
    bad = table(0.0)
    bad.loc[3, "w"] = -1.0
    with pytest.raises(SchemaError, match="must hold finite numbers >= 0"):
        fit(spec("w"), {"s": bad}, device="cpu", members=1)
    with pytest.raises(SchemaError, match="no weight column 'v'"):
        fit(spec("v"), {"s": table(0.0)}, device="cpu", members=1)
    with pytest.raises(ValueError, match="also an input or a target"):
        StageSpec(name="s", dataset="d", numeric_inputs=["x"], targets=[TargetSpec(column="y")], weight_column="x")
