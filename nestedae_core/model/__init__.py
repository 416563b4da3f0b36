"""The nested-autoencoder chain, independent of any materials domain.

Nothing here imports the perovskite layer (:mod:`nestedae_core.perovskite`: presets,
band-gap fidelity); ``lint-imports`` checks it.

* :mod:`.config`: :class:`StageSpec` / :class:`ChainSpec` (configuration as data).
* :mod:`.nn`: ensemble-batched layers and :class:`StageNet` (one stage's network).
* :mod:`.preprocessing`: a stage's fitted standardisation and one-hot encoding.
* :mod:`.domain`: a stage's applicability domain.
* :mod:`.intervals`: CV+ prediction intervals from out-of-fold residuals (optionally in the
  logit space of value over its limit, and normalised by the fold models' disagreement).
* :mod:`.ceilings`: limits of a target as registered functions of an upstream prediction
  (e.g. the Shockley-Queisser Jsc of the predicted gap), and product targets' caps.
* :mod:`.chain`: :class:`NestedAE`, the trained chain, and its predictions.
* :mod:`.devices`: compute devices (CPU, CUDA, MPS).
"""
from __future__ import annotations

from ..lazy import lazy_exports

#: Public name -> submodule that defines it, imported on first use: the configuration
#: (:mod:`.config`) and the intervals load without torch (a dashboard page that shows a
#: chain's layout needs no network).
_LAZY: dict[str, str] = {
    "NestedAE": "chain",
    "StagePrediction": "chain",
    "ChainSpec": "config",
    "ResidualSpec": "config",
    "StageSpec": "config",
    "TargetSpec": "config",
    "load_chain_spec": "config",
    "available_devices": "devices",
    "resolve_device": "devices",
    "DomainModel": "domain",
    "DEFAULT_LEVEL": "intervals",
    "TargetCalibration": "intervals",
    "StagePreprocessing": "preprocessing",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "NestedAE",
    "StagePrediction",
    "ChainSpec",
    "ResidualSpec",
    "StageSpec",
    "TargetSpec",
    "load_chain_spec",
    "DEFAULT_LEVEL",
    "TargetCalibration",
    "available_devices",
    "resolve_device",
    "DomainModel",
    "StagePreprocessing",
]
