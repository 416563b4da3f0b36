"""Splits that mean what they say: compositions clustered by distance, whole ion families held out.

Four ways to deal rows into ``k`` validation folds, the same for every model compared:

* ``random``: shuffled rows (a row's near-duplicates sit on both sides);
* ``grouped``: equal values of the stage's group columns form a group (an exact
  composition, a recipe), :func:`nestedae_core.train.make_folds`;
* ``cluster``: compositions within :data:`CLUSTER_DISTANCE` of each other in the 14
  site fractions (mol/mol; the largest difference over the 14, ``chebyshev``, or
  their sum, ``l1``) form one group: the connected components of the "within the
  distance" graph (scikit-learn's single-linkage agglomerative clustering with a
  distance threshold), so near-duplicate spellings of one recipe can never sit on
  both sides; groups are dealt into folds largest first, each to the fold with the fewest rows (ties in a seeded order);
* ``family``: each composition belongs to the first family of :data:`FAMILIES`
  whose ions it contains (all chlorides, all lead-free Sn/Ge, all Sn-Pb alloys,
  all Cs-containing lead halides, all Br-rich lead halides, the MA/FA lead
  iodide-rich rest), and each fold holds out whole families (one family per fold
  when there are ``k`` of them; otherwise the largest family goes to the fold with
  the fewest rows, in turn). A validation fold is an extrapolation to a family the
  model never saw measured.

Every split is keyed on the *canonical* composition (the 14 site fractions
rounded to :data:`~nestedae_core.data.derived.FRACTION_DECIMALS` decimals), never
on a formula's spelling: :func:`composition_folds` assigns a fold to each distinct
composition of the union of several tables, so that a chain's stages (films,
devices) share one split and a held-out composition is held out everywhere.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..data.derived import FRACTION_DECIMALS
from ..errors import ConfigError, DataError
from ..model.config import ChainSpec, StageSpec
from ..vocabulary import SITE_FRACTION_COLUMNS
from .fidelity import target_fidelity

__all__ = [
    "CLUSTER_DISTANCE",
    "CLUSTER_METRICS",
    "FAMILIES",
    "Family",
    "SPLITS",
    "canonical_keys",
    "chain_folds",
    "cluster_groups",
    "computed_stage",
    "composition_folds",
    "family_of",
    "split_folds",
]

#: The splits a benchmark can ask for, the honest ones first.
SPLITS: tuple[str, ...] = ("family", "cluster", "grouped", "random")
#: Site-fraction distance (mol/mol) within which two compositions are one cluster.
CLUSTER_DISTANCE = 0.05
#: Distances over the 14 site fractions: the largest difference, or the sum of differences.
CLUSTER_METRICS: dict[str, str] = {"chebyshev": "chebyshev", "max-abs": "chebyshev", "l1": "manhattan"}

Fractions = pd.DataFrame


@dataclass(frozen=True)
class Family:
    """An ion family: ``name``, a one-line ``description`` and ``member``: site fractions -> bool per row."""

    name: str
    description: str
    member: Callable[[Fractions], np.ndarray]


def _col(f: Fractions, ion: str) -> np.ndarray:
    return f[ion].to_numpy(dtype=np.float64)


#: Ion families in priority order: a composition belongs to the first one it matches; the last matches every row.
FAMILIES: tuple[Family, ...] = (
    Family("chlorides", "every composition containing chloride (Cl > 0)", lambda f: _col(f, "Cl") > 0),
    Family("lead-free", "Sn or Ge B site without lead (Pb = 0)", lambda f: _col(f, "Pb") <= 0),
    Family("Sn-Pb alloys", "lead alloyed with Sn or Ge on the B site (0 < Pb < 1)", lambda f: _col(f, "Pb") < 1),
    Family("Cs lead halides", "lead halides with Cs on the A site (Cs > 0), incl. Cs-rich lead iodides", lambda f: _col(f, "Cs") > 0),
    Family("Br-rich", "MA/FA lead halides with at least half the X site bromide (Br >= 0.5)", lambda f: _col(f, "Br") >= 0.5),
    Family("MA/FA iodides", "the rest: MA/FA lead iodides and iodide-rich mixed halides", lambda f: np.ones(len(f), dtype=bool)),
)


def _fractions(table: pd.DataFrame) -> Fractions:
    missing = [c for c in SITE_FRACTION_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"cluster and family splits need the 14 site-fraction columns; missing: {', '.join(missing)}")
    f = table.loc[:, list(SITE_FRACTION_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(f.to_numpy(dtype=np.float64)).all():
        raise DataError("cluster and family splits need finite site fractions in every row")
    return f.reset_index(drop=True)


def canonical_keys(table: pd.DataFrame) -> np.ndarray:
    """The canonical composition of each row: its 14 site fractions rounded to FRACTION_DECIMALS, as one string."""
    f = _fractions(table).round(FRACTION_DECIMALS)
    return f.astype(str).agg("|".join, axis=1).to_numpy()


def family_of(table: pd.DataFrame) -> np.ndarray:
    """The family name (:data:`FAMILIES`) of each row, from its site fractions."""
    f = _fractions(table)
    out = np.full(len(f), "", dtype=object)
    for fam in FAMILIES:
        free = out == ""
        out[free & np.asarray(fam.member(f), dtype=bool)] = fam.name
    return out


def cluster_groups(table: pd.DataFrame, distance: float = CLUSTER_DISTANCE, metric: str = "chebyshev") -> np.ndarray:
    """Cluster id of each row: connected components of compositions within ``distance`` (mol/mol) of each other.

    ``metric``: ``chebyshev`` (= ``max-abs``, the largest of the 14 site-fraction
    differences) or ``l1`` (their sum). Single-linkage agglomerative clustering with
    ``distance_threshold`` (scikit-learn): two rows closer than ``distance`` always
    share a cluster.
    """
    from sklearn.cluster import AgglomerativeClustering

    if metric not in CLUSTER_METRICS:
        raise ConfigError(f"unknown cluster distance '{metric}'; use {', '.join(CLUSTER_METRICS)}")
    if not distance > 0:
        raise ConfigError(f"the cluster distance must be positive (mol/mol), got {distance}")
    X = _fractions(table).to_numpy(dtype=np.float64)
    if len(X) < 2:
        return np.zeros(len(X), dtype=np.int64)
    # merges strictly below the threshold: nudge it so that "within the distance" includes the distance itself
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance * (1 + 1e-9) + 1e-12,
                                    metric=CLUSTER_METRICS[metric], linkage="single")
    return model.fit_predict(X).astype(np.int64)


def _deal_families(sizes: pd.Series, k: int) -> dict[str, int]:
    """Family -> fold from each family's (weighted) row count: the largest family first, each to the fold with the fewest rows so far."""
    order = [fam.name for fam in FAMILIES if fam.name in sizes.index]
    if len(order) < k:
        raise ConfigError(f"a family split needs at least {k} ion families, this table has {len(order)} "
                          f"({', '.join(order)}): use --folds {max(2, len(order))} or fewer")
    order.sort(key=lambda n: -int(sizes[n]))
    load = np.zeros(k, dtype=np.float64)
    out: dict[str, int] = {}
    for name in order:
        f = int(np.argmin(load))
        out[name] = f
        load[f] += float(sizes[name])
    return out


