"""Fit a NestedAE chain on all rows: the model to use once cross-validation has judged the recipe.

:func:`fit` trains every stage on every row of its table; the ensemble members
differ only by their random draws (initial weights, input noise, batch order and
early-stopping rows), all from the chain's seed. It shares every per-stage step
with :func:`~.cross_validation.cross_validate` (see :mod:`.stages`); only the
rows each member trains on differ.

No row is held out, so the returned model has **no validation metrics**
(``model.metrics`` is empty). How well the ensemble mean fits its own training
rows is kept in ``model.record["training_metrics"][stage][target]`` (``n``,
``mae``, ``rmse`` in target units, ``r2``): a check that training converged,
not an estimate of the error on new data (use :func:`cross_validate` for that).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from ..model.config import ChainSpec, StageSpec
from .metrics import regression_metrics
from .progress import ProgressCallback
from .stages import TrainedStage, run_training

__all__ = ["fit"]

logger = logging.getLogger(__name__)


def fit(
    spec: ChainSpec,
    tables: Mapping[str, pd.DataFrame] | None = None,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    members: int | None = None,
    download: bool = True,
    threads: int | None = None,
) -> NestedAE:
    """Train a chain on all rows of every stage; returns the trained ensemble.

    Every member trains on every row; with ``patience`` in a stage spec, each
    member still holds out ``val_fraction`` of the rows for early stopping. The
    model carries its domain models, attribution backgrounds and run record
    (``record["fit"] == {"rows": "all", "members": ...}``); ``model.metrics`` is
    empty and the training-set fit is in ``record["training_metrics"]`` (see the
    module docstring).

    Args:
        spec: the chain configuration (stages and seed; ``folds`` and ``split`` are not used
            except ``folds`` as the default ensemble size).
        tables: stage tables by stage name (otherwise loaded from the registry).
        data_dir: folder holding the dataset files (otherwise NESTEDAE_DATA_DIR / cache).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        callback: called with a :class:`~.progress.ProgressEvent` about 100 times per stage.
        should_stop: polled every epoch; returning true cancels (raises :class:`~.progress.TrainingCancelled`).
        members: ensemble size (default ``spec.folds``, the size of the cross-validated ensemble).
        download: allow downloading missing datasets.
        threads: CPU threads for training (default 1 on a CPU device).

    Raises:
        InputError: ``members`` is not a positive integer, or a table is unusable.
        TrainingError: the loss became non-finite or diverged.
    """
    n_members = spec.folds if members is None else members
    if isinstance(n_members, bool) or not isinstance(n_members, (int, np.integer)) or n_members < 1:
        raise InputError(f"members must be a positive integer, got {members!r}")
    n_members = int(n_members)

    def every_row(index: int, st: StageSpec, table: pd.DataFrame) -> np.ndarray:
        return np.ones((n_members, len(table)), dtype=bool)

    trained = run_training(
        spec, tables, data_dir=data_dir, device=device, download=download, threads=threads,
        members=n_members, member_rows=every_row, callback=callback, should_stop=should_stop,
    )
    model = trained.model
    model.metrics = {}
    model.record["fit"] = {"rows": "all", "members": n_members}
    model.record["training_metrics"] = {s.spec.name: _training_fit(s) for s in trained.stages}
    model.record["seconds"] = {s.spec.name: s.seconds for s in trained.stages}
    for s in trained.stages:
        logger.info("stage %s fitted on all %d rows in %.1f s", s.spec.name, len(s.table), s.seconds)
    return model


def _training_fit(stage: TrainedStage) -> dict[str, dict[str, float]]:
    """MAE, RMSE and R² of the ensemble mean on the stage's own training rows, per target."""
    mean = stage.predictions.mean(axis=0)
    return {t: regression_metrics(stage.targets[:, j], mean[:, j]) for j, t in enumerate(stage.spec.target_columns)}
