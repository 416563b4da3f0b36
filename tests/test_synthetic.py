"""Tests of nestedae_core.data.synthetic: a data set whose ground truth is known."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from nestedae_core.errors import ConfigError
from nestedae_core.data.synthetic import (
    DEVICE_TARGET,
    MATERIAL_TARGET,
    GroundTruth,
    SyntheticConfig,
    SyntheticData,
    device_feature_names,
    generate,
    material_feature_names,
    true_factor_names,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate()


def _oof_r2(model, x: np.ndarray, y: np.ndarray) -> float:
    pred = cross_val_predict(model, x, y, cv=KFold(5, shuffle=True, random_state=0))
    return float(r2_score(y, pred))


def _canonical_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    qa, _ = np.linalg.qr(a - a.mean(axis=0))
    qb, _ = np.linalg.qr(b - b.mean(axis=0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def _evaluate(expr: str, env: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a documented right-hand side ("0.8 x0 - tanh(1.5 d1)") with numpy."""
    py = re.sub(r"(?<=[\d.])\s+(?=[A-Za-z(])", "*", expr).replace("^", "**")
    return eval(py, {"__builtins__": {}, "tanh": np.tanh, "exp": np.exp}, env)  # noqa: S307


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_data() -> None:
    a, b = generate(seed=7), generate(SyntheticConfig(seed=7))
    pd.testing.assert_frame_equal(a.materials, b.materials)
    pd.testing.assert_frame_equal(a.devices, b.devices)
    assert a.truth.to_dict() == b.truth.to_dict()


def test_different_seeds_differ() -> None:
    a, b = generate(seed=1), generate(seed=2)
    assert not np.allclose(a.materials["x0"], b.materials["x0"])
    assert not np.allclose(a.devices[DEVICE_TARGET], b.devices[DEVICE_TARGET])
    assert a.truth.factor_loadings != b.truth.factor_loadings


def test_does_not_touch_global_random_state() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    generate(n_materials=20, n_devices=30)
    assert np.array_equal(before, np.random.get_state()[1])


def test_streams_are_independent_of_unrelated_options() -> None:
    base = generate()
    dup = generate(correlated_pair=True)
    pd.testing.assert_frame_equal(base.materials, dup.materials.drop(columns="x_dup"))
    more_devices = generate(n_devices=50)
    pd.testing.assert_frame_equal(base.materials, more_devices.materials)


def test_no_output_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    generate(n_materials=10, n_devices=10)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ----------------------------------------------------------------------------- shapes and names


def test_shapes_and_columns(data: SyntheticData) -> None:
    mats, devs = data.materials, data.devices
    x = [f"x{j}" for j in range(10)]
    assert list(mats.columns) == ["material_id", *x, "true_z1", "true_z2", "true_z3", "true_y1", MATERIAL_TARGET]
    assert list(devs.columns) == ["device_id", "material_id", *x, "d0", "d1", "d2", "stack", "true_y1", DEVICE_TARGET]
    assert mats.shape == (400, 16) and devs.shape == (1500, 18)
    assert mats["material_id"].is_unique and devs["device_id"].is_unique
    assert set(devs["stack"]) == {"layer_A", "layer_B", "layer_C"}
    assert not mats.isna().any().any() and not devs.isna().any().any()
    assert material_feature_names(data) == x
    assert device_feature_names(data) == ["d0", "d1", "d2", "stack"]
    assert true_factor_names(data) == ["true_z1", "true_z2", "true_z3"] == data.truth.factor_columns


def test_devices_copy_their_material(data: SyntheticData) -> None:
    joined = data.devices[["material_id"]].merge(data.materials, on="material_id", how="left")
    for col in [*material_feature_names(data), "true_y1"]:
        np.testing.assert_array_equal(joined[col].to_numpy(), data.devices[col].to_numpy())


def test_some_materials_are_used_many_times(data: SyntheticData) -> None:
    counts = data.devices["material_id"].value_counts()
    assert counts.max() >= 20
    assert counts.size < data.config.n_materials