def _deal_groups(groups: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold of each item: groups in a seeded random order, then stably by size (largest first), each to the lightest fold."""
    ids, inverse = np.unique(groups, return_inverse=True)
    size = np.bincount(inverse, weights=weights, minlength=len(ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    order = order[np.argsort(-size[order], kind="stable")]
    load, fold_of_group = np.zeros(k), np.empty(len(ids), dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of_group[g] = f
        load[f] += size[g]
    return fold_of_group[inverse]


def composition_folds(
    tables: Sequence[pd.DataFrame], k: int, split: Literal["family", "cluster", "grouped"], seed: int = 0,
    *, distance: float = CLUSTER_DISTANCE, metric: str = "chebyshev", weights: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """One fold id per row of each table, keyed on the canonical composition and shared by every table.

    The distinct compositions of all ``tables`` are dealt into ``k`` folds
    (``grouped``: each composition a group; ``cluster``: :func:`cluster_groups`;
    ``family``: :func:`family_of`, whole families per fold); every row of every table
    gets its composition's fold. So a composition held out in one table is held out
    in all of them. ``weights`` (one per table) weigh each table's rows when the
    folds are balanced (default: the first table's rows count, the others' only
    add compositions).
    """
    if not tables:
        raise ConfigError("composition_folds needs at least one table")
    keys = [canonical_keys(t) for t in tables]
    w = list(weights) if weights is not None else [1.0] + [1e-3] * (len(tables) - 1)
    frames = []
    for t, key, wt in zip(tables, keys, w):
        f = _fractions(t)
        f["_key"], f["_w"] = key, wt
        frames.append(f)
    allrows = pd.concat(frames, ignore_index=True)
    comp = allrows.groupby("_key", sort=True).agg({**{c: "first" for c in SITE_FRACTION_COLUMNS}, "_w": "sum"})
    if split == "family":
        fam = family_of(comp)
        fold_of_family = _deal_families(pd.Series(comp["_w"].to_numpy(), index=fam).groupby(level=0).sum(), k)
        comp_fold = np.array([fold_of_family[n] for n in fam], dtype=np.int64)
    elif split in ("cluster", "grouped"):
        groups = cluster_groups(comp, distance, metric) if split == "cluster" else np.arange(len(comp))
        if len(np.unique(groups)) < k:
            raise ConfigError(f"a {split} split needs at least {k} groups, found {len(np.unique(groups))}")
        comp_fold = _deal_groups(groups, comp["_w"].to_numpy(), k, seed)
    else:
        raise ConfigError(f"unknown composition split '{split}'; use family, cluster or grouped")
    lookup = dict(zip(comp.index, comp_fold))
    return [np.array([lookup[x] for x in key], dtype=np.int64) for key in keys]


def split_folds(
    table: pd.DataFrame, k: int, split: str, group_columns: Sequence[str] | None = None, seed: int = 0,
    *, distance: float = CLUSTER_DISTANCE, metric: str = "chebyshev",
) -> np.ndarray:
    """Fold id (0..k-1) of each row of one table under ``split`` (one of :data:`SPLITS`).

    ``random`` and ``grouped`` are :func:`nestedae_core.train.make_folds` (grouped by
    ``group_columns``); ``cluster`` and ``family`` are :func:`composition_folds` of this table.
    """
    from ..train import make_folds

    if split in ("random", "grouped"):
        return make_folds(table, k, split, list(group_columns or []), seed)
    if split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; use {', '.join(SPLITS)}")
    if k < 2 or k > len(table):
        raise ConfigError(f"cannot make {k} folds from {len(table)} rows")
    return composition_folds([table], k, split, seed, distance=distance, metric=metric)[0]  # type: ignore[arg-type]


def computed_stage(stage: StageSpec) -> bool:
    """Whether a stage holds computed values: a DFT (PBE or HSE) band gap among its targets and nothing measured
    (its other targets, such as the decomposition energy, come from the same calculations).

    Computed values exist for any composition one cares to compute, so a split of
    measured data never holds them out: a computed stage keeps its own grouped folds.
    """
    fidelities = [target_fidelity(stage, t) for t in stage.targets]
    return any(f in ("PBE", "HSE") for f in fidelities) and "measured" not in fidelities


def chain_folds(
    spec: ChainSpec, tables: Sequence[pd.DataFrame], split: str, *, lead: int | None = None,
    distance: float = CLUSTER_DISTANCE, metric: str = "chebyshev",
) -> dict[str, np.ndarray]:
    """One ``split`` (``family``, ``cluster`` or ``grouped`` by canonical composition) shared by every measured stage.

    ``tables``: every stage's checked table, in chain order. Returns stage name ->
    fold id per row for each measured stage (not :func:`computed_stage`), from
    :func:`composition_folds` over their tables with ``spec.folds`` folds and
    ``spec.seed``: a composition held out of one stage is held out of all of them
    (its films and its devices). Folds are balanced on the rows of stage ``lead``
    (default: the last measured stage).
    """
    measured = [i for i, st in enumerate(spec.stages) if not computed_stage(st)]
    if not measured:
        return {}
    lead = measured[-1] if lead is None else lead
    if lead not in measured:
        raise ConfigError(f"stage '{spec.stages[lead].name}' holds computed values; a shared split is balanced on a measured stage")
    order = [lead] + [i for i in measured if i != lead]
    ids = composition_folds([tables[i] for i in order], spec.folds, split, spec.seed, distance=distance, metric=metric)  # type: ignore[arg-type]
    return {spec.stages[i].name: f for i, f in zip(order, ids)}
