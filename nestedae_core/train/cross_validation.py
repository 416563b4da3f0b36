"""k-fold cross-validation of a NestedAE chain: the fold models form the ensemble.

:func:`cross_validate` trains every stage of a :class:`~nestedae_core.model.config.ChainSpec`
on k folds at once (the k fold models are the members of one batched network,
see :mod:`nestedae_core.model.nn`) and returns a :class:`TrainResult`: the trained
:class:`~nestedae_core.model.NestedAE` (its members are the fold models: an
ensemble whose mean is the prediction and whose spread is the model
disagreement), per-fold metrics (MAE, RMSE, R²) and out-of-fold predictions.
The out-of-fold absolute residuals of every target, with their fold ids, become
the model's ``calibration``: its CV+ prediction intervals
(:mod:`nestedae_core.model.intervals`).

* Folds come from :func:`~.folds.make_folds` with the chain's seed.
* Member ``m`` of stage ``k`` is trained on the rows outside fold ``m`` of stage
  ``k``'s table, using the latents of member ``m`` of stage ``k-1``; the
  per-stage steps are those of :mod:`.stages`, shared with :func:`~.fit_all.fit`.
* Early stopping (``patience``) holds out ``val_fraction`` of each member's
  training rows (never its validation fold) and keeps the best weights.
* Seeds are fixed: on a CPU the same seed gives identical metrics.
* A non-finite or diverging loss raises :class:`~nestedae_core.errors.TrainingError`;
  ``should_stop`` returning true raises :class:`~.progress.TrainingCancelled`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..model.chain import NestedAE
from ..model.config import ChainSpec, StageSpec
from ..model.ceilings import target_caps
from ..model.domain import nearest_points
from ..model.intervals import TargetCalibration, calibrate_target
from .folds import make_folds
from .metrics import regression_metrics, summarize_folds
from .progress import ProgressCallback
from .stages import TrainedStage, row_names, run_training

__all__ = ["TrainResult", "cross_validate"]

logger = logging.getLogger(__name__)

@dataclass
class TrainResult:
    """Outcome of :func:`cross_validate`.

    ``metrics[stage][target]``: dict with ``mae``, ``mae_std``, ``rmse``, ``r2``
    (means over folds), ``folds`` (list of per-fold dicts) and ``n``;
    ``oof[stage]``: out-of-fold predictions (``row``, ``fold``, ``<target>_true``,
    ``<target>_pred`` and a ``label`` column); ``folds[stage]``: fold id per row;
    ``seconds[stage]``: training time.
    """

    model: NestedAE
    metrics: dict[str, dict[str, Any]]
    oof: dict[str, pd.DataFrame]
    folds: dict[str, np.ndarray]
    seconds: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(repr=False, default_factory=dict)


def cross_validate(
    spec: ChainSpec,
    tables: Mapping[str, pd.DataFrame] | None = None,
    *,
    data_dir: str | None = None,
    device: str = "auto",
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    download: bool = True,
    threads: int | None = None,
    fold_seed: int | None = None,
    stage_folds: Mapping[str, np.ndarray] | None = None,
) -> TrainResult:
    """Train a chain with k-fold cross-validation; the fold models form the ensemble.

    Args:
        spec: the chain configuration (stages, folds, split, seed).
        tables: stage tables by stage name (otherwise loaded from the registry).
        data_dir: folder holding the dataset files (otherwise NESTEDAE_DATA_DIR / cache).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        callback: called with a :class:`~.progress.ProgressEvent` about 100 times per stage.
        should_stop: polled every epoch; returning true cancels (raises :class:`~.progress.TrainingCancelled`).
        download: allow downloading missing datasets.
        threads: CPU threads for training (default 1 on a CPU device, which is the
            fastest for these small networks; see :mod:`nestedae_core.threads`).
        fold_seed: seed of the folds (default ``spec.seed``); a sweep keeps it fixed
            while the training seed varies, so that every trial sees the same folds.
            When given, the model's record names it (``fold_seed``) beside ``seed``.
        stage_folds: fold ids (0..k-1, one per row of the stage's checked table) of
            some stages, by stage name, replacing the spec's split there (e.g. one
            split shared by several stages, made by the caller); the others use
            :func:`~.folds.make_folds`.
    """
    k = spec.folds
    folds: dict[str, np.ndarray] = {}

    def outside_own_fold(index: int, st: StageSpec, table: pd.DataFrame) -> np.ndarray:
        if stage_folds is not None and st.name in stage_folds:
            folds[st.name] = _given_folds(stage_folds[st.name], k, len(table), st.name)
        else:
            folds[st.name] = make_folds(table, k, spec.split, st.group_columns, spec.seed if fold_seed is None else int(fold_seed))
        return folds[st.name][None, :] != np.arange(k)[:, None]

    trained = run_training(
        spec, tables, data_dir=data_dir, device=device, download=download, threads=threads,
        members=k, member_rows=outside_own_fold, callback=callback, should_stop=should_stop,
    )
    model = trained.model
    metrics: dict[str, dict[str, Any]] = {}
    oof: dict[str, pd.DataFrame] = {}
    for stage in trained.stages:
        name = stage.spec.name
        oof[name], metrics[name] = _out_of_fold(stage, folds[name])
        distance = _distance_outside_own_fold(model, stage, folds[name]) if stage.spec.interval_scale == "distance" else None
        model.calibration[name] = _calibration(stage, folds[name], stage.spec.interval_scale == "disagreement", distance)
        logger.info("stage %s trained in %.1f s: %s", name, stage.seconds, {t: round(v["mae"], 4) for t, v in metrics[name].items()})
    seconds = {s.spec.name: s.seconds for s in trained.stages}
    model.metrics = metrics
    model.record["seconds"] = seconds
    model.record["folds"] = {name: f.tolist() for name, f in folds.items()}
    if fold_seed is not None:
        model.record["fold_seed"] = int(fold_seed)
        model.record["seed"] = int(spec.seed)
    return TrainResult(model=model, metrics=metrics, oof=oof, folds=folds, seconds=seconds, tables={s.spec.name: s.table for s in trained.stages})


def _given_folds(ids: np.ndarray, k: int, n: int, stage: str) -> np.ndarray:
    """Fold ids handed to :func:`cross_validate`, checked: one per row, in 0..k-1, every fold used."""
    ids = np.asarray(ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise ConfigError(f"the folds given for stage '{stage}' must be {n} whole numbers (one per row), got shape {ids.shape}")
    if ids.min(initial=0) < 0 or ids.max(initial=0) >= k or len(np.unique(ids)) != k:
        raise ConfigError(f"the folds given for stage '{stage}' must use every fold id 0..{k - 1}")
    return ids.astype(np.int64)
def _distance_outside_own_fold(model: NestedAE, stage: TrainedStage, folds: np.ndarray) -> np.ndarray:
    """Each row's distance (standardised units of the stage's domain) to the nearest row of another fold: the
    nearest row its fold model trained on, as a query's distance is to the nearest training row."""
    dom = model.domains[stage.index]
    z = dom.standardise(model.domain_values(stage.index, stage.table))
    out = np.full(len(z), np.inf)
    for m in np.unique(folds):
        own = folds == m
        out[own] = nearest_points(z[own], z[~own])[0]
    return out


