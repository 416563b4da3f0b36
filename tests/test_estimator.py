"""The front door: NestedAEModel (fit, cross_validate, predict, explain, save/load, params) and the README's lines."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nestedae_core
from nestedae_core import NestedAEModel, Query
from nestedae_core.chemistry.composition import parse_formula
from nestedae_core.errors import BundleError, ConfigError, InputError, NotFittedError
from nestedae_core.explain import explain_stage_output
from nestedae_core.perovskite.presets import preset
from nestedae_core.predict import predict_composition
from nestedae_core.query import query_frame
from nestedae_core.vocabulary import BANDGAP_HSE, BANDGAP_PBE_DFT, ETL, HTL, MEASURED_BANDGAP, PCE

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[1] / "README.md"
TRIPLE = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"


@pytest.fixture(scope="module")
def shipped() -> NestedAEModel:
    return NestedAEModel.load()


def test_readme_notebook_lines_run_and_show_prediction_and_attributions() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README has no python snippet"
    code = blocks[0]
    assert len([ln for ln in code.strip().splitlines() if ln.strip() and not ln.strip().startswith("#")]) <= 5
    out = io.StringIO()
    namespace: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    text = out.getvalue()
    for key in ("bandgap_eV", "bandgap_pbe_eV", "bandgap_hse_soc_eV", "pce_percent"):  # the one schema
        assert f"{key}_mean" in text and f"{key}_lower" in text and f"{key}_upper" in text
    # the attribution table: five features with signed values in the output's unit
    assert text.count("%") >= 5
    model = namespace["model"]
    assert isinstance(model, NestedAEModel) and model.model_ is not None


def test_predict_matches_the_library_to_the_last_digit(shipped: NestedAEModel) -> None:
    ref = predict_composition(shipped.fitted, TRIPLE, etl="SnO2-np", htl="PTAA")
    got = shipped.predict(TRIPLE, etl="SnO2-np", htl="PTAA")
    assert list(got["formula"]) == [parse_formula(TRIPLE).formula]
    assert got.loc[0, "etl"] == "SnO2-np" and got.loc[0, "htl"] == "PTAA"
    for t in ref.targets.values():
        assert got.loc[0, f"{t['key']}_mean"] == t["mean"]
        assert got.loc[0, f"{t['key']}_std"] == t["std"]
    assert bool(got.loc[0, "in_domain"]) == ref.in_domain


def test_every_query_form_gives_the_same_prediction(shipped: NestedAEModel) -> None:
    comp = parse_formula("MAPb(I0.9Br0.1)3")
    forms = ["MAPb(I0.9Br0.1)3", comp, comp.fractions(), Query(comp, etl="TiO2-c", htl="Spiro-MeOTAD")]
    frames = [shipped.predict(q, etl="TiO2-c", htl="Spiro-MeOTAD") for q in forms]
    for f in frames[1:]:
        pd.testing.assert_frame_equal(f, frames[0])


def test_many_queries_one_row_each_with_their_own_stacks(shipped: NestedAEModel) -> None:
    qs = [Query.of("MAPbI3", etl="SnO2-np"), Query.of("FAPbI3", htl="PTAA"), "CsPbBr3"]
    got = shipped.predict(qs)
    assert list(got["formula"]) == ["MAPbI3", "FAPbI3", "CsPbBr3"]
    assert got.loc[0, "etl"] == "SnO2-np" and got.loc[1, "htl"] == "PTAA"
    assert got.loc[2, "etl"] == shipped.fitted.default_category(ETL)
    single = shipped.predict("FAPbI3", htl="PTAA")
    assert got.loc[1, "pce_percent_mean"] == pytest.approx(single.loc[0, "pce_percent_mean"], abs=1e-4)  # float32 batches of other sizes round differently


def test_explain_defaults_to_the_last_target_over_the_whole_chain(shipped: NestedAEModel) -> None:
    att = shipped.explain("MAPbI3", etl="SnO2-np", htl="PTAA", method="permutation")
    frame = query_frame(shipped.fitted, ["MAPbI3"], categorical={ETL: "SnO2-np", HTL: "PTAA"})
    ref = explain_stage_output(shipped.fitted, len(shipped.fitted.stage_names) - 1, PCE, frame, inputs="chain", method="permutation")
    assert att.output == PCE and att.unit == "%"
    np.testing.assert_allclose(att.values, ref.values)
    assert ETL in att.feature_names and "A_ion_rad" in att.feature_names
    assert att.additivity_error() < 1e-3
    top = att.top(3)
    assert len(top) == 3 and top["value"].abs().is_monotonic_decreasing


def test_explain_by_label_or_column_and_unknown_output(shipped: NestedAEModel) -> None:
    by_label = shipped.explain("MAPbI3", "band gap (measured)", method="permutation")  # the target's own label
    by_column = shipped.explain("MAPbI3", MEASURED_BANDGAP, method="permutation")
    assert by_label.output == by_column.output == MEASURED_BANDGAP and by_label.unit == "eV"
    np.testing.assert_allclose(by_label.values, by_column.values)
    with pytest.raises(InputError, match="no output 'efficiency'.*bandgap_eV"):
        shipped.explain("MAPbI3", "efficiency")


def test_bad_queries_are_input_errors(shipped: NestedAEModel) -> None:
    with pytest.raises(nestedae_core.CompositionError):
        shipped.predict("MAPbX3")
    with pytest.raises(InputError, match="unknown ETL stack 'ZnO'"):
        shipped.predict("MAPbI3", etl="ZnO")
    with pytest.raises(InputError, match="a query is a formula"):
        shipped.predict(3.5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no query given"):
        shipped.predict([])


def test_params_and_not_fitted() -> None:
    est = NestedAEModel("synthetic", device="cpu")
    assert est.get_params(deep=False) == {"spec": "synthetic", "device": "cpu", "data_dir": None, "threads": None}
    assert est.set_params(threads=1) is est and est.threads == 1
    with pytest.raises(InputError, match="unknown parameter"):
        est.set_params(learning_rate=0.1)
    with pytest.raises(NotFittedError, match="not trained yet"):
        est.predict("MAPbI3")
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        NestedAEModel("nope").chain_spec()
    spec = preset("synthetic")
    assert NestedAEModel(spec.model_dump()).chain_spec() == spec
    with pytest.raises(ConfigError, match="folds"):
        NestedAEModel({**spec.model_dump(), "folds": 1}).chain_spec()


@pytest.fixture(scope="module")
def synthetic_cv() -> tuple[NestedAEModel, object]:
    est = NestedAEModel(preset("synthetic", epochs=20, folds=3), device="cpu")
    return est, est.cross_validate()


def test_cross_validate_sets_the_fold_ensemble(synthetic_cv) -> None:
    est, result = synthetic_cv
    assert est.model_ is result.model and est.metrics_ is result.metrics and est.oof_ is result.oof
    assert est.fitted.members == 3
    assert set(result.metrics) == {"materials", "devices"}


def test_fit_uses_all_rows_and_save_load_round_trip(tmp_path: Path) -> None:
    est = NestedAEModel(preset("synthetic", epochs=20, folds=3), device="cpu").fit()
    assert est.oof_ is None and est.fitted.members == 3
    fit_metrics = est.metrics_["devices"]["y2"]
    assert fit_metrics["n"] > 100 and 0 < fit_metrics["mae"] < 10 and set(est.metrics_) == {"materials", "devices"}
    assert "all rows" in est.fitted.summary()["split"]
    path = est.save(tmp_path / "syn")
    with pytest.raises(BundleError, match="already exists"):
        est.save(tmp_path / "syn")
    again = NestedAEModel.load(path)
    frame = est.fitted.backgrounds[1].copy()
    a = est.fitted.predict(frame)["devices"].mean
    b = again.fitted.predict(frame)["devices"].mean
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_load_a_shipped_model_by_name() -> None:
    paper = NestedAEModel.load("paper-default")
    assert paper.fitted.spec.name == "paper" and paper.fitted.stage_names == ["materials", "devices"]
    got = paper.predict("MAPbI3")
    assert "pce_percent_mean" in got and "bandgap_pbe_eV_mean" in got
    with pytest.raises(BundleError):
        NestedAEModel.load("no-such-model")
