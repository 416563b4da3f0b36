"""Where a chain's training tables come from, and the check every stage table passes.

The training layer knows no dataset: a :class:`TableSource` says how a stage's
table is loaded from its ``dataset`` name, how that dataset's file is
fingerprinted in a model's run record, and which columns name a row. The domain
layer registers its source with :func:`set_table_source` (importing
:mod:`nestedae_core.perovskite` registers the dataset registry's); without one,
every stage table must be passed in (``tables=``).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import DataError, SchemaError

if TYPE_CHECKING:  # importing this module stays cheap: the domain layer registers its source at import time
    import pandas as pd

    from ..model.config import ChainSpec, StageSpec

__all__ = ["TableSource", "check_stage_table", "load_chain_tables", "set_table_source", "table_source"]

logger = logging.getLogger(__name__)

#: ``load(stage_spec, data_dir, download)`` -> the stage's raw table.
StageLoader = Callable[["StageSpec", "str | os.PathLike[str] | None", bool], "pd.DataFrame"]


def _no_checksum(dataset: str) -> str | None:
    return None


@dataclass(frozen=True)
class TableSource:
    """How the training layer gets the tables it is not handed.

    Attributes:
        load: ``(stage_spec, data_dir, download)`` -> the stage's raw table, or None
            (then every table must be passed in).
        checksum: dataset name -> SHA-256 of its file, for the run record (None: unknown).
        row_name_columns: columns that name a row (first found wins), for domains and out-of-fold tables.
        label_columns: columns that label a row (first found wins) in explanations
            (:attr:`nestedae_core.explain.Attribution.row_labels`).
    """

    load: StageLoader | None = None
    checksum: Callable[[str], str | None] = _no_checksum
    row_name_columns: tuple[str, ...] = ("name", "label", "id")
    label_columns: tuple[str, ...] = ("label", "name", "id")


_source = TableSource()


def set_table_source(source: TableSource) -> TableSource:
    """Make ``source`` the default table source; returns the previous one."""
    global _source
    previous, _source = _source, source
    return previous


def table_source() -> TableSource:
    """The current default :class:`TableSource`."""
    return _source


def load_chain_tables(
    spec: ChainSpec,
    tables: Mapping[str, pd.DataFrame] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    source: TableSource | None = None,
) -> dict[str, pd.DataFrame]:
    """Tables for every stage, keyed by stage name; ``tables`` (by stage name) override loading."""
    src = source or _source
    out: dict[str, pd.DataFrame] = {}
    for st in spec.stages:
        if tables is not None and st.name in tables:
            out[st.name] = tables[st.name]
        elif src.load is None:
            raise DataError(f"no table for stage '{st.name}' (dataset {st.dataset}): pass it in tables=, or import "
                            "nestedae_core.perovskite to load registry datasets")
        else:
            out[st.name] = src.load(st, data_dir, download)
    return out


def check_stage_table(spec: StageSpec, table: pd.DataFrame, upstream_columns: list[str] | None = None) -> pd.DataFrame:
    """Validate and clean a stage table: required columns present, rows with missing inputs dropped.

    Rows with a missing (NaN) input are dropped (logged); rows with a missing
    target are kept and that target is masked in the loss. Raises
    :class:`SchemaError` listing missing columns.
    """
    import numpy as np
    import pandas as pd

    needed = list(dict.fromkeys((upstream_columns or []) + spec.numeric_inputs + spec.categorical_inputs))
    required = needed + spec.target_columns + [c for c in spec.group_columns if c not in needed]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise SchemaError(
            f"stage '{spec.name}' (dataset {spec.dataset}) needs column(s) {', '.join(missing)}; "
            f"the table has {len(table.columns)} columns, e.g. {', '.join(map(str, list(table.columns)[:12]))}"
        )
    for col in spec.numeric_inputs + spec.target_columns:
        if not pd.api.types.is_numeric_dtype(table[col]):
            raise SchemaError(f"stage '{spec.name}': column '{col}' must be numeric")
    if spec.weight_column is not None:
        if spec.weight_column not in table.columns:
            raise SchemaError(f"stage '{spec.name}' (dataset {spec.dataset}) has no weight column '{spec.weight_column}'")
        weights = pd.to_numeric(table[spec.weight_column], errors="coerce")
        if not bool(np.isfinite(weights).all() and (weights >= 0).all()):
            raise SchemaError(f"stage '{spec.name}': the weight column '{spec.weight_column}' must hold finite numbers >= 0")
        if not bool((weights > 0).any()):
            raise DataError(f"stage '{spec.name}': every row has weight 0 in '{spec.weight_column}'")
    ok = table[needed].notna().all(axis=1)
    if (~ok).any():
        logger.warning("stage %s: dropping %d row(s) with missing inputs", spec.name, int((~ok).sum()))
    table = table.loc[ok].reset_index(drop=True)
    has_target = table[spec.target_columns].notna().any(axis=1)
    if int(has_target.sum()) < 10:
        raise DataError(f"stage '{spec.name}' has only {int(has_target.sum())} rows with a target; at least 10 are needed")
    return table
