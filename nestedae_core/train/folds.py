"""Cross-validation folds: which rows each fold model is validated on.

Random folds are a shuffled ``KFold``; grouped folds a shuffled ``GroupKFold``
(materials grouped by formula, devices by composition + ETL + HTL), both seeded
with the chain's seed. The baselines of :mod:`nestedae_core.benchmark` use the
same function, hence the same folds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["group_codes", "make_folds"]


def group_codes(frame: pd.DataFrame) -> np.ndarray:
    """Each row's group (0, 1, ... in order of first appearance): rows are in one group when all their
    columns' values, read as text, are equal. The same numbering as factorizing the rows' joined text,
    without joining them row by row (about 50x faster on the device table)."""
    if frame.shape[1] == 0:
        return np.zeros(len(frame), dtype=np.int64)
    text = frame.astype(str)
    text.columns = range(text.shape[1])  # repeated or non-string column names group alike
    return text.groupby(list(text.columns), sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64)


def make_folds(table: pd.DataFrame, k: int, split: str = "random", group_columns: list[str] | None = None, seed: int = 0) -> np.ndarray:
    """Fold id (0..k-1) of each row: shuffled ``KFold`` or ``GroupKFold``.

    Grouped splits keep every row of a group (equal values of ``group_columns``) in
    one fold, so no group is both trained on and validated on.
    """
    from sklearn.model_selection import GroupKFold, KFold

    n = len(table)
    if k < 2 or k > n:
        raise ConfigError(f"cannot make {k} folds from {n} rows")
    folds = np.empty(n, dtype=np.int64)
    if split == "random":
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(n))
    elif split == "grouped":
        if not group_columns:
            raise ConfigError("a grouped split needs group_columns in the stage spec")
        groups = group_codes(table[group_columns])
        if len(np.unique(groups)) < k:
            raise ConfigError(f"a grouped split needs at least {k} groups, found {len(np.unique(groups))}")
        parts = GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), groups=groups)
    else:
        raise ConfigError(f"unknown split '{split}'; use 'random' or 'grouped'")
    for f, (_, va) in enumerate(parts):
        folds[va] = f
    return folds
