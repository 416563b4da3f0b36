"""Inverse design: the lattice holds the constraints exactly, the optimiser finds and ranks proposals honestly,
impossible problems end with a message, the CLI writes predict-style tables."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nestedae_core.design import (
    DesignInfeasible,
    DesignProblem,
    Objective,
    QuantityRange,
    counts_from_unit,
    fractions_from_counts,
    pareto_ranks,
    parameter_names,
    proposal_table,
    run_design,
)
from nestedae_core.errors import InputError
from nestedae_core.estimator import NestedAEModel
from nestedae_core.vocabulary import IONS, SITE_SLICES

from cli_checks import one_line_error, run

pytestmark = pytest.mark.unit

PB = IONS.index("Pb")


@pytest.fixture(scope="module")
def shipped():
    return NestedAEModel.load().model_


def _random_points(problem: DesignProblem, n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    names = parameter_names(problem)
    # corners and edges of the cube too: where rounding and caps are hardest
    u = rng.choice([0.0, 1.0, 0.5, rng.random()], size=(n, len(names))) if seed % 2 else rng.random((n, len(names)))
    return [dict(zip(names, row)) for row in u]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("resolution,max_ions,max_pb", [(0.01, 3, None), (1 / 64, 2, 0.5), (0.05, 1, None), (0.1, 4, 0.25)])
def test_every_point_of_the_cube_is_a_composition_that_meets_the_constraints_exactly(seed, resolution, max_ions, max_pb) -> None:
    p = DesignProblem(a_ions=["K", "Rb", "Cs", "MA", "FA"], b_ions=["Ge", "Sn", "Pb"], x_ions=["Cl", "Br", "I"],
                      max_ions=max_ions, resolution=resolution, max_pb=max_pb)
    counts = counts_from_unit(p, _random_points(p, 500, seed))
    fr = fractions_from_counts(counts, p.divisions)
    for site, sl in SITE_SLICES.items():
        assert (counts[:, sl].sum(axis=1) == p.divisions).all(), site  # whole steps, exactly one site
        assert np.allclose(fr[:, sl].sum(axis=1), 1.0, atol=1e-9)
        assert ((counts[:, sl] > 0).sum(axis=1) <= max_ions).all(), site
    assert np.allclose(fr * p.divisions, np.round(fr * p.divisions), atol=1e-9)  # resolution respected
    if max_pb is not None:
        assert (fr[:, PB] <= max_pb + 1e-12).all()
    allowed = {IONS.index(i) for s in "ABX" for i in p.site_ions(s)}
    assert not counts[:, [j for j in range(len(IONS)) if j not in allowed]].any()


def test_pb_free_means_zero_pb_and_pb_only_pb_free_is_refused() -> None:
    p = DesignProblem(b_ions=["Pb", "Sn", "Ge"], pb_free=True, resolution=0.02)
    assert not counts_from_unit(p, _random_points(p, 300))[:, PB].any()
    with pytest.raises(ValueError, match="Pb-free was asked and Pb was the only B-site ion"):
        DesignProblem(b_ions=["Pb"], pb_free=True)
    with pytest.raises(ValueError, match="Pb is the only B-site ion"):
        DesignProblem(b_ions=["Pb"], max_pb=0.5)


@pytest.mark.parametrize("kwargs,needle", [
    ({"resolution": 0.03}, "1/m for a whole number"),
    ({"a_ions": ["Pb"]}, "belongs to the B site"),
    ({"x_ions": ["I", "I"]}, "listed twice"),
    ({"constraints": [QuantityRange(quantity="bandgap_eV", minimum=1.5), QuantityRange(quantity="bandgap_eV", maximum=1.4)]}, "contradict"),
    ({"objectives": [Objective(quantity="pce_percent"), Objective(quantity="pce_percent")]}, "twice"),
    ({"stacks": [("SnO2-np", "Spiro-MeOTAD")], "etl": "SnO2-np"}, "not both"),
])
def test_contradictory_problems_are_refused_with_the_reason(kwargs, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        DesignProblem(**kwargs)


def test_pareto_ranks_sort_the_fronts() -> None:
    v = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [6, 6], [2, 2]], dtype=float)
    assert pareto_ranks(v).tolist() == [0, 0, 0, 1, 2, 0]


def test_a_design_meets_its_window_exactly_and_ranks_in_domain_first(shipped) -> None:
    p = DesignProblem(constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.30, maximum=1.40)], pb_free=True,
                      max_evals=60, batch_size=20, seed=3)
    res = run_design(shipped, p)
    props = res.proposals
    assert res.evaluations <= 60 and len(props)
    assert props["bandgap_eV_mean"].between(1.30, 1.40).all()
    assert not props["Pb"].any()
    ranked = props[props["status"] == "ranked"]
    assert ranked["in_domain"].all()
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert props.loc[props["status"] != "ranked", "rank"].isna().all()  # outside a stage's domain: listed, never ranked
    statuses = props["status"].tolist()
    assert statuses == sorted(statuses, key=lambda s: s != "ranked")  # never an out-of-domain row among the ranked
    assert (np.diff(ranked["pce_percent_mean"].to_numpy()) <= 1e-12).all()  # best first
    assert ranked["p_beats_next"].iloc[:-1].between(0, 1).all()
    for site, sl in SITE_SLICES.items():
        assert np.allclose(props[list(IONS[sl])].sum(axis=1), 1.0, atol=1e-9)
    again = run_design(shipped, p)
    assert again.proposals["formula"].tolist() == props["formula"].tolist()  # the seed fixes the run


def test_an_optimiser_beats_random_search_on_the_same_budget(shipped) -> None:
    p = DesignProblem(a_ions=["Cs", "FA", "MA"], b_ions=["Pb"], x_ions=["Br", "I"], resolution=0.05,
                      constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.65, maximum=1.75)], max_evals=150, seed=0)
    best = {s: run_design(shipped, p, sampler=s).proposals["pce_percent_mean"].iloc[0] for s in ("tpe", "random")}
    assert best["tpe"] >= best["random"] - 0.05, best


def test_an_impossible_window_ends_with_a_message_naming_the_closest(shipped) -> None:
    p = DesignProblem(constraints=[QuantityRange(quantity="bandgap_eV", minimum=4.5, maximum=5.0)], max_evals=40)
    with pytest.raises(DesignInfeasible, match=r"no composition met the constraints in 40 model evaluations: the closest was .* below 4.5"):
        run_design(shipped, p)


def test_a_quantity_the_model_lacks_is_named(shipped) -> None:
    p = DesignProblem(objectives=[Objective(quantity="efficiency")], max_evals=10)
    with pytest.raises(InputError, match="does not predict 'efficiency'; it predicts: .*pce_percent"):
        run_design(shipped, p)


def test_the_proposal_table_leads_with_formula_and_predictions_and_names_the_nearest_measured(shipped) -> None:
    import pandas as pd

    from nestedae_core.data.lookup import measured_compositions

    p = DesignProblem(constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.5, maximum=1.6)], max_evals=30, seed=1)
    res = run_design(shipped, p)
    frac = np.zeros((2, len(IONS)))
    for row, ions in enumerate((("MA", "Pb", "I"), ("FA", "Pb", "I"))):
        frac[row, [IONS.index(i) for i in ions]] = 1.0
    devices = pd.DataFrame({"formula": ["MAPbI3", "FAPbI3"], "Perovskite_composition_long_form": ["MAPbI3", "FAPbI3"],
                            "Perovskite_band_gap": [1.6, 1.5], "JV_reverse_scan_PCE": [18.0, 20.0]})
    measured = measured_compositions(devices, pd.DataFrame(frac, columns=list(IONS)))
    table = proposal_table(res, measured=measured)
    assert table.columns[:4].tolist() == ["rank", "formula", "etl", "htl"]
    assert table.columns[4].endswith("_mean") and "pce_percent_lower" in table
    assert set(table["nearest_formula"]) <= {"MAPbI3", "FAPbI3"}
    assert table["nearest_distance"].between(0, 1).all()


def test_cli_design_writes_predict_style_csv_and_json(shipped, tmp_path, capsys, data_dir) -> None:
    out_csv, out_json = tmp_path / "d.csv", tmp_path / "d.json"
    rc, out, err = run(capsys, "design", "--gap", "1.30", "1.40", "--maximize", "pce", "--pb-free", "--max-evals", "40",
                       "--seed", "0", "--csv", out_csv, "--json", out_json, "--data-dir", data_dir)
    assert rc == 0, err
    assert "proposals in domain" in out
    rows = list(csv.DictReader(out_csv.open()))
    assert rows and rows[0]["formula"] and "pce_percent_mean" in rows[0] and "in_domain" in rows[0]
    assert all(float(r["Pb"]) == 0.0 and 1.30 <= float(r["bandgap_eV_mean"]) <= 1.40 for r in rows)
    assert any(r["nearest_formula"] for r in rows)
    report = json.loads(out_json.read_text())
    assert report["seed"] == 0 and report["evaluations"] <= 40 and len(report["proposals"]) == len(rows)


@pytest.mark.parametrize("argv,needles", [
    (["--gap", "1.4", "1.3"], ["minimum 1.4 is above maximum 1.3"]),
    (["--gap", "4.5", "5", "--max-evals", "20"], ["no composition met the constraints", "closest"]),
    (["--resolution", "0.3"], ["1/m for a whole number"]),
    (["--b-ions", "Pb", "--pb-free"], ["Pb-free"]),
    (["--maximize", "efficiency", "--max-evals", "10"], ["does not predict 'efficiency'"]),
    (["--optimiser", "genetic"], ["choose one of auto, tpe, bo, gp, ga, random"]),
])
def test_cli_design_refuses_bad_problems_in_one_line(shipped, capsys, argv, needles) -> None:
    rc, _, err = run(capsys, "design", *argv)
    one_line_error(rc, err, *needles)
