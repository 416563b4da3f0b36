"""Distance-scaled conformal intervals: wide where a query is far from the training rows, even where the fold models agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.model.config import ChainSpec, StageSpec, TargetSpec
from nestedae_core.model.intervals import (
    TargetCalibration,
    calibrate_target,
    calibration_from_json,
    calibration_to_json,
    conformal_interval,
    distance_difficulty,
)
from nestedae_core.train import cross_validate

pytestmark = pytest.mark.unit

MEMBERS = 5


def _agreeing_members(d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fold models that agree (spread 0.005) on a target whose error grows with the distance d: sd 0.05 + 0.3 d.

    Like a held-out ion family: every member misses it the same way, so their disagreement does not see it.
    Returns (member predictions (members, n), truth (n,)).
    """
    mu = rng.normal(scale=0.005, size=(MEMBERS, len(d)))
    y = rng.normal(scale=0.05 + 0.3 * d)
    return mu, y


def _coverage(lo: np.ndarray, hi: np.ndarray, y: np.ndarray) -> float:
    return float(((lo <= y) & (y <= hi)).mean())


def test_distance_scaled_intervals_hold_near_and_far_where_disagreement_fails() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    fold = np.arange(n) % MEMBERS
    d_cal = rng.uniform(0.0, 1.0, size=n)
    mu_cal, y_cal = _agreeing_members(d_cal, rng)
    by_distance = calibrate_target(fold, y_cal, mu_cal, distance=d_cal)
    by_disagreement = calibrate_target(fold, y_cal, mu_cal, normalised=True)
    c0, c1 = by_distance.distance_coef  # type: ignore[misc]
    assert c1 > 2 * c0 > 0  # the fit finds the error growing with the distance
    results = {}
    for name, lo_d, hi_d in (("near", 0.0, 0.2), ("far", 0.8, 1.0)):
        d_q = rng.uniform(lo_d, hi_d, size=4000)
        mu_q, y_q = _agreeing_members(d_q, rng)
        lo, hi = conformal_interval(mu_q, by_distance, 0.9, distance=d_q)
        dlo, dhi = conformal_interval(mu_q, by_disagreement, 0.9)
        results[name] = (_coverage(lo, hi, y_q), float(np.mean(hi - lo)), _coverage(dlo, dhi, y_q))
    (near_cov, near_w, near_dis), (far_cov, far_w, far_dis) = results["near"], results["far"]
    assert 0.85 <= near_cov <= 0.95 and 0.85 <= far_cov <= 0.95, results
    assert far_w > 2.5 * near_w  # narrow near the training rows, wide far from them
    # scaled by the members' disagreement, the same residuals over-cover near and under-cover far
    assert near_dis > 0.97 and far_dis < 0.8, results


def test_distance_difficulty_is_a_non_negative_fit_with_a_positive_floor() -> None:
    d = np.linspace(0.0, 2.0, 50)
    c0, c1 = distance_difficulty(0.1 + 0.4 * d, d)
    assert c0 == pytest.approx(0.1) and c1 == pytest.approx(0.4)
    c0, c1 = distance_difficulty(1.0 - 0.4 * d, d)  # error shrinking with distance: no negative slope
    assert c1 == 0.0 and c0 > 0
    c0, c1 = distance_difficulty(0.5 * d, d)  # zero at distance 0: the floor keeps the difficulty positive
    assert c0 > 0 and c1 == pytest.approx(0.5, rel=1e-3)


def test_a_distance_scaled_calibration_round_trips_and_needs_distances() -> None:
    rng = np.random.default_rng(1)
    d = rng.uniform(size=40)
    cal = calibrate_target(np.arange(40) % 4, rng.normal(size=40), rng.normal(size=(4, 40)), distance=d)
    again = calibration_from_json(calibration_to_json({"s": {"y": cal}}))["s"]["y"]
    assert again.distance_coef == cal.distance_coef and np.array_equal(again.residual, cal.residual)
    with pytest.raises(ValueError, match="distances"):
        conformal_interval(rng.normal(size=(4, 3)), again, 0.9)
    with pytest.raises(ValueError, match="not both"):
        calibrate_target(np.arange(40) % 4, rng.normal(size=40), rng.normal(size=(4, 40)), normalised=True, distance=d)
    with pytest.raises(ValueError, match="c0 > 0"):
        TargetCalibration([0], [0.1], distance_coef=(0.0, 1.0))


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    df = pd.DataFrame(x, columns=["x0", "x1", "x2"])
    df["y"] = np.sin(x[:, 0]) + 0.5 * x[:, 1] + rng.normal(scale=0.3, size=n)
    return df


@pytest.mark.training  # trains a small model
def test_cross_validated_stage_with_distance_scaled_intervals() -> None:
    stage = StageSpec(name="s", dataset="toy", numeric_inputs=["x0", "x1", "x2"], targets=[TargetSpec(column="y", unit="a.u.")],
                      latent_dim=4, head_hidden=[16], head_dropout=0.0, epochs=150, lr=1e-2, interval_scale="distance")
    model = cross_validate(ChainSpec(name="toy", stages=[stage], folds=5, seed=0), {"s": _data(400, 0)}, device="cpu").model
    cal = model.calibration["s"]["y"]
    assert cal.distance_coef is not None and not cal.normalised
    fresh = _data(2000, 1)
    sp = model.predict(fresh)["s"]
    y = fresh["y"].to_numpy()
    assert 0.82 <= _coverage(sp.lower[:, 0], sp.upper[:, 0], y) <= 0.97
    # the width follows the distance to the training rows
    w = sp.upper[:, 0] - sp.lower[:, 0]
    assert np.corrcoef(w, sp.domain_distance)[0, 1] > 0.9 if cal.distance_coef[1] > 0 else np.ptp(w) < 1e-9
    assert "distance" in model.summary()["prediction intervals"]
