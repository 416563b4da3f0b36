"""Interpretation of a trained chain: SHAP attributions and latent-space analysis.

* :mod:`.attribution`: attributions of any stage output (band gap, latents, PCE, whole chain).
* :mod:`.latents`: latent correlations, active latents, traversals, projections.
"""
from __future__ import annotations

from .attribution import (
    EXPLAINER_NOTES,
    METHODS,
    Attribution,
    ExplainSettings,
    explain_bandgap,
    explain_chain,
    explain_function,
    explain_latents,
    explain_pce,
    explain_stage_output,
    explainer_comparison,
    model_function,
    warm_up,
    weighted_multiset,
)

__all__ = [
    "EXPLAINER_NOTES",
    "METHODS",
    "Attribution",
    "ExplainSettings",
    "explain_bandgap",
    "explain_chain",
    "explain_function",
    "explain_latents",
    "explain_pce",
    "explain_stage_output",
    "explainer_comparison",
    "model_function",
    "warm_up",
    "weighted_multiset",
]
