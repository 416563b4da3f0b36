"""A paired comparison over folds: is NestedAE better than the best baseline on the same folds?

Every model of a task is validated on the identical folds, so the fold MAEs are
paired: the difference ``NestedAE - baseline`` on each fold removes what the fold
itself contributes (an easy or a hard fold). The verdict rule (:data:`VERDICT_RULE`):
a model is called *better* only when its fold MAE is lower on **every** fold, or
when a two-sided paired t-test over the folds gives p < 0.05 with a lower mean;
*worse* symmetrically; otherwise the difference does not hold across folds and
no winner is named.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import numpy as np

from ..errors import DataError

__all__ = ["PairedComparison", "VERDICT_RULE", "paired_comparison", "best_baseline"]

#: The rule, in words, by which :func:`paired_comparison` calls one model better.
VERDICT_RULE = ("NestedAE is called better (or worse) than the best baseline only when its validation MAE is lower "
                "(higher) on every fold, or when a two-sided paired t-test over the folds gives p < 0.05; "
                "otherwise the difference does not hold across folds.")

#: The p-value below which a paired t-test counts.
ALPHA = 0.05


@dataclass(frozen=True)
class PairedComparison:
    """NestedAE against one baseline on the same folds; MAEs and differences in target units.

    ``differences[i]`` = NestedAE's MAE minus the baseline's on fold ``folds[i]``
    (negative: NestedAE better); ``wins``/``losses``: folds where NestedAE is
    lower/higher; ``p_value``: two-sided paired t-test (NaN with fewer than 2
    folds or identical differences); ``verdict``: ``better``, ``worse`` or ``no clear difference``.
    """

    model: str
    baseline: str
    folds: list[int]
    model_mae: list[float]
    baseline_mae: list[float]
    differences: list[float]
    mean_difference: float
    sd_difference: float
    wins: int
    losses: int
    t_statistic: float
    p_value: float
    verdict: Literal["better", "worse", "no clear difference"]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)


def _fold_maes(entry: Mapping[str, Any]) -> dict[int, float]:
    return {int(f.get("fold", i)): float(f["mae"]) for i, f in enumerate(entry.get("folds") or []) if f.get("mae") is not None}


def best_baseline(models: Mapping[str, Mapping[str, Any]], ours: str = "nestedae") -> str | None:
    """The baseline with the lowest mean MAE among ``models`` (a task's report entry), or None; variants of ours
    (``<ours>-...``, e.g. ``nestedae-nested``) are not baselines."""
    others = [(float(m["mae"]), name) for name, m in models.items()
              if name != ours and not name.startswith(f"{ours}-") and m.get("mae") is not None and math.isfinite(float(m["mae"]))]
    return min(others)[1] if others else None


def paired_comparison(models: Mapping[str, Mapping[str, Any]], ours: str = "nestedae", baseline: str | None = None) -> PairedComparison:
    """Compare ``ours`` with ``baseline`` (default: the best baseline) fold by fold.

    ``models``: a task's ``models`` mapping of an accuracy report (each with
    ``mae`` and ``folds``: a list of ``{"fold", "mae", ...}``). Only folds both
    models were scored on are paired. Raises DataError when either model is
    missing or no fold is shared.
    """
    from scipy import stats

    if ours not in models:
        raise DataError(f"the report has no '{ours}' entry for this task")
    baseline = baseline or best_baseline(models, ours)
    if baseline is None or baseline not in models:
        raise DataError("the report has no baseline for this task")
    a, b = _fold_maes(models[ours]), _fold_maes(models[baseline])
    shared = sorted(set(a) & set(b))
    if not shared:
        raise DataError(f"'{ours}' and '{baseline}' share no scored fold")
    ma = np.array([a[f] for f in shared])
    mb = np.array([b[f] for f in shared])
    d = ma - mb
    wins, losses = int((d < 0).sum()), int((d > 0).sum())
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    if len(d) > 1 and sd > 0:
        res = stats.ttest_rel(ma, mb)
        t, p = float(res.statistic), float(res.pvalue)
    else:
        t, p = float("nan"), float("nan")
    mean = float(d.mean())
    if wins == len(d) or (p < ALPHA and mean < 0):
        verdict: Literal["better", "worse", "no clear difference"] = "better"
    elif losses == len(d) or (p < ALPHA and mean > 0):
        verdict = "worse"
    else:
        verdict = "no clear difference"
    return PairedComparison(ours, baseline, shared, ma.tolist(), mb.tolist(), d.tolist(), mean, sd, wins, losses, t, p, verdict)
