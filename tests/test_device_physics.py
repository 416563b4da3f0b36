"""The measured chain's device outputs obey PV physics on any composition, far out of domain included.

PCE = Voc x Jsc x FF / P_in (P_in = 100 mW/cm2: V x mA/cm2 x 1 / (100 mW/cm2) x 100 % = Voc x Jsc x FF),
Jsc, Voc and FF at most their Shockley-Queisser values at the predicted measured band gap, FF in (0, 1],
and the same for the 90 % interval bounds; checked on a briefly trained chain (the properties hold by
construction, whatever the weights) after a save and a load.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nestedae_core import NestedAEModel
from nestedae_core.perovskite.presets import preset
from nestedae_core.physics import sq_limit
from nestedae_core.store import save_bundle
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.training

A, B, X = ("MA", "FA", "Cs", "Rb", "K"), ("Pb", "Sn", "Ge"), ("I", "Br", "Cl")
EXTREMES = ["CsPbCl3", "MAPbCl3", "FAPbCl3", "CsSnI3", "CsGeI3", "CsGeCl3", "MASnBr3", "FAPbI3", "MAPbI3", "KGeCl3", "RbSnCl3", "CsPbBr3"]


def _formula(rng: np.random.Generator) -> str:
    def site(ions: tuple[str, ...], total: float) -> str:
        k = rng.integers(1, 4)
        chosen = rng.choice(len(ions), size=k, replace=False)
        w = rng.dirichlet(np.ones(k)) * total
        w = np.round(w, 3)
        w[-1] = round(total - w[:-1].sum(), 3)
        return "".join(f"{ions[i]}{v:g}" for i, v in zip(chosen, w) if v > 0)

    return site(A, 1.0) + site(B, 1.0) + site(X, 3.0)


@pytest.fixture(scope="module")
def physics_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NestedAEModel:
    result = cross_validate(preset("measured", epochs=15, folds=3, seed=0), device="cpu")
    return NestedAEModel.load(save_bundle(result, tmp_path_factory.mktemp("physics") / "m"))


def test_device_outputs_obey_the_physics_on_random_and_far_out_compositions(physics_model: NestedAEModel) -> None:
    rng = np.random.default_rng(7)
    formulas = EXTREMES + [_formula(rng) for _ in range(1500)]
    model = physics_model.fitted
    etls, htls = model.categories("ETL_stack_sequence"), model.categories("HTL_stack_sequence")
    import pandas as pd

    frame = pd.DataFrame({"formula": formulas, "etl": rng.choice(etls, len(formulas)), "htl": rng.choice(htls, len(formulas))})
    out = physics_model.predict(frame)
    assert len(out) == len(formulas) and not out["in_domain"].all()  # far-out queries are there, flagged
    gap = out["bandgap_eV_mean"].to_numpy()
    assert (gap > 0).all()
    limit = sq_limit(gap)
    pce, voc, jsc, ff = (out[f"{k}_mean"].to_numpy() for k in ("pce_percent", "voc_V", "jsc_mA_per_cm2", "ff"))
    # PCE (%) = Voc (V) x Jsc (mA/cm2) x FF / (100 mW/cm2) x 100 %
    np.testing.assert_allclose(pce, voc * jsc * ff / 100.0 * 100.0, rtol=1e-12)
    for key, col in (("jsc_mA_per_cm2", "jsc_mA_per_cm2"), ("voc_V", "voc_V"), ("ff", "ff"), ("pce_percent", "pce_percent")):
        for part in ("mean", "lower", "upper"):
            v = out[f"{col}_{part}"].to_numpy()
            assert np.isfinite(v).all(), (col, part)
            assert (v >= 0).all(), (col, part)
            assert (v <= limit[key] * (1 + 1e-12)).all(), (col, part, formulas[int(np.argmax(v - limit[key]))])
    assert (ff > 0).all() and (ff <= 1).all() and (out["ff_upper"] <= 1).all()
    for col in ("pce_percent", "voc_V", "jsc_mA_per_cm2", "ff"):
        assert (out[f"{col}_lower"] <= out[f"{col}_upper"]).all()
    # Voc is calibrated in volts (interval_space "identity") and still kept at or below its radiative limit (checked
    # above, for every bound); the other capped outcomes in the logit of their fraction of the cap
    cal = model.calibration["device"]
    assert {t: c.transform for t, c in cal.items()} == {
        t.column: "identity" if t.interval_space == "identity" else "logit" for t in model.spec.stages[-1].targets}
    assert cal[model.spec.stages[-1].targets[1].column].transform == "identity"
    # the intervals adapt: not one width for every query
    width = (out["pce_percent_upper"] - out["pce_percent_lower"]).to_numpy()
    assert width.std() > 0.05 * width.mean()


def test_explanations_and_traversals_run_through_the_physics_heads(physics_model: NestedAEModel) -> None:
    """Attributions of PCE and a latent traversal of the device stage use the same ceilings as the predictions."""
    from nestedae_core.explain.explained_function import ExplainedFunction
    from nestedae_core.explain.latents import latent_traversal
    from nestedae_core.explain.settings import ExplainSettings

    model = physics_model.fitted
    frame = physics_model.query_frame(["MAPbI3", "CsPbCl3"])
    stage = model.stage_index("device")
    f = ExplainedFunction(model, stage, "chain", [("target", j) for j in range(4)], None, ExplainSettings())
    X, _, _ = f.encode_frames(frame, model.backgrounds[stage])
    pred = model.predict(frame)
    np.testing.assert_allclose(f(X), pred["device"].members.mean(axis=0), rtol=1e-5)  # the explained function is the prediction
    trav = latent_traversal(model, frame.iloc[:1], "device", 0, member=0)
    limit = sq_limit(float(pred["film"].members[0, 0, 0]))  # member 0's own gap
    assert (trav["JV_reverse_scan_Jsc"] <= limit["jsc_mA_per_cm2"]).all() and (trav["JV_reverse_scan_Voc"] <= limit["voc_V"]).all()
    np.testing.assert_allclose(trav["JV_reverse_scan_PCE"], trav["JV_reverse_scan_Voc"] * trav["JV_reverse_scan_Jsc"] * trav["JV_reverse_scan_FF"], rtol=1e-9)


def test_device_explanations_in_stage_space_take_the_ceilings_at_the_films_residual_gap(physics_model: NestedAEModel) -> None:
    """With the device stage's own inputs (film latents + stacks) explained, the ceilings are taken at the film's
    full prediction (the DFT gap it corrects plus its correction), as in the predictions; integrated gradients
    add up to the change of the output (the offsets move with the latents, with no attribution of their own)."""
    from nestedae_core.explain.explained_function import UPSTREAM_OFFSETS, ExplainedFunction
    from nestedae_core.explain.integrated_gradients import integrated_gradients
    from nestedae_core.explain.settings import ExplainSettings

    model = physics_model.fitted
    assert model.spec.stages[1].residual  # the film stage is a residual on the DFT gap
    frame = physics_model.query_frame(["MAPbI3", "CsPbCl3", "CsSnI3"])
    stage = model.stage_index("device")
    f = ExplainedFunction(model, stage, "stage", [("target", j) for j in range(4)], None, ExplainSettings(dtype="float64"))
    background = model.backgrounds[stage].iloc[:8]
    X, B, _ = f.encode_frames(frame, background)
    assert UPSTREAM_OFFSETS in f.tensors(f.as_tensor(X))
    pred = model.predict(frame)
    np.testing.assert_allclose(f(X), pred["device"].members.mean(axis=0), rtol=1e-5)
    values, base = integrated_gradients(f, X, B, np.full(len(B), 1 / len(B)), steps=128)
    np.testing.assert_allclose(values.sum(axis=1) + base, f(X), rtol=2e-2, atol=2e-2)
