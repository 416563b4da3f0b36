"""Training a chain stage by stage: the steps shared by cross-validation and the all-rows fit.

Both :func:`~nestedae_core.train.cross_validate` and :func:`~nestedae_core.train.fit`
call :func:`train_chain`; they differ only in the rows each ensemble member is
trained on (``member_rows``): cross-validation trains member ``m`` on the rows
outside fold ``m``, the all-rows fit trains every member on every row.

For each stage, in chain order:

1. check the stage's table and choose each member's rows;
2. :func:`stage_preprocessing`: categorical encodings (shared by all members) and
   the standardisation of the continuous inputs and targets (per member, over
   its rows);
3. :func:`stage_network`: the seeded network of all members;
4. :func:`stage_data`: the training tensors (design tensor, standardised targets,
   distinct inputs);
5. :func:`early_stopping_masks`: when the spec sets ``patience``, ``val_fraction``
   of each member's rows are held out for early stopping (never rows outside the
   member's own rows); with a ``weight_column`` both masks carry each row's weight;
6. :func:`~.loop.fit_stage`: fit all members at once;
7. :func:`predict_rows`: every member's predictions on every row (for metrics);
8. :func:`add_domain_and_background`: the applicability domain and the
   attribution background: the stage's distinct training rows (with a
   leave-one-out nearest-neighbour threshold) and a k-means summary of its table.

Member ``m`` of stage ``k`` uses the latents of member ``m`` of stage ``k-1``.
Seeds are fixed: on a CPU the same seed gives identical results.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..model.chain import NestedAE, StagePreprocessing, resolve_device
from ..model.config import ChainSpec, StageSpec
from ..model.domain import DomainModel
from ..model.nn import StageNet
from ..threads import limit_cpu_threads
from .background import BACKGROUND_ROWS, kmeans_background
from .folds import group_codes
from .loop import EpochReport, fit_stage
from .memory import reuse_freed_memory
from .losses import StageData, distinct_rows
from .progress import ProgressCallback, ProgressEvent
from .record import run_record
from .tables import check_stage_table, load_chain_tables, table_source

__all__ = [
    "MemberRows",
    "TrainedChain",
    "TrainedStage",
    "add_domain_and_background",
    "early_stopping_masks",
    "predict_rows",
    "row_names",
    "run_training",
    "stage_data",
    "stage_network",
    "stage_preprocessing",
    "train_chain",
    "train_stage",
]

#: ``member_rows(stage_index, stage_spec, table)`` -> (members, rows) bool: the rows each member trains on.
MemberRows = Callable[[int, StageSpec, pd.DataFrame], np.ndarray]


@dataclass
class TrainedStage:
    """One trained stage, as the training path needs it for its metrics.

    ``member_rows``: (members, rows) bool, the rows each member was trained on
    (its early-stopping rows included); ``targets``: (rows, targets) raw values
    (NaN where missing); ``predictions``: (members, rows, targets) every
    member's predictions, in target units; ``seconds``: wall time of the stage;
    ``ceilings``: (members, rows, targets) the limits of ceiling targets each
    member used (None when the stage has none).
    """

    index: int
    spec: StageSpec
    table: pd.DataFrame
    member_rows: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray
    seconds: float
    ceilings: np.ndarray | None = None


@dataclass
class TrainedChain:
    """The trained model (domains, backgrounds and run record included, no metrics yet) and its stages."""

    model: NestedAE
    stages: list[TrainedStage]


# --------------------------------------------------------------------------- the steps of one stage


def stage_preprocessing(spec: StageSpec, table: pd.DataFrame, upstream: np.ndarray | None, rows: np.ndarray,
                        offsets: np.ndarray | None = None) -> StagePreprocessing:
    """Encodings and standardisation of a stage, fitted per member on its rows.

    ``upstream``: (members, n, L) latents of the stage before (None for a first
    stage); ``rows``: (members, n) bool; ``offsets``: (members, n, targets) what
    residual targets correct (:meth:`NestedAE.residual_offsets`), whose
    standardisation is then that of the residuals. Categories are the table's
    values (the most common one is the default); means and scales are in the
    columns' units.
    """
    members, n = rows.shape
    cats, defaults = [], []
    for c in spec.categorical_inputs:
        vc = table[c].astype(str).value_counts()
        cats.append(sorted(vc.index.tolist()))
        defaults.append(str(vc.index[0]))
    num = table[spec.numeric_inputs].to_numpy(dtype=np.float64) if spec.numeric_inputs else np.zeros((n, 0))
    up = upstream if upstream is not None else np.zeros((members, n, 0))
    cont = np.concatenate([up, np.broadcast_to(num, (members, n, num.shape[1]))], axis=-1)
    yraw = np.broadcast_to(table[spec.target_columns].to_numpy(dtype=np.float64), (members, n, len(spec.targets)))
    if offsets is not None:
        yraw = yraw - offsets
    L, T = cont.shape[-1], yraw.shape[-1]
    cont_mean, cont_scale = np.zeros((members, L)), np.ones((members, L))
    t_mean, t_scale = np.zeros((members, T)), np.ones((members, T))
    for m in range(members):
        tr = rows[m]
        cont_mean[m] = cont[m, tr].mean(axis=0)
        sd = cont[m, tr].std(axis=0)
        cont_scale[m] = np.where(sd < 1e-12, 1.0, sd)
        t_mean[m] = np.nanmean(yraw[m, tr], axis=0)
        tsd = np.nanstd(yraw[m, tr], axis=0)
        t_scale[m] = np.where(~np.isfinite(tsd) | (tsd < 1e-12), 1.0, tsd)
    return StagePreprocessing(
        numeric_columns=list(spec.numeric_inputs),
        categorical_columns=list(spec.categorical_inputs),
        categories=cats,
        default_categories=defaults,
        target_columns=spec.target_columns,
        n_upstream=up.shape[-1],
        cont_mean=cont_mean,
        cont_scale=cont_scale,
        target_mean=t_mean,
        target_scale=t_scale,
    )


def stage_network(spec: StageSpec, prep: StagePreprocessing, members: int, seed: int, device: torch.device) -> StageNet:
    """The untrained network of all members of a stage, its weights drawn from ``seed``, its target standardisation from ``prep``."""
    torch.manual_seed(seed)
    return StageNet(spec, prep.layout, members).set_target_standardisation(prep.target_mean, prep.target_scale).to(device)


def stage_data(model: NestedAE, index: int, table: pd.DataFrame, x: torch.Tensor, offsets: np.ndarray | None = None,
               ceilings: torch.Tensor | None = None) -> StageData:
    """Training tensors of stage ``index`` (its preprocessing already in ``model``) from its design tensor ``x``;
    ``offsets`` (members, n, targets): what residual targets correct (their training targets are the residuals);
    ``ceilings`` (members, n, targets): the per-member limits of its ceiling targets on every row, when it has such targets."""
    spec, prep = model.spec.stages[index], model.prep[index]
    dev = x.device
    yraw = table[spec.target_columns].to_numpy(dtype=np.float64)[None]
    if offsets is not None:
        yraw = yraw - offsets
    ystd = (yraw - prep.target_mean[:, None, :]) / prep.target_scale[:, None, :]
    first, inverse = distinct_rows(group_codes(table[model.raw_columns(index)]))
    return StageData(
        x=x[:, torch.as_tensor(first, device=dev)],
        inverse=torch.as_tensor(inverse, device=dev),
        y=torch.as_tensor(np.nan_to_num(ystd), dtype=torch.float32, device=dev),
        ymask=torch.as_tensor(np.isfinite(ystd), dtype=torch.float32, device=dev),
        cat_idx=[
            torch.as_tensor(pd.Categorical(table[c].astype(str), categories=cs).codes.astype(np.int64)[first], device=dev)
            for c, cs in zip(prep.categorical_columns, prep.categories)
        ],
        ceilings=None if ceilings is None else ceilings[:, torch.as_tensor(first, device=dev)].to(torch.float32),
    )


def early_stopping_masks(rows: np.ndarray, spec: StageSpec, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Training and early-stopping masks (members, n) as float32 (the latter None without ``patience``).

    With ``patience``, a seeded ``val_fraction`` of each member's rows (at least
    one) moves from its training mask to its early-stopping mask.
    """
    train_mask = rows.astype(np.float32)
    if spec.patience is None:
        return train_mask, None
    rng = np.random.default_rng(seed)
    val_mask = np.zeros_like(train_mask)
    for m in range(train_mask.shape[0]):
        own = np.flatnonzero(train_mask[m])
        take = rng.choice(own, size=max(1, int(round(spec.val_fraction * len(own)))), replace=False)
        val_mask[m, take] = 1.0
        train_mask[m, take] = 0.0
    return train_mask, val_mask


