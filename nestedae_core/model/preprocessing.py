"""Fitted preprocessing of one stage: standardisation of continuous inputs and targets, one-hot categories.

Units: ``cont_mean``/``target_mean`` are in the inputs' and targets' own units,
``cont_scale``/``target_scale`` likewise (one standard deviation).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, SchemaError
from .columns import ColumnTable, column_values, float_columns
from .nn import StageLayout

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StagePreprocessing", "as_float_array"]


def as_float_array(frame: pd.DataFrame | ColumnTable, columns: Sequence[str], what: str) -> np.ndarray:
    """Columns of ``frame`` (a DataFrame or a :class:`~.columns.ColumnTable`) as a float64 array (SchemaError naming
    ``what`` when missing or not numeric)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{what}: missing column(s) {', '.join(missing)}")
    try:
        arr = float_columns(frame, columns)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{what}: columns {', '.join(columns)} must be numeric ({exc})") from None
    return arr


@dataclass
class StagePreprocessing:
    """Fitted preprocessing of one stage, per ensemble member.

    ``cont_mean``/``cont_scale``: (members, n_upstream + n_numeric), the
    standardisation of upstream latents and numeric inputs; ``target_mean``/
    ``target_scale``: (members, n_targets); ``categories``: the known values of each
    categorical input (shared by all members), ``default_categories`` the most
    common one of each.
    """

    numeric_columns: list[str]
    categorical_columns: list[str]
    categories: list[list[str]]
    default_categories: list[str]
    target_columns: list[str]
    n_upstream: int
    cont_mean: np.ndarray
    cont_scale: np.ndarray
    target_mean: np.ndarray
    target_scale: np.ndarray

    @property
    def layout(self) -> StageLayout:
        """Column layout of the model input."""
        return StageLayout(self.n_upstream, len(self.numeric_columns), tuple(tuple(c) for c in self.categories))

    def one_hot(self, frame: pd.DataFrame | ColumnTable) -> np.ndarray:
        """One-hot blocks of the categorical inputs, (rows, sum of category counts), of a DataFrame or a ColumnTable.

        Unknown values raise :class:`InputError` listing the known ones.
        """
        blocks = []
        for col, cats in zip(self.categorical_columns, self.categories):
            if col not in frame.columns:
                raise SchemaError(f"missing categorical column '{col}'")
            values = column_values(frame, col).astype(str)
            index = {c: i for i, c in enumerate(cats)}
            bad = sorted({v for v in values if v not in index})
            if bad:
                raise InputError(f"unknown {col} value(s) {', '.join(repr(b) for b in bad[:5])}; known: {', '.join(cats)}")
            block = np.zeros((len(values), len(cats)))
            block[np.arange(len(values)), [index[v] for v in values]] = 1.0
            blocks.append(block)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0))

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable dict (arrays as nested lists)."""
        return {
            "numeric_columns": self.numeric_columns,
            "categorical_columns": self.categorical_columns,
            "categories": self.categories,
            "default_categories": self.default_categories,
            "target_columns": self.target_columns,
            "n_upstream": self.n_upstream,
            "cont_mean": self.cont_mean.tolist(),
            "cont_scale": self.cont_scale.tolist(),
            "target_mean": self.target_mean.tolist(),
            "target_scale": self.target_scale.tolist(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StagePreprocessing":
        """Inverse of :meth:`to_json`."""
        return cls(
            numeric_columns=list(d["numeric_columns"]),
            categorical_columns=list(d["categorical_columns"]),
            categories=[list(map(str, c)) for c in d["categories"]],
            default_categories=list(map(str, d["default_categories"])),
            target_columns=list(d["target_columns"]),
            n_upstream=int(d["n_upstream"]),
            cont_mean=np.asarray(d["cont_mean"], dtype=np.float64),
            cont_scale=np.asarray(d["cont_scale"], dtype=np.float64),
            target_mean=np.asarray(d["target_mean"], dtype=np.float64),
            target_scale=np.asarray(d["target_scale"], dtype=np.float64),
        )
