"""Applicability domain per stage: the leave-one-out nearest-neighbour threshold, reasons, old k-means domains."""
from __future__ import annotations

import numpy as np
import pytest

from nestedae_core.model.domain import DomainModel, nearest_points
from nestedae_core.predict import line_scan, predict_composition
from nestedae_core.store import load_bundle, shipped_bundle_path

pytestmark = pytest.mark.training


def _cloud(seed: int = 0, n: int = 300, d: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * [1.0, 2.0, 0.5, 10.0] + [0.0, 5.0, -1.0, 100.0]


def test_threshold_is_the_99th_percentile_of_leave_one_out_distances() -> None:
    values = _cloud()
    values = np.vstack([values, values[:20]])  # duplicated rows count once
    labels = [f"m{i}" for i in range(len(values))]
    dom = DomainModel.fit(["a", "b", "c", "d"], values, labels)
    assert dom.rule == "nearest_row" and len(dom.points) == 300 and dom.labels == labels[:300]
    z = (values[:300] - values.mean(axis=0)) / values.std(axis=0)
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    assert dom.threshold == pytest.approx(np.quantile(d.min(axis=1), 0.99), rel=1e-9)
    # every training row is inside (distance 0), its own nearest row
    dist, idx = dom.nearest(values)
    assert np.allclose(dist, 0.0, atol=1e-6) and (idx[:300] == np.arange(300)).all()
    assert dom.distance(values).max() < 1e-6


def test_nearest_points_is_exact() -> None:
    rng = np.random.default_rng(1)
    pts, q = rng.normal(size=(50, 3)), rng.normal(size=(40, 3)) * 3
    d, i = nearest_points(q, pts)
    full = np.sqrt(((q[:, None] - pts[None]) ** 2).sum(-1))
    assert np.allclose(d, full.min(axis=1), rtol=0, atol=1e-12) and (i == full.argmin(axis=1)).all()
    d, i = nearest_points(pts, pts, exclude_self=True)
    np.fill_diagonal(full := np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)), np.inf)
    assert np.allclose(d, full.min(axis=1)) and (i != np.arange(50)).all()


def test_a_far_query_is_outside_and_the_reason_says_where_and_why() -> None:
    values = _cloud()
    dom = DomainModel.fit(["a", "b", "c", "d"], values, [f"m{i}" for i in range(300)])
    between = (values[0] + values[1]) / 2
    far = values[7] + np.array([0.0, 0.0, 0.0, 200.0])  # 20 sd along d, nearest to row 7 in the others
    dist, idx = dom.nearest(np.vstack([between, far]))
    assert dist[0] <= dom.threshold < dist[1]
    assert dom.reason("dft", float(dist[0]), int(idx[0])) == ""
    reason = dom.reason("dft", float(dist[1]), int(idx[1]))
    assert reason.startswith("outside the training data of stage 'dft': distance ")
    assert f"> threshold {dom.threshold:.2f} (standardised units); nearest training row: m" in reason
    assert float(reason.split("distance ")[1].split(" ")[0]) == pytest.approx(dist[1], abs=0.01)


def test_json_round_trip_and_old_kmeans_domains() -> None:
    dom = DomainModel.fit(["a", "b", "c", "d"], _cloud(), [f"m{i}" for i in range(300)])
    again = DomainModel.from_json(dom.to_json())
    q = _cloud(seed=5, n=50) * 1.5
    assert again.rule == "nearest_row" and again.labels == dom.labels
    assert np.array_equal(again.distance(q), dom.distance(q)) and again.threshold == dom.threshold
    old = {"columns": ["a", "b"], "mean": [0.0, 1.0], "scale": [1.0, 2.0], "centroids": [[0.0, 0.0], [1.0, 1.0]], "threshold": 0.8}
    km = DomainModel.from_json(old)  # a bundle written before: k-means centroids, no rule, no labels
    assert km.rule == "kmeans" and km.labels == []
    assert km.distance(np.array([[0.0, 1.0], [1.0, 3.0], [3.0, 1.0]])) == pytest.approx([0.0, 0.0, np.sqrt(5.0)])
    assert km.reason("materials", 2.0, 0) == "outside the training data of stage 'materials': distance 2.00 > threshold 0.80 (standardised units)"
    assert km.to_json()["centroids"] == old["centroids"]