def row_names(table: pd.DataFrame, categorical: list[str] | None = None) -> pd.Series:
    """A readable name per row: its formula or composition (first of the table source's
    ``row_name_columns`` present, see :mod:`.tables`), followed by its ``categorical`` values
    (``" | "``-separated); ``row <i>`` (1-based) when none is present."""
    for c in table_source().row_name_columns:
        if c in table.columns:
            base = table[c].astype(str).reset_index(drop=True)
            if categorical:
                for col in categorical:
                    base = base + " | " + table[col].astype(str).reset_index(drop=True)
            return base
    return pd.Series([f"row {i + 1}" for i in range(len(table))])


@torch.no_grad()
def predict_rows(net: StageNet, prep: StagePreprocessing, x: torch.Tensor, offsets: np.ndarray | None = None,
                 ceilings: torch.Tensor | None = None) -> np.ndarray:
    """Every member's predictions (members, n, targets) in target units (bounds built in), from the design tensor ``x``
    (``offsets``: added to residual targets' corrections, see :meth:`NestedAE.residual_offsets`; ``ceilings``: each
    member's limits, for a stage with ceiling targets)."""
    z = net.encode(x)
    y = net.target_units(net.predict_from_latent(z).double(), ceilings=ceilings).cpu().numpy()
    return y if offsets is None else y + offsets


