"""Ground-truth Shapley values of known functions (nestedae_core.explain.ground_truth) and of the synthetic y1."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.data import synthetic, synthetic_truth
from nestedae_core.errors import ConfigError, InputError
from nestedae_core.explain import explain_function
from nestedae_core.explain.ground_truth import (
    attribution_error,
    gaussian_shapley,
    linear_shapley,
    shapley_from_game,
)

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(3)
W = np.array([0.7, -1.3, 0.0, 2.1])
MU = np.array([0.5, -1.0, 2.0, 0.0])
A = RNG.standard_normal((4, 4))
COV = A @ A.T + 0.5 * np.eye(4)  # correlated inputs
X = MU + RNG.standard_normal((6, 4)) @ np.linalg.cholesky(COV).T


def linear(X: np.ndarray) -> np.ndarray:
    return np.atleast_2d(X) @ W + 3.0


@pytest.mark.parametrize("n_draws", [2, 64])
def test_interventional_shapley_of_a_linear_function_is_w_times_deviation(n_draws):
    phi = gaussian_shapley(linear, X, MU, COV, "interventional", n_draws=n_draws, seed=5)
    np.testing.assert_allclose(phi, W * (X - MU), atol=1e-10)
    np.testing.assert_allclose(linear_shapley(W, X, MU), W * (X - MU), atol=1e-12)


def test_efficiency_shapley_values_sum_to_f_minus_its_expectation():
    f = lambda Z: np.tanh(Z[:, 0] * Z[:, 1]) + Z[:, 2] ** 2 - np.sin(Z[:, 3])  # noqa: E731
    for game in ("interventional", "observational"):
        phi = gaussian_shapley(f, X, MU, COV, game, n_draws=512)
        # v(empty) is the same Monte-Carlo estimate of E f for every row
        base = f(X) - phi.sum(axis=1)
        np.testing.assert_allclose(base, base[0], atol=1e-10)
        big = MU + np.random.default_rng(0).standard_normal((200_000, 4)) @ np.linalg.cholesky(COV).T
        assert abs(base[0] - f(big).mean()) < 4 * f(big).std() / np.sqrt(256)  # Monte-Carlo error of E f


def test_observational_linear_gaussian_matches_closed_form_and_moves_credit():
    obs = gaussian_shapley(linear, X, MU, COV, "observational", n_draws=2)
    np.testing.assert_allclose(obs, linear_shapley(W, X, MU, COV, "observational"), atol=1e-9)
    np.testing.assert_allclose(obs.sum(axis=1), linear(X) - linear(MU[None])[0], atol=1e-9)
    # x2 is unused (w = 0) but correlated with the others: observational credit, not interventional
    assert np.abs(obs[:, 2]).mean() > 1e-3
    assert np.abs(linear_shapley(W, X, MU)[:, 2]).max() == 0.0


@pytest.mark.training  # shap's one-off numba compilation: ~10-40 s
def test_exact_enumeration_agrees_with_shaps_exact_explainer_on_a_nonlinear_function():
    f = lambda Z: Z[:, 0] * Z[:, 1] + np.maximum(Z[:, 2], 0.0)  # noqa: E731
    bg = np.random.default_rng(1).standard_normal((24, 3))
    Xs = np.random.default_rng(2).standard_normal((3, 3))
    # the interventional game on the background, tabulated by hand, through shapley_from_game
    v = np.empty((3, 8))
    for mask in range(8):
        rows = np.repeat(Xs, len(bg), axis=0)
        tiled = np.tile(bg, (3, 1))
        for j in range(3):
            if not mask >> j & 1:
                rows[:, j] = tiled[:, j]
        v[:, mask] = f(rows).reshape(3, len(bg)).mean(axis=1)
    ref = explain_function(f, Xs, bg, method="exact")
    np.testing.assert_allclose(shapley_from_game(v), ref.values, atol=1e-8)


def test_synthetic_ground_truth_unused_features_get_zero_and_pair_splits_only_observationally():
    data = synthetic.generate(correlated_pair=True, n_materials=60)
    rows = data.materials.iloc[:5]
    f = synthetic_truth.true_material_function(data)
    names = synthetic.material_feature_names(data)
    np.testing.assert_allclose(f(rows[names].to_numpy()), rows["true_y1"], atol=1e-12)
    inter = synthetic_truth.ground_truth(data, rows, "interventional", n_draws=32)
    obs = synthetic_truth.ground_truth(data, rows, "observational", n_draws=32)
    for col in data.truth.irrelevant_material_features:
        assert np.abs(inter[col]).max() < 1e-12 and np.abs(obs[col]).max() < 1e-12
    assert np.abs(inter["x_dup"]).max() < 1e-12
    assert np.abs(obs["x_dup"]).mean() > 0.3 * np.abs(obs["x0"]).mean()
    np.testing.assert_allclose(inter.sum(axis=1), obs.sum(axis=1), atol=1e-9)  # same f(x) - E f


def test_attribution_error_and_bad_input():
    t = np.array([[1.0, -2.0], [0.5, 0.0]])
    err = attribution_error(t + 0.1, t)
    assert err["mae"] == pytest.approx(0.1) and err["max"] == pytest.approx(0.1)
    assert err["rank_agreement"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="shape"):
        attribution_error(t[:1], t)
    with pytest.raises(InputError, match="game"):
        gaussian_shapley(linear, X, MU, COV, "causal")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at most"):
        gaussian_shapley(lambda Z: Z[:, 0], np.zeros((1, 20)), np.zeros(20), np.eye(20))
    with pytest.raises(ConfigError, match="dup_correlation"):
        synthetic.SyntheticConfig(dup_correlation=1.0)


def test_correlation_study_observational_split_grows_with_correlation():
    data = synthetic.generate(n_materials=80)
    study = synthetic_truth.correlation_study(data, [0.0, 0.95], n_rows=6, n_draws=16, folds=3)
    obs = study[study.game == "observational"].set_index("correlation")
    inter = study[study.game == "interventional"].set_index("correlation")
    assert obs.loc[0.95, "x_dup"] > 5 * max(obs.loc[0.0, "x_dup"], 1e-9)
    assert inter["x_dup"].abs().max() < 1e-12
    assert isinstance(study, pd.DataFrame) and study["mae_with_pair"].notna().all()
