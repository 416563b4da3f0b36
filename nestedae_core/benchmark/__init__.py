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
* :mod:`.dashboard`: :func:`dashboard_seconds`, the dashboard's cold first page and every page warm
  (a server started with :mod:`.app_server`).
* :mod:`.reports`: writing, reading and the shipped reports.
* :mod:`.stage_tables`: the rows a stage trains on, rebuilt without training.
"""
from __future__ import annotations

from ..lazy import lazy_exports

#: Public name -> module that defines it, imported on first use: the server helper (:mod:`.app_server`)
#: and the dashboard timing load without torch.
_LAZY: dict[str, str] = {
    "MODELS": "accuracy",
    "accuracy_benchmark": "accuracy",
    "BASELINES": "baselines",
    "calibration_benchmark": "calibration",
    "VERDICT_RULE": "paired",
    "PairedComparison": "paired",
    "best_baseline": "paired",
    "paired_comparison": "paired",
    "bundle_paper_scoring": "paper_scoring",
    "paper_batch_scored_folds": "paper_scoring",
    "paper_batch_scored_mae": "paper_scoring",
    "load_benchmark": "reports",
    "shipped_benchmark_paths": "reports",
    "split_reports": "reports",
    "write_json_atomic": "reports",
    "speed_benchmark": "speed",
    "dashboard_seconds": "dashboard",
    "TASKS": "tasks",
    "BenchmarkTask": "tasks",
    "TREND_CHECKS": "trends",
    "TrendCheck": "trends",
    "TrendReport": "trends",
    "evaluate_trends": "trends",
    "trends_benchmark": "trends",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = list(_LAZY)
