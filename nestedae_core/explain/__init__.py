"""Interpretation of a trained chain: SHAP attributions and latent-space analysis.

Attributions (which input drives which output):

* :mod:`.api`: the public explanations (any stage output, latents, whole chain, any function);
* :mod:`.attribution`: the result, :class:`Attribution`;
* :mod:`.settings`: the explainers' knobs, :class:`ExplainSettings`;
* :mod:`.explained_function`: a stage output as a function of raw inputs, run by the network's own modules;
* :mod:`.background`: the weighted background and its multiset;
* :mod:`.methods`: the methods, how ``auto`` chooses, measured timings;
* :mod:`.shap_backend`: the shap explainers (and their :func:`warm_up`);
* :mod:`.integrated_gradients`: the ``gradient`` method;
* :mod:`.comparison`: every explainer on one row (teaching).

Latent space: :mod:`.latents` (correlations, active latents, traversals, projections).
The perovskite shortcuts (band gap, PCE) and the rows a stage is analysed on are
in :mod:`nestedae_core.perovskite` (this package knows no chemistry).
"""
from __future__ import annotations

from .api import (
    explain_chain,
    explain_function,
    explain_latents,
    explain_stage_output,
    model_function,
)
from .attribution import Attribution
from .background import weighted_multiset
from .comparison import EXPLAINER_NOTES, explainer_comparison
from .latents import (
    ActiveLatents,
    active_latents,
    factor_recovery,
    latent_correlations,
    latent_traversal,
    pca_projection,
)
from .methods import METHODS
from .settings import ExplainSettings
from .shap_backend import warm_up

__all__ = [
    "EXPLAINER_NOTES",
    "METHODS",
    "Attribution",
    "ExplainSettings",
    "explain_chain",
    "explain_function",
    "explain_latents",
    "explain_stage_output",
    "explainer_comparison",
    "model_function",
    "warm_up",
    "weighted_multiset",
    # latent space (.latents)
    "ActiveLatents",
    "active_latents",
    "factor_recovery",
    "latent_correlations",
    "latent_traversal",
    "pca_projection",
]
