"""The rows a stage of a chain is trained and validated on, rebuilt without training.

Benchmarks compare models on the rows and folds NestedAE uses: this module
rebuilds a stage's table exactly as training checks it (the registry table,
rows with a missing input of the stage or of an upstream stage dropped).
"""
from __future__ import annotations

import pandas as pd

from ..data.tables import check_stage_table, load_stage_table
from ..model.config import ChainSpec

__all__ = ["stage_raw_columns", "stage_table"]


def stage_raw_columns(spec: ChainSpec, stage: int) -> list[str]:
    """Raw columns stage ``stage`` of ``spec`` needs, upstream stages' inputs first (no duplicates)."""
    st = spec.stages[stage]
    cols: list[str] = stage_raw_columns(spec, stage - 1) if st.upstream and stage > 0 else []
    for c in st.numeric_inputs + st.categorical_inputs:
        if c not in cols:
            cols.append(c)
    return cols


def stage_table(spec: ChainSpec, stage: int, data_dir: str | None = None, raw: pd.DataFrame | None = None) -> pd.DataFrame:
    """Stage ``stage``'s checked table (see :func:`nestedae_core.data.tables.check_stage_table`).

    ``raw`` replaces the registry table of the stage's dataset.
    """
    st = spec.stages[stage]
    if raw is None:
        raw = load_stage_table(st, data_dir)
    return check_stage_table(st, raw, stage_raw_columns(spec, stage - 1) if st.upstream and stage > 0 else [])
