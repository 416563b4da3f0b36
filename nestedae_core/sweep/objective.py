"""The objective of a sweep: the grouped-split validation error of one target.

Every trial is cross-validated on the **same folds**: they are made with the
sweep's ``fold_seed`` (:func:`~nestedae_core.train.make_folds`, grouped split)
whatever training seed the trial samples, so trial values differ only by the
hyperparameters and the training seed, never by which rows were held out.
The value is the mean over the validation folds of the target's MAE, in the
target's unit (e.g. eV for a band gap, % for PCE).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from .. import perovskite  # noqa: F401  (registers the registry datasets as the training tables)
from ..errors import ConfigError
from ..model.config import ChainSpec
from ..train.cross_validation import TrainResult, cross_validate
from ..train.progress import ProgressCallback

__all__ = ["Objective", "cross_validate_on_folds"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Objective:
    """Which validation error a sweep minimises: ``target`` of ``stage`` (mean fold MAE, target's unit)."""

    stage: str
    target: str

    @classmethod
    def for_spec(cls, spec: ChainSpec, stage: str | None = None, target: str | None = None) -> "Objective":
        """The objective on ``spec``: by default the last stage's first target; raises :class:`ConfigError`."""
        names = [s.name for s in spec.stages]
        st_name = stage or names[-1]
        if st_name not in names:
            raise ConfigError(f"no stage '{st_name}' to optimise; stages: {', '.join(names)}")
        st = spec.stages[names.index(st_name)]
        columns = st.target_columns
        tgt = target or columns[0]
        if tgt not in columns:
            raise ConfigError(f"stage '{st_name}' has no target '{tgt}'; targets: {', '.join(columns)}")
        return cls(stage=st_name, target=tgt)

    def value(self, result: TrainResult) -> float:
        """Mean validation-fold MAE of the target in ``result`` (the target's unit)."""
        return float(result.metrics[self.stage][self.target]["mae"])

    def fold_values(self, result: TrainResult) -> list[float]:
        """The target's MAE on each validation fold."""
        return [float(f["mae"]) for f in result.metrics[self.stage][self.target]["folds"]]

    def label(self, spec: ChainSpec) -> str:
        """Human name, e.g. ``'devices: PCE (%) MAE, grouped folds'``."""
        st = next(s for s in spec.stages if s.name == self.stage)
        t = next(t for t in st.targets if t.column == self.target)
        return f"{self.stage}: {t.display} MAE, grouped folds"


def cross_validate_on_folds(
    spec: ChainSpec,
    fold_seed: int,
    tables: Mapping[str, pd.DataFrame] | None = None,
    *,
    data_dir: str | None = None,
    device: str = "cpu",
    callback: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Like :func:`~nestedae_core.train.cross_validate` but with folds made from ``fold_seed``, not ``spec.seed``.

    The weights, batches and early-stopping rows still follow ``spec.seed``. The
    returned model's record names both seeds (``seed``, ``fold_seed``).
    """
    return cross_validate(spec, tables, data_dir=data_dir, device=device, callback=callback,
                          should_stop=should_stop, download=False, fold_seed=int(fold_seed))
