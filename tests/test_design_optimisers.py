"""Design optimisers: the ``auto`` rule (GP then TPE on small problems, TPE on large or multi-objective ones),
pymoo's genetic algorithm with the anchors' settings on the same budget, the live rows a running design
reports, the Pareto-front figure, and ``nestedae benchmark design`` (evaluations to the grid optimum and
hypervolume against evaluations)."""
from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest

from nestedae_core.design import DesignProblem, Objective, QuantityRange, pareto_ranks, parameter_names, run_design
from nestedae_core.design import samplers
from nestedae_core.design.report import pareto_figure
from nestedae_core.errors import InputError
from nestedae_core.estimator import NestedAEModel
from nestedae_core.vocabulary import IONS, SITE_SLICES

from cli_checks import run

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped():
    return NestedAEModel.load().model_


def _grid_like(**kw) -> DesignProblem:
    base = dict(a_ions=["Cs", "FA", "MA"], b_ions=["Pb"], x_ions=["Br", "I"], resolution=0.05,
                constraints=[QuantityRange(quantity="bandgap_eV", minimum=1.65, maximum=1.75)], max_evals=30, seed=0)
    return DesignProblem(**{**base, **kw})


def _two_objectives(**kw) -> DesignProblem:
    return _grid_like(objectives=[Objective(quantity="pce_percent"), Objective(quantity="bandgap_eV", goal="target", target=1.7)],
                      constraints=[], **kw)


def test_auto_runs_bayesian_optimisation_on_small_single_objective_problems_and_tpe_otherwise(monkeypatch) -> None:
    monkeypatch.setattr(samplers, "botorch_available", lambda: True)
    assert samplers.resolve_sampler("auto", 3) == "bo-tpe"
    assert samplers.resolve_sampler("bo", 3) == "bo-tpe"
    assert samplers.resolve_sampler("bo", 3, n_objectives=2) == "tpe"
    assert samplers.resolve_sampler("auto", samplers.GP_MAX_PARAMS + 1) == "tpe"  # the 14-ion problem: 11 coordinates
    assert samplers.resolve_sampler("auto", 3, n_objectives=2) == "tpe"
    assert samplers.resolve_sampler("ga", 30) == "ga"
    with pytest.raises(InputError, match="choose one of auto, tpe, bo, gp, ga, random"):
        samplers.resolve_sampler("genetic", 3)
    wide = DesignProblem(a_ions=["K", "Rb", "Cs", "MA", "FA"], b_ions=["Ca", "Sr", "Ba", "Ge", "Sn", "Pb"], x_ions=["Cl", "Br", "I"])
    assert len(parameter_names(wide)) > samplers.GP_MAX_PARAMS
    monkeypatch.setattr(samplers, "botorch_available", lambda: False)  # without BoTorch: Optuna's GP, and 'bo' says what to install
    assert samplers.resolve_sampler("auto", 3) == "gp-tpe"
    with pytest.raises(InputError, match="pip install botorch"):
        samplers.resolve_sampler("bo", 3)


def test_the_gp_sampler_hands_over_to_tpe_after_its_trials(monkeypatch) -> None:
    import optuna

    monkeypatch.setattr(samplers, "botorch_available", lambda: False)
    monkeypatch.setattr(samplers, "GP_TRIALS", 12)
    p = _grid_like(batch_size=4)
    names = parameter_names(p)
    search = samplers.make_search("auto", p, names, 1)
    assert isinstance(search.study.sampler, optuna.samplers.GPSampler)
    rng = np.random.default_rng(0)
    kinds = []
    for _ in range(5):
        points = search.ask(100)
        assert len(points) == 4 and all(set(pt) == set(names) for pt in points)
        kinds.append(type(search.study.sampler).__name__)
        search.tell([{"objectives": [float(rng.normal())], "bandgap_eV_mean": 1.7, "range_violation": 0.0, "violation": 0.0} for _ in points])
    assert kinds == ["GPSampler"] * 3 + ["TPESampler"] * 2
    assert len(search.study.trials) == 20 and all(t.state.name == "COMPLETE" for t in search.study.trials)


