"""Nested cross-validation of the film stage's setting: chosen on inner folds, never on the folds that report.

For each OUTER fold ``m`` (the benchmark's split, shared with the baselines) the
film stage's setting is chosen among a small stated grid (:data:`NESTED_GRID`:
weight decay ``l2`` of the film network and the ``bound`` (eV) of its correction on
the DFT HSE06+SOC gap) by an INNER cross-validation on the outer-training rows
only: their compositions are split into :data:`INNER_FOLDS` folds by the
``cluster`` split (:func:`~nestedae_core.perovskite.splits.split_folds`, keyed on
the canonical composition), each setting is trained on the inner-training rows
and scored on the inner-validation rows (MAE over the pooled inner out-of-fold rows,
eV), and the setting with the lowest inner MAE (ties: the first in grid order) is
refitted on all outer-training rows and scored on outer fold ``m``.

Cost: the DFT stage does not depend on the film setting (its folds are its own,
grouped by formula on the DFT file): it is trained once (``k`` fold models) and its
fold model ``m`` is reused by every inner fit and the refit of outer fold ``m``, for
every setting. All fits of one setting (``k`` outer folds x (inner folds + refit))
train at once as the members of one batched network.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ..model.chain import NestedAE
from ..model.config import ChainSpec
from ..model.nn import EnsembleLinear, StageNet
from ..perovskite.splits import split_folds
from ..threads import limit_cpu_threads
from ..train import cross_validate
from ..train.metrics import regression_metrics, summarize_folds
from ..train.stages import train_stage
from ..train.tables import check_stage_table, load_chain_tables

__all__ = ["NESTED_GRID", "INNER_FOLDS", "NestedPlan", "film_setting_spec", "nested_film_cv", "nested_plan"]

logger = logging.getLogger(__name__)

#: The film settings compared: weight decay of the film network x the bound (eV) of its correction on the DFT gap.
NESTED_GRID: dict[str, tuple[float, ...]] = {"l2": (1e-3, 1e-2, 1e-1), "bound": (0.25, 0.5)}
#: Inner folds (cluster split of the outer-training compositions).
INNER_FOLDS = 3
#: The inner split.
INNER_SPLIT = "cluster"


def _settings(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """Every combination of the grid, ``l2`` varying slowest."""
    unknown = [k for k in grid if k not in NESTED_GRID]
    if unknown:
        raise ConfigError(f"unknown nested-CV setting(s) {', '.join(unknown)}; known: {', '.join(NESTED_GRID)}")
    l2s = [float(v) for v in grid.get("l2", ())]
    bounds = [float(v) for v in grid.get("bound", ())]
    if not l2s or not bounds:
        raise ConfigError("the nested-CV grid needs at least one l2 and one bound")
    if any(v < 0 for v in l2s) or any(v <= 0 for v in bounds):
        raise ConfigError("nested-CV l2 values must be >= 0 and bounds (eV) > 0")
    return [{"l2": a, "bound": b} for a in l2s for b in bounds]


def film_setting_spec(spec: ChainSpec, stage: str, setting: Mapping[str, float]) -> ChainSpec:
    """``spec`` with stage ``stage``'s weight decay set to ``setting["l2"]`` and the bound (eV) of its residual target(s)
    to ``setting["bound"]``."""
    raw = spec.model_dump()
    for st in raw["stages"]:
        if st["name"] == stage:
            if not st.get("residual"):
                raise ConfigError(f"stage '{stage}' has no residual target: nested CV of its bound does not apply")
            st["l2"] = float(setting["l2"])
            for r in st["residual"]:
                r["bound"] = float(setting["bound"])
    return ChainSpec.model_validate(raw)


@dataclass(frozen=True)
class NestedPlan:
    """Which rows each fit trains on. ``rows``: (k x (inner + 1), n) bool, member ``m * (inner + 1) + j`` = outer fold
    ``m``, inner fold ``j`` (``j == inner``: the refit on every outer-training row); ``inner_folds``: (k, n) the inner
    fold of each outer-training row of outer fold ``m`` (-1 on its outer-test rows)."""

    outer: np.ndarray
    inner_folds: np.ndarray
    rows: np.ndarray


def nested_plan(table: pd.DataFrame, outer: np.ndarray, inner: int = INNER_FOLDS, seed: int = 0) -> NestedPlan:
    """The inner cluster folds of each outer fold's training rows (never its test rows) and every fit's rows."""
    outer = np.asarray(outer, dtype=np.int64)
    if outer.shape != (len(table),):
        raise ConfigError(f"outer folds must be one per row ({len(table)}), got shape {outer.shape}")
    k = int(outer.max()) + 1
    if inner < 2:
        raise ConfigError(f"nested CV needs at least 2 inner folds, got {inner}")
    inner_ids = np.full((k, len(table)), -1, dtype=np.int64)
    rows = np.zeros((k * (inner + 1), len(table)), dtype=bool)
    for m in range(k):
        train = np.flatnonzero(outer != m)
        ids = split_folds(table.iloc[train].reset_index(drop=True), inner, INNER_SPLIT, seed=seed)
        inner_ids[m, train] = ids
        for j in range(inner):
            rows[m * (inner + 1) + j, train[ids != j]] = True
        rows[m * (inner + 1) + inner, train] = True
    return NestedPlan(outer, inner_ids, rows)


def _select_members(net: StageNet, idx: np.ndarray) -> StageNet:
    """A copy of ``net`` whose member ``r`` is member ``idx[r]`` of ``net`` (weights and target standardisation)."""
    out = copy.deepcopy(net)
    sel = torch.as_tensor(idx, device=net.target_mean.device)
    with torch.no_grad():
        for mod in out.modules():
            if isinstance(mod, EnsembleLinear):
                mod.weight = torch.nn.Parameter(mod.weight.data[sel].clone())
                mod.bias = torch.nn.Parameter(mod.bias.data[sel].clone())
                mod.members = len(idx)
        out.target_mean = out.target_mean[sel].clone()
        out.target_scale = out.target_scale[sel].clone()
    out.members = len(idx)
    return out


def _mae(y: np.ndarray, p: np.ndarray) -> float:
    ok = np.isfinite(y)
    return float(np.mean(np.abs(y[ok] - p[ok]))) if ok.any() else float("nan")


def nested_film_cv(
    spec: ChainSpec,
    outer: np.ndarray,
    *,
    stage: str = "film",
    target: str | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    inner: int = INNER_FOLDS,
    data_dir: str | None = None,
    device: str = "auto",
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Nested CV of stage ``stage`` (the second stage of ``spec``, residual on the first) on the ``outer`` folds.

    ``outer``: fold id per row of the stage's checked table (the benchmark's split).
    Returns a JSON-ready entry: ``mae``, ``mae_std``, ``rmse``, ``r2``, ``n``, ``folds``
    (per outer fold, in the target's unit, eV) as the other models' entries, plus
    ``selection``: per outer fold the setting chosen, the inner MAE of every setting
    and the outer MAE of the chosen one; ``grid``, ``inner_folds``, ``inner_split``;
    ``outer_mae_by_setting`` (each setting's outer MAE, for reading only: never used to choose);
    ``oof_pred`` (the out-of-fold predictions, one per row).
    """
    names = [s.name for s in spec.stages]
    if stage not in names or names.index(stage) != 1:
        raise ConfigError(f"nested CV needs '{stage}' as the second stage of the chain (stages: {', '.join(names)})")
    settings = _settings(grid or NESTED_GRID)
    spec = ChainSpec.model_validate({**spec.model_dump(), "stages": spec.model_dump()["stages"][:2]})
    film = spec.stages[1]
    target = target or film.target_columns[0]
    jt = film.target_columns.index(target)
    k = spec.folds
    raw = load_chain_tables(spec, tables, data_dir, download=False)
    dft_spec = ChainSpec.model_validate({**spec.model_dump(), "stages": spec.model_dump()["stages"][:1]})
    dft = cross_validate(dft_spec, {spec.stages[0].name: raw[spec.stages[0].name]}, device=device).model  # once, for every setting
    table = check_stage_table(film, raw[film.name], dft.raw_columns(0))
    plan = nested_plan(table, outer, inner, spec.seed)
    if int(plan.outer.max()) + 1 != k:
        raise ConfigError(f"the outer folds use {int(plan.outer.max()) + 1} fold ids, the chain has {k} folds")
    per = inner + 1
    idx = np.repeat(np.arange(k), per)  # fit m * per + j uses the DFT fold model m
    up_net = _select_members(dft.nets[0], idx)
    p0 = dft.prep[0]
    up_prep = replace(p0, cont_mean=p0.cont_mean[idx], cont_scale=p0.cont_scale[idx],
                      target_mean=p0.target_mean[idx], target_scale=p0.target_scale[idx])
    y = table[target].to_numpy(dtype=np.float64)
    preds = []
    with limit_cpu_threads(1 if dft.device.type == "cpu" else None):
        for s in settings:
            sspec = film_setting_spec(spec, stage, s)
            model = NestedAE(spec=sspec, nets=[up_net], prep=[up_prep], domains=[dft.domains[0]], device=dft.device)
            trained = train_stage(model, 1, raw[film.name], lambda i, st, t: plan.rows, members=len(idx))
            preds.append(trained.predictions[..., jt])  # (k * per, n)
            logger.info("nested CV: setting %s trained in %.1f s", s, trained.seconds)
    inner_mae = np.full((k, len(settings)), np.nan)
    outer_mae = np.full((k, len(settings)), np.nan)
    for m in range(k):
        train = plan.inner_folds[m] >= 0
        for g, p in enumerate(preds):
            oof_inner = p[m * per + plan.inner_folds[m, train], np.flatnonzero(train)]
            inner_mae[m, g] = _mae(y[train], oof_inner)
            outer_mae[m, g] = _mae(y[~train], p[m * per + inner, ~train])
    chosen = np.nanargmin(inner_mae, axis=1)
    oof = np.full(len(y), np.nan)
    per_fold = []
    selection = []
    for m in range(k):
        test = plan.outer == m
        oof[test] = preds[chosen[m]][m * per + inner, test]
        fm = regression_metrics(y[test], oof[test])
        fm["fold"] = m
        per_fold.append(fm)
        selection.append({"fold": m, "setting": settings[chosen[m]], "inner_mae": [round(float(v), 5) for v in inner_mae[m]],
                          "outer_mae": round(float(outer_mae[m, chosen[m]]), 5)})
    out: dict[str, Any] = dict(summarize_folds(per_fold))
    out.update({"grid": settings, "inner_folds": inner, "inner_split": INNER_SPLIT, "selection": selection,
                "outer_mae_by_setting": [[round(float(v), 5) for v in row] for row in outer_mae],
                "reuse": "the DFT stage is trained once (its own grouped folds); its fold model m serves every fit of outer fold m",
                "oof_pred": oof.tolist()})
    return out