def add_domain_and_background(model: NestedAE, index: int, table: pd.DataFrame, x: torch.Tensor) -> None:
    """Fit stage ``index``'s applicability domain (its training rows, named by :func:`row_names`; its numeric inputs'
    coverage from the rows of positive weight) and attribution background on its table; append both to ``model``."""
    spec, seed = model.spec.stages[index], model.spec.seed
    dom_cols = (model.latent_names(index - 1) if spec.upstream else []) + list(spec.numeric_inputs)
    weights = None if spec.weight_column is None else table[spec.weight_column].to_numpy(dtype=np.float64)
    # the stage's own numeric inputs are checked one by one against the range its weighted rows cover
    model.domains.append(DomainModel.fit(dom_cols, model.domain_values(index, table, x), row_names(table).tolist(),
                                         coverage_columns=list(spec.numeric_inputs), weights=weights))
    raw_cols = model.raw_columns(index)
    # categorical inputs of this stage and of every upstream stage whose raw inputs it carries
    raw_cat = [c for c in raw_cols if any(c in p.categorical_columns for p in model.prep[: index + 1])]
    raw_num = [c for c in raw_cols if c not in raw_cat]
    bg, weights = kmeans_background(table, raw_num, raw_cat, BACKGROUND_ROWS, seed)
    model.backgrounds.append(bg[raw_cols])
    model.background_weights.append(weights)


# --------------------------------------------------------------------------- the chain


def _reporter(spec: ChainSpec, index: int, done_epochs: int, t_start: float, callback: ProgressCallback | None) -> EpochReport:
    """The epoch report of stage ``index`` as :class:`ProgressEvent` calls of ``callback``."""
    st = spec.stages[index]
    total_epochs = sum(s.epochs for s in spec.stages)

    def report(epoch: int, member_losses: torch.Tensor, val_loss: float | None) -> None:
        if callback is None:
            return
        callback(
            ProgressEvent(
                stage=st.name,
                stage_index=index,
                n_stages=len(spec.stages),
                epoch=epoch,
                epochs=st.epochs,
                loss=float(member_losses.mean()),
                member_losses=tuple(float(v) for v in member_losses.cpu()),
                val_loss=val_loss,
                fraction=min(1.0, (done_epochs + epoch) / total_epochs),
                elapsed_s=time.perf_counter() - t_start,
            )
        )

    return report


