"""The training path's own metrics, non-negative line fit and k-means against the libraries they stand in for
(scikit-learn, SciPy), and a training run that imports neither."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nestedae_core.model.domain import kmeans_clusters
from nestedae_core.model.intervals import distance_difficulty
from nestedae_core.train.metrics import regression_metrics

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(6))
def test_regression_metrics_are_scikit_learns(seed: int) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(seed)
    y = rng.normal(1.5, 0.3, 40)
    p = y + rng.normal(0, 0.1 * (seed + 1), 40)
    p[seed] = np.nan  # non-finite pairs are left out
    m = regression_metrics(y, p)
    ok = np.isfinite(p)
    assert m["n"] == 39
    assert m["mae"] == pytest.approx(mean_absolute_error(y[ok], p[ok]), rel=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y[ok], p[ok])), rel=1e-12)
    assert m["r2"] == pytest.approx(r2_score(y[ok], p[ok]), rel=1e-12, abs=1e-12)


def test_regression_metrics_of_constant_and_single_targets() -> None:
    assert regression_metrics(np.ones(4), np.ones(4))["r2"] == 1.0
    assert regression_metrics(np.ones(4), np.array([1.0, 1, 1, 2]))["r2"] == 0.0
    one = regression_metrics(np.array([2.0]), np.array([1.5]))
    assert one["mae"] == 0.5 and np.isnan(one["r2"])
    assert regression_metrics(np.array([np.nan]), np.array([1.0]))["n"] == 0


@pytest.mark.parametrize("slope", [0.4, -0.4, 0.0, 2.0])
@pytest.mark.parametrize("offset", [0.3, -0.5])
def test_distance_fit_is_non_negative_least_squares(slope: float, offset: float) -> None:
    from scipy.optimize import nnls

    rng = np.random.default_rng(int(10 * slope + offset * 7) % 97)
    d = rng.exponential(1.0, 200)
    r = np.abs(offset + slope * d + rng.normal(0, 0.1, 200))
    coef, _ = nnls(np.column_stack([np.ones(200), d]), r)
    c0, c1 = distance_difficulty(r, d)
    assert c1 == pytest.approx(coef[1], abs=1e-9)
    assert c0 == pytest.approx(max(coef[0], 1e-3 * np.median(r), 1e-12), abs=1e-9)


@pytest.mark.parametrize("distance", [0.0, 0.5, 2.0])
def test_distance_fit_of_equal_distances_is_flat(distance: float) -> None:
    r = np.random.default_rng(1).exponential(0.1, 50)
    c0, c1 = distance_difficulty(r, np.full(50, distance))  # no spread in distance: no slope to fit
    assert (c0, c1) == (pytest.approx(r.mean(), rel=1e-12), 0.0)
    assert type(c0) is float and type(c1) is float


def test_kmeans_is_as_tight_as_scikit_learns_and_seeded() -> None:
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    blobs = rng.normal(size=(12, 5)) * 4
    z = blobs[rng.integers(0, 12, 600)] + rng.normal(0, 0.3, (600, 5))
    ours = kmeans_clusters(z, 32, seed=3)
    assert ours.n_clusters == 32 and ours.centers.shape == (32, 5)
    assert np.array_equal(np.unique(ours.labels), np.arange(32))  # no empty cluster
    # every centre is the mean of its rows, every row with its nearest centre
    for j in range(32):
        assert np.allclose(ours.centers[j], z[ours.labels == j].mean(axis=0))
    d2 = ((z[:, None, :] - ours.centers[None]) ** 2).sum(-1)
    assert np.array_equal(d2.argmin(axis=1), ours.labels)
    inertia = d2.min(axis=1).sum()
    theirs = np.median([KMeans(32, n_init=1, random_state=s).fit(z).inertia_ for s in range(5)])
    assert inertia <= 1.15 * theirs
    again = kmeans_clusters(z, 32, seed=3)
    assert np.array_equal(again.labels, ours.labels) and np.array_equal(again.centers, ours.centers)
    assert not np.array_equal(kmeans_clusters(z, 32, seed=4).centers, ours.centers)


def test_kmeans_uses_at_most_the_distinct_rows() -> None:
    z = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 5, axis=0)
    c = kmeans_clusters(z, 32, seed=0)
    assert c.n_clusters == 3
    assert sorted(map(tuple, np.round(c.centers, 9))) == [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)]
    assert kmeans_clusters(np.zeros((4, 3)), 8, seed=0).n_clusters == 1


def test_kmeans_refills_an_empty_cluster_from_a_cluster_of_two_or_more_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import nestedae_core.model.domain as domain

    # a start that leaves centre 2 empty; the row farthest from its centre (row 0) is alone in cluster 0
    monkeypatch.setattr(domain, "_kmeans_plus_plus", lambda z, k, rng: np.array([[-3.0], [10.5], [100.0]]))
    z = np.array([[0.0], [10.0], [11.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 centre on the way
        c = kmeans_clusters(z, 3, seed=0)
    assert c.labels.tolist() == [0, 2, 1]  # row 1 of the two-row cluster moved, row 0 kept its own cluster
    assert c.centers.ravel().tolist() == [0.0, 11.0, 10.0]


def test_background_categories_leave_missing_values_out() -> None:
    import pandas as pd

    from nestedae_core.train.background import kmeans_background

    # three equal numeric columns put rows 0-3 and rows 4-6 in two clusters; the missing ETLs are no category
    x = [0.0, 0.1, 0.2, 0.1, 100.0, 100.1, 100.2]
    t = pd.DataFrame({"a": x, "b": x, "c": x, "etl": ["SnO2", None, None, "SnO2", None, np.nan, pd.NA],
                      "htl": ["PTAA", "Spiro", None, "Spiro", "PTAA", "PTAA", "Spiro"]})
    bg, weights = kmeans_background(t, ["a", "b", "c"], ["etl", "htl"], 2, seed=0)
    rows = {round(float(r.a)): r for r in bg.itertuples()}
    assert rows[0].etl == "SnO2" and pd.isna(rows[100].etl)  # the mode of the stated values; none stated: missing
    assert rows[0].htl == "Spiro" and rows[100].htl == "PTAA"
    assert sorted(weights.tolist()) == pytest.approx([3 / 7, 4 / 7])


def test_background_of_no_columns_has_one_row_per_weight() -> None:
    import pandas as pd

    from nestedae_core.train.background import kmeans_background

    bg, weights = kmeans_background(pd.DataFrame(index=range(5)), [], [], 4, seed=0)
    assert bg.shape == (len(weights), 0) and weights.tolist() == [1.0]


def test_psc_gaps_take_each_devices_own_basis_when_row_labels_repeat() -> None:
    import pandas as pd

    from nestedae_core.data.derived import BASIS_COLUMN, GAP_BASIS, GAP_DEVICES, psc_gaps
    from nestedae_core.vocabulary import COMPOSITION_KEY, DEVICE_COMPOSITION, MEASURED_BANDGAP

    rows = [("MAPbI3", 1.60, "Composition"), ("FAPbI3", 1.50, "Absorption"), ("MAPbI3", 1.58, None),
            ("FAPbI3", 1.52, "Absorption")]
    devices = pd.DataFrame(rows, columns=[DEVICE_COMPOSITION, MEASURED_BANDGAP, BASIS_COLUMN], index=[0, 1, 0, 1])
    table = psc_gaps(devices).set_index(COMPOSITION_KEY)
    assert table[GAP_DEVICES].to_dict() == {"FAPbI3": 2, "MAPbI3": 2}
    assert table[GAP_BASIS].to_dict() == {"FAPbI3": "Absorption (2)", "MAPbI3": "Composition (1), not stated (1)"}


def test_psc_gaps_of_no_usable_device_is_one_clear_error() -> None:
    import pandas as pd

    from nestedae_core.data.derived import psc_gaps
    from nestedae_core.errors import DataError
    from nestedae_core.vocabulary import DEVICE_COMPOSITION, MEASURED_BANDGAP

    for rows in ([], [("MAPbI3", None)], [("not a formula", 1.6)]):
        with pytest.raises(DataError, match="no device has both a measured band gap and a composition that parses"):
            psc_gaps(pd.DataFrame(rows, columns=[DEVICE_COMPOSITION, MEASURED_BANDGAP]))


@pytest.mark.training
@pytest.mark.timeout(300)
def test_a_cross_validation_imports_neither_scikit_learn_nor_scipy() -> None:
    code = ("import sys; from nestedae_core.perovskite.presets import preset; from nestedae_core.train import cross_validate; "
            "cross_validate(preset('synthetic', epochs=3, folds=3), device='cpu'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
