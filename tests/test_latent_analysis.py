"""Latent-space analysis (nestedae_core.explain.latents), incl. recovery of the synthetic factor count."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.explain import latents as LA
from nestedae_core.sweep import latent_size as LS
from nestedae_core.model.config import ChainSpec
from nestedae_core.errors import InputError
from nestedae_core.perovskite.presets import preset
from nestedae_core.vocabulary import ETL
from nestedae_core.data.synthetic import generate
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.training


def _materials_spec(**update) -> ChainSpec:
    """The synthetic materials stage alone, with sparse latents (L1 3.0 on the mean |encoder weight|,
    reconstruction weight 0.1, 600 epochs): the preset's L1 1e-2 leaves all 6 latents active."""
    st = preset("synthetic").stages[0]
    upd = {"l1": 3.0, "reconstruction_weight": 0.1, "epochs": 600, **update}
    return ChainSpec(name="synthetic-materials", stages=[st.model_copy(update=upd)], folds=5)


@pytest.fixture(scope="module")
def synthetic_chain():
    data = generate(n_materials=150, n_devices=400)
    model = cross_validate(preset("synthetic", epochs=60, folds=3), tables={"materials": data.materials, "devices": data.devices}, device="cpu").model
    return data, model


# --------------------------------------------------------------------------- active latents


def test_active_latents_recover_the_number_of_true_factors(sparse_synthetic) -> None:
    data, model = sparse_synthetic
    res = LA.active_latents(model, data.materials, 0)
    assert abs(res.n_active - data.truth.n_factors) <= 1, res.n_active_per_member
    assert np.all(np.abs(res.n_active_per_member - data.truth.n_factors) <= 1)
    assert res.active.shape == (5, 6) and res.variance.shape == (5, 6)
    # inactive latents are (nearly) constant and their encoder columns (nearly) zero
    assert res.relative_variance[~res.active].max() < 1e-2 or res.relative_weight_norm[~res.active].max() < 1e-2
    assert "variance" in res.rule
    long = res.frame()
    assert len(long) == 30 and set(long.columns) >= {"member", "latent", "variance", "weight_norm", "active"}
    one = LA.active_latents(model, data.materials, 0, member=2)
    assert one.members == [2] and one.active.shape == (1, 6)


def test_without_sparsity_every_latent_stays_active() -> None:
    """A weak L1 (1e-2) with the full reconstruction weight does not switch latents off: all 6 carry information."""
    data = generate(n_materials=200)
    st = preset("synthetic").stages[0].model_copy(update={"epochs": 300, "l1": 1e-2, "reconstruction_weight": 1.0})
    model = cross_validate(ChainSpec(name="s", stages=[st], folds=3), tables={"materials": data.materials}, device="cpu").model
    assert LA.active_latents(model, data.materials, 0).n_active == 6


# --------------------------------------------------------------------------- correlations, traversal, PCA


def test_latent_correlations_table(sparse_synthetic) -> None:
    data, model = sparse_synthetic
    corr = LA.latent_correlations(model, data.materials, 0)
    assert list(corr.index) == model.latent_names(0)
    assert list(corr.columns) == [f"x{j}" for j in range(10)] + ["y1", "y1 (predicted)"]
    active = LA.active_latents(model, data.materials, 0, member=0).active[0]
    assert np.nanmax(np.abs(corr.to_numpy())) <= 1 + 1e-9
    # active latents correlate with the relevant features, not with the noise features
    rel = corr.loc[active, data.truth.relevant_material_features].abs().max().max()
    irr = corr.loc[active, data.truth.irrelevant_material_features].abs().max().max()
    assert rel > 0.5 and irr < 0.3
    sp = LA.latent_correlations(model, data.materials, 0, method="spearman")
    assert sp.attrs["method"] == "spearman"
    with pytest.raises(InputError):
        LA.latent_correlations(model, data.materials, 0, method="kendall")  # type: ignore[arg-type]


