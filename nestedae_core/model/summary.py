"""A trained chain described in a few lines (name, stages, members, split, intervals, MAEs), from data alone.

:func:`chain_summary` needs no network: :meth:`~nestedae_core.model.chain.NestedAE.summary`
calls it with the loaded model's parts, and :func:`nestedae_core.store.bundle_overview`
with a bundle's JSON files, without loading its weights (or torch).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .config import ChainSpec

__all__ = ["chain_summary"]


def chain_summary(spec: ChainSpec, record: Mapping[str, Any], metrics: Mapping[str, Any], *, members: int,
                  intervals: Literal["scaled", "normalised", "plain"] | None) -> dict[str, str]:
    """A small name -> value table describing a trained chain (for the CLI and the dashboard).

    ``record``: the run record (``name``, ``created``, ``fit``); ``metrics``: stage -> target ->
    ``mae``/``mae_std`` (in the target's unit); ``members``: ensemble members; ``intervals``: the
    kind of prediction intervals (``"scaled"``: CV+ scaled per stage by the fold models' disagreement
    or by the distance to the nearest training row; ``"normalised"`` CV+, ``"plain"`` CV+, or ``None``).
    """
    out = {"name": str(record.get("name", spec.name)), "preset": spec.name, "stages": " -> ".join(s.name for s in spec.stages)}
    out["ensemble members"] = str(members)
    all_rows = record.get("fit", {}).get("rows") == "all"
    if all_rows:
        out["split"] = "none: every member trained on all rows (no validation metrics)"
    else:
        out["split"] = f"{spec.folds}-fold {spec.split}"
    if intervals == "scaled":
        out["prediction intervals"] = ("CV+ conformal from the out-of-fold residuals, scaled by the fold models' disagreement "
                                       "or by the distance to the nearest training row (per stage)")
    elif intervals == "normalised":
        out["prediction intervals"] = "normalised CV+ conformal (scaled by the fold models' disagreement), from the out-of-fold residuals"
    elif intervals == "plain":
        out["prediction intervals"] = "CV+ conformal, from the out-of-fold residuals"
    elif all_rows:
        out["prediction intervals"] = "none: fitted on all rows, so there are no out-of-fold residuals to calibrate them"
    else:
        out["prediction intervals"] = "none: this bundle holds no out-of-fold residuals"
    for st in spec.stages:
        for t in st.targets:
            m = metrics.get(st.name, {}).get(t.column, {})
            if "mae" in m:
                out[f"{st.name}: {t.label or t.column} MAE"] = f"{m['mae']:.3f} ± {m.get('mae_std', 0.0):.3f} {t.unit}".strip()
    if "created" in record:
        out["trained"] = str(record["created"])
    return out