def test_optuna_is_told_each_end_of_a_range_signed_and_the_domain_apart() -> None:
    p = _grid_like(batch_size=2)
    search = samplers.make_search("tpe", p, parameter_names(p), 1)
    search.ask(2)
    search.tell([{"objectives": [-15.0], "bandgap_eV_mean": 1.70, "range_violation": 0.0, "violation": 0.0, "in_domain": True},
                 {"objectives": [-16.0], "bandgap_eV_mean": 1.60, "range_violation": 0.05, "violation": 1.05, "in_domain": False}])
    inside, below = (t.constraints for t in search.study.trials)
    assert inside == pytest.approx({"range0:min": -0.05, "range0:max": -0.05, "domain": 0.0})
    assert below == pytest.approx({"range0:min": 0.05, "range0:max": -0.15, "domain": 1.0})


def _fake_row(rng: np.random.Generator) -> dict:
    pce, gap, dom = float(rng.normal(15, 2)), float(rng.uniform(1.5, 1.9)), bool(rng.random() < 0.7)
    rv = max(0.0, 1.65 - gap) + max(0.0, gap - 1.75)
    return {"objectives": [-pce], "bandgap_eV_mean": gap, "in_domain": dom, "range_violation": rv, "violation": rv + (0.0 if dom else 1.0)}


def test_bayesian_optimisation_proposes_new_lattice_points_then_hands_over_to_tpe(monkeypatch) -> None:
    pytest.importorskip("botorch")
    import optuna

    from nestedae_core.design.bayes import N_INITIAL, LatticeBayes
    from nestedae_core.design.lattice import counts_from_unit

    monkeypatch.setattr(samplers, "BO_TRIALS", 9)
    p = _grid_like(batch_size=4)
    names = parameter_names(p)
    search = samplers.make_search("auto", p, names, 1)
    assert isinstance(search, LatticeBayes) and search.lattice is not None and len(search.lattice[1]) == 4851
    rng = np.random.default_rng(0)
    sizes, seen = [], []
    while len(seen) < 13:
        points = search.ask(100)
        assert points and all(set(pt) == set(names) for pt in points)
        sizes.append(len(points))
        seen += [tuple(c) for c in counts_from_unit(p, points)]
        search.tell([_fake_row(rng) for _ in points])
    assert sizes[:2] == [4, N_INITIAL - 4]  # the Sobol design, in batches of at most batch_size
    bo = seen[N_INITIAL:9]
    assert sizes[2:6] == [1, 1, 1, 1] and len(set(bo)) == len(bo) and not set(bo) & set(seen[:N_INITIAL])  # never a repeat
    assert len(search.X) == len(set(seen[:9]))
    assert isinstance(search.then.study.sampler, optuna.samplers.TPESampler)
    trials = search.then.study.trials
    assert len(trials) == len(seen) and all(t.state.name == "COMPLETE" for t in trials)  # TPE was told every evaluation
    assert sizes[-1] == 4  # TPE's batches after the hand-over