def test_ground_truth_lists(data: SyntheticData) -> None:
    truth = data.truth
    assert truth.relevant_material_features == ["x0", "x1", "x2", "x3", "x4"]
    assert truth.irrelevant_material_features == ["x5", "x6", "x7", "x8", "x9"]
    assert truth.relevant_device_features == ["d0", "d1", "stack"]
    assert truth.irrelevant_device_features == ["d2"]
    assert truth.proxy_material_features == []
    assert truth.n_factors == 3
    w = np.asarray(truth.factor_loadings)
    assert w.shape == (3, 5)
    assert np.all(np.abs(w).max(axis=0) >= 0.2), "every relevant feature loads on a factor"
    assert np.linalg.cond(w) < 5
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=0.05)
    assert len(set(truth.stack_effects.values())) == 3


def test_truth_to_dict_is_json_and_round_trips(data: SyntheticData) -> None:
    d = json.loads(json.dumps(data.truth.to_dict()))
    assert GroundTruth.from_dict(d) == data.truth


# ----------------------------------------------------------------------------- ground truth


def test_irrelevant_features_uncorrelated_relevant_ones_not(data: SyntheticData) -> None:
    mats, truth = data.materials, data.truth
    targets = mats[[*truth.factor_columns, MATERIAL_TARGET]].to_numpy()
    for name in truth.irrelevant_material_features:
        corr = [abs(np.corrcoef(mats[name], t)[0, 1]) for t in targets.T]
        assert max(corr) < 0.2, (name, corr)
    factors = mats[truth.factor_columns].to_numpy()
    for name in truth.relevant_material_features:
        corr = [abs(np.corrcoef(mats[name], t)[0, 1]) for t in factors.T]
        assert max(corr) > 0.2, (name, corr)


def test_y1_is_a_function_of_the_factors() -> None:
    d = generate(noise=0.01)
    mats, truth = d.materials, d.truth
    y = mats[MATERIAL_TARGET].to_numpy()
    on_factors = _oof_r2(make_pipeline(PolynomialFeatures(2), LinearRegression()), mats[truth.factor_columns].to_numpy(), y)
    assert on_factors > 0.95
    on_noise = _oof_r2(
        RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=0),
        mats[truth.irrelevant_material_features].to_numpy(),
        y,
    )
    assert on_noise < 0.05
    on_noise_linear = _oof_r2(LinearRegression(), mats[truth.irrelevant_material_features].to_numpy(), y)
    assert on_noise_linear < 0.05


@pytest.mark.parametrize(
    ("n_factors", "n_relevant", "n_features"),
    [(1, 5, 10), (3, 5, 10), (2, 8, 10), (6, 6, 8), (4, 10, 10)],
)
def test_relevant_features_span_the_factor_subspace(n_factors: int, n_relevant: int, n_features: int) -> None:
    d = generate(n_factors=n_factors, n_relevant=n_relevant, n_material_features=n_features, seed=3)
    z = d.materials[d.truth.factor_columns].to_numpy()
    x_rel = d.materials[d.truth.relevant_material_features].to_numpy()
    # The true factor matrix has full rank n_factors, each factor clearly varies.
    assert np.all(z.std(axis=0) > 0.3)
    s = np.linalg.svd((z - z.mean(0)) / z.std(0), compute_uv=False)
    assert s.size == n_factors and s.min() / s.max() > 0.2
    # A linear map of the relevant features reproduces the factor subspace ...
    cc = _canonical_correlations(x_rel, z)
    assert cc.size == n_factors and cc.min() > 0.9, cc
    for k in range(n_factors):
        assert LinearRegression().fit(x_rel, z[:, k]).score(x_rel, z[:, k]) > 0.85
    # ... while the irrelevant ones do not.
    assert len(d.truth.irrelevant_material_features) == n_features - n_relevant
    if n_relevant < n_features:
        x_irr = d.materials[d.truth.irrelevant_material_features].to_numpy()
        assert _canonical_correlations(x_irr, z).max() < 0.35


