"""The trained NestedAE chain: preprocessing, networks and prediction.

A :class:`NestedAE` holds, for each stage of a :class:`~nestedae_core.model.config.ChainSpec`,
the fitted :class:`StagePreprocessing`, the :class:`~nestedae_core.model.nn.StageNet`
(with one member per cross-validation fold: the ensemble), a
:class:`DomainModel` (is a query inside the training domain?) and a background
summary of the training inputs (for attributions).

Stage ``k`` consumes the latents that stage ``k-1`` computes on stage ``k``'s rows,
so each stage's *raw* inputs (:meth:`NestedAE.raw_columns`) include every
upstream stage's raw inputs. Member ``m`` of stage ``k`` always uses member ``m``
of stage ``k-1``: each fold model is a complete chain.

Units: predictions are in the units of the target columns (e.g. band gap in eV,
PCE in %), latents are dimensionless (tanh range by default).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import ChainSpec
from ..errors import InputError, SchemaError
from .devices import resolve_device
from .domain import DomainModel
from .nn import StageNet
from .preprocessing import StagePreprocessing, as_float_array

__all__ = ["StagePrediction", "NestedAE"]

logger = logging.getLogger(__name__)


@dataclass
class StagePrediction:
    """Ensemble predictions of one stage for ``n`` rows.

    ``members``: (members, n, n_targets) in target units; ``mean``/``std``: (n, n_targets),
    mean and standard deviation over members (the uncertainty); ``latents``:
    (members, n, latent_dim); ``domain_distance``/``in_domain``: (n,).
    """

    stage: str
    targets: list[str]
    members: np.ndarray
    latents: np.ndarray
    domain_distance: np.ndarray
    in_domain: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        return self.members.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.members.std(axis=0, ddof=1) if self.members.shape[0] > 1 else np.zeros(self.members.shape[1:])

    def frame(self) -> pd.DataFrame:
        """Mean and std of each target as columns ``<target>_mean``, ``<target>_std``, plus ``in_domain``."""
        cols: dict[str, Any] = {}
        for j, t in enumerate(self.targets):
            cols[f"{t}_mean"] = self.mean[:, j]
            cols[f"{t}_std"] = self.std[:, j]
        cols["in_domain"] = self.in_domain
        cols["domain_distance"] = self.domain_distance
        return pd.DataFrame(cols)


@dataclass
class NestedAE:
    """A trained NestedAE chain (an ensemble of ``members`` fold models).

    Build one with :func:`nestedae_core.train.cross_validate`, save and load it
    with :mod:`nestedae_core.store`.
    """

    spec: ChainSpec
    nets: list[StageNet]
    prep: list[StagePreprocessing]
    domains: list[DomainModel]
    backgrounds: list[pd.DataFrame] = field(default_factory=list)
    background_weights: list[np.ndarray] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    # ---------------------------------------------------------------- structure

    @property
    def members(self) -> int:
        """Number of ensemble members (= folds)."""
        return self.nets[0].members if self.nets else self.spec.folds

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.spec.stages]

    def stage_index(self, stage: int | str) -> int:
        """Index of a stage given by index or name (InputError if unknown)."""
        if isinstance(stage, int):
            if not 0 <= stage < len(self.spec.stages):
                raise InputError(f"stage index {stage} out of range 0..{len(self.spec.stages) - 1}")
            return stage
        if stage not in self.stage_names:
            raise InputError(f"unknown stage '{stage}'; stages: {', '.join(self.stage_names)}")
        return self.stage_names.index(stage)

    def latent_names(self, stage: int | str) -> list[str]:
        """Names of a stage's latents: ``<stage>.z1`` ... (1-based)."""
        i = self.stage_index(stage)
        return [f"{self.spec.stages[i].name}.z{j + 1}" for j in range(self.spec.stages[i].latent_dim)]

    def raw_columns(self, stage: int | str) -> list[str]:
        """Raw table columns a stage needs, upstream stages' inputs first (no duplicates)."""
        i = self.stage_index(stage)
        cols: list[str] = self.raw_columns(i - 1) if self.spec.stages[i].upstream else []
        for c in self.prep[i].numeric_columns + self.prep[i].categorical_columns:
            if c not in cols:
                cols.append(c)
        return cols

    def input_names(self, stage: int | str) -> list[str]:
        """Names of a stage's model inputs: upstream latents, numeric inputs, categorical inputs."""
        i = self.stage_index(stage)
        up = self.latent_names(i - 1) if self.spec.stages[i].upstream else []
        return up + self.prep[i].numeric_columns + self.prep[i].categorical_columns

    def to(self, device: str | torch.device) -> "NestedAE":
        """Move the networks to a device (``auto``, ``cpu``, ``cuda``, ``mps``); returns self."""
        dev = resolve_device(device) if isinstance(device, str) else device
        for net in self.nets:
            net.to(dev)
        self.device = dev
        return self

    # ---------------------------------------------------------------- tensors

    def design_tensor(self, stage: int, frame: pd.DataFrame, upstream_latents: np.ndarray | None = None) -> torch.Tensor:
        """Standardised model input of a stage for every member: (members, rows, width).

        ``upstream_latents`` (members, rows, L) may be passed when already computed;
        otherwise they are computed from ``frame``.
        """
        p = self.prep[stage]
        n = len(frame)
        parts = []
        if p.n_upstream:
            if upstream_latents is None:
                upstream_latents = self.latents(stage - 1, frame)
            parts.append(upstream_latents)
        if p.numeric_columns:
            num = as_float_array(frame, p.numeric_columns, f"stage '{self.spec.stages[stage].name}'")
            if not np.isfinite(num).all():
                bad = [c for c, ok in zip(p.numeric_columns, np.isfinite(num).all(axis=0)) if not ok]
                raise InputError(f"non-finite values in input column(s) {', '.join(bad)}")
            parts.append(np.broadcast_to(num, (self.members, n, num.shape[1])))
        cont = np.concatenate(parts, axis=-1) if parts else np.zeros((self.members, n, 0))
        cont = (cont - p.cont_mean[:, None, :]) / p.cont_scale[:, None, :]
        oh = p.one_hot(frame)
        x = np.concatenate([cont, np.broadcast_to(oh, (self.members, n, oh.shape[1]))], axis=-1)
        return torch.as_tensor(x, dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def latents(self, stage: int | str, frame: pd.DataFrame) -> np.ndarray:
        """Latents of a stage for every member: (members, rows, latent_dim)."""
        i = self.stage_index(stage)
        net = self.nets[i].eval()
        return net.encode(self.design_tensor(i, frame)).double().cpu().numpy()

    @torch.no_grad()
    def predict_stage(self, stage: int | str, frame: pd.DataFrame) -> StagePrediction:
        """Ensemble predictions of one stage for the rows of ``frame`` (raw columns)."""
        i = self.stage_index(stage)
        p, net = self.prep[i], self.nets[i].eval()
        x = self.design_tensor(i, frame)
        z = net.encode(x)
        y = net.predict_from_latent(z).double().cpu().numpy()
        y = y * p.target_scale[:, None, :] + p.target_mean[:, None, :]
        dist = self.domains[i].distance(self.domain_values(i, frame, x))
        return StagePrediction(self.spec.stages[i].name, p.target_columns, y, z.double().cpu().numpy(), dist, dist <= self.domains[i].threshold)

    def domain_values(self, stage: int, frame: pd.DataFrame, x: torch.Tensor | None = None) -> np.ndarray:
        """Values in the domain model's space: ensemble-mean upstream latents and numeric inputs (raw units)."""
        p = self.prep[stage]
        if x is None:
            x = self.design_tensor(stage, frame)
        cont = x[..., : p.layout.n_continuous].double().cpu().numpy()
        cont = cont * p.cont_scale[:, None, :] + p.cont_mean[:, None, :]
        return cont.mean(axis=0)

    def predict(self, frame: pd.DataFrame) -> dict[str, StagePrediction]:
        """Predictions of every stage whose raw inputs are all in ``frame``."""
        out = {}
        for i, name in enumerate(self.stage_names):
            if all(c in frame.columns for c in self.raw_columns(i)):
                out[name] = self.predict_stage(i, frame)
        if not out:
            raise SchemaError(f"the table has none of the input sets of this model; stage 1 needs {', '.join(self.raw_columns(0))}")
        return out

    # ---------------------------------------------------------------- categorical inputs

    def categories(self, column: str) -> list[str]:
        """Known values of a categorical input (sorted); see :meth:`default_category`."""
        for p in self.prep:
            if column in p.categorical_columns:
                return list(p.categories[p.categorical_columns.index(column)])
        raise InputError(f"this model has no categorical input '{column}'")

    def default_category(self, column: str) -> str:
        """Most common training value of a categorical input."""
        for p in self.prep:
            if column in p.categorical_columns:
                return p.default_categories[p.categorical_columns.index(column)]
        raise InputError(f"this model has no categorical input '{column}'")

    def summary(self) -> dict[str, str]:
        """A small name -> value table describing the model (for CLI and dashboard)."""
        out = {"name": self.record.get("name", self.spec.name), "preset": self.spec.name, "stages": " -> ".join(self.stage_names)}
        out["ensemble members"] = str(self.members)
        if self.record.get("fit", {}).get("rows") == "all":
            out["split"] = "none: every member trained on all rows (no validation metrics)"
        else:
            out["split"] = f"{self.spec.folds}-fold {self.spec.split}"
        for st in self.spec.stages:
            for t in st.targets:
                m = self.metrics.get(st.name, {}).get(t.column, {})
                if "mae" in m:
                    out[f"{st.name}: {t.label or t.column} MAE"] = f"{m['mae']:.3f} ± {m.get('mae_std', 0.0):.3f} {t.unit}".strip()
        if "created" in self.record:
            out["trained"] = str(self.record["created"])
        return out
