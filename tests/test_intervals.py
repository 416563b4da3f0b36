"""CV+ prediction intervals: the finite-sample quantiles, level handling, and coverage on data with known noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.errors import InputError
from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec
from nestedae_core.model.intervals import (
    TargetCalibration,
    calibration_from_json,
    calibration_to_json,
    check_level,
    clip_to_bounds,
    cv_plus_interval,
    cv_plus_ranks,
)
from nestedae_core.train import cross_validate, fit

pytestmark = pytest.mark.unit

NOISE = 0.5  # sd of the Gaussian noise of the one-stage data, in y's units


def _brute_force(mu: np.ndarray, cal: TargetCalibration, level: float) -> tuple[np.ndarray, np.ndarray]:
    """CV+ straight from its definition: order statistics of mu_k(i)(x) -/+ r_i over all i."""
    n = len(cal)
    k_lo, k_hi = cv_plus_ranks(n, level)
    lows = np.sort(mu[cal.fold] - cal.residual[:, None], axis=0)
    highs = np.sort(mu[cal.fold] + cal.residual[:, None], axis=0)
    lo = lows[k_lo - 1] if k_lo >= 1 else np.full(mu.shape[1], -np.inf)
    hi = highs[k_hi - 1] if k_hi <= n else np.full(mu.shape[1], np.inf)
    return lo, hi


def test_cv_plus_matches_its_definition() -> None:
    rng = np.random.default_rng(3)
    for trial in range(60):
        n, k, q = int(rng.integers(5, 400)), int(rng.integers(1, 6)), int(rng.integers(1, 30))
        residual = np.abs(rng.normal(size=n)) * rng.uniform(0.01, 5)
        if trial % 4 == 0:
            residual = np.round(residual, 1)  # ties
        cal = TargetCalibration(rng.integers(0, k, n), residual)
        mu = rng.normal(size=(k, q)) * rng.uniform(0, 3) + rng.normal() * 10
        for level in (0.5, 0.8, 0.9, 0.95):
            lo, hi = cv_plus_interval(mu, cal, level)
            blo, bhi = _brute_force(mu, cal, level)
            assert np.array_equal(np.isfinite(lo), np.isfinite(blo)) and np.array_equal(np.isfinite(hi), np.isfinite(bhi))
            fin = np.isfinite(blo)
            assert np.allclose(lo[fin], blo[fin], rtol=0, atol=1e-9)
            fin = np.isfinite(bhi)
            assert np.allclose(hi[fin], bhi[fin], rtol=0, atol=1e-9)


def test_cv_plus_is_the_exact_order_statistic_with_ties() -> None:
    """Tied and near-tied candidates (residuals and predictions on a coarse grid) give exactly the brute-force value:
    the search picks the k-th among the few candidates left in its bracket instead of bisecting to a tolerance."""
    rng = np.random.default_rng(11)
    for trial in range(40):
        n, q, decimals = int(rng.integers(20, 700)), 400, int(rng.integers(0, 3))
        cal = TargetCalibration(rng.integers(0, 5, n), np.round(rng.exponential(1.0, n), decimals))
        mu = np.round(rng.normal(size=(5, q)), decimals)
        for level in (0.8, 0.9):
            lo, hi = cv_plus_interval(mu, cal, level)
            blo, bhi = _brute_force(mu, cal, level)
            assert np.array_equal(lo, blo) and np.array_equal(hi, bhi), (trial, level)


def test_cv_plus_exact_with_uneven_and_empty_folds_and_every_level() -> None:
    """Folds of very different sizes, a fold without residuals, every rank from the first to the last: exactly the
    brute-force value; a query whose member prediction is NaN gets NaN bounds, its neighbours are unaffected."""
    rng = np.random.default_rng(5)
    for trial in range(30):
        sizes = rng.integers(0, 60, 5)
        sizes[trial % 5] = 0  # one fold has no residual
        fold = np.repeat(np.arange(5), sizes)
        if len(fold) < 2:
            continue
        cal = TargetCalibration(fold, np.round(rng.exponential(1.0, len(fold)), trial % 3))
        mu = np.round(rng.normal(size=(5, 50)), trial % 3)
        for level in (0.05, 0.3, 0.5, 0.7, 0.9, 0.99):
            lo, hi = cv_plus_interval(mu, cal, level)
            blo, bhi = _brute_force(mu, cal, level)
            assert np.array_equal(lo, blo) and np.array_equal(hi, bhi), (trial, level)
    mu[2, 7] = np.nan
    lo, hi = cv_plus_interval(mu, cal, 0.5)
    blo, bhi = _brute_force(np.delete(mu, 7, axis=1), cal, 0.5)
    assert np.isnan(lo[7]) and np.isnan(hi[7])
    assert np.array_equal(np.delete(lo, 7), blo) and np.array_equal(np.delete(hi, 7), bhi)


def test_finite_sample_ranks_of_barber_et_al() -> None:
    # alpha = 0.1: lower rank floor(0.1 (n+1)), upper rank ceil(0.9 (n+1))
    assert cv_plus_ranks(19, 0.9) == (2, 18)
    assert cv_plus_ranks(99, 0.9) == (10, 90)
    assert cv_plus_ranks(100, 0.9) == (10, 91)
    assert cv_plus_ranks(8, 0.9) == (0, 9)  # too few rows for 90 %: both bounds infinite
    lo, hi = cv_plus_interval(np.zeros((2, 3)), TargetCalibration([0, 1] * 4, np.ones(8)), 0.9)
    assert np.all(lo == -np.inf) and np.all(hi == np.inf)
    lo, hi = cv_plus_interval(np.zeros((2, 3)), TargetCalibration([0, 1] * 4, np.ones(8)), 0.5)
    assert np.allclose(lo, -1.0) and np.allclose(hi, 1.0)


def test_level_is_checked() -> None:
    assert check_level(0.9) == 0.9
    for bad in (0, 1, 1.5, -0.1, "x", None):
        with pytest.raises(InputError, match="level"):
            check_level(bad)  # type: ignore[arg-type]


def test_intervals_are_clipped_to_the_physical_range() -> None:
    lo, hi = clip_to_bounds(np.array([-1.0, 0.5]), np.array([0.2, 1.3]), "fraction")
    assert lo.tolist() == [0.0, 0.5] and hi.tolist() == [0.2, 1.0]
    lo, hi = clip_to_bounds(np.array([-1.0, 2.0]), np.array([-0.5, 3.0]), "positive")
    assert lo.tolist() == [0.0, 2.0] and hi.tolist() == [0.0, 3.0]
    lo, hi = clip_to_bounds(np.array([-1.0]), np.array([1.0]), "real")
    assert lo.tolist() == [-1.0] and hi.tolist() == [1.0]


def test_calibration_json_round_trip() -> None:
    cal = {"s": {"y": TargetCalibration([2, 0, 1, 0], [0.3, 0.1, 0.2, 0.05])}}
    again = calibration_from_json(calibration_to_json(cal))
    assert again["s"]["y"].fold.tolist() == [0, 0, 1, 2]  # sorted by fold, then residual
    assert again["s"]["y"].residual.tolist() == [0.05, 0.1, 0.2, 0.3]


# --------------------------------------------------------------------------- coverage on data with known noise


def _one_stage_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    f = np.sin(1.5 * x[:, 0]) + 0.5 * x[:, 1] ** 2 - 0.7 * x[:, 2]
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(4)])
    df["y"] = f + rng.normal(scale=NOISE, size=n)
    return df


def _one_stage_spec(epochs: int = 250) -> ChainSpec:
    stage = StageSpec(
        name="s", dataset="one-stage", numeric_inputs=["x0", "x1", "x2", "x3"], targets=[TargetSpec(column="y", unit="a.u.")],
        latent_dim=6, head_hidden=[32], head_dropout=0.0, l1=1e-3, reconstruction_weight=0.1, epochs=epochs, lr=1e-2,
    )
    return ChainSpec(name="one-stage", stages=[stage], folds=5, seed=0)


@pytest.fixture(scope="module")
def one_stage():  # type: ignore[no-untyped-def]
    return cross_validate(_one_stage_spec(), {"s": _one_stage_data(800, seed=0)}, device="cpu")


def test_ninety_percent_intervals_cover_ninety_percent_of_fresh_rows(one_stage) -> None:
    model = one_stage.model
    fresh = _one_stage_data(3000, seed=1)
    y = fresh["y"].to_numpy()
    widths = {}
    for level, (lo_ok, hi_ok) in {0.9: (0.85, 0.95), 0.5: (0.42, 0.58)}.items():
        sp = model.predict(fresh, level=level)["s"]
        assert sp.level == level and sp.lower is not None and sp.upper is not None
        covered = (sp.lower[:, 0] <= y) & (y <= sp.upper[:, 0])
        assert lo_ok <= covered.mean() <= hi_ok, (level, covered.mean())
        assert np.all(sp.lower[:, 0] <= sp.mean[:, 0]) and np.all(sp.mean[:, 0] <= sp.upper[:, 0])
        widths[level] = float(np.mean(sp.upper - sp.lower))
    # the noise alone needs a 90 % width of 2 x 1.645 x 0.5 = 1.64; the ensemble spread is far narrower
    assert widths[0.9] > widths[0.5] and widths[0.9] > 1.5
    sp = model.predict(fresh)["s"]
    assert sp.level == 0.9
    assert float(np.mean(sp.disagreement)) < 0.5 * widths[0.9] / 2
    assert np.array_equal(sp.disagreement, sp.std)
    with pytest.raises(InputError, match="level"):
        model.predict(fresh, level=90)


def test_the_calibration_is_the_out_of_fold_residuals(one_stage) -> None:
    r = one_stage
    cal = r.model.calibration["s"]["y"]
    oof = r.oof["s"]
    assert len(cal) == len(oof)
    expected = TargetCalibration(oof["fold"].to_numpy(), (oof["y_true"] - oof["y_pred"]).abs().to_numpy())
    assert np.array_equal(cal.fold, expected.fold) and np.allclose(cal.residual, expected.residual)
    assert np.mean(cal.residual) == pytest.approx(r.metrics["s"]["y"]["mae"], rel=0.05)


def test_a_model_fitted_on_all_rows_has_no_intervals() -> None:
    model = fit(_one_stage_spec(epochs=20), {"s": _one_stage_data(200, seed=2)}, device="cpu", members=2)
    sp = model.predict(_one_stage_data(10, seed=3))["s"]
    assert sp.lower is None and sp.upper is None and not model.has_intervals
    assert "fitted on all rows" in model.summary()["prediction intervals"]