@pytest.mark.parametrize(
    "overrides",
    [{}, {"n_factors": 1}, {"n_factors": 6, "n_relevant": 7, "n_material_features": 9}, {"correlated_pair": True, "seed": 5}],
)
def test_equations_document_the_computation(overrides: dict) -> None:
    d = generate(noise=0.0, n_materials=60, n_devices=80, **overrides)
    mats, devs, truth = d.materials, d.devices, d.truth
    eqs = {line.split(" = ", 1)[0]: line.split(" = ", 1)[1] for line in truth.equations if " = " in line}
    k_f = truth.n_factors
    env: dict[str, np.ndarray] = {c: mats[c].to_numpy() for c in material_feature_names(d)}
    for k in range(1, k_f + 1):
        np.testing.assert_allclose(_evaluate(eqs[f"z{k}"], env), mats[f"true_z{k}"], atol=1e-12)
        env[f"z{k}"] = mats[f"true_z{k}"].to_numpy()
    np.testing.assert_allclose(_evaluate(eqs["true_y1"], env), mats["true_y1"], atol=1e-12)
    np.testing.assert_allclose(mats["y1"], mats["true_y1"])  # noise 0
    # Device equation, evaluated on each device's material.
    dev_env = {c: devs[c].to_numpy() for c in devs.columns if re.fullmatch(r"d\d+", c)}
    dev_env["true_y1"] = devs["true_y1"].to_numpy()
    idx = devs["material_id"].map(dict(zip(mats["material_id"], range(len(mats))))).to_numpy()
    for k in range(1, k_f + 1):
        dev_env[f"z{k}"] = mats[f"true_z{k}"].to_numpy()[idx]
    dev_env["s_stack"] = devs["stack"].map(truth.stack_effects).to_numpy(dtype=float)
    dev_env["e2"] = np.zeros(len(devs))
    y2_rhs = eqs["y2"].split(", e2 ~")[0].replace("s(stack)", "s_stack")
    np.testing.assert_allclose(_evaluate(y2_rhs, dev_env), devs[DEVICE_TARGET], atol=1e-12)
    assert any("N(0, 0^2)" in line for line in truth.equations)


def test_noise_is_the_documented_std() -> None:
    d = generate(noise=0.2, n_materials=4000, n_devices=10)
    resid = d.materials["y1"] - d.materials["true_y1"]
    assert 0.18 < resid.std() < 0.22


def test_correlated_pair() -> None:
    d = generate(correlated_pair=True)
    mats = d.materials
    assert "x_dup" in mats.columns and "x_dup" in d.devices.columns
    assert np.corrcoef(mats["x0"], mats["x_dup"])[0, 1] > 0.95
    assert material_feature_names(d)[-1] == "x_dup"
    assert d.truth.proxy_material_features == ["x_dup"]
    assert "x_dup" not in d.truth.relevant_material_features + d.truth.irrelevant_material_features
    assert not any("x_dup" in line for line in d.truth.equations if line.startswith(("z", "true_y1", "y2")))


# ----------------------------------------------------------------------------- devices


def test_y2_depends_on_stack_d0_d1_not_on_noise_devices(data: SyntheticData) -> None:
    devs, truth = data.devices, data.truth
    y2 = devs[DEVICE_TARGET]
    means = y2.groupby(devs["stack"]).mean()
    sem = y2.groupby(devs["stack"]).sem()
    effects = pd.Series(truth.stack_effects)
    # Group means are ordered like the true effects and their gaps are many standard errors.
    assert list(means.sort_values().index) == list(effects.sort_values().index)
    gaps = np.diff(means.sort_values().to_numpy())
    assert np.all(gaps > 4 * sem.max())
    # Gaps match the known effects (other terms are independent of the stack).
    np.testing.assert_allclose(means - means.mean(), effects - effects.mean(), atol=0.6)
    assert abs(np.corrcoef(devs["d0"], y2)[0, 1]) > 0.2
    assert abs(np.corrcoef(devs["d1"], y2)[0, 1]) > 0.1
    for name in truth.irrelevant_device_features:
        assert abs(np.corrcoef(devs[name], y2)[0, 1]) < 0.08
        assert _oof_r2(LinearRegression(), devs[[name]].to_numpy(), y2.to_numpy()) < 0.01


