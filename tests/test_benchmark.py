"""Benchmarks: the same folds for every model, XGBoost/LightGBM baselines, the paper's batch scoring,
the paired verdict over folds, and reports of one or two splits."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from nestedae_core import benchmark
from nestedae_core.benchmark import accuracy as accuracy_module
from nestedae_core.benchmark import (
    TASKS,
    accuracy_benchmark,
    bundle_paper_scoring,
    paired_comparison,
    paper_batch_scored_folds,
    paper_batch_scored_mae,
    split_reports,
)
from nestedae_core.errors import ConfigError, DataError
from nestedae_core.train import make_folds

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- the paper's scoring


def test_paper_scoring_counts_a_short_last_batch_as_much_as_a_full_one() -> None:
    # fold 0: 5 rows in validation order, batches of 4: errors (1, 1, 1, 1) and (5,) -> (1 + 5) / 2 = 3
    # fold 1: 2 rows with error 2 -> 2. Paper: (3 + 2) / 2 = 2.5; over rows: (9/5 + 2) / 2 = 1.9
    folds = np.array([0, 1, 0, 0, 1, 0, 0])
    err = np.array([1, 2, 1, 1, 2, 1, 5], dtype=float)
    y = np.linspace(0, 1, 7)
    pred = y + err * np.array([1, -1, 1, -1, 1, -1, 1])
    assert paper_batch_scored_folds(y, pred, folds, batch=4) == pytest.approx([3.0, 2.0])
    assert paper_batch_scored_mae(y, pred, folds, batch=4) == pytest.approx(2.5)
    row_weighted = np.mean([err[folds == f].mean() for f in (0, 1)])
    assert row_weighted == pytest.approx(1.9)
    # batches follow the fold's validation order: the large error moved to the front makes it share a batch
    order = np.array([6, 1, 0, 2, 4, 3, 5])
    assert paper_batch_scored_mae(y[order], pred[order], folds[order], batch=4) != pytest.approx(2.5)
    # one batch per fold: the paper's score is the row-weighted one
    assert paper_batch_scored_mae(y, pred, folds, batch=100) == pytest.approx(row_weighted)


def test_paper_scoring_leaves_out_missing_values_and_checks_lengths() -> None:
    y = np.array([1.0, np.nan, 3.0, 4.0])
    pred = np.array([2.0, 0.0, 3.0, 4.0])
    assert paper_batch_scored_mae(y, pred, np.zeros(4, dtype=int), batch=2) == pytest.approx(0.25)  # batches (1, 0) and (0,)
    with pytest.raises(DataError, match="equal lengths"):
        paper_batch_scored_mae(y, pred[:3], np.zeros(4))
    with pytest.raises(DataError, match="no finite"):
        paper_batch_scored_mae(np.full(3, np.nan), np.zeros(3), np.zeros(3))


def test_shipped_paper_bundle_reproduces_the_papers_figure(data_dir) -> None:
    r = bundle_paper_scoring("paper-default")
    assert (r["split"], r["folds"], r["n"]) == ("random", 5, 2018)
    assert r["mae_paper_batches"] == pytest.approx(2.384, abs=5e-4)  # the paper reports 2.38 %
    assert r["mae_rows"] == pytest.approx(2.609, abs=5e-4)  # the same predictions over rows
    assert r["mae_rows"] == pytest.approx(np.mean(r["fold_mae_rows"]))


def test_paper_scoring_of_a_missing_bundle_is_a_clear_error() -> None:
    from nestedae_core.errors import BundleError

    with pytest.raises(BundleError, match="no model bundle 'nope'"):
        bundle_paper_scoring("nope")


# --------------------------------------------------------------------------- the paired verdict


def _models(ours: list[float], theirs: list[float], other: float = 9.0) -> dict:
    entry = lambda maes: {"mae": float(np.mean(maes)), "folds": [{"fold": i, "mae": m} for i, m in enumerate(maes)]}  # noqa: E731
    return {"nestedae": entry(ours), "best": entry(theirs), "worst": entry([other] * len(theirs))}


def test_paired_comparison_says_better_only_when_it_holds_across_folds() -> None:
    every = paired_comparison(_models([1.0, 1.1, 0.9, 1.0, 1.2], [1.1, 1.2, 1.0, 1.05, 1.3]))
    assert every.baseline == "best" and every.verdict == "better" and every.wins == 5
    assert every.differences == pytest.approx([-0.1, -0.1, -0.1, -0.05, -0.1])
    # lower on average, but not on every fold and not significant: no verdict
    mixed = paired_comparison(_models([1.0, 1.5, 0.9, 1.3, 1.0], [1.2, 1.2, 1.2, 1.2, 1.2]))
    assert mixed.mean_difference < 0 and mixed.verdict == "no clear difference" and mixed.p_value > 0.05
    # significant by the paired t-test although one fold goes the other way
    tested = paired_comparison(_models([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.21], [1.3, 1.31, 1.29, 1.3, 1.32, 1.28, 1.3, 1.2]))
    assert tested.wins == 7 and tested.p_value < 0.05 and tested.verdict == "better"
    assert paired_comparison(_models([1.3, 1.2, 1.4], [1.0, 1.1, 1.0])).verdict == "worse"
    assert "every fold" in benchmark.VERDICT_RULE and "p < 0.05" in benchmark.VERDICT_RULE


def test_paired_comparison_pairs_only_shared_folds_and_names_missing_models() -> None:
    models = _models([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    models["best"]["folds"] = models["best"]["folds"][:2]
    assert paired_comparison(models).folds == [0, 1]
    with pytest.raises(DataError, match="no 'nestedae'"):
        paired_comparison({"ridge": models["best"]})


# --------------------------------------------------------------------------- reports


def test_split_reports_put_grouped_first() -> None:
    two = {"split": "grouped", "tasks": {"a": {}}, "other_splits": {"random": {"split": "random", "tasks": {"a": {}}}}}
    assert list(split_reports(two)) == ["grouped", "random"]
    assert "other_splits" not in split_reports(two)["grouped"]
    assert list(split_reports({"split": "random", "tasks": {}})) == ["random"]


def test_tasks_name_their_preset_stage_and_grouping() -> None:
    assert TASKS["bandgap-measured"].dataset == "psc-gaps" and TASKS["bandgap-measured"].groups == ("composition_key",)
    for name in ("voc-devices", "jsc-devices", "ff-devices", "pce-measured"):
        assert TASKS[name].preset == "measured" and TASKS[name].dataset == "psc-devices"
    assert "xgboost" in benchmark.BASELINES and "lightgbm" in benchmark.BASELINES


# --------------------------------------------------------------------------- identical folds


@pytest.fixture
def recorded_folds(monkeypatch):
    """Fold ids every baseline is fitted on, by (split, model)."""
    seen: dict[tuple[str, str], np.ndarray] = {}
    real = accuracy_module.fit_baseline_fold

    def fit(name, factory, X, y, folds, fold, n_numeric):  # type: ignore[no-untyped-def]
        if fold == 0:
            seen[(str(len(seen)), name)] = folds.copy()
        return real(name, factory, X, y, folds, fold, n_numeric)

    monkeypatch.setattr(accuracy_module, "fit_baseline_fold", fit)
    return seen


@pytest.mark.training  # trains a model
def test_every_model_runs_on_the_same_folds_grouped_first(data_dir, recorded_folds) -> None:
    models = ["nestedae", "mean", "ridge", "xgboost", "lightgbm"]
    report = accuracy_benchmark(["bandgap-pbe"], models=models, epochs=3, folds=3, device="cpu")
    assert report["split"] == "grouped" and list(report["other_splits"]) == ["random"]
    for split, sub in split_reports(report).items():
        entry = sub["tasks"]["bandgap-pbe"]
        assert list(entry["models"]) == models
        sizes = {m: [f["n"] for f in v["folds"]] for m, v in entry["models"].items()}
        assert len({tuple(s) for s in sizes.values()}) == 1, sizes  # NestedAE and every baseline: same fold sizes
        for m in ("xgboost", "lightgbm", "ridge"):
            assert entry["models"][m]["mae"] < entry["models"]["mean"]["mae"]
            assert entry["models"][m]["mae_paper_batches"] > 0
    # the baselines of one split got identical fold ids, grouped ones keep each formula in one fold
    by_split = list(recorded_folds.values())
    grouped, random_ = by_split[:4], by_split[4:]
    assert all(np.array_equal(grouped[0], f) for f in grouped) and all(np.array_equal(random_[0], f) for f in random_)
    from nestedae_core.data.tables import load_dataset_table

    table = load_dataset_table("mhp-pbe")
    assert len(table) == len(grouped[0])
    assert table.assign(fold=grouped[0]).groupby("Formula")["fold"].nunique().max() == 1
    assert table.assign(fold=random_[0]).groupby("Formula")["fold"].nunique().max() > 1
    json.dumps(report)  # JSON-ready


@pytest.mark.training  # trains a model
def test_nestedae_on_other_folds_is_refused(data_dir, monkeypatch) -> None:
    real = make_folds

    def shifted(table, k, split="random", group_columns=None, seed=0):  # type: ignore[no-untyped-def]
        return (real(table, k, split, group_columns, seed) + 1) % k

    monkeypatch.setattr(accuracy_module, "make_folds", shifted)
    with pytest.raises(DataError, match="NestedAE folds differ"):
        accuracy_benchmark(["bandgap-paper"], split="random", models=["nestedae", "mean"], epochs=2, folds=3, device="cpu")


def test_missing_preset_or_dataset_is_skipped_with_a_note(data_dir, monkeypatch) -> None:
    base = TASKS["bandgap-paper"]
    monkeypatch.setitem(TASKS, "no-preset", dataclasses.replace(base, name="no-preset", preset="no-such-preset"))
    monkeypatch.setitem(TASKS, "no-data", dataclasses.replace(base, name="no-data", preset="no-such-preset", dataset="no-such-dataset"))
    report = accuracy_benchmark(["no-preset", "no-data"], split="random", models=["nestedae", "mean", "ridge"], folds=3)
    entry = report["tasks"]["no-preset"]
    assert any("preset 'no-such-preset' does not exist" in n for n in entry["notes"])
    assert list(entry["models"]) == ["mean", "ridge"]
    assert "no-data" not in report["tasks"] and "no-such-dataset" in report["skipped"]["no-data"]


def test_unknown_task_model_or_split_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown benchmark task"):
        accuracy_benchmark(["nope"])
    with pytest.raises(ConfigError, match="unknown model"):
        accuracy_benchmark(["bandgap-paper"], models=["catboost"])
    with pytest.raises(ConfigError, match="unknown split"):
        accuracy_benchmark(["bandgap-paper"], split="stratified")


# --------------------------------------------------------------------------- parallel steps, progress, --quick


def _without_timings(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    for sub in [report, *report.get("other_splits", {}).values()]:
        sub.pop("created"), sub.pop("machine"), sub.pop("other_splits", None)
        for entry in sub["tasks"].values():
            for m in entry["models"].values():
                m.pop("seconds")
    return report


def test_parallel_workers_give_the_same_report_with_progress_per_fold(data_dir) -> None:
    models = ["mean", "ridge", "random_forest", "lightgbm"]
    seen: list = []
    one = accuracy_benchmark(["bandgap-paper"], split="random", models=models, folds=3, jobs=1, progress=seen.append)
    two = accuracy_benchmark(["bandgap-paper"], split="random", models=models, folds=3, jobs=2)
    assert _without_timings(one) == _without_timings(two)
    assert one["tasks"]["bandgap-paper"]["models"]["random_forest"]["mae"] < one["tasks"]["bandgap-paper"]["models"]["mean"]["mae"]
    assert [d.done for d in seen] == list(range(1, 13)) and {d.total for d in seen} == {12}  # 4 models x 3 folds
    assert {(d.step.task, d.step.model, d.step.fold) for d in seen} == {("bandgap-paper", m, f) for m in models for f in range(3)}
    assert str(seen[-1]).startswith("[12/12] bandgap-paper (random): lightgbm, fold 2")


def test_jobs_must_be_a_positive_whole_number() -> None:
    with pytest.raises(ConfigError, match="jobs must be a whole number >= 1"):
        accuracy_benchmark(["bandgap-paper"], models=["mean"], jobs=0)


def test_cli_quick_profile_and_jobs(monkeypatch, capsys) -> None:
    from nestedae_core import benchmark
    from nestedae_core.benchmark.accuracy import QUICK
    from nestedae_core.benchmark.runner import Step, StepDone
    from nestedae_core.cli import main

    calls: list = []

    def fake(tasks, **kw):  # type: ignore[no-untyped-def]
        calls.append(kw)
        kw["progress"](StepDone(1, 1, Step("bandgap-paper", "grouped", "ridge", 0, print, ()), 0.5, 0))
        return {"kind": "accuracy", "split": kw["split"] or "grouped", "folds": kw["folds"], "seed": 0, "tasks": {}}

    monkeypatch.setattr(benchmark, "accuracy_benchmark", fake)
    assert main(["benchmark", "accuracy", "--quick", "--jobs", "3"]) == 0
    assert calls[-1]["folds"] == QUICK["folds"] and calls[-1]["split"] == "grouped" and calls[-1]["epochs"] == QUICK["epochs"]
    assert calls[-1]["models"] == list(QUICK["models"]) and calls[-1]["jobs"] == 3
    assert "bandgap-paper (grouped): ridge, fold 0" in capsys.readouterr().err  # progress on stderr
    assert main(["benchmark", "accuracy", "--quick", "--folds", "4", "--split", "random", "--model", "mean"]) == 0
    assert (calls[-1]["folds"], calls[-1]["split"], calls[-1]["models"]) == (4, "random", ["mean"])  # explicit options win
    assert main(["benchmark", "accuracy"]) == 0
    assert calls[-1]["folds"] == 5 and calls[-1]["split"] is None and calls[-1]["epochs"] is None and calls[-1]["jobs"] >= 1


def test_cli_speed_cold_only_trains_nothing(monkeypatch, capsys) -> None:
    from nestedae_core import benchmark
    from nestedae_core.cli import main

    seen: list = []

    def fake(**kw):  # type: ignore[no-untyped-def]
        seen.append(kw)
        return {"machine": {"platform": "x", "torch": "y"}, "training": {}, "predict_throughput": {}}

    monkeypatch.setattr(benchmark, "speed_benchmark", fake)
    assert main(["benchmark", "speed", "--cold-only", "--repeats", "2"]) == 0
    assert seen[-1]["presets"] == () and seen[-1]["cold"] is True and seen[-1]["repeats"] == 2
    assert main(["benchmark", "speed", "--preset", "paper"]) == 0
    assert seen[-1]["presets"] == ("paper",)


@pytest.mark.unit
def test_cold_commands_report_cpu_seconds_beside_wall_seconds(monkeypatch) -> None:
    """Each cold command's CPU seconds (user + system) are reported, and the excess over the baseline command."""
    from nestedae_core.benchmark import speed

    monkeypatch.setattr(speed, "COLD_COMMANDS", {"import_torch": ["-c", "pass"], "predict": ["-c", "sum(range(10_000_000))"],
                                                 "explain": ["-c", "raise SystemExit(3)"]})
    out = speed.cold_command_seconds(repeats=2)
    assert len(out["import_torch"]["cpu_runs"]) == 2 and out["import_torch"]["cpu_median_s"] >= 0
    assert out["predict"]["cpu_excess_over_import_torch_s"] > 0.05  # the loop costs CPU the empty command does not
    assert out["predict"]["cpu_median_s"] >= out["predict"]["cpu_excess_over_import_torch_s"]
    assert "exit code 3" in out["explain"]["error"] and "cpu_runs" not in out["explain"]