def _calibration(stage: TrainedStage, folds: np.ndarray, normalised: bool, distance: np.ndarray | None = None) -> dict[str, TargetCalibration]:
    """Each target's calibration from the out-of-fold residuals: in the logit space of value over cap for a
    target with a finite cap (fraction, ceiling, product of such; a target whose ``interval_space`` is ``identity``:
    in its units), scaled by the members' disagreement when
    ``normalised``, or by ``c0 + c1 x distance`` when ``distance`` (each row's, :func:`_distance_outside_own_fold`)
    is given (see :mod:`nestedae_core.model.intervals`)."""
    caps = target_caps(stage.spec, stage.ceilings, stage.predictions.shape[:2])  # (members, n, T)
    out = {}
    for j, t in enumerate(stage.spec.targets):
        c = caps[..., j]
        out[t.column] = calibrate_target(folds, stage.targets[:, j], stage.predictions[..., j],
                                         caps=c if np.isfinite(c).all() and t.interval_space == "auto" else None,
                                         normalised=normalised, distance=distance)
    return out


def _out_of_fold(stage: TrainedStage, folds: np.ndarray) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Out-of-fold predictions (member ``m`` on fold ``m``) and their per-fold metrics, per target."""
    n = len(stage.table)
    pred = stage.predictions[folds, np.arange(n)]  # (n, T)
    yraw = stage.targets
    oof = pd.DataFrame({"row": np.arange(n), "fold": folds, "label": row_names(stage.table, stage.spec.categorical_inputs).to_numpy()})
    metrics: dict[str, Any] = {}
    for j, t in enumerate(stage.spec.target_columns):
        oof[f"{t}_true"] = yraw[:, j]
        oof[f"{t}_pred"] = pred[:, j]
        per_fold = []
        for m in range(stage.predictions.shape[0]):
            sel = folds == m
            fm = regression_metrics(yraw[sel, j], pred[sel, j])
            fm["fold"] = m
            per_fold.append(fm)
        metrics[t] = summarize_folds(per_fold)
    return oof, metrics