def test_y2_depends_on_material_only_through_truth() -> None:
    a = generate(noise=0.0)
    # y1's noise never enters y2: with more noise, y2 moves by e2 alone (std = noise).
    noisy = generate(noise=0.3)
    resid = noisy.devices["y2"] - a.devices["y2"]
    assert 0.27 < resid.std() < 0.33
    # The irrelevant material features add nothing once true_y1 and the factors are known.
    devs = a.devices
    z_last = devs["material_id"].map(a.materials.set_index("material_id")[a.truth.factor_columns[-1]])
    base = pd.DataFrame(
        {
            "bell": np.exp(-(((devs["true_y1"] - 1.55) / 0.3) ** 2)),
            "z": z_last,
            "d0": devs["d0"],
            "d1": np.tanh(1.5 * devs["d1"]),
            **{s: (devs["stack"] == s).astype(float) for s in a.config.device_categories},
        }
    )
    fit = LinearRegression().fit(base, devs["y2"])
    assert fit.score(base, devs["y2"]) > 0.999999


def test_device_categories_can_change() -> None:
    d = generate(device_categories=("TiO2", "SnO2"), n_devices=300, n_device_numeric=2)
    assert set(d.devices["stack"]) == {"TiO2", "SnO2"}
    assert d.truth.stack_effects == {"TiO2": -1.5, "SnO2": 1.5}
    assert d.truth.irrelevant_device_features == []
    single = generate(device_categories=["only"], n_devices=20)
    assert single.truth.stack_effects == {"only": 0.0}


# ----------------------------------------------------------------------------- config


def test_config_round_trip() -> None:
    cfg = SyntheticConfig(n_materials=50, n_factors=2, noise=0.1, correlated_pair=True, seed=9,
                          device_categories=("a", "b"))
    text = json.dumps(cfg.to_dict())
    back = SyntheticConfig.from_dict(json.loads(text))
    assert back == cfg
    assert isinstance(back.device_categories, tuple)
    assert SyntheticConfig.from_dict({}) == SyntheticConfig()
    d = generate(cfg)
    assert d.config == cfg and len(d.materials) == 50


def test_overrides_apply_and_leave_config_untouched() -> None:
    cfg = SyntheticConfig(n_materials=30, n_devices=40)
    d = generate(cfg, seed=4)
    assert d.config.seed == 4 and cfg.seed == 0
    with pytest.raises(ConfigError, match="unknown SyntheticConfig fields: n_layers"):
        generate(cfg, n_layers=3)
    with pytest.raises(ConfigError, match="unknown SyntheticConfig keys: bogus"):
        SyntheticConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_relevant": 11}, r"n_relevant \(11\) must not exceed n_material_features \(10\)"),
        ({"n_factors": 0}, r"n_factors must be >= 1, got 0"),
        ({"n_factors": 7, "n_relevant": 8}, r"n_factors must be <= 6, got 7"),
        ({"n_factors": 4, "n_relevant": 3}, r"n_factors \(4\) must not exceed n_relevant \(3\)"),
        ({"noise": -0.1}, r"noise must be a finite number >= 0, got -0.1"),
        ({"noise": float("nan")}, r"noise must be a finite number >= 0"),
        ({"n_materials": 0}, r"n_materials must be >= 1, got 0"),
        ({"n_devices": 2.5}, r"n_devices must be an integer"),
        ({"n_device_numeric": 1}, r"n_device_numeric must be >= 2, got 1"),
        ({"device_categories": ()}, r"device_categories must be a non-empty tuple"),
        ({"device_categories": ("a", "a")}, r"device_categories must be unique"),
        ({"seed": -1}, r"seed must be >= 0, got -1"),
        ({"n_factors": True}, r"n_factors must be an integer"),
    ],
)
def test_invalid_configs_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SyntheticConfig(**kwargs)
    with pytest.raises(ConfigError, match=message):
        generate(**kwargs)
    with pytest.raises(ConfigError, match=message):
        SyntheticConfig.from_dict(kwargs)
