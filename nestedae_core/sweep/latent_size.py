"""The latent-size scan: one stage's cross-validated error against its latent size.

Each run trains the stage alone (as a one-stage chain) with one latent size and
seed; :func:`latent_size_scan` runs them here, :func:`latent_size_scan_runs` and
:func:`latent_size_scan_rows` let the job system train them elsewhere (the
``latent_size_scan`` job kind of :mod:`nestedae_core.jobs.training`). Not to be
confused with the Optuna hyperparameter *sweep* of :mod:`.runner`.

Units: ``val_mae`` in the target's unit (band gap eV, PCE %), ``seconds`` of training time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InputError
from ..explain.latents import active_latents
from ..model.config import ChainSpec

__all__ = ["ScanRun", "ScanReading", "latent_size_scan", "latent_size_scan_runs", "latent_size_scan_rows", "read_scan"]

logger = logging.getLogger(__name__)


def _scan_spec(spec: ChainSpec, stage: int, size: int, seed: int, epochs: int | None, folds: int | None) -> ChainSpec:
    if not 0 <= stage < len(spec.stages):
        raise InputError(f"stage index {stage} out of range 0..{len(spec.stages) - 1}")
    st = spec.stages[stage]
    if st.upstream:
        raise InputError(f"stage '{st.name}' consumes upstream latents; scan a stage without upstream=true (e.g. stage 0)")
    upd: dict[str, Any] = {"latent_dim": int(size)}
    if epochs is not None:
        upd["epochs"] = int(epochs)
    single = ChainSpec.model_validate({**spec.model_dump(), "stages": [st.model_dump()]})
    return single.with_updates(
        name=f"{spec.name}-sweep"[:60],
        stages=[upd],
        seed=int(seed),
        folds=int(folds) if folds is not None else spec.folds,
    )


def latent_size_scan(
    spec: ChainSpec | Callable[[int, int], ChainSpec],
    sizes: Sequence[int],
    seeds: Sequence[int] = (0,),
    *,
    stage: int = 0,
    epochs: int | None = None,
    folds: int | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    data_dir: str | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Cross-validated error of one stage against its latent size.

    ``spec``: a chain whose ``stage`` (one without upstream latents) is trained
    alone as a one-stage chain with ``latent_dim`` set to each size (and
    ``epochs``/``folds`` overridden when given), or a factory ``(size, seed) ->
    ChainSpec`` whose stage ``stage`` is evaluated. ``tables``: stage name ->
    table (otherwise loaded from the registry).

    Returns one row per (latent size, seed, target): ``latent_size``, ``seed``,
    ``target``, ``val_mae`` (mean over folds, target unit), ``val_mae_std``,
    ``n_active`` (see :func:`active_latents`, over the stage's table) and
    ``seconds`` (training time).
    """
    from ..train import cross_validate

    rows = []
    for run in latent_size_scan_runs(spec, sizes, seeds, stage=stage, epochs=epochs, folds=folds):
        t0 = time.perf_counter()
        res = cross_validate(run.spec, tables=tables, data_dir=data_dir, device=device)
        rows += latent_size_scan_rows(run, res, time.perf_counter() - t0)
        logger.info("latent size %d seed %d: %s", run.size, run.seed, rows[-1])
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ScanRun:
    """One training run of a latent-size scan: the chain ``spec`` whose stage ``stage`` has latent size ``size``."""

    size: int
    seed: int
    spec: ChainSpec
    stage: int


def latent_size_scan_runs(
    spec: ChainSpec | Callable[[int, int], ChainSpec],
    sizes: Sequence[int],
    seeds: Sequence[int] = (0,),
    *,
    stage: int = 0,
    epochs: int | None = None,
    folds: int | None = None,
) -> list[ScanRun]:
    """The runs of :func:`latent_size_scan` (one per size and seed), to train elsewhere (e.g. as jobs)."""
    sizes = [int(s) for s in sizes]
    seeds = [int(s) for s in seeds]
    if not sizes or any(s < 1 for s in sizes):
        raise InputError("sizes must be a non-empty list of positive integers")
    if not seeds:
        raise InputError("give at least one seed")
    runs = []
    for size in sizes:
        for seed in seeds:
            if isinstance(spec, ChainSpec):
                runs.append(ScanRun(size, seed, _scan_spec(spec, stage, size, seed, epochs, folds), 0))
            else:
                runs.append(ScanRun(size, seed, spec(size, seed), stage))
    return runs


def latent_size_scan_rows(run: ScanRun, result: Any, seconds: float) -> list[dict[str, Any]]:
    """Rows of :func:`latent_size_scan` for one trained run (``result``: its ``TrainResult``; ``seconds``: its training time)."""
    st = run.spec.stages[run.stage]
    table = result.tables.get(st.name)
    n_active = active_latents(result.model, table, run.stage).n_active if table is not None else -1
    rows = []
    for t in st.target_columns:
        m = result.metrics[st.name][t]
        rows.append(
            {
                "latent_size": run.size,
                "seed": run.seed,
                "target": t,
                "val_mae": float(m["mae"]),
                "val_mae_std": float(m.get("mae_std", 0.0)),
                "n_active": int(n_active),
                "seconds": float(seconds),
            }
        )
    return rows


@dataclass(frozen=True)
class ScanReading:
    """What a latent-size scan says: ``best`` (the size with the lowest mean validation MAE), ``enough`` (the
    smallest size whose mean MAE is within one standard error of the best: the one-standard-error rule),
    ``best_mae`` and ``standard_error`` (the mean over the scan of the folds' MAE standard deviation), in the
    target's unit."""

    best: int
    enough: int
    best_mae: float
    standard_error: float


def read_scan(rows: pd.DataFrame) -> ScanReading:
    """Read a scan (:func:`latent_size_scan` rows: ``latent_size``, ``val_mae``, ``val_mae_std``) by the
    one-standard-error rule: the smallest latent size whose mean validation MAE is within one standard
    error of the lowest (simpler models first when the data cannot tell them apart).

    Raises:
        InputError: the rows lack those columns or are empty.
    """
    missing = [c for c in ("latent_size", "val_mae", "val_mae_std") if c not in rows.columns]
    if missing or rows.empty:
        raise InputError(f"a latent-size scan needs rows with latent_size, val_mae and val_mae_std (missing: {', '.join(missing) or 'rows'})")
    by_size = rows.groupby("latent_size")["val_mae"].mean().sort_index()
    se = float(rows["val_mae_std"].mean())
    best_mae = float(by_size.min())
    enough = int(by_size.index[by_size <= best_mae + se][0])
    return ScanReading(best=int(by_size.idxmin()), enough=enough, best_mae=best_mae, standard_error=se)
