"""Training: cross-validation and the all-rows fit (background jobs: :mod:`nestedae_core.jobs`).

* :mod:`.cross_validation`: :func:`cross_validate` (k folds; the fold models form the ensemble).
* :mod:`.fit_all`: :func:`fit` (every member trains on all rows).
* :mod:`.stages`: the per-stage steps both share (preprocessing, stage data, fit,
  predictions, domain and background).
* :mod:`.loop`: the optimisation loop of one stage; :mod:`.losses`: its loss.
* :mod:`.folds`: :func:`make_folds`; :mod:`.metrics`: :func:`regression_metrics`,
  :func:`summarize_folds`.
* :mod:`.background`: the attribution background (a k-means summary of a stage's inputs).
* :mod:`.record`: the run record (versions, device, dataset checksums).
* :mod:`.progress`: :class:`ProgressEvent`, :class:`TrainingCancelled`.
"""
from __future__ import annotations

from ..lazy import lazy_exports

#: Public name -> submodule that defines it, imported on first use: :mod:`.tables` (the
#: check of a stage's table, used by the data layer) loads without torch.
_LAZY: dict[str, str] = {
    "TrainResult": "cross_validation",
    "cross_validate": "cross_validation",
    "fit": "fit_all",
    "make_folds": "folds",
    "regression_metrics": "metrics",
    "summarize_folds": "metrics",
    "ProgressCallback": "progress",
    "ProgressEvent": "progress",
    "TrainingCancelled": "progress",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "TrainingCancelled",
    "TrainResult",
    "cross_validate",
    "fit",
    "make_folds",
    "regression_metrics",
    "summarize_folds",
]
