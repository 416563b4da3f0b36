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

from .cross_validation import TrainResult, cross_validate
from .fit_all import fit
from .folds import make_folds
from .metrics import regression_metrics, summarize_folds
from .progress import ProgressCallback, ProgressEvent, TrainingCancelled

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
