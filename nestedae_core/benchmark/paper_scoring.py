"""The NestedAE paper's way of scoring a cross-validation, beside ours.

The paper reports the last-epoch validation MAE averaged over validation
*batches* of 100 rows, taken in each fold's validation order, then over folds.
A fold of 403 devices has batches of 100, 100, 100, 100 and 3 rows, and the MAE
of those 3 devices counts as much as each full batch: the figure is noisier
than, and not comparable with, the MAE over rows that this package reports.
:func:`paper_batch_scored_mae` computes the paper's figure from any out-of-fold
predictions; :func:`bundle_paper_scoring` applies it to a saved bundle's
out-of-fold predictions (the shipped ``paper-default``: 2.38 % under the paper's
scoring, 2.61 % over rows, from the very same predictions).
"""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BundleError, DataError
from ..model.config import ChainSpec
from ..train import make_folds
from ..vocabulary import PCE
from .stage_tables import stage_table

__all__ = ["paper_batch_scored_mae", "paper_batch_scored_folds", "bundle_paper_scoring"]


def paper_batch_scored_folds(y_true: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, batch: int = 100) -> list[float]:
    """The paper's score of each fold: the mean of the MAEs of consecutive batches of ``batch`` rows.

    Rows are taken in each fold's validation order (ascending row index, the
    order of a k-fold splitter's validation indices); rows whose target or
    prediction is not finite are left out before batching. The last batch of a
    fold may be short and counts as much as a full one. Units: those of ``y_true``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    folds = np.asarray(folds)
    if not (len(y_true) == len(y_pred) == len(folds)):
        raise DataError(f"y_true, y_pred and folds must have equal lengths, got {len(y_true)}, {len(y_pred)}, {len(folds)}")
    if batch < 1:
        raise DataError(f"batch must be at least 1, got {batch}")
    scores = []
    for f in np.unique(folds):
        idx = np.flatnonzero(folds == f)
        err = np.abs(y_true[idx] - y_pred[idx])
        err = err[np.isfinite(err)]
        if len(err) == 0:
            continue
        scores.append(float(np.mean([err[i:i + batch].mean() for i in range(0, len(err), batch)])))
    return scores


def paper_batch_scored_mae(y_true: np.ndarray, y_pred: np.ndarray, folds: np.ndarray, batch: int = 100) -> float:
    """The paper's cross-validation MAE: per-batch validation MAEs averaged per fold, then over folds.

    See :func:`paper_batch_scored_folds`; units are those of ``y_true``. Compare
    it only with figures scored the same way, never with an MAE over rows.
    """
    scores = paper_batch_scored_folds(y_true, y_pred, folds, batch)
    if not scores:
        raise DataError("no finite (target, prediction) pair to score")
    return float(np.mean(scores))


def _bundle_dir(bundle: str | os.PathLike[str]) -> Path:
    p = Path(bundle)
    if p.is_dir():
        return p
    shipped = Path(str(resources.files("nestedae_core") / "bundles" / str(bundle)))
    if shipped.is_dir():
        return shipped
    raise BundleError(f"no model bundle '{bundle}': give a bundle directory or the name of a shipped bundle (e.g. paper-default)")


def bundle_paper_scoring(
    bundle: str | os.PathLike[str] = "paper-default", *, target: str = PCE, batch: int = 100, data_dir: str | None = None
) -> dict[str, Any]:
    """Score a saved bundle's out-of-fold predictions of ``target`` both ways.

    Joins the bundle's ``oof.csv`` (predictions only) to the stage table it was
    trained on (rebuilt from the registry dataset, checked as training checks it)
    and checks that the stored folds are those :func:`~nestedae_core.train.make_folds`
    gives. Returns the row-weighted MAE (mean over folds of the fold MAEs, the
    figure this package reports) and the paper's batch-scored MAE, in target units,
    with the per-fold values and the split.
    """
    root = _bundle_dir(bundle)
    try:
        spec = ChainSpec.model_validate(json.loads((root / "config.json").read_text(encoding="utf-8"))["spec"])
        oof = pd.read_csv(root / "oof.csv")
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"cannot read the configuration and out-of-fold predictions of bundle {root}: {exc}") from None
    hits = [i for i, st in enumerate(spec.stages) if target in st.target_columns]
    if not hits:
        raise DataError(f"bundle {root.name} has no target '{target}'")
    i = hits[0]
    st = spec.stages[i]
    rows = oof[oof["stage"] == st.name].sort_values("row")
    column = f"{target}_pred"
    if column not in rows.columns or rows.empty:
        raise BundleError(f"bundle {root.name} stores no out-of-fold predictions of '{target}'")
    table = stage_table(spec, i, data_dir)
    if len(rows) != len(table) or not np.array_equal(rows["row"].to_numpy(), np.arange(len(table))):
        raise DataError(f"bundle {root.name}: {len(rows)} out-of-fold rows for a stage table of {len(table)} rows; the dataset changed since training")
    folds = rows["fold"].to_numpy()
    if not np.array_equal(folds, make_folds(table, spec.folds, spec.split, st.group_columns, spec.seed)):
        raise DataError(f"bundle {root.name}: its stored folds are not those of its split; the dataset changed since training")
    y = table[target].to_numpy(dtype=np.float64)
    pred = rows[column].to_numpy(dtype=np.float64)
    err = np.abs(y - pred)
    fold_mae = [float(np.nanmean(err[folds == f])) for f in np.unique(folds)]
    paper_folds = paper_batch_scored_folds(y, pred, folds, batch)
    return {
        "bundle": root.name,
        "stage": st.name,
        "target": target,
        "split": spec.split,
        "folds": spec.folds,
        "batch": batch,
        "n": int(np.isfinite(err).sum()),
        "mae_rows": float(np.mean(fold_mae)),
        "mae_paper_batches": float(np.mean(paper_folds)),
        "fold_mae_rows": fold_mae,
        "fold_mae_paper_batches": paper_folds,
    }