def test_correlations_with_categorical_inputs_are_ratios(synthetic_chain) -> None:
    data, model = synthetic_chain
    corr = LA.latent_correlations(model, data.devices, "devices")
    assert corr.columns[:6].tolist() == model.latent_names(0)
    assert "stack" in corr.attrs["categorical_columns"]
    eta = corr["stack"].dropna()
    assert ((eta >= 0) & (eta <= 1)).all() and eta.max() > 0.1


def test_latent_traversal_decodes_in_raw_units(sparse_synthetic) -> None:
    data, model = sparse_synthetic
    row = data.materials.iloc[[3]]
    tr = LA.latent_traversal(model, row, 0, "z1", np.linspace(-1, 1, 5), member=1)
    assert tr["value"].tolist() == pytest.approx(np.linspace(-1, 1, 5).tolist())
    assert tr["materials.z1"].tolist() == pytest.approx(tr["value"].tolist())
    z = model.latents(0, row)[1, 0]
    assert np.allclose(tr["materials.z2"], z[1], atol=1e-6)  # the other latents stay put
    assert set([f"x{j}" for j in range(10)] + ["y1"]) <= set(tr.columns)
    # at the row's own latent value the traversal reproduces member 1's prediction
    own = LA.latent_traversal(model, row, 0, 0, [z[0]], member=1)
    assert own["y1"].iloc[0] == pytest.approx(model.predict_stage(0, row).members[1, 0, 0], abs=1e-4)
    # decoded descriptors are in raw units: near the input row for a faithful reconstruction
    assert abs(own["x2"].iloc[0] - row["x2"].iloc[0]) < 3.0
    default = LA.latent_traversal(model, row, 0, "materials.z1")
    assert len(default) == 21
    with pytest.raises(InputError):
        LA.latent_traversal(model, row, 0, "z9")
    with pytest.raises(InputError):
        LA.latent_traversal(model, data.materials.iloc[:2], 0, 0)


def test_traversal_of_a_device_latent_decodes_categories(synthetic_chain) -> None:
    data, model = synthetic_chain
    tr = LA.latent_traversal(model, data.devices.iloc[[0]], "devices", 0, [-0.5, 0.0, 0.5])
    assert set(tr["stack"]) <= {"layer_A", "layer_B", "layer_C"}
    assert ((tr["stack_p"] > 0) & (tr["stack_p"] <= 1)).all()
    assert "materials.z1" in tr.columns and "d0" in tr.columns and "y2" in tr.columns


@pytest.mark.parametrize("member, width", [(0, 6), (None, 30)])
def test_pca_projection(sparse_synthetic, member, width) -> None:
    data, model = sparse_synthetic
    pcs = LA.pca_projection(model, data.materials, 0, 3, member=member)
    assert list(pcs.columns) == ["PC1", "PC2", "PC3"] and len(pcs) == len(data.materials)
    evr = pcs.attrs["explained_variance_ratio"]
    assert len(evr) == 3 and all(a >= b for a, b in zip(evr, evr[1:])) and 0 < sum(evr) <= 1 + 1e-9
    assert len(pcs.attrs["latent_names"]) == width
    # three informative latents: three components hold (almost) all the variance
    assert sum(evr) > 0.95
    with pytest.raises(InputError):
        LA.pca_projection(model, data.materials, 0, 4)


def test_paper_latent_maps(tiny_paper) -> None:
    model = tiny_paper.model
    table = tiny_paper.tables["devices"]
    corr = LA.latent_correlations(model, table, "devices")
    assert ETL in corr.columns and "JV_reverse_scan_PCE" in corr.columns
    pcs = LA.pca_projection(model, table, "devices", 2)
    assert pcs.shape == (len(table), 2)
    res = LA.active_latents(model, model.backgrounds[0], 0)
    assert 1 <= res.n_active <= 12


# --------------------------------------------------------------------------- latent size scan (nestedae_core.sweep.latent_size)


def test_latent_size_scan() -> None:
    data = generate(n_materials=200)
    out = LS.latent_size_scan(_materials_spec(epochs=150), [1, 4], seeds=[0, 1], folds=3, tables={"materials": data.materials})
    assert list(out.columns) == ["latent_size", "seed", "target", "val_mae", "val_mae_std", "n_active", "seconds"]
    assert len(out) == 4 and set(out["latent_size"]) == {1, 4}
    mae = out.groupby("latent_size")["val_mae"].mean()
    assert mae[4] < mae[1]  # one latent cannot hold three factors
    assert (out["n_active"] <= out["latent_size"]).all()


