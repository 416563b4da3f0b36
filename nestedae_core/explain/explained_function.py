"""The explained function: a stage output of a trained chain as ``f(X) -> outputs``.

Every explanation is a plain callable ``f(X) -> outputs`` over a matrix ``X`` of
*raw* inputs (one column per feature), handed to the :mod:`shap` explainers:

* numeric columns hold values in their own units (descriptors: Å, u, eV, ...);
* a categorical input (e.g. ``ETL_stack_sequence``) is ONE column holding the
  category index (see :attr:`~nestedae_core.explain.Attribution.categories`);
  ``f`` turns it into the model's one-hot block, so a device stack gets one
  attribution, not one per category;
* upstream latents (``materials.z1`` ...), when a stage's own inputs are
  explained, are one column each holding a *source-row index* into a table of
  per-member latent values (the explained rows and the background rows). Each
  fold model has its own stage-1 latents, so a latent "value" is a vector over
  members; the index lets one masked matrix carry it.
  :attr:`~nestedae_core.explain.Attribution.data` shows the latent values
  themselves (the member's, or the ensemble mean). When the upstream stage has
  residual targets and the explained stage has ceilings of them (the measured
  chain: device limits at the film's gap = DFT gap + film correction), what those
  residuals correct is kept per source row too and follows the latents
  (:data:`UPSTREAM_OFFSETS`).

``f`` runs the network's own modules, the forward pass of the predictions
(:meth:`StageNet.encode <nestedae_core.model.nn.StageNet.encode>`,
:meth:`~nestedae_core.model.nn.StageNet.predict_from_latent` and
:meth:`~nestedae_core.model.nn.StageNet.target_units`), in evaluation
mode (no dropout), on the explained fold model (``members`` slice) or all of
them. It builds the stage's design input itself, differentiably: raw continuous
values standardised with the stage's
:class:`~nestedae_core.model.preprocessing.StagePreprocessing`, one-hot blocks
(or relaxed one-hot vectors along an integrated-gradients path) for the
categoricals, and per-member upstream latents.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..errors import InputError, SchemaError
from ..model.ceilings import has_ceilings, upstream_ceilings
from ..model.chain import NestedAE
from .settings import ExplainSettings

__all__ = ["ExplainedFunction", "Feature", "InputSpace", "UPSTREAM_OFFSETS"]

#: Key of :meth:`ExplainedFunction.tensors` holding the upstream residual offsets (inputs ``stage`` only; not a feature).
UPSTREAM_OFFSETS = "\x00upstream offsets"

#: ``stage``: a stage's own inputs; ``chain``: the raw inputs of every stage up to it.
InputSpace = Literal["stage", "chain"]


@dataclass(frozen=True)
class Feature:
    """One column of the explained matrix.

    ``kind``: ``numeric`` (raw value), ``categorical`` (category index into
    ``categories``) or ``latent`` (source-row index; ``index`` is the latent's
    position in the upstream latent vector).
    """

    name: str
    kind: Literal["numeric", "categorical", "latent"]
    categories: tuple[str, ...] = ()
    index: int = -1


class _StageRunner:
    """One stage run by its own network on raw values: standardisation, one-hot
    blocks, then ``StageNet.encode`` / ``predict_from_latent`` of the selected members."""

    def __init__(self, model: NestedAE, stage: int, members: slice, dtype: torch.dtype) -> None:
        p = model.prep[stage]
        net = model.nets[stage].eval()  # evaluation mode: dropout is the identity
        if next(net.parameters()).dtype != dtype:  # float64: a double copy of the weights
            net = copy.deepcopy(net).to(dtype).requires_grad_(False)
        self.net, self.members, self.dtype = net, members, dtype
        self.device = model.device
        self.numeric = list(p.numeric_columns)
        self.categorical = list(p.categorical_columns)
        self.n_categories = [len(c) for c in p.categories]
        self.n_upstream = p.n_upstream

        def per_member(a: np.ndarray) -> torch.Tensor:  # (M, k) -> (Ms, 1, k)
            return torch.as_tensor(a[members], dtype=dtype, device=self.device)[:, None, :]

        self.cont_mean, self.cont_scale = per_member(p.cont_mean), per_member(p.cont_scale)
        # row c of an identity matrix is the one-hot vector of category c
        self.one_hot = [torch.eye(n, dtype=dtype, device=self.device) for n in self.n_categories]

    def design(self, up: torch.Tensor | None, num: torch.Tensor | None, cats: list[torch.Tensor]) -> torch.Tensor:
        """The stage's model input (Ms, n, width), as :meth:`NestedAE.design_tensor` builds it.

        ``up``: (Ms, n, L_up) raw upstream latents; ``num``: (n, k) raw values;
        ``cats``: per categorical input, codes (n,) long or relaxed one-hot (n, C).
        """
        Ms = self.cont_mean.shape[0]
        cont = up if self.n_upstream else None
        if self.numeric:
            assert num is not None
            cont = num if cont is None else torch.cat([cont, num.expand(Ms, -1, -1)], dim=-1)
        # standardised per member ((n, k) numeric values broadcast over the members)
        parts = [] if cont is None else [(cont - self.cont_mean) / self.cont_scale]
        for c, eye in zip(cats, self.one_hot):
            parts.append((eye[c] if c.dtype == torch.long else c).expand(Ms, -1, -1))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def encode(self, up: torch.Tensor | None, num: torch.Tensor | None, cats: list[torch.Tensor]) -> torch.Tensor:
        """Latents (Ms, n, L) from raw values (see :meth:`design`)."""
        return self.net.encode(self.design(up, num, cats), self.members)

    def targets(self, z: torch.Tensor, ceilings: torch.Tensor | None = None) -> torch.Tensor:
        """Target predictions (Ms, n, T) in the targets' units (the network's own link: bounds built in;
        ``ceilings`` for a stage with ceiling targets, see :func:`~nestedae_core.model.ceilings.upstream_ceilings`)."""
        return self.net.target_units(self.net.predict_from_latent(z, self.members), self.members, ceilings)


class ExplainedFunction:
    """The explained function: stage ``stage``'s outputs over a feature space.

    ``inputs='chain'``: features are the raw columns of stages 0..stage, evaluation
    runs every stage; ``inputs='stage'``: features are the stage's own inputs
    (upstream latents, numeric, categorical), evaluation runs that stage only.
    ``outputs``: ``(kind, index)`` pairs, kind ``target`` or ``latent``.
    ``member``: a fold model, or None for the ensemble mean. Calling the object
    maps an (N, F) matrix (see the module docstring) to (N,) or (N, K) outputs
    in their units.
    """

    def __init__(
        self,
        model: NestedAE,
        stage: int,
        inputs: InputSpace,
        outputs: list[tuple[str, int]],
        member: int | None,
        settings: ExplainSettings,
    ) -> None:
        self.model, self.stage, self.settings = model, stage, settings
        self.dtype = settings.torch_dtype
        self.device = model.device
        if member is not None and not 0 <= member < model.members:
            raise InputError(f"member {member} out of range 0..{model.members - 1}")
        self.member = member
        members = slice(None) if member is None else slice(member, member + 1)
        self.outputs = outputs
        self.stages = [_StageRunner(model, s, members, self.dtype) for s in range(stage + 1)]
        upstream = model.spec.stages[stage].upstream
        # evaluation mode: a stage without upstream latents is its own chain
        self.mode: InputSpace = "chain" if stage == 0 or not upstream else inputs
        self.inputs: InputSpace = inputs
        cat_cols = self._categorical_columns(stage)
        feats: list[Feature] = []
        if self.mode == "chain":
            for c in model.raw_columns(stage):
                feats.append(Feature(c, "categorical", cat_cols[c]) if c in cat_cols else Feature(c, "numeric"))
        else:
            p = model.prep[stage]
            feats += [Feature(n, "latent", index=k) for k, n in enumerate(model.latent_names(stage - 1))]
            feats += [Feature(c, "numeric") for c in p.numeric_columns]
            feats += [Feature(c, "categorical", tuple(cats)) for c, cats in zip(p.categorical_columns, p.categories)]
        self.features = feats
        self.names = [f.name for f in feats]
        self.latent_cols = [j for j, f in enumerate(feats) if f.kind == "latent"]
        # latent source table (Ms, S, L_up): background rows first, then explained rows
        self.sources: torch.Tensor | None = None
        # what the upstream stage's residual targets correct on the same source rows (Ms, S, T_up), when the
        # explained stage's ceilings need them (see _needs_upstream_offsets)
        self.source_offsets: torch.Tensor | None = None

    def _categorical_columns(self, upto: int) -> dict[str, tuple[str, ...]]:
        return {c: tuple(cats) for p in self.model.prep[: upto + 1] for c, cats in zip(p.categorical_columns, p.categories)}

    @property
    def categories(self) -> dict[str, list[str]]:
        """Categorical feature -> category names (index = code in the matrix)."""
        return {f.name: list(f.categories) for f in self.features if f.kind == "categorical"}

    # ---------------------------------------------------------------- evaluation

    def _chain_latents(self, upto: int, num: dict[str, torch.Tensor], cats: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._chain(upto, num, cats)[-1]

    def _chain(self, upto: int, num: dict[str, torch.Tensor], cats: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Latents of every stage 0..``upto``, from raw values."""
        zs: list[torch.Tensor] = []
        z: torch.Tensor | None = None
        for runner in self.stages[: upto + 1]:
            n_num = torch.stack([num[c] for c in runner.numeric], dim=-1) if runner.numeric else None
            z = runner.encode(z if runner.n_upstream else None, n_num, [cats[c] for c in runner.categorical])
            zs.append(z)
        return zs

    def _offsets(self, stage: int, z_before: torch.Tensor) -> torch.Tensor:
        """What stage ``stage``'s residual targets correct (Ms, n, its n_targets), from the latents of the stage before it."""
        y_up = self.stages[stage - 1].targets(z_before)
        upstream_of = dict(self.model.residual_pairs(stage))
        n_targets = len(self.model.spec.stages[stage].targets)
        return torch.stack([y_up[..., upstream_of[j]] if j in upstream_of else torch.zeros_like(y_up[..., 0])
                            for j in range(n_targets)], dim=-1)

    def _needs_upstream_offsets(self) -> bool:
        """Whether the explained stage's ceilings are taken at a residual prediction of the stage before it."""
        return has_ceilings(self.model.spec.stages[self.stage]) and bool(self.model.spec.stages[self.stage - 1].residual)

    def _ceilings(self, z_up: torch.Tensor | None, up_offsets: torch.Tensor | None) -> torch.Tensor | None:
        """The explained stage's ceilings from the upstream latents (plus, when the upstream stage has residual
        targets, what they correct), at the mean upstream prediction of the selected members."""
        st = self.model.spec.stages[self.stage]
        if not has_ceilings(st):
            return None
        assert z_up is not None
        values = self.stages[self.stage - 1].targets(z_up)
        if up_offsets is not None:
            values = values + up_offsets
        return upstream_ceilings(st, self.model.spec.stages[self.stage - 1].target_columns, values, pool=True)

    def evaluate(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Outputs (rows, K) from per-feature tensors (differentiable).

        numeric: (n,) raw values; categorical: (n,) codes or (n, C) relaxed one-hot;
        latent: (Ms, n) values per member. The mean over the selected members.
        """
        num = {f.name: tensors[f.name] for f in self.features if f.kind == "numeric"}
        cats = {f.name: tensors[f.name] for f in self.features if f.kind == "categorical"}
        runner = self.stages[self.stage]
        up: torch.Tensor | None
        if self.mode == "chain":
            zs = self._chain(self.stage, num, cats)
            z, up = zs[-1], (zs[-2] if len(zs) > 1 else None)
            up_offsets = self._offsets(self.stage - 1, zs[-3]) if self._needs_upstream_offsets() else None
        else:
            up = torch.stack([tensors[f.name] for f in self.features if f.kind == "latent"], dim=-1)
            n_num = torch.stack([num[c] for c in runner.numeric], dim=-1) if runner.numeric else None
            z = runner.encode(up, n_num, [cats[c] for c in runner.categorical])
            up_offsets = tensors[UPSTREAM_OFFSETS] if self._needs_upstream_offsets() else None
        y = runner.targets(z, self._ceilings(up, up_offsets)) if any(kind == "target" for kind, _ in self.outputs) else None
        if y is not None and self.model.residual_pairs(self.stage) and up is not None:  # residual targets: corrections on the previous stage's predictions
            y = y + self._offsets(self.stage, up)
        outs = [y[..., k] if kind == "target" else z[..., k] for kind, k in self.outputs]  # type: ignore[index]
        return torch.stack(outs, dim=-1).mean(dim=0)

    def tensors(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-feature tensors (see :meth:`evaluate`) of an encoded matrix (N, F)."""
        out: dict[str, torch.Tensor] = {}
        for j, f in enumerate(self.features):
            if f.kind == "numeric":
                out[f.name] = X[:, j]
            elif f.kind == "categorical":
                out[f.name] = X[:, j].round().long()
            else:
                assert self.sources is not None
                out[f.name] = self.sources[:, X[:, j].round().long(), f.index]
        if self.source_offsets is not None and self.latent_cols:
            # the upstream residual offsets (e.g. the DFT gap under the film correction) of the latents' source rows
            # (the mean over the latent columns when a mask mixes rows): they move with the latents
            idx = X[:, self.latent_cols].round().long()  # (N, L)
            out[UPSTREAM_OFFSETS] = self.source_offsets[:, idx].mean(dim=2)
        return out

    def as_tensor(self, X: np.ndarray) -> torch.Tensor:
        """A matrix as a tensor of the explanation's dtype and device."""
        return torch.as_tensor(X, dtype=self.dtype, device=self.device)

    @torch.no_grad()
    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The explained function over the encoded matrix: (N, F) -> (N,) or (N, K)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        Xt = self.as_tensor(X)
        parts = []
        for s in range(0, len(Xt), self.settings.chunk_rows):
            parts.append(self.evaluate(self.tensors(Xt[s : s + self.settings.chunk_rows])))
        y = torch.cat(parts).double().cpu().numpy() if parts else np.zeros((0, len(self.outputs)))
        return y[:, 0] if len(self.outputs) == 1 else y

    # ---------------------------------------------------------------- encoding frames

    def _codes(self, frame: pd.DataFrame, f: Feature) -> np.ndarray:
        if f.name not in frame.columns:
            raise SchemaError(f"missing categorical column '{f.name}'")
        index = {c: k for k, c in enumerate(f.categories)}
        values = frame[f.name].astype(str).to_numpy()
        bad = sorted({v for v in values if v not in index})
        if bad:
            raise InputError(f"unknown {f.name} value(s) {', '.join(repr(b) for b in bad[:5])}; known: {', '.join(f.categories)}")
        return np.asarray([index[v] for v in values], dtype=np.float64)

    def _numeric(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        if name not in frame.columns:
            raise SchemaError(f"missing input column '{name}' (this explanation needs {', '.join(self.model.raw_columns(self.stage))})")
        try:
            v = frame[name].to_numpy(dtype=np.float64, copy=True)
        except (TypeError, ValueError):
            raise SchemaError(f"column '{name}' must be numeric") from None
        if not np.isfinite(v).all():
            raise InputError(f"non-finite values in input column '{name}'")
        return v

    def _raw_tensors(self, frame: pd.DataFrame, stage: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Stage ``stage``'s raw columns of the frame as (numeric, categorical code) tensors, by column."""
        cat_cols = self._categorical_columns(stage)
        num, cats = {}, {}
        for c in self.model.raw_columns(stage):
            if c in cat_cols:
                cats[c] = self.as_tensor(self._codes(frame, Feature(c, "categorical", cat_cols[c]))).long()
            else:
                num[c] = self.as_tensor(self._numeric(frame, c))
        return num, cats

    @torch.no_grad()
    def _upstream_latents(self, frame: pd.DataFrame) -> torch.Tensor:
        """Per-member latents (Ms, n, L) of the upstream stage computed from the frame's raw columns."""
        up = self.stage - 1
        return self._chain_latents(up, *self._raw_tensors(frame, up))

    @torch.no_grad()
    def _upstream_offsets(self, frame: pd.DataFrame) -> torch.Tensor:
        """What the upstream stage's residual targets correct (Ms, n, T_up) on the frame's rows, from its raw columns."""
        up2 = self.stage - 2
        return self._offsets(self.stage - 1, self._chain_latents(up2, *self._raw_tensors(frame, up2)))

    def encode_frames(self, frame: pd.DataFrame, background: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded explained rows (n, F), encoded background rows (B, F) and display data (n, F).

        Also fills the latent source table (background rows, then explained rows).
        """
        n, b = len(frame), len(background)
        if self.latent_cols:
            self.sources = torch.cat([self._upstream_latents(background), self._upstream_latents(frame)], dim=1)
            if self._needs_upstream_offsets():
                self.source_offsets = torch.cat([self._upstream_offsets(background), self._upstream_offsets(frame)], dim=1)
        mats = []
        for fr, offset in ((frame, b), (background, 0)):
            m = np.zeros((len(fr), len(self.features)))
            for j, f in enumerate(self.features):
                if f.kind == "numeric":
                    m[:, j] = self._numeric(fr, f.name)
                elif f.kind == "categorical":
                    m[:, j] = self._codes(fr, f)
                else:
                    m[:, j] = offset + np.arange(len(fr))
            mats.append(m)
        X, B = mats
        disp = X.copy()
        if self.latent_cols:
            assert self.sources is not None
            lat = self.sources[:, b : b + n].double().mean(dim=0).cpu().numpy()  # (n, L): member's or ensemble mean
            for j in self.latent_cols:
                disp[:, j] = lat[:, self.features[j].index]
        return X, B, disp
