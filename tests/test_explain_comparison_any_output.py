"""explainer_comparison of any output of any stage (``stage``/``output``/``inputs``): the Explain page compares the
explainers on the output it opens on, the measured band gap along the whole chain."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def measured():  # type: ignore[no-untyped-def]
    from nestedae_core import NestedAEModel, store

    if not store.shipped_bundle_path("measured-default").is_dir():
        pytest.skip("no shipped measured-default bundle")
    return NestedAEModel.load("measured-default").model_


def test_comparison_of_a_middle_stage_output_along_the_chain(measured) -> None:
    from nestedae_core.api import explain_stage_output, explainer_comparison, query_frame

    row = query_frame(measured, ["FAPbI3"])
    table = explainer_comparison(measured, row, stage=1, output="Perovskite_band_gap", inputs="chain",
                                 methods=("permutation", "gradient"))
    assert table["explainer"].tolist() == ["permutation", "gradient"] and set(table["unit"]) == {"eV"}
    assert set(measured.raw_columns(1)) <= set(table.columns)  # the user's inputs, no latent
    assert not any(".z" in c for c in table.columns)
    att = explain_stage_output(measured, 1, "Perovskite_band_gap", row, inputs="chain", method="gradient")
    assert table["prediction"].to_numpy() == pytest.approx([att.predictions[0]] * 2, abs=1e-6)
    got = table.loc[table["explainer"] == "gradient", att.feature_names].to_numpy()[0]
    np.testing.assert_allclose(got, att.values[0], atol=1e-6)
    # the stage's own inputs instead: the upstream latents
    own = explainer_comparison(measured, row, stage=1, output="Perovskite_band_gap", inputs="stage", methods=("gradient",))
    assert any(c.startswith("dft.z") for c in own.columns)
    # kind keeps working when no stage is given
    last = explainer_comparison(measured, row, kind="last", methods=("gradient",))
    assert last["unit"].iloc[0] == "%"