def test_the_lattice_is_enumerated_and_its_points_map_back_to_the_cube() -> None:
    from nestedae_core.design.lattice import counts_from_unit, lattice_points, unit_from_counts

    p = DesignProblem(a_ions=["Cs", "FA", "MA", "Rb"], b_ions=["Pb", "Sn", "Ge"], x_ions=["Br", "I", "Cl"], resolution=0.125,
                      max_ions=2, max_pb=0.5)
    pts = lattice_points(p, 10**6)
    assert pts is not None and len({tuple(r) for r in pts}) == len(pts)
    assert (counts_from_unit(p, unit_from_counts(p, pts)) == pts).all()  # exact round trip
    names = parameter_names(p)
    drawn = counts_from_unit(p, [dict(zip(names, r)) for r in np.random.default_rng(0).random((3000, len(names)))])
    assert {tuple(r) for r in drawn} <= {tuple(r) for r in pts}  # the enumeration misses no reachable point
    assert lattice_points(p, len(pts) // 10) is None
    assert len(lattice_points(_grid_like(), 10**4)) == 231 * 21


def test_bayesian_optimisation_keeps_the_constraints_and_the_seed(shipped) -> None:
    pytest.importorskip("botorch")
    p = _grid_like(max_evals=20)
    res = run_design(shipped, p, sampler="bo")
    assert res.sampler == "bo (bo-tpe)" and res.evaluations == res.trials == 20  # no proposal was a repeat
    props = res.proposals
    assert len(props) and props["bandgap_eV_mean"].between(1.65, 1.75).all()
    for site, sl in SITE_SLICES.items():
        assert np.allclose(props[list(IONS[sl])].sum(axis=1), 1.0, atol=1e-9)
    again = run_design(shipped, p, sampler="bo")
    assert again.evaluated["formula"].tolist() == res.evaluated["formula"].tolist()


def test_bayesian_optimisation_chooses_among_stacks_without_repeats(shipped) -> None:
    pytest.importorskip("botorch")
    stacks = [("SnO2-c", "Spiro-MeOTAD"), ("TiO2-c", "Spiro-MeOTAD")]
    res = run_design(shipped, _grid_like(max_evals=20, stacks=stacks), sampler="bo")
    assert res.evaluations == res.trials == 20
    assert set(zip(res.evaluated["etl"], res.evaluated["htl"])) == set(stacks)
    assert not res.evaluated.duplicated(["etl", "htl", "formula"]).any()


def test_the_genetic_algorithm_is_pymoos_with_the_anchors_population_and_keeps_the_budget(shipped) -> None:
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.algorithms.soo.nonconvex.ga import GA

    p = _grid_like(max_evals=37)
    one = samplers.make_search("ga", p, parameter_names(p), 1)
    assert isinstance(one.algo, GA) and one.algo.pop_size == samplers.GA_POPULATION == 100
    assert isinstance(samplers.make_search("ga", _two_objectives(), parameter_names(p), 1).algo, NSGA2)
    res = run_design(shipped, p, sampler="ga")  # the budget ends inside the first generation of 100
    assert res.sampler == "ga" and res.evaluations == 37 and res.stopped == "budget"
    props = res.proposals
    assert len(props) and props["bandgap_eV_mean"].between(1.65, 1.75).all()
    for site, sl in SITE_SLICES.items():
        assert np.allclose(props[list(IONS[sl])].sum(axis=1), 1.0, atol=1e-9)
    again = run_design(shipped, p, sampler="ga")
    assert again.evaluated["formula"].tolist() == res.evaluated["formula"].tolist()  # the seed fixes the run
    other = run_design(shipped, p.model_copy(update={"seed": 1}), sampler="ga")
    assert other.evaluated["formula"].tolist() != res.evaluated["formula"].tolist()


def test_the_genetic_algorithm_runs_generation_after_generation(shipped) -> None:
    res = run_design(shipped, _grid_like(max_evals=150), sampler="ga")
    assert res.trials > 100 and res.evaluations <= 150  # past the first generation, duplicates free
    assert res.history["best"].dropna().is_monotonic_increasing


def test_a_running_design_reports_every_new_candidate_once(shipped) -> None:
    seen: list[pd.DataFrame] = []
    p = _grid_like(max_evals=25, batch_size=5)
    res = run_design(shipped, p, sampler="tpe", on_evaluated=seen.append)
    live = pd.concat(seen, ignore_index=True)
    assert live["evaluation"].tolist() == list(range(1, res.evaluations + 1))
    assert live["formula"].tolist() == res.evaluated["formula"].tolist()
    assert np.allclose(live["objective_0"], -live["pce_percent_mean"])  # maximised: negated for the optimiser
    assert set(live.columns) >= {"in_domain", "range_violation", "pce_percent_mean"}


def test_two_objectives_draw_a_front_of_non_dominated_candidates(shipped) -> None:
    p = _two_objectives(max_evals=40)
    res = run_design(shipped, p, sampler="tpe")
    fig = pareto_figure(res.evaluated, p)
    front = [t for t in fig.data if str(t.name).startswith("Pareto front")]
    assert len(front) == 1
    ev = res.evaluated
    good = ev[(ev["range_violation"] <= 0) & ev["in_domain"].astype(bool)]
    expected = good[pareto_ranks(good[["objective_0", "objective_1"]].to_numpy()) == 0]
    assert sorted(front[0].text) == sorted(expected["formula"])
    assert 0 < len(expected) < len(ev)
    assert fig.layout.xaxis.title.text == "bandgap_eV_mean" and fig.layout.yaxis.title.text == "pce_percent_mean"
    with pytest.raises(InputError, match="two objectives"):
        pareto_figure(ev, _grid_like())


def test_the_one_pass_front_is_the_first_of_the_full_sorting() -> None:
    from nestedae_core.design.optimise import nondominated

    rng = np.random.default_rng(1)
    for k in (2, 3):
        v = np.round(rng.random((700, k)), 2)  # ties included
        assert (nondominated(v, chunk=100) == (pareto_ranks(v) == 0)).all()


def test_hypervolume_of_the_reference_front_is_one_and_grows_with_evaluations() -> None:
    from nestedae_core.benchmark.design import hypervolume_curve
    from pymoo.indicators.hv import Hypervolume

    rng = np.random.default_rng(0)
    F = rng.random((60, 2))
    ref = F.max(axis=0)
    front_hv = float(Hypervolume(ref_point=ref)(F[pareto_ranks(F) == 0]))
    ev = pd.DataFrame({"evaluation": np.arange(1, 61), "objective_0": F[:, 0], "objective_1": F[:, 1], "violation": 0.0})
    curve = hypervolume_curve(ev, ref, front_hv, [1, 10, 30, 60])
    assert curve[-1] == pytest.approx(1.0)
    assert all(a <= b + 1e-12 for a, b in zip(curve, curve[1:])) and curve[0] < curve[-1]
    assert hypervolume_curve(ev.assign(violation=1.0), ref, front_hv, [60]) == [0.0]  # nothing feasible, nothing covered


def test_the_design_benchmark_reports_every_optimiser_and_the_hypervolume(shipped) -> None:
    from nestedae_core.benchmark.design import design_table, run_design_benchmark

    report = run_design_benchmark(shipped, samplers=("tpe", "ga", "random"), seeds=2, max_evals=40, timing_evals=0,
                                  hv_checkpoints=(10, 40))
    assert set(report["optimisers"]) == {"tpe", "ga", "random"}
    for r in report["optimisers"].values():
        assert len(r["evaluations_to_optimum"]) == 2
        assert all(v is None or 1 <= v <= 40 for v in r["evaluations_to_optimum"])
        assert r["reached"] == sum(v is not None for v in r["evaluations_to_optimum"])
        assert r["median_proposals"] >= min(v if v is not None else 40 for v in r["evaluations_to_optimum"])  # repeats included
    pareto = report["pareto"]
    assert pareto["checkpoints"] == [10, 40] and pareto["front_points"] >= 2
    for r in pareto["optimisers"].values():
        assert len(r["hypervolume_fraction"]) == 2
        for curve in r["hypervolume_fraction"]:
            assert 0.0 <= curve[0] <= curve[1] <= 1.0 + 1e-9
    assert "timing" not in report
    table = design_table(report)
    assert "| ga | ga |" in table and "hypervolume" in table and "| random |" in table
    assert "not counted again, for every optimiser alike" in table and report["counting"] in table


def test_cli_benchmark_design_prints_the_tables_and_names_the_optimisers_in_json(shipped, tmp_path, capsys) -> None:
    out = tmp_path / "design.json"
    rc, stdout, err = run(capsys, "benchmark", "design", "--seeds", "1", "--max-evals", "20", "--optimiser", "ga", "--optimiser", "random",
                          "--timing-evals", "0", "--hv-evals", "10", "--json", out)
    assert rc == 0, err
    report = json.loads(out.read_text())
    assert set(report["optimisers"]) == {"ga", "random"} and set(report["pareto"]["optimisers"]) == {"ga", "random"}
    assert "median evaluations to the optimum" in stdout and "after 10" in stdout
    rc, _, err = run(capsys, "benchmark", "design", "--optimiser", "genetic")
    assert rc != 0 and "choose among" in err


def test_a_design_job_keeps_its_live_candidates_for_the_page(shipped, tmp_path, monkeypatch) -> None:
    from nestedae_core import store
    from nestedae_core.design import job

    monkeypatch.setattr(job, "LIVE_EVERY_S", 0.0)
    events: list[dict] = []
    ctx = types.SimpleNamespace(work_dir=tmp_path, progress=events.append, should_stop=lambda: False)
    payload = job.design_payload(_two_objectives(max_evals=20), store.default_bundle_path(), sampler="tpe")
    summary = job.run_design_job(payload, ctx)  # type: ignore[arg-type]
    live = job.design_live(types.SimpleNamespace(work_dir=str(tmp_path)))
    assert live is not None and len(live) == summary["evaluations"] == 20
    assert {"objective_0", "objective_1", "pce_percent_mean", "bandgap_eV_mean"} <= set(live.columns)
    assert job.design_live(types.SimpleNamespace(work_dir=str(tmp_path / "missing"))) is None