def test_latent_size_scan_runs_and_rows_rebuild_the_scan() -> None:
    """The scan split into runs (trained elsewhere, e.g. as jobs) and rows gives the scan's own table."""
    from nestedae_core.train import cross_validate

    data = generate(n_materials=120, seed=0)
    spec = _materials_spec(epochs=20)
    runs = LS.latent_size_scan_runs(spec, [1, 3], folds=2)
    assert [(r.size, r.stage, r.spec.stages[0].latent_dim, len(r.spec.stages)) for r in runs] == [(1, 0, 1, 1), (3, 0, 3, 1)]
    rows = [row for r in runs for row in LS.latent_size_scan_rows(r, cross_validate(r.spec, tables={"materials": data.materials}, device="cpu"), 0.0)]
    whole = LS.latent_size_scan(spec, [1, 3], folds=2, tables={"materials": data.materials})
    pd.testing.assert_frame_equal(pd.DataFrame(rows).drop(columns="seconds"), whole.drop(columns="seconds"))


def test_latent_size_scan_rejects_an_upstream_stage() -> None:
    with pytest.raises(InputError, match="upstream"):
        LS.latent_size_scan(preset("synthetic"), [2], stage=1)
    with pytest.raises(InputError):
        LS.latent_size_scan(preset("synthetic"), [])


def test_factor_recovery_up_to_rotation() -> None:
    import numpy as np
    import pandas as pd

    from nestedae_core.explain.latents import factor_recovery

    rng = np.random.default_rng(0)
    factors = pd.DataFrame(rng.normal(size=(300, 2)), columns=["f1", "f2"])
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    latents = np.column_stack([factors.to_numpy() @ rot, np.full(300, 0.3), rng.normal(size=300)])
    corr, r2 = factor_recovery(latents, factors)
    assert list(corr.index) == ["z1", "z2", "z3", "z4"] and np.isnan(corr.loc["z3", "f1"])
    assert r2["f1"] > 0.999 and r2["f2"] > 0.999  # recovered as a mix
    assert abs(corr.loc["z1", "f1"]) < 0.9  # but no single latent is the factor
    corr2, r2b = factor_recovery(latents[:, 3:], factors)
    assert r2b.max() < 0.05  # noise recovers nothing


def test_a_scan_is_read_by_the_one_standard_error_rule():
    import pandas as pd

    from nestedae_core.errors import InputError
    from nestedae_core.sweep.latent_size import read_scan

    rows = pd.DataFrame({"latent_size": [1, 2, 3, 4, 1, 2, 3, 4], "val_mae": [0.5, 0.21, 0.2, 0.205, 0.5, 0.21, 0.2, 0.205],
                         "val_mae_std": 0.02})
    reading = read_scan(rows)
    assert (reading.best, reading.enough) == (3, 2) and reading.best_mae == pytest.approx(0.2)
    tight = rows.assign(val_mae_std=0.001)
    assert read_scan(tight).enough == 3  # no simpler size within one standard error
    with pytest.raises(InputError, match="val_mae_std"):
        read_scan(rows.drop(columns=["val_mae_std"]))


def test_traversal_sensitivity_compares_inputs_in_units_of_their_spread():
    import pandas as pd

    from nestedae_core.explain.latents import traversal_sensitivity

    trav = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [10.0, 10.5, 11.0], "c": [5.0, 5.0, 5.0]})
    data = pd.DataFrame({"a": [0.0, 10.0], "b": [0.0, 1.0], "c": [0.0, 0.0]})
    s = traversal_sensitivity(trav, data, ["a", "b", "c", "missing"])
    assert list(s.index) == ["b", "a", "c"]  # b moves 1 of its 0.71 sd; a 2 of its 7.1
    assert s["b"] == pytest.approx(1.0 / data["b"].std()) and s["c"] == 0.0
