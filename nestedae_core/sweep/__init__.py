"""Training runs over settings: Optuna hyperparameter sweeps, and the latent-size scan.

Sweeps (Optuna): each trial a job, every trial on the same grouped folds.

* :mod:`.space`: :class:`SearchSpace` (what is sampled, as data) and :func:`default_space`.
* :mod:`.objective`: :class:`Objective` (the grouped-fold validation MAE of one target)
  and :func:`cross_validate_on_folds` (folds fixed by the sweep, not by the trial's seed).
* :mod:`.trial`: the ``sweep-trial`` job kind (:func:`run_trial`).
* :mod:`.runner`: :class:`Sweep` (ask / tell as running slots allow), :class:`SweepConfig`.
* :mod:`.storage`: :func:`open_storage` (the job store's SQLite file by default, or any
  SQLAlchemy URL), :func:`list_sweeps`.

The latent-size scan, :mod:`.latent_size` (:func:`latent_size_scan`): one stage's
cross-validated error against its latent size (``latent_size_scan`` job kind).

Example::

    from nestedae_core.sweep import Sweep, SweepConfig
    sweep = Sweep.create(SweepConfig(preset="synthetic", n_trials=8, epochs=200), manager, owner="me")
    sweep.run()
    sweep.best(); sweep.save_best("synthetic-best")
"""
from __future__ import annotations

from .latent_size import ScanRun, latent_size_scan, latent_size_scan_rows, latent_size_scan_runs
from .objective import Objective, cross_validate_on_folds
from .runner import MAX_TRIALS, Sweep, SweepConfig
from .space import ParamSpec, SearchSpace, default_space
from .storage import default_storage_url, list_sweeps, open_storage
from .trial import TRIAL_KIND, run_trial

__all__ = [
    "MAX_TRIALS",
    "Objective",
    "ParamSpec",
    "ScanRun",
    "SearchSpace",
    "Sweep",
    "SweepConfig",
    "TRIAL_KIND",
    "cross_validate_on_folds",
    "default_space",
    "default_storage_url",
    "latent_size_scan",
    "latent_size_scan_rows",
    "latent_size_scan_runs",
    "list_sweeps",
    "open_storage",
    "run_trial",
]
