"""Explainers against the ground truth: ``nestedae benchmark explainers``.

On the synthetic data set (:mod:`nestedae_core.data.synthetic`) the function behind
y1 is known, so its exact Shapley values are known too, in both the interventional
and the observational sense (:func:`nestedae_core.data.synthetic_truth.ground_truth`).
For each task (``independent``: independent inputs; ``correlated``: with ``x_dup``,
a near copy of x0) this benchmark scores every explainer twice:

* on the **true function** (exact, permutation, kernel): the explainer's own error;
* on a **trained model** (stage 1 of the ``synthetic`` preset, k-fold, the fold
  ensemble; exact, permutation, kernel, gradient): model plus explainer error.

Errors are in a.u. (the unit of y1); seconds are each explainer's wall time on
``n_rows`` rows. Seeds are recorded in the report.
"""
from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..data import synthetic
from ..data.synthetic_truth import EXPLAINERS, explainer_errors, ground_truth
from ..errors import InputError
from ..explain.ground_truth import GAMES
from ..model.config import ChainSpec
from ..perovskite import presets

__all__ = ["EXPLAINER_TASKS", "explainer_benchmark"]

logger = logging.getLogger(__name__)

#: Synthetic tasks: name -> whether x_dup (correlation 0.98 with x0) is present.
EXPLAINER_TASKS: dict[str, bool] = {"independent": False, "correlated": True}


def _stage1_spec(data: synthetic.SyntheticData, epochs: int, seed: int, folds: int) -> ChainSpec:
    """The ``synthetic`` preset's first stage alone, on the data's material features."""
    spec = presets.preset("synthetic", epochs=epochs, seed=seed, folds=folds)
    single = ChainSpec.model_validate({**spec.model_dump(), "stages": [spec.stages[0].model_dump()]})
    return single.with_updates(stages=[{"numeric_inputs": synthetic.material_feature_names(data)}])


def explainer_benchmark(*, tasks: Sequence[str] = tuple(EXPLAINER_TASKS), seed: int = 0, noise: float = 0.05,
                        epochs: int = 300, folds: int = 5, n_rows: int = 20, n_draws: int = 128,
                        methods: Sequence[str] = EXPLAINERS, train: bool = True,
                        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every explainer's error against the exact Shapley values of the synthetic y1, with its time.

    Args:
        tasks: names from :data:`EXPLAINER_TASKS`.
        seed: data, training and fold seed.
        noise: the data's noise sd (a.u.).
        epochs: training epochs of the model (full batch).
        folds: k of the cross-validation (the ensemble's size).
        n_rows: materials explained (the first ``n_rows``).
        n_draws: ground-truth draws per coalition.
        methods: explainers from :data:`~nestedae_core.data.synthetic_truth.EXPLAINERS`.
        train: also score a trained model (else the true function only).
        progress: called with one line per step.

    Returns:
        A JSON-able report: ``settings``, ``machine``, ``rows`` (one per task, subject,
        explainer and game: ``mae``, ``max``, ``relative``, ``rank_agreement``, ``seconds``)
        and ``models`` (per task: validation MAE of y1, training seconds).
    """
    unknown = [t for t in tasks if t not in EXPLAINER_TASKS]
    if unknown:
        raise InputError(f"unknown explainer task(s) {', '.join(unknown)}; choose from {', '.join(EXPLAINER_TASKS)}")
    say = progress or (lambda _m: None)
    from ..explain import warm_up

    say("shap's one-off compilation (not counted in any time below)")
    warm_up()
    rows: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for task in tasks:
        data = synthetic.generate(noise=noise, seed=seed, correlated_pair=EXPLAINER_TASKS[task])
        explained = data.materials.iloc[:n_rows]
        say(f"{task}: ground truth ({n_rows} rows, both games)")
        t0 = time.perf_counter()
        truth = {g: ground_truth(data, explained, g, n_draws=n_draws) for g in GAMES}
        truth_s = time.perf_counter() - t0
        subjects: list[tuple[str, Any]] = [("true function", None)]
        if train:
            from ..train import cross_validate

            say(f"{task}: training stage 1 ({folds} folds, {epochs} epochs)")
            t0 = time.perf_counter()
            res = cross_validate(_stage1_spec(data, epochs, seed, folds), tables={"materials": data.materials}, device="cpu")
            models[task] = {"y1_validation_mae": float(res.metrics["materials"]["y1"]["mae"]),
                            "training_seconds": time.perf_counter() - t0}
            subjects.append(("trained model", res.model))
        for subject, model in subjects:
            say(f"{task}: explainers on the {subject}")
            errors, _ = explainer_errors(data, explained, model, methods=methods, truth=truth)
            for rec in errors.to_dict("records"):
                rows.append({"task": task, "subject": subject, **rec})
        rows.append({"task": task, "subject": "ground truth", "explainer": "enumeration", "game": "both",
                     "mae": 0.0, "max": 0.0, "relative": 0.0, "rank_agreement": 1.0, "seconds": truth_s})
    return {
        "settings": {"tasks": list(tasks), "seed": seed, "noise": noise, "epochs": epochs, "folds": folds,
                     "n_rows": n_rows, "n_draws": n_draws, "methods": list(methods), "train": train},
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "rows": rows,
        "models": models,
    }


def explainer_table(report: dict[str, Any]) -> pd.DataFrame:
    """The report's rows as a table (errors in a.u., seconds)."""
    return pd.DataFrame(report["rows"])