@pytest.fixture(scope="module")
def synthetic(tiny_synthetic):  # type: ignore[no-untyped-def]
    return tiny_synthetic


def test_a_query_is_flagged_at_the_first_stage_it_leaves(synthetic) -> None:
    model, table = synthetic.model, synthetic.tables["devices"]
    assert [d.rule for d in model.domains] == ["nearest_row", "nearest_row"]
    rows = table.head(3).copy()
    rows.loc[rows.index[1], "d0"] = 40.0  # a device input far outside: materials fine, devices not
    rows.loc[rows.index[2], "x0"] = 40.0  # a material input far outside: flagged at materials already
    preds = model.predict(rows)
    mat, dev = preds["materials"], preds["devices"]
    assert mat.in_domain.tolist() == [True, True, False] and dev.in_domain.tolist()[:2] == [True, False]
    assert mat.domain_reason[0] == "" and mat.domain_reason[1] == "" and dev.domain_reason[0] == ""
    # 40 lies beyond the range of d0 / x0 the training rows cover, and far from every row: both named, the input first
    assert dev.domain_reason[1].startswith("outside the training data of stage 'devices': d0 40.00 (its training rows reach ")
    assert mat.domain_reason[2].startswith("outside the training data of stage 'materials': x0 40.00 (its training rows reach ")
    assert "; distance " in dev.domain_reason[1] and "; distance " in mat.domain_reason[2]
    assert "nearest training row: " in mat.domain_reason[2]


def test_query_results_name_the_first_stage_and_why(tiny_paper) -> None:
    model = tiny_paper.model
    inside = predict_composition(model, "MAPbI3")
    assert inside.in_domain and inside.domain_stage is None and inside.domain_message == ""
    device_out = predict_composition(model, "KCaCl3")  # in the DFT data, far from any device
    assert device_out.stage_in_domain == {"materials": True, "devices": False} and device_out.domain_stage == "devices"
    assert device_out.domain_message.startswith("outside the training data of stage 'devices': distance ")
    outside = predict_composition(model, "K0.5FA0.5Ca0.5Ge0.5Cl1.5I1.5")  # a mix unlike any computed one
    assert not outside.stage_in_domain["materials"] and outside.domain_stage == "materials"  # the first stage it leaves
    assert outside.domain_message.startswith("outside the training data of stage 'materials': distance ")
    assert "nearest training row: " in outside.domain_message
    js = outside.to_json()
    assert js["domain_stage"] == "materials" and js["domain_message"] == outside.domain_message
    scan = line_scan(model, "MAPbI3", "K0.5FA0.5Ca0.5Ge0.5Cl1.5I1.5", steps=5)
    assert scan["domain_stage"].iloc[0] == "" and scan["domain_stage"].iloc[-1] == "materials"
    assert (scan["domain_stage"] == "").tolist() == scan["in_domain"].tolist()


def test_the_shipped_bundle_keeps_its_kmeans_domains() -> None:
    model = load_bundle(shipped_bundle_path("paper-default"))
    assert [d.rule for d in model.domains] == ["kmeans", "kmeans"]
    assert predict_composition(model, "MAPbI3").in_domain
    res = predict_composition(model, "KCaCl3")
    assert not res.in_domain and res.domain_stage is not None
    assert res.domain_message.startswith(f"outside the training data of stage '{res.domain_stage}'")
    assert "nearest training row" not in res.domain_message  # centroids have no names


def test_a_reason_names_three_uncovered_inputs_and_counts_the_rest() -> None:
    cols = ["a", "b", "c", "d"]
    dom = DomainModel.fit(cols, _cloud(), [f"m{i}" for i in range(300)], coverage_columns=cols)
    far = np.array([[50.0, 80.0, 30.0, 900.0]])  # every input beyond its covered range
    unc = dom.uncovered(far)[0]
    assert [u.column for u in unc] == cols
    text = dom.reason("s", float(dom.distance(far)[0]), 0, unc)
    assert "a 50.00" in text and "b 80.00" in text and "c 30.00" in text and "d 900.00" not in text
    assert "and 1 more input beyond their range" in text
    two = dom.reason("s", float(dom.distance(far)[0]), 0, unc[:2])
    assert "more input" not in two and "b 80.00" in two
