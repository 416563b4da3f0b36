"""Benchmarks whose figures are measured, not asserted.

* :mod:`.tasks`: :data:`TASKS` (dataset, target, baseline inputs, grouping, NestedAE preset).
* :mod:`.baselines`: :data:`BASELINES` (mean, ridge, kernel ridge, random forest,
  histogram gradient boosting, XGBoost, LightGBM, MLP) with fixed hyperparameters.
* :mod:`.accuracy`: :func:`accuracy_benchmark`, every model on identical folds,
  grouped split first, random split beside it.
* :mod:`.paper_scoring`: :func:`paper_batch_scored_mae`, the NestedAE paper's
  batch-averaged validation MAE, and :func:`bundle_paper_scoring` for a saved bundle.
* :mod:`.paired`: :func:`paired_comparison`, NestedAE against the best baseline fold by fold.
* :mod:`.calibration`: :func:`calibration_benchmark`, coverage of the prediction
  intervals on grouped folds.
* :mod:`.trends`: :func:`trends_benchmark`, measured-gap orderings a chemist checks
  (halide order, A-site order, alloy scans) against literature values, with the domain verdict.
* :mod:`.speed`: :func:`speed_benchmark`, training and prediction time.
* :mod:`.reports`: writing, reading and the shipped reports.
* :mod:`.stage_tables`: the rows a stage trains on, rebuilt without training.
"""
from __future__ import annotations

from .accuracy import MODELS, accuracy_benchmark
from .baselines import BASELINES
from .calibration import calibration_benchmark
from .paired import VERDICT_RULE, PairedComparison, best_baseline, paired_comparison
from .paper_scoring import bundle_paper_scoring, paper_batch_scored_folds, paper_batch_scored_mae
from .reports import load_benchmark, shipped_benchmark_paths, split_reports, write_json_atomic
from .speed import speed_benchmark
from .tasks import TASKS, BenchmarkTask
from .trends import TREND_CHECKS, TrendCheck, TrendReport, evaluate_trends, trends_benchmark

__all__ = [
    "TASKS",
    "BenchmarkTask",
    "BASELINES",
    "MODELS",
    "accuracy_benchmark",
    "speed_benchmark",
    "calibration_benchmark",
    "paper_batch_scored_mae",
    "paper_batch_scored_folds",
    "bundle_paper_scoring",
    "paired_comparison",
    "best_baseline",
    "PairedComparison",
    "VERDICT_RULE",
    "load_benchmark",
    "split_reports",
    "write_json_atomic",
    "shipped_benchmark_paths",
    "TREND_CHECKS",
    "TrendCheck",
    "TrendReport",
    "evaluate_trends",
    "trends_benchmark",
]
