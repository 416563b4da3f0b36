"""The dataset registry as the training layer's table source.

:data:`PEROVSKITE_TABLES` loads a stage's table from its registry dataset
(:func:`nestedae_core.data.tables.load_stage_table`), fingerprints the dataset's
file for the run record and names rows by formula or composition (in domains,
out-of-fold tables and explanations). Importing this
module (as :mod:`nestedae_core.perovskite` does) makes it the default of
:func:`nestedae_core.train.tables.table_source`. Registering is cheap: the dataset
stack (:mod:`nestedae_core.data`) is imported when a table or a checksum is first
asked for, so a prediction never loads it.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..train.tables import TableSource, set_table_source
from ..vocabulary import COMPOSITION_KEY, DEVICE_COMPOSITION, FORMULA, LABEL_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from ..model.config import StageSpec

__all__ = ["PEROVSKITE_TABLES", "ROW_NAME_COLUMNS", "dataset_checksum"]

#: Columns that name a row (its formula or composition), first found wins.
ROW_NAME_COLUMNS: tuple[str, ...] = (FORMULA, DEVICE_COMPOSITION, COMPOSITION_KEY, "formula", "material_id")


def dataset_checksum(name: str) -> str | None:
    """SHA-256 of a registry dataset's file; None for generated datasets or unknown names."""
    from ..data.registry import dataset_info

    try:
        info = dataset_info(name)
    except Exception:
        return None
    if info.kind != "file":
        return None
    return info.sha256


def _load(stage: StageSpec, data_dir: str | os.PathLike[str] | None, download: bool) -> pd.DataFrame:
    from ..data.tables import load_stage_table

    return load_stage_table(stage, data_dir, download=download)


#: The registry datasets, as training tables.
PEROVSKITE_TABLES = TableSource(load=_load, checksum=dataset_checksum, row_name_columns=ROW_NAME_COLUMNS, label_columns=LABEL_COLUMNS)

set_table_source(PEROVSKITE_TABLES)
