"""A teaching comparison: every explainer on one row, side by side (:func:`explainer_comparison`).

Units: attributions, base values and differences in the explained output's unit.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from .api import _last_stage_with_upstream, as_frame, explain_chain, explain_stage_output
from .attribution import Attribution
from .explained_function import InputSpace
from .methods import check_method
from .settings import ExplainSettings

__all__ = ["EXPLAINER_NOTES", "explainer_comparison"]


#: What each explainer of :func:`explainer_comparison` is.
EXPLAINER_NOTES = {
    "exact": "exact Shapley values (all 2^F coalitions) w.r.t. the background",
    "permutation": "Monte-Carlo over antithetic permutations; additive by construction",
    "kernel": "weighted linear regression over sampled coalitions (KernelSHAP); approximate",
    "gradient": "integrated gradients averaged over background baselines; additive up to quadrature error",
}


def _explain_first(model: NestedAE, frame: pd.DataFrame, **kw: Any) -> Attribution:
    return explain_stage_output(model, 0, 0, frame, inputs="stage", **kw)


def _explain_last(model: NestedAE, frame: pd.DataFrame, **kw: Any) -> Attribution:
    return explain_stage_output(model, _last_stage_with_upstream(model), 0, frame, inputs="stage", **kw)


def explainer_comparison(
    model: NestedAE,
    frame_row: pd.DataFrame | pd.Series,
    *,
    kind: Literal["first", "last", "chain"] = "chain",
    methods: Sequence[str] = ("exact", "permutation", "gradient"),
    member: int | None = None,
    settings: ExplainSettings | None = None,
    stage: int | str | None = None,
    output: str | int = 0,
    inputs: InputSpace = "chain",
) -> pd.DataFrame:
    """Compare explainers on one row.

    ``kind`` picks the output: ``first``: the first stage's first target w.r.t. its
    inputs (e.g. the band gap); ``last``: the last stage's first target w.r.t. that
    stage's own inputs (e.g. PCE); ``chain``: the last stage's first target end to end.
    ``stage`` (with ``output`` and ``inputs``, as in :func:`explain_stage_output`), when
    given, replaces ``kind``: any output of that stage w.r.t. its own inputs or the whole chain.

    Returns one row per method: ``explainer``, ``is_exact`` (only ``exact``
    enumerates every coalition; the others approximate the same Shapley values, or
    in the case of ``gradient`` a different attribution that coincides for
    additive models), ``base``, ``prediction``, ``additivity_error`` and
    ``seconds``, ``max_abs_diff_vs_exact`` (output unit; NaN without ``exact``),
    ``background_size``, then one column per feature holding its attribution.
    All methods share the weighted background of the model; ``exact`` may use a
    smaller multiset (see :attr:`ExplainSettings.exact_max_rows`), so its base
    value can differ slightly from the others'.
    """
    frame = as_frame(frame_row)
    if len(frame) != 1:
        raise InputError(f"explainer_comparison explains one row; got {len(frame)}")
    fns = {"first": _explain_first, "last": _explain_last, "chain": explain_chain}
    if kind not in fns:
        raise InputError(f"unknown kind '{kind}'; choose first, last or chain")
    def explain(method: str) -> Attribution:
        if stage is None:
            return fns[kind](model, frame, method=method, member=member, settings=settings)  # type: ignore[operator,no-any-return]
        return explain_stage_output(model, stage, output, frame, inputs=inputs, method=method,  # type: ignore[arg-type]
                                    member=member, settings=settings)

    results: dict[str, Attribution] = {}
    for m in methods:
        if check_method(m) == "auto":
            raise InputError("list concrete methods to compare (not 'auto')")
        results[m] = explain(m)
    ref = results.get("exact")
    rows = []
    for m, att in results.items():
        row: dict[str, Any] = {
            "explainer": m,
            "is_exact": m == "exact",
            "base": float(att.base_values[0]),
            "prediction": float(att.predictions[0]),
            "additivity_error": att.additivity_error(),
            "seconds": att.seconds,
            "max_abs_diff_vs_exact": float(np.max(np.abs(att.values[0] - ref.values[0]))) if ref is not None else float("nan"),
            "background_size": att.background_size,
            "unit": att.unit,
        }
        row.update(dict(zip(att.feature_names, att.values[0].tolist())))
        rows.append(row)
    return pd.DataFrame(rows)
