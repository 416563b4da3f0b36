"""The numpy permutation explainer: additive, exact for additive models, and the values shap's PermutationExplainer gives."""
from __future__ import annotations

import numpy as np
import pytest

from nestedae_core.errors import InputError
from nestedae_core.explain.permutation import permutation_shapley

pytestmark = pytest.mark.unit


def _interacting(a: np.ndarray) -> np.ndarray:
    """Two outputs with interactions and a kink."""
    return np.stack([a[:, 0] * a[:, 1] + np.tanh(a[:, 2]) - a[:, 3] ** 2, np.maximum(a[:, 0] + a[:, 4], 0.0) * a[:, 2]], axis=1)


def test_values_add_up_to_the_prediction_and_are_exact_for_a_linear_model() -> None:
    rng = np.random.default_rng(0)
    bg, X = rng.normal(size=(12, 5)), rng.normal(size=(3, 5))
    values, base = permutation_shapley(_interacting, X, bg, max_evals=4 * 11, seed=0)
    assert values.shape == (3, 5, 2) and base.shape == (3, 2)
    np.testing.assert_allclose(base + values.sum(axis=1), _interacting(X), atol=1e-12)
    np.testing.assert_allclose(base, np.broadcast_to(_interacting(bg).mean(axis=0), (3, 2)), atol=1e-12)
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    lin, _ = permutation_shapley(lambda a: a @ w, X, bg, max_evals=11, seed=1)
    np.testing.assert_allclose(lin[..., 0], (X - bg.mean(axis=0)) * w, atol=1e-12)  # Shapley values of a linear model


def test_features_equal_to_every_background_row_get_nothing_and_the_seed_decides() -> None:
    rng = np.random.default_rng(1)
    bg = rng.normal(size=(6, 4))
    bg[:, 2] = 0.5
    X = rng.normal(size=(2, 4))
    X[:, 2] = 0.5
    a, _ = permutation_shapley(_interacting_4, X, bg, max_evals=18, seed=3)
    assert np.all(a[:, 2] == 0)
    b, _ = permutation_shapley(_interacting_4, X, bg, max_evals=18, seed=3)
    c, _ = permutation_shapley(_interacting_4, X, bg, max_evals=18, seed=4)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    same, base = permutation_shapley(_interacting_4, bg[:1], bg[:1], max_evals=9, seed=0)  # nothing varies
    assert np.all(same == 0) and base[0, 0] == pytest.approx(_interacting_4(bg[:1])[0])
    with pytest.raises(InputError, match="too low"):
        permutation_shapley(_interacting_4, X, bg, max_evals=3, seed=0)


def _interacting_4(a: np.ndarray) -> np.ndarray:
    return a[:, 0] * a[:, 1] * a[:, 3] + np.sin(a[:, 3]) * a[:, 2]  # a three-way interaction: permutations matter


@pytest.mark.slow  # shap compiles its numba kernels (10-30 s)
def test_the_values_are_shaps_permutation_explainer_values() -> None:
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(2)
    bg, X = rng.normal(size=(9, 5)), rng.normal(size=(4, 5))
    bg[:, 3] = X[0, 3]  # feature 3 does not vary for the first row: fewer features, more permutations
    max_evals = 3 * 11
    state = np.random.get_state()
    ex = shap.explainers.Permutation(_interacting, shap.maskers.Independent(bg, max_samples=len(bg)), seed=7)
    e = ex(X, max_evals=max_evals, silent=True)
    np.random.set_state(state)
    values, base = permutation_shapley(_interacting, X, bg, max_evals=max_evals, seed=7)
    np.testing.assert_allclose(values, np.asarray(e.values), atol=1e-10)
    np.testing.assert_allclose(base, np.asarray(e.base_values), atol=1e-10)
