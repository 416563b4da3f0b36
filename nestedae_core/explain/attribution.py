"""The result of an explanation: :class:`Attribution` (values, base values, the explained
inputs, and tables and JSON views of them).

Units: attributions and base values are in the explained output's unit (band gap
eV, PCE %, latents dimensionless); inputs keep their raw units.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["Attribution", "global_importance"]


@dataclass
class Attribution:
    """Attributions of one model output for ``n`` rows over ``F`` features.

    Attributes:
        values: (n, F) attributions in the output's unit.
        base_values: (n,) expected output over the background (output unit).
        data: (n, F) the explained inputs: raw values for numeric features, the
            category index for categorical ones (see ``categories``), latent values
            (member's or ensemble mean) for upstream latents.
        feature_names: the F feature names (one per categorical input).
        output: explained output (target column, e.g. ``Gap``, or latent name).
        unit: unit of the output (``eV``, ``%``, ``""`` for latents).
        explainer: ``exact``, ``permutation``, ``kernel`` or ``gradient``.
        seconds: wall time of the attribution computation (s).
        predictions: (n,) the explained function at the rows (output unit);
            ``base_values + values.sum(1)`` equals it up to ``additivity_error()``.
        label: human-readable output name (``band gap``).
        stage: stage whose output is explained.
        inputs: ``stage`` (that stage's own inputs) or ``chain`` (raw chain inputs).
        member: fold model explained, or None for the ensemble mean.
        categories: categorical feature -> category names (index = code in ``data``).
        row_labels: a label per row (formula when the frame has one).
        background_size: rows of the background multiset used.
        details: method parameters (evaluations, permutations, quadrature nodes).
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    output: str
    unit: str
    explainer: str
    seconds: float
    predictions: np.ndarray
    label: str = ""
    stage: str = ""
    inputs: str = "stage"
    member: int | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)
    row_labels: list[str] = field(default_factory=list)
    background_size: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of explained rows."""
        return int(self.values.shape[0])

    @property
    def display_data(self) -> np.ndarray:
        """(n, F) object array: numbers, and category names for categorical features."""
        out = self.data.astype(object)
        for j, name in enumerate(self.feature_names):
            cats = self.categories.get(name)
            if cats:
                out[:, j] = [cats[int(round(v))] for v in self.data[:, j]]
        return out

    def additivity_error(self) -> float:
        """Largest ``|base + sum(values) - prediction|`` over rows (output unit)."""
        if self.n_rows == 0:
            return 0.0
        return float(np.max(np.abs(self.base_values + self.values.sum(axis=1) - self.predictions)))

    def mean_abs(self) -> pd.Series:
        """Mean |attribution| per feature over rows (global importance), descending."""
        return pd.Series(np.abs(self.values).mean(axis=0), index=self.feature_names, name=f"mean |SHAP| ({self.unit})").sort_values(ascending=False)

    def sum_by(self, group: Callable[[str], str], row: int = 0) -> pd.Series:
        """One row's attributions summed over groups of features (e.g. all descriptors of a site).

        ``group`` maps a feature name to its group's name. By additivity a group's
        sum is that group's joint contribution (output unit). Sorted by |sum|, largest first.
        """
        if not -self.n_rows <= row < self.n_rows:
            raise InputError(f"row {row} out of range (0..{self.n_rows - 1})")
        s = pd.Series(self.values[row], index=self.feature_names).groupby(group, sort=False).sum()
        return s.sort_values(key=np.abs, ascending=False)

    def frame(self) -> pd.DataFrame:
        """Attributions as a table: rows x features (output unit)."""
        return pd.DataFrame(self.values, columns=self.feature_names, index=self.row_labels or None)

    def top(self, k: int = 10, row: int | None = None) -> pd.DataFrame:
        """The ``k`` largest attributions.

        For one row (``row`` given, or a one-row result): columns ``feature``,
        ``value`` (signed, output unit), ``data`` (the input's value) and ``unit``,
        sorted by |value|. For many rows: ``feature``, ``mean_abs``, ``mean`` and
        ``unit``, sorted by mean |value| (global importance).
        """
        if k < 1:
            raise InputError("k must be at least 1")
        if row is None and self.n_rows == 1:
            row = 0
        if row is not None:
            if not -self.n_rows <= row < self.n_rows:
                raise InputError(f"row {row} out of range (0..{self.n_rows - 1})")
            v = self.values[row]
            order = np.argsort(-np.abs(v), kind="stable")[:k]
            disp = self.display_data[row]
            return pd.DataFrame(
                {
                    "feature": [self.feature_names[j] for j in order],
                    "value": v[order],
                    "data": [disp[j] for j in order],
                    "unit": self.unit,
                }
            ).reset_index(drop=True)
        ma = np.abs(self.values).mean(axis=0)
        order = np.argsort(-ma, kind="stable")[:k]
        return pd.DataFrame(
            {
                "feature": [self.feature_names[j] for j in order],
                "mean_abs": ma[order],
                "mean": self.values.mean(axis=0)[order],
                "unit": self.unit,
            }
        ).reset_index(drop=True)

    def to_shap_explanation(self) -> Any:
        """A :class:`shap.Explanation` (numeric ``data`` with category codes, names in ``display_data``)."""
        import shap

        return shap.Explanation(
            values=self.values,
            base_values=self.base_values,
            data=self.data,
            display_data=self.display_data,
            feature_names=list(self.feature_names),
            output_names=self.output,
        )

    def to_json(self, row: int = 0) -> dict[str, Any]:
        """One row as JSON: ``output``, ``unit``, ``base``, ``prediction``, ``attributions``
        (feature -> value, sorted by |value|), ``data`` (feature -> input value),
        ``explainer``, ``additivity_error``."""
        v = self.values[row]
        order = np.argsort(-np.abs(v), kind="stable")
        disp = self.display_data[row]
        return {
            "output": self.output,
            "label": self.label,
            "unit": self.unit,
            "stage": self.stage,
            "inputs": self.inputs,
            "member": self.member,
            "explainer": self.explainer,
            "base": float(self.base_values[row]),
            "prediction": float(self.predictions[row]),
            "attributions": {self.feature_names[j]: float(v[j]) for j in order},
            "data": {self.feature_names[j]: (disp[j] if isinstance(disp[j], str) else float(disp[j])) for j in order},
            "additivity_error": float(abs(self.base_values[row] + v.sum() - self.predictions[row])),
            "seconds": float(self.seconds),
        }


def global_importance(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global importance of attributions ``values`` (rows x features, in the output's unit): the mean |attribution|
    per feature and the feature order, largest first (stable for ties)."""
    mean_abs = np.abs(np.asarray(values, dtype=np.float64)).mean(axis=0)
    return mean_abs, np.argsort(-mean_abs, kind="stable")
