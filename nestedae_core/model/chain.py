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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .config import ChainSpec
from ..errors import InputError, SchemaError
from .devices import resolve_device
from .domain import DomainModel
from .ceilings import has_ceilings, target_caps, upstream_ceilings
from .intervals import DEFAULT_LEVEL, TargetCalibration, check_level, clip_to_bounds, conformal_interval
from .nn import Members, StageNet
from .preprocessing import StagePreprocessing, as_float_array
from ..threads import limit_cpu_threads

if TYPE_CHECKING:  # a frame may be a DataFrame or a ColumnTable (.columns): one query needs no pandas
    import pandas as pd

__all__ = ["StagePrediction", "NestedAE"]

logger = logging.getLogger(__name__)

#: Frames up to this many rows are predicted on one CPU thread: a second thread's
#: hand-off costs milliseconds per batched product of these small layers (about 8 ms each
#: on a busy 2-core machine, against 0.01 ms on one thread); the numbers are the same.
ONE_THREAD_ROWS = 256


@dataclass
class StagePrediction:
    """Ensemble predictions of one stage for ``n`` rows.

    ``members``: (members, n, n_targets) in target units; ``mean``: (n, n_targets),
    the mean over members (the prediction); ``std`` = ``disagreement``: the
    standard deviation over members (model disagreement, not an interval);
    ``lower``/``upper``: (n, n_targets) the conformal prediction interval at ``level``
    (e.g. 0.9 for 90 %) in target units, clipped to each target's physical range,
    or None when the model has no calibration (fitted on all rows, or an older
    bundle); ``latents``: (members, n, latent_dim); ``domain_distance``/
    ``in_domain``: (n,); ``domain_reason``: per row, "" inside the domain, else a
    sentence naming the stage and why: the inputs beyond the range the stage's
    training rows cover, and/or the distance, the threshold and the nearest
    training row.
    """

    stage: str
    targets: list[str]
    members: np.ndarray
    latents: np.ndarray
    domain_distance: np.ndarray
    in_domain: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    level: float = DEFAULT_LEVEL
    domain_reason: list[str] = field(default_factory=list)
    #: product targets: target index -> (factor target indices, scale)
    products: dict[int, tuple[tuple[int, ...], float]] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        """The prediction (n, n_targets): the mean over members; a product target is the product of its
        factors' predictions (times its scale), so that the reported values obey the product exactly."""
        m = self.members.mean(axis=0)
        for j, (factors, scale) in self.products.items():
            m[:, j] = scale * np.prod(m[:, list(factors)], axis=1)
        return m

    @property
    def std(self) -> np.ndarray:
        return self.members.std(axis=0, ddof=1) if self.members.shape[0] > 1 else np.zeros(self.members.shape[1:])

    @property
    def disagreement(self) -> np.ndarray:
        """The ensemble spread (``std``): how much the fold models disagree, in target units."""
        return self.std

    def frame(self) -> pd.DataFrame:
        """Columns ``<target>_mean``, ``<target>_std`` (and ``<target>_lower``/``_upper`` with intervals), ``in_domain``, ``domain_distance``."""
        import pandas as pd

        cols: dict[str, Any] = {}
        mean, std = self.mean, self.std
        for j, t in enumerate(self.targets):
            cols[f"{t}_mean"] = mean[:, j]
            cols[f"{t}_std"] = std[:, j]
            if self.lower is not None and self.upper is not None:
                cols[f"{t}_lower"] = self.lower[:, j]
                cols[f"{t}_upper"] = self.upper[:, j]
        cols["in_domain"] = self.in_domain
        cols["domain_distance"] = self.domain_distance
        return pd.DataFrame(cols)


