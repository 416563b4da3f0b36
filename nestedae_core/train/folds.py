"""Cross-validation folds: which rows each fold model is validated on.

Random folds: the rows shuffled by a NumPy ``RandomState`` seeded with the chain's seed and cut into k
consecutive parts, the first ``n mod k`` parts one row longer. Grouped folds (materials grouped by formula,
devices by composition + ETL + HTL): the groups permuted the same way and cut into k parts of whole groups.
These are the folds scikit-learn's shuffled ``KFold`` and ``GroupKFold`` draw with the same seed (a test
compares them), made here without importing scikit-learn, which costs about 1 s of every training run.
The baselines of :mod:`nestedae_core.benchmark` use the same function, hence the same folds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["group_codes", "make_folds"]


def group_codes(frame: pd.DataFrame) -> np.ndarray:
    """Each row's group (0, 1, ... in order of first appearance): rows are in one group when all their
    columns' values, read as text, are equal. The same numbering as factorizing the rows' joined text,
    without joining them row by row: each column is factorized on its own (a numeric column by value, which
    for numbers is the same as by text, -0.0 and 0.0 aside: such a column is read as text) and the columns'
    codes are combined pairwise."""
    n = len(frame)
    if frame.shape[1] == 0:
        return np.zeros(n, dtype=np.int64)
    combined: np.ndarray | None = None
    for j in range(frame.shape[1]):
        codes = _column_codes(frame.iloc[:, j])
        if combined is None:
            combined = codes
        else:  # both below n: the pair's number fits in int64; re-factorized, so first appearance keeps its order
            combined = pd.factorize(combined * (int(codes.max(initial=0)) + 1) + codes)[0].astype(np.int64)
    assert combined is not None
    return combined


def _column_codes(column: pd.Series) -> np.ndarray:
    """Codes (0.. in order of first appearance) of one column's values read as text."""
    is_float = pd.api.types.is_float_dtype(column.dtype)
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_integer_dtype(column.dtype) or is_float:
        values = column.to_numpy()
        # a nullable integer column with a missing value comes out as floats, which merge integers above 2**53
        if values.dtype.kind in ("f" if is_float else "biu") and not (
                values.dtype.kind == "f" and bool(np.any((values == 0) & np.signbit(values)))):
            return pd.factorize(values, use_na_sentinel=False)[0].astype(np.int64)
    return pd.factorize(column.astype(str).to_numpy(dtype=object), use_na_sentinel=False)[0].astype(np.int64)


def make_folds(table: pd.DataFrame, k: int, split: str = "random", group_columns: list[str] | None = None, seed: int = 0) -> np.ndarray:
    """Fold id (0..k-1) of each row, random or grouped (the module docstring), seeded with ``seed``.

    Grouped splits keep every row of a group (equal values of ``group_columns``) in
    one fold, so no group is both trained on and validated on.
    """
    n = len(table)
    if k < 2 or k > n:
        raise ConfigError(f"cannot make {k} folds from {n} rows")
    rng = np.random.RandomState(seed)
    if split == "random":
        order = np.arange(n)
        rng.shuffle(order)
        return _cut(order, n, k)
    if split == "grouped":
        if not group_columns:
            raise ConfigError("a grouped split needs group_columns in the stage spec")
        groups = group_codes(table[group_columns])  # 0..G-1, every code used
        n_groups = int(groups.max()) + 1 if n else 0
        if n_groups < k:
            raise ConfigError(f"a grouped split needs at least {k} groups, found {n_groups}")
        return _cut(rng.permutation(n_groups), n_groups, k)[groups]
    raise ConfigError(f"unknown split '{split}'; use 'random' or 'grouped'")


def _cut(order: np.ndarray, n: int, k: int) -> np.ndarray:
    """Fold id of each of ``n`` items when ``order`` (a permutation of them) is cut into ``k`` consecutive parts,
    the first ``n mod k`` one item longer."""
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    folds = np.empty(n, dtype=np.int64)
    folds[order] = np.repeat(np.arange(k, dtype=np.int64), sizes)
    return folds
