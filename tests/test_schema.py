"""One output schema (issue 16): every output names a quantity the same way.

``nestedae predict --json``, ``nestedae explain --json``, the batch CSV (predict and
explain) and the estimator's DataFrame are read and their names compared; the
estimator is a scikit-learn estimator (``check_is_fitted``, ``clone``, nested
``get_params``/``set_params`` and scikit-learn's own checks that apply).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nestedae_core import NestedAEModel, schema
from nestedae_core.cli import main
from nestedae_core.errors import ConfigError, InputError, NotFittedError

pytestmark = pytest.mark.unit

FORMULA = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"
#: The shipped default chain's quantities, in the schema's names.
EXPECTED = {"bandgap_eV", "bandgap_pbe_eV", "bandgap_hse_soc_eV", "decomposition_eV_per_fu", "pce_percent", "voc_V", "jsc_mA_per_cm2", "ff"}


@pytest.fixture(scope="module")
def shipped():
    return NestedAEModel.load()


def _cli_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_quantity_keys_are_snake_case_with_units():
    assert schema.quantity_key("Perovskite_band_gap") == "bandgap_eV"
    assert schema.quantity_key("Gap", "eV", "PBE") == "bandgap_pbe_eV"
    assert schema.quantity_key("Gap", "eV", "HSE") == "bandgap_hse_soc_eV"
    assert schema.quantity_key("JV_reverse_scan_PCE", "%") == "pce_percent"
    assert schema.quantity_key("JV_reverse_scan_Jsc", "mA/cm2") == "jsc_mA_per_cm2"
    assert schema.quantity_key("y1", "") == "y1"
    assert schema.quantity_key("energy", "kJ/mol") == "energy_kJ_per_mol"
    assert schema.column("ff", "lower") == "ff_lower"
    with pytest.raises(ValueError):
        schema.column("ff", "median")


def test_every_output_names_the_same_quantity_the_same_way(capsys, tmp_path, shipped):
    predicted = _cli_json(capsys, "predict", FORMULA, "--etl", "SnO2-c", "--htl", "Spiro-MeOTAD")
    json_keys = {k for k, v in predicted.items() if isinstance(v, dict) and {"mean", "lower", "upper", "std"} <= set(v)}
    assert json_keys == EXPECTED
    assert predicted["etl"] == "SnO2-c" and predicted["htl"] == "Spiro-MeOTAD"

    frame = shipped.predict(FORMULA, etl="SnO2-c", htl="Spiro-MeOTAD")
    frame_keys = {c[: -len("_mean")] for c in frame.columns if c.endswith("_mean")}
    assert frame_keys == EXPECTED
    for key in EXPECTED:
        for stat in schema.STATS:
            assert schema.column(key, stat) in frame.columns
        assert frame[f"{key}_mean"].iloc[0] == pytest.approx(predicted[key]["mean"], rel=1e-6)
    assert {"formula", "etl", "htl", "in_domain", "domain_stage", "domain_message"} <= set(frame.columns)

    src = tmp_path / "in.csv"
    pd.DataFrame({"formula": [FORMULA], "etl": ["SnO2-c"], "htl": ["Spiro-MeOTAD"]}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["predict", "--csv", str(src), "--etl-column", "etl", "--htl-column", "htl", "--out", str(out)]) == 0
    capsys.readouterr()
    batch = pd.read_csv(out)
    batch_keys = {c[: -len("_mean")] for c in batch.columns if c.endswith("_mean")}
    assert batch_keys == EXPECTED
    for key in EXPECTED:
        assert batch[f"{key}_mean"].iloc[0] == pytest.approx(frame[f"{key}_mean"].iloc[0], rel=1e-6)
    stage_cols = [c for c in frame.columns if c.endswith("_in_domain")]
    assert stage_cols and set(stage_cols) <= set(batch.columns)

    explained = _cli_json(capsys, "explain", FORMULA, "--etl", "SnO2-c", "--htl", "Spiro-MeOTAD")
    explain_keys = {k for k, v in explained.items() if isinstance(v, dict) and "attributions" in v}
    assert explain_keys and explain_keys <= EXPECTED  # keyed exactly as predict keys the same quantity
    assert {"bandgap_eV", "pce_percent"} <= explain_keys
    for key in explain_keys:
        assert explained[key]["prediction"] == pytest.approx(predicted[key]["mean"], rel=1e-4), key

    wide = tmp_path / "explain.csv"
    assert main(["explain", "--csv", str(src), "--format", "wide", "--out", str(wide)]) == 0
    capsys.readouterr()
    wide_keys = {c[: -len("_prediction")] for c in pd.read_csv(wide).columns if c.endswith("_prediction")}
    assert wide_keys == explain_keys


def test_predict_takes_a_level_and_a_dataframe(shipped):
    table = pd.DataFrame({"formula": ["MAPbI3", "FAPbI3"], "etl": ["SnO2-c", ""], "htl": ["", "PTAA"]})
    wide = shipped.predict(table, level=0.95)
    narrow = shipped.predict(table, level=0.5)
    assert list(wide["formula"]) == ["MAPbI3", "FAPbI3"]
    assert wide.loc[0, "etl"] == "SnO2-c" and wide.loc[1, "htl"] == "PTAA"
    w = wide["pce_percent_upper"] - wide["pce_percent_lower"]
    n = narrow["pce_percent_upper"] - narrow["pce_percent_lower"]
    assert (w > n).all()
    assert np.allclose(wide["pce_percent_mean"], narrow["pce_percent_mean"])
    with pytest.raises(InputError, match="formula"):
        shipped.predict(pd.DataFrame({"composition": ["MAPbI3"]}))


def test_outputs_are_found_by_their_key(shipped):
    att = shipped.explain("MAPbI3", "bandgap_eV")
    assert att.output == "Perovskite_band_gap"
    assert set(shipped.targets()["key"]) == EXPECTED


def test_a_scikit_learn_estimator(shipped):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError as SkNotFitted
    from sklearn.utils.estimator_checks import check_get_params_invariance, check_no_attributes_set_in_init, check_set_params
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(shipped)
    fresh = NestedAEModel("paper")
    with pytest.raises(SkNotFitted):
        check_is_fitted(fresh)
    with pytest.raises(NotFittedError):
        fresh.predict("MAPbI3")
    check_no_attributes_set_in_init("NestedAEModel", NestedAEModel("paper"))
    check_get_params_invariance("NestedAEModel", NestedAEModel("paper"))
    check_set_params("NestedAEModel", NestedAEModel("paper"))
    copy = clone(fresh)
    assert copy is not fresh and copy.get_params(deep=False) == fresh.get_params(deep=False)
    params = fresh.get_params(deep=True)
    assert params["spec__folds"] == 5 and "spec__seed" in params
    fresh.set_params(spec__folds=3, spec__seed=7)
    assert fresh.chain_spec().folds == 3 and fresh.chain_spec().seed == 7
    with pytest.raises(InputError, match="no field"):
        fresh.set_params(spec__nonsense=1)
    with pytest.raises(ConfigError):
        fresh.set_params(spec__folds=-1)


def test_site_slices_and_form_bounds_come_from_their_owners():
    from nestedae_core.model.config import ChainSpec
    from nestedae_core.vocabulary import IONS, SITE_IONS, SITE_SLICES

    for site, ions in SITE_IONS.items():
        assert IONS[SITE_SLICES[site]] == ions
    lo, hi = ChainSpec.field_range("folds")
    assert (lo, hi) == (2, 20)
    spec = NestedAEModel("paper").chain_spec()
    assert spec.with_updates(folds=int(hi)).folds == hi
    with pytest.raises(ConfigError):
        NestedAEModel("paper").set_params(spec__folds=int(hi) + 1)


def test_the_stability_output_and_the_gap_words_have_one_name():
    from nestedae_core.perovskite.fidelity import gap_name
    from nestedae_core.perovskite.presets import preset
    from nestedae_core.vocabulary import BANDGAP_HSE, BANDGAP_PBE_DFT, DECOMPOSITION, label

    assert schema.quantity_key(DECOMPOSITION) == "decomposition_eV_per_fu"
    assert schema.stat_columns(["decomposition_eV_per_fu"]) == [f"decomposition_eV_per_fu_{s}" for s in ("mean", "lower", "upper", "std")]
    assert gap_name("HSE", "Cubic") == "band gap, DFT HSE06+SOC (cubic)" and gap_name("PBE", "Hex") == "band gap, DFT PBE (no SOC, hexagonal)"
    assert label(BANDGAP_HSE) == gap_name("HSE") and label(BANDGAP_PBE_DFT) == gap_name("PBE")
    dft = preset("measured").stages[0]
    heads = {t.column: t for t in dft.targets}
    # DFT gaps are never negative by construction (head and interval); the decomposition energy takes any sign
    assert heads[BANDGAP_HSE].bounds == "positive" and heads[BANDGAP_PBE_DFT].bounds == "positive"
    assert heads[DECOMPOSITION].bounds == "real" and heads[DECOMPOSITION].unit == "eV/f.u."
    assert [schema.target_key(dft, t) for t in dft.targets] == ["bandgap_pbe_eV", "bandgap_hse_soc_eV", "decomposition_eV_per_fu"]


def test_a_model_without_the_stability_head_says_so(shipped):
    from nestedae_core import predict

    model = shipped.model_
    if predict.has_decomposition(model):
        pytest.skip("this shipped model has a decomposition head")
    with pytest.raises(InputError, match="not in this model"):
        predict.screen(model, ["MA"], ["Pb"], ["I", "Br"], 0.5, decomposition_max=0.0)
    js = predict.predict_composition(model, "MAPbI3").to_json()
    assert js["decomposition_eV_per_fu"] is None and js["decomposition_note"].startswith("not in this model")