@dataclass
class NestedAE:
    """A trained NestedAE chain (an ensemble of ``members`` fold models).

    Build one with :func:`nestedae_core.train.cross_validate`, save and load it
    with :mod:`nestedae_core.store`. ``calibration[stage][target]``: the
    out-of-fold absolute residuals (and their folds) behind the CV+ prediction
    intervals (:mod:`.intervals`); empty for a model fitted on all rows, which
    therefore has no intervals.
    """

    spec: ChainSpec
    nets: list[StageNet]
    prep: list[StagePreprocessing]
    domains: list[DomainModel]
    backgrounds: list[pd.DataFrame] = field(default_factory=list)
    background_weights: list[np.ndarray] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, dict[str, TargetCalibration]] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    # ---------------------------------------------------------------- structure

    @property
    def members(self) -> int:
        """Number of ensemble members (= folds)."""
        return self.nets[0].members if self.nets else self.spec.folds

    @property
    def has_intervals(self) -> bool:
        """Whether predictions come with prediction intervals (the model holds out-of-fold residuals)."""
        return any(self.calibration.values())

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

    def residual_pairs(self, stage: int | str) -> list[tuple[int, int]]:
        """(target index of this stage, target index of the previous stage) of each residual target (see ResidualSpec)."""
        i = self.stage_index(stage)
        st = self.spec.stages[i]
        if not st.residual:
            return []
        up = self.spec.stages[i - 1].target_columns
        return [(st.target_columns.index(r.target), up.index(r.upstream_target)) for r in st.residual]

    def residual_offsets(self, stage: int | str, upstream_latents: np.ndarray | torch.Tensor | None, *,
                         upstream_members: np.ndarray | None = None) -> np.ndarray | None:
        """What a stage's residual targets are corrections on: (members, rows, n_targets) in target units, or None.

        ``upstream_latents`` (members, rows, L): the previous stage's latents on the
        rows; each member's offset is that member's previous-stage prediction of the
        ``upstream_target``; zero for targets that are not residual. ``upstream_members``:
        the previous stage's predictions on the rows when already made (its
        :attr:`StagePrediction.members`), taken as they are when that stage has neither
        residual targets nor ceilings (then they are what its network gives).
        """
        i = self.stage_index(stage)
        pairs = self.residual_pairs(i)
        if not pairs:
            return None
        if upstream_members is not None and self._plain_stage(i - 1):
            y_up = np.asarray(upstream_members, dtype=np.float64)
        else:
            z = torch.as_tensor(upstream_latents, dtype=torch.float32, device=self.device)
            with torch.no_grad():
                net = self.nets[i - 1].eval()
                y_up = net.target_units(net.predict_from_latent(z).double()).cpu().numpy()
        out = np.zeros(y_up.shape[:2] + (len(self.spec.stages[i].targets),))
        for j, ju in pairs:
            out[..., j] = y_up[..., ju]
        return out

    def _plain_stage(self, i: int) -> bool:
        """Whether stage ``i``'s predictions are its network's output as it is (no residual offsets, no ceilings)."""
        return i >= 0 and not self.spec.stages[i].residual and not has_ceilings(self.spec.stages[i])

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
    def predict_stage(self, stage: int | str, frame: pd.DataFrame, *, level: float = DEFAULT_LEVEL,
                      upstream_latents: np.ndarray | None = None, offset_latents: np.ndarray | None = None,
                      own_limits: bool = False, upstream_members: np.ndarray | None = None,
                      offset_members: np.ndarray | None = None) -> StagePrediction:
        """Ensemble predictions of one stage for the rows of ``frame`` (raw columns).

        Targets are in their units, with their physical bounds built in (see
        :class:`~nestedae_core.model.nn.StageNet`); ``level`` (0 < level < 1) is the
        level of the prediction intervals (present when the model is calibrated).
        ``upstream_latents`` (members, rows, L): the upstream stage's latents on
        ``frame`` when already computed (e.g. its :attr:`StagePrediction.latents`);
        otherwise they are computed from ``frame``. ``offset_latents``: the latents of the stage before that, when
        already computed (they give the upstream residuals' offsets, :meth:`upstream_offsets`). ``own_limits``: each
        member's ceilings at its own upstream member's prediction, as in training (default: every member at the
        ensemble-mean upstream prediction, the value the prediction reports). ``upstream_members`` /
        ``offset_members``: the predictions (:attr:`StagePrediction.members`) of the stage before / two before, when
        already made: what the residual offsets and the ceilings take from those stages is then not computed again.
        """
        level = check_level(level)
        i = self.stage_index(stage)
        st, net = self.spec.stages[i], self.nets[i].eval()
        if (st.residual or has_ceilings(st)) and upstream_latents is None:
            upstream_latents = self.latents(i - 1, frame)
        x = self.design_tensor(i, frame, upstream_latents=upstream_latents)
        z = net.encode(x)
        offsets = self.upstream_offsets(i, frame, latents=offset_latents, members=offset_members)
        ceilings = self.ceilings(i, upstream_latents, pool=not own_limits, upstream_offsets=offsets, upstream_members=upstream_members)
        y = net.target_units(net.predict_from_latent(z).double(), ceilings=ceilings).cpu().numpy()
        if st.residual:  # residual targets: corrections on the previous stage's predictions
            y = y + self.residual_offsets(i, upstream_latents, upstream_members=upstream_members)
        caps = target_caps(st, None if ceilings is None else ceilings[0].cpu().numpy(), (len(frame),))
        dom = self.domains[i]
        values = self.domain_values(i, frame, x)
        dist, nearest = dom.nearest(values)
        lower, upper = self.intervals(i, y, level, caps=caps, distance=dist)
        uncovered = dom.uncovered(values)
        inside = (dist <= dom.threshold) & np.array([not u for u in uncovered], dtype=bool)
        reasons = [""] * len(frame)  # a row inside has no reason
        for r in np.flatnonzero(~inside).tolist():
            reasons[r] = dom.reason(st.name, float(dist[r]), int(nearest[r]), uncovered[r], st.dataset)
        cols = st.target_columns
        products = {j: (tuple(cols.index(f) for f in t.product.factors), t.product.scale) for j, t in enumerate(st.targets) if t.product is not None}
        return StagePrediction(st.name, cols, y, z.double().cpu().numpy(), dist, inside, lower, upper, level, reasons, products)

    def upstream_offsets(self, stage: int | str, frame: pd.DataFrame, *, latents: np.ndarray | None = None,
                         members: np.ndarray | None = None) -> np.ndarray | None:
        """What the previous stage's residual targets correct on the rows of ``frame`` (members, rows, its n_targets),
        when stage ``stage`` has ceilings of them (see :meth:`ceilings`); None otherwise. ``latents``: the latents of
        the stage two before on ``frame``, when already computed (else computed from ``frame``); ``members``: that
        stage's predictions, when already made (see :meth:`residual_offsets`)."""
        i = self.stage_index(stage)
        if i < 1 or not has_ceilings(self.spec.stages[i]) or not self.spec.stages[i - 1].residual:
            return None
        if members is not None and self._plain_stage(i - 2):
            return self.residual_offsets(i - 1, None, upstream_members=members)
        return self.residual_offsets(i - 1, self.latents(i - 2, frame) if latents is None else latents)

    def ceilings(self, stage: int | str, upstream_latents: np.ndarray | torch.Tensor | None, *, pool: bool,
                 members: Members = None, upstream_offsets: np.ndarray | torch.Tensor | None = None,
                 upstream_members: np.ndarray | None = None) -> torch.Tensor | None:
        """Limits of a stage's targets (members, rows, n_targets), float64, from the upstream stage's latents
        (see :func:`~nestedae_core.model.ceilings.upstream_ceilings`); None when no target has a ceiling.

        ``upstream_latents``: (members, rows, L) of the previous stage (only the
        ``members`` selected, when given); the previous stage's network predicts its
        targets from them. ``pool``: every member gets the limit at the ensemble-mean
        upstream prediction (as predictions report), else each member its own.
        ``upstream_offsets``: when the previous stage has residual targets, what they
        correct on the rows (:meth:`upstream_offsets`; the same members as
        ``upstream_latents``): the limits are taken at the previous stage's full
        prediction (its correction plus the offset), as its predictions report.
        ``upstream_members``: the previous stage's predictions (all members), when already
        made and that stage has no ceilings of its own: they are that full prediction.
        """
        i = self.stage_index(stage)
        st = self.spec.stages[i]
        if not has_ceilings(st):
            return None
        if upstream_latents is None:
            raise InputError(f"stage '{st.name}' needs the latents of stage '{self.spec.stages[i - 1].name}' for its ceilings")
        if upstream_members is not None and members is None and not has_ceilings(self.spec.stages[i - 1]):
            values = torch.as_tensor(upstream_members, dtype=torch.float64, device=self.device)
            return upstream_ceilings(st, self.spec.stages[i - 1].target_columns, values, pool=pool)
        up = self.nets[i - 1]
        z = torch.as_tensor(upstream_latents, device=self.device)
        dtype = next(up.parameters()).dtype
        values = up.target_units(up.predict_from_latent(z.to(dtype), members).double(), members)
        if self.spec.stages[i - 1].residual:
            if upstream_offsets is None:
                raise InputError(f"stage '{st.name}' needs the residual offsets of stage '{self.spec.stages[i - 1].name}' for its ceilings")
            values = values + torch.as_tensor(upstream_offsets, dtype=values.dtype, device=values.device)
        return upstream_ceilings(st, self.spec.stages[i - 1].target_columns, values, pool=pool)

    def intervals(self, stage: int | str, members: np.ndarray, level: float = DEFAULT_LEVEL,
                  caps: np.ndarray | None = None, distance: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Conformal prediction intervals (lower, upper), each (n, n_targets) in target units, from every member's predictions.

        ``members``: (members, n, n_targets) in target units; ``caps``: (n, n_targets)
        the upper end of each target's range (:func:`~nestedae_core.model.ceilings.target_caps`;
        needed by targets calibrated in the logit space, whose intervals lie inside
        (0, cap) by construction); ``distance``: (n,) each row's distance to the stage's nearest training
        row (:meth:`DomainModel.nearest`; needed by distance-scaled targets). A target calibrated in its units has its interval
        clipped to its physical range (and to its cap, when ``caps`` are given); a target without calibration gets NaN;
        (None, None) when the stage has no calibration at all.
        """
        i = self.stage_index(stage)
        st = self.spec.stages[i]
        cal = self.calibration.get(st.name, {})
        if not cal:
            return None, None
        n = members.shape[1]
        lower, upper = np.full((n, len(st.targets)), np.nan), np.full((n, len(st.targets)), np.nan)
        for j, t in enumerate(st.targets):
            if t.column in cal:
                c = cal[t.column]
                if c.distance_coef is not None and distance is None:
                    continue  # no distances given: this target's interval stays NaN
                lo, hi = conformal_interval(members[:, :, j], c, level, None if caps is None else caps[:, j], distance)
                lower[:, j], upper[:, j] = clip_to_bounds(lo, hi, t.bounds) if c.transform == "identity" else (lo, hi)
                if c.transform == "identity" and caps is not None:  # a capped target calibrated in its units: at most its cap
                    upper[:, j] = np.minimum(upper[:, j], caps[:, j])
                    lower[:, j] = np.minimum(lower[:, j], upper[:, j])
        return lower, upper

    def domain_values(self, stage: int, frame: pd.DataFrame, x: torch.Tensor | None = None) -> np.ndarray:
        """Values in the domain model's space: ensemble-mean upstream latents and numeric inputs (raw units)."""
        p = self.prep[stage]
        if x is None:
            x = self.design_tensor(stage, frame)
        cont = x[..., : p.layout.n_continuous].double().cpu().numpy()
        cont = cont * p.cont_scale[:, None, :] + p.cont_mean[:, None, :]
        return cont.mean(axis=0)

    def predict(self, frame: pd.DataFrame, *, level: float = DEFAULT_LEVEL) -> dict[str, StagePrediction]:
        """Predictions of every stage whose raw inputs are all in ``frame``, with intervals at ``level``.

        Each stage is encoded once: a stage's latents are fed to the next stage
        (never recomputed from the raw inputs inside it).
        """
        level = check_level(level)
        if self.device.type == "cpu" and len(frame) <= ONE_THREAD_ROWS and torch.get_num_threads() > 1:
            with limit_cpu_threads(1, other_pools=False):
                return self.predict(frame, level=level)
        out: dict[str, StagePrediction] = {}
        for i, name in enumerate(self.stage_names):
            if all(c in frame.columns for c in self.raw_columns(i)):
                upstream = out.get(self.stage_names[i - 1]) if i > 0 and self.spec.stages[i].upstream else None
                before = out.get(self.stage_names[i - 2]) if i > 1 and upstream is not None else None
                out[name] = self.predict_stage(i, frame, level=level,
                                               upstream_latents=None if upstream is None else upstream.latents,
                                               offset_latents=None if before is None else before.latents,
                                               upstream_members=None if upstream is None else upstream.members,
                                               offset_members=None if before is None else before.members)
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
        """A small name -> value table describing the model (for CLI and dashboard; :func:`.summary.chain_summary`)."""
        from .summary import chain_summary

        scaled = [c for cal in self.calibration.values() for c in cal.values()]
        if not self.has_intervals:
            intervals = None
        elif any(c.distance_coef is not None for c in scaled):
            intervals = "scaled"
        else:
            intervals = "normalised" if any(c.normalised for c in scaled) else "plain"
        return chain_summary(self.spec, self.record, self.metrics, members=self.members, intervals=intervals)
