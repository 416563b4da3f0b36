"""Training: folds and metrics, the fit loop, k-fold cross-validation, and the job manager.

* :mod:`.cross_validation`: :func:`cross_validate` (the k fold models form the ensemble).
* :mod:`.jobs`: a queue of training jobs with progress, cancellation and saving.
"""
from __future__ import annotations

from .cross_validation import (
    ProgressEvent,
    TrainingCancelled,
    TrainResult,
    cross_validate,
    make_folds,
    regression_metrics,
    summarize_folds,
)

__all__ = [
    "ProgressEvent",
    "TrainingCancelled",
    "TrainResult",
    "cross_validate",
    "make_folds",
    "regression_metrics",
    "summarize_folds",
]