def train_stage(
    model: NestedAE,
    i: int,
    raw_table: pd.DataFrame,
    member_rows: MemberRows,
    *,
    members: int | None = None,
    report: EpochReport | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedStage:
    """Train stage ``i`` of ``model.spec`` on ``raw_table`` and append its network, preprocessing, domain and background
    to ``model``, whose stages before ``i`` are trained (the steps of the module docstring; ``members`` members, default
    ``model.members``, member ``m`` using member ``m`` of the stage before)."""
    t0 = time.perf_counter()
    spec, device = model.spec, model.device
    st = spec.stages[i]
    members = model.members if members is None else members
    upstream_cols = model.raw_columns(i - 1) if st.upstream else []
    table = check_stage_table(st, raw_table, upstream_cols)
    rows = member_rows(i, st, table)
    upstream = model.latents(i - 1, table) if st.upstream else None  # (members, n, L)
    offsets = model.residual_offsets(i, upstream) if st.residual and upstream is not None else None
    prep = stage_preprocessing(st, table, upstream, rows, offsets)
    net = stage_network(st, prep, members, spec.seed + 7919 * i, device)
    model.prep.append(prep)
    model.nets.append(net)
    x = model.design_tensor(i, table, upstream_latents=upstream)
    # each member's limits from its own upstream member (never pooled: member m sees only fold model m)
    with torch.no_grad():
        ceilings = model.ceilings(i, upstream, pool=False, upstream_offsets=model.upstream_offsets(i, table))
    train_mask, val_mask = early_stopping_masks(rows, st, spec.seed + 1000 + i)
    if st.weight_column is not None:  # per-row training weights (check_stage_table validated them)
        weights = table[st.weight_column].to_numpy(dtype=np.float32)[None, :]
        train_mask = train_mask * weights
        val_mask = val_mask * weights if val_mask is not None else None
    if ceilings is not None:  # logit-link ceiling heads start at their members' typical fraction of the limit
        net.set_fraction_offsets(table[st.target_columns].to_numpy(dtype=np.float64), ceilings.cpu().numpy(), train_mask)
    fit_stage(
        net,
        st,
        stage_data(model, i, table, x, offsets, ceilings),
        torch.as_tensor(train_mask, device=device),
        torch.as_tensor(val_mask, device=device) if val_mask is not None else None,
        seed=spec.seed + 31 * i,
        report=report if report is not None else (lambda epoch, losses, val: None),
        should_stop=should_stop,
    )
    predictions = predict_rows(net, prep, x, offsets, ceilings)
    add_domain_and_background(model, i, table, x)
    targets = table[st.target_columns].to_numpy(dtype=np.float64)
    return TrainedStage(i, st, table, rows, targets, predictions, time.perf_counter() - t0,
                        None if ceilings is None else ceilings.cpu().numpy())


def train_chain(
    spec: ChainSpec,
    raw_tables: Mapping[str, pd.DataFrame],
    device: torch.device,
    *,
    members: int,
    member_rows: MemberRows,
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedChain:
    """Train every stage of ``spec`` in order (see the module docstring); returns the model and its stages."""
    t_start = time.perf_counter()
    model = NestedAE(spec=spec, nets=[], prep=[], domains=[], device=device)
    stages: list[TrainedStage] = []
    tables_info: dict[str, dict[str, object]] = {}
    done_epochs = 0
    for i, st in enumerate(spec.stages):
        stage = train_stage(model, i, raw_tables[st.name], member_rows, members=members, report=_reporter(spec, i, done_epochs, t_start, callback),
                            should_stop=should_stop)
        tables_info[st.name] = {"dataset": st.dataset, "rows": len(stage.table), "sha256": table_source().checksum(st.dataset)}
        done_epochs += st.epochs
        stages.append(stage)
    model.record = run_record(spec, device, tables_info)
    return TrainedChain(model, stages)


def run_training(
    spec: ChainSpec,
    tables: Mapping[str, pd.DataFrame] | None,
    *,
    data_dir: str | None,
    device: str,
    download: bool,
    threads: int | None,
    members: int,
    member_rows: MemberRows,
    callback: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> TrainedChain:
    """Resolve the device, load the stage tables and run :func:`train_chain` with limited CPU threads
    (and freed memory kept for reuse, :func:`~.memory.reuse_freed_memory`).

    ``threads`` defaults to 1 on a CPU device, the fastest for these small networks.
    """
    dev = resolve_device(device)
    raw_tables = load_chain_tables(spec, tables, data_dir, download=download)
    with limit_cpu_threads(threads if threads is not None else (1 if dev.type == "cpu" else None)), reuse_freed_memory():
        return train_chain(spec, raw_tables, dev, members=members, member_rows=member_rows, callback=callback, should_stop=should_stop)
