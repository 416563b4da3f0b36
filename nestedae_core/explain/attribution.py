"""Attributions (SHAP values) for a trained NestedAE chain.

What is explained
-----------------
Every explanation is a plain callable ``f(X) -> outputs`` over a matrix ``X`` of
*raw* inputs (one column per feature), handed to the :mod:`shap` explainers:

* numeric columns hold values in their own units (descriptors: Å, u, eV, ...);
* a categorical input (e.g. ``ETL_stack_sequence``) is ONE column holding the
  category index (see :attr:`Attribution.categories`); ``f`` turns it into the
  model's one-hot block, so a device stack gets one attribution, not one per
  category;
* upstream latents (``materials.z1`` ...), when a stage's own inputs are
  explained, are one column each holding a *source-row index* into a table of
  per-member latent values (the explained rows and the background rows). Each
  fold model has its own stage-1 latents, so a latent "value" is a vector over
  members; the index lets one masked matrix carry it. :attr:`Attribution.data`
  shows the latent values themselves (the member's, or the ensemble mean).

The kinds (public functions):

(a) :func:`explain_bandgap`: stage-1 target (band gap, eV) w.r.t. its descriptors;
(b) :func:`explain_latents`: each latent of a stage w.r.t. that stage's inputs;
(c) :func:`explain_pce`: last-stage target (PCE, %) w.r.t. that stage's own
    inputs (stage-1 latents as given values, ETL, HTL);
(d) :func:`explain_chain`: the same target as a function of the raw inputs of
    the whole chain (15 descriptors + ETL + HTL), end to end;
(e) every function takes ``member``: ``None`` explains the fold-ensemble mean
    (attributions add up to the ensemble-mean prediction; by linearity of Shapley
    values they are the mean of the members' attributions), an integer explains
    that fold model alone. Latent indices are NOT aligned across fold models
    (each member learnt its own latent basis), so :func:`explain_latents`
    defaults to ``member=0``.

:func:`explain_stage_output` is the general form; :func:`explain_function`
explains any numpy callable with the same machinery (used by the tests and the
teaching pages).

Background
----------
The masker's background is the k-means summary stored in the bundle
(``model.backgrounds[i]``, ``model.background_weights[i]``), so a shipped model
explains without its data set. Explanations of a stage's own inputs build the
background latents by running the upstream stages on that stage's (chain)
background. shap's maskers average uniformly over background rows, so the
weighted rows are turned into a multiset of ``background_size`` rows by
largest-remainder rounding of ``weight x size`` (a cluster of weight 0.1 appears
3 times out of 32); every method, including ``gradient``, uses the same multiset,
so their base values agree. Shapley values here are *interventional*: a masked
feature takes background values independently of the kept ones.

Methods and how ``auto`` chooses
--------------------------------
* ``exact``: :class:`shap.ExactExplainer` with :class:`shap.maskers.Independent`.
  It enumerates all ``2**F`` coalitions (F = features that differ from some
  background row), so its values are the exact Shapley values of the game
  ``v(S) = E_background[f(x_S, b_notS)]``; additivity holds to float rounding.
  This is the only exact method. Cost: ``2**F x background`` model rows per
  explained row, all materialised at once by shap (``F x 8`` bytes each). For
  the band gap (F = 15) and the stage-2 inputs (F = 14) with the 32-row
  background that is 0.5-1 M rows; for the 17-feature chain the background is
  cut to ``exact_max_rows / 2**F`` = 8 rows to bound memory (~300 MB peak).
* ``permutation``: :class:`shap.PermutationExplainer`, antithetic permutations
  (``permutations`` = 10 per row for up to ``many_rows`` = 10 rows, else
  ``permutations_many`` = 4), ``2F+1`` evaluations each. Exactly additive
  (each permutation telescopes from base to prediction), unbiased, exact for
  models with at most pairwise interactions; otherwise a Monte-Carlo estimate
  (on the paper chain, 10 permutations differ from ``exact`` by ~3 % of the
  largest attribution).
* ``gradient``: our own integrated gradients averaged over the background rows as
  baselines (Aumann-Shapley path attributions), Gauss-Legendre quadrature with
  ``gradient_steps`` = 64 nodes. Categorical inputs follow the straight path
  between one-hot vectors (the model is evaluated between the one-hot vertices
  only along that path) and the per-category terms are summed into one value.
  Equals Shapley values only for additive models; additivity holds up to the
  quadrature error (first order in 1/nodes because of the ReLU kinks: ~1e-3 eV,
  ~0.03 % here; see :meth:`Attribution.additivity_error`). Fastest for global views.
* ``kernel`` (optional): :class:`shap.KernelExplainer` on the same background
  multiset; additive by construction, approximate, slower than ``permutation``.
* ``auto``: ``exact`` when the exact work (rows x ``2**F`` x background rows) is
  at most :attr:`ExplainSettings.auto_exact_rows` = 2**18 model rows (~0.3 s),
  else ``permutation``. With the paper model's 32-row background that means
  ``permutation`` for every kind (one exact band gap takes ~1-2 s, one exact
  chain ~4 s), ``exact`` for small models such as the synthetic set (F = 10).

Measured with ``benchmarks/bench_explain.py`` on the shipped paper model, 2 CPU
cores shared with other jobs (load ~5), after shap's one-off numba compilation
(5-10 s per process: :func:`warm_up`). Seconds for one composition / 200:

=========  ==========  ===========  ========  ======
kind       exact       permutation  gradient  kernel
=========  ==========  ===========  ========  ======
band gap   1.8 / -     0.02 / 1.9   0.01 / 2  0.06 / 11
PCE (c)    1.3 / -     0.05 / 3.6   0.01 / 1  0.04 / 10
chain (d)  4.3 / -     0.05 / 6.0   0.02 / 2  0.07 / 11
=========  ==========  ===========  ========  ======

Torch runs single-threaded inside an explanation (:attr:`ExplainSettings.threads`,
through :func:`nestedae_core.threads.limit_cpu_threads`): the layers are small,
and on the busy 2-core machine two threads were 10-15x slower.

DeepExplainer is not offered: with this library's ensemble-batched layers it
fails (``EnsembleLinear`` is an unknown module to its PyTorch hooks, which also
assume dimension 0 is the batch, while here it is the ensemble member), and its
DeepLIFT multipliers would be additive only for the activations it knows.

Units: attributions and base values are in the explained output's unit (band gap
eV, PCE %, latents dimensionless); inputs keep their raw units.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from ..errors import InputError, SchemaError
from ..model.chain import NestedAE
from ..model.nn import EnsembleLinear, EnsembleMLP
from ..threads import limit_cpu_threads

__all__ = [
    "METHODS",
    "ExplainSettings",
    "Attribution",
    "explain_bandgap",
    "explain_latents",
    "explain_pce",
    "explain_chain",
    "explain_stage_output",
    "explain_function",
    "explainer_comparison",
    "model_function",
    "weighted_multiset",
    "warm_up",
    "EXPLAINER_NOTES",
]

logger = logging.getLogger(__name__)

Method = Literal["auto", "exact", "permutation", "kernel", "gradient"]
#: Explainer methods accepted by every ``explain_*`` function.
METHODS: tuple[str, ...] = ("auto", "exact", "permutation", "kernel", "gradient")
InputSpace = Literal["stage", "chain"]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExplainSettings:
    """Knobs of the explainers (defaults meet the speed targets on 2 CPU cores).

    Attributes:
        background_size: rows of the background multiset (None: as many as the
            stored k-means background, 32). Larger is a finer weighting, slower.
        exact_max_rows: cap on ``2**F x background rows`` for one exact explanation
            (memory ~ ``F x 8`` bytes per row); above it the background is shrunk.
        auto_exact_rows: ``auto`` uses ``exact`` when ``rows x 2**F x background``
            is at most this many model evaluations (2**18: ~0.3 s on 2 cores),
            else ``permutation``.
        permutations: antithetic permutations per row for ``permutation`` when
            explaining at most ``many_rows`` rows (local views).
        permutations_many: the same for more rows (global views: per-row noise
            averages out over rows, and 200 chain rows stay under 10 s).
        many_rows: row count above which ``permutations_many`` applies.
        gradient_steps: quadrature nodes of the integrated gradients.
        kernel_samples: coalitions sampled per row by ``kernel``.
        seed: seed of the permutation/kernel sampling (the global numpy state is
            restored afterwards).
        chunk_rows: model rows per batch inside the explained function.
        dtype: ``float32`` (fast) or ``float64`` (for exactness checks).
        threads: CPU threads of the calling thread while an explanation runs
            (:func:`nestedae_core.threads.limit_cpu_threads`; restored afterwards;
            None: no change). The layers are small, so one thread avoids
            synchronisation stalls: on a busy 2-core machine it was 10-15x faster.
    """

    background_size: int | None = None
    exact_max_rows: int = 1 << 20
    auto_exact_rows: int = 1 << 18
    permutations: int = 10
    permutations_many: int = 4
    many_rows: int = 10
    gradient_steps: int = 64
    kernel_samples: int = 512
    seed: int = 0
    chunk_rows: int = 4096
    dtype: Literal["float32", "float64"] = "float32"
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.background_size is not None and self.background_size < 1:
            raise InputError("background_size must be at least 1")
        for name in ("exact_max_rows", "auto_exact_rows", "permutations", "permutations_many", "many_rows", "gradient_steps", "kernel_samples", "chunk_rows"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1")
        if self.dtype not in ("float32", "float64"):
            raise InputError("dtype must be 'float32' or 'float64'")
        if self.threads is not None and self.threads < 1:
            raise InputError("threads must be at least 1 (or None)")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32


# --------------------------------------------------------------------------- result


@dataclass
class Attribution:
    """Attributions of one model output for ``n`` rows over ``F`` features.

    Attributes:
        values: (n, F) attributions in the output's unit.
        base_values: (n,) expected output over the background (output unit).
        data: (n, F) the explained inputs: raw values for numeric features, the
            category index for categorical ones (see ``categories``), latent values
            (member's or ensemble mean) for upstream latents.
        feature_names: the F feature names (one per categorical input).
        output: explained output (target column, e.g. ``Gap``, or latent name).
        unit: unit of the output (``eV``, ``%``, ``""`` for latents).
        explainer: ``exact``, ``permutation``, ``kernel`` or ``gradient``.
        seconds: wall time of the attribution computation (s).
        predictions: (n,) the explained function at the rows (output unit);
            ``base_values + values.sum(1)`` equals it up to ``additivity_error()``.
        label: human-readable output name (``band gap``).
        stage: stage whose output is explained.
        inputs: ``stage`` (that stage's own inputs) or ``chain`` (raw chain inputs).
        member: fold model explained, or None for the ensemble mean.
        categories: categorical feature -> category names (index = code in ``data``).
        row_labels: a label per row (formula when the frame has one).
        background_size: rows of the background multiset used.
        details: method parameters (evaluations, permutations, quadrature nodes).
    """

    values: np.ndarray
    base_values: np.ndarray
    data: np.ndarray
    feature_names: list[str]
    output: str
    unit: str
    explainer: str
    seconds: float
    predictions: np.ndarray
    label: str = ""
    stage: str = ""
    inputs: str = "stage"
    member: int | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)
    row_labels: list[str] = field(default_factory=list)
    background_size: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def display_data(self) -> np.ndarray:
        """(n, F) object array: numbers, and category names for categorical features."""
        out = self.data.astype(object)
        for j, name in enumerate(self.feature_names):
            cats = self.categories.get(name)
            if cats:
                out[:, j] = [cats[int(round(v))] for v in self.data[:, j]]
        return out

    def additivity_error(self) -> float:
        """Largest ``|base + sum(values) - prediction|`` over rows (output unit)."""
        if self.n_rows == 0:
            return 0.0
        return float(np.max(np.abs(self.base_values + self.values.sum(axis=1) - self.predictions)))

    def mean_abs(self) -> pd.Series:
        """Mean |attribution| per feature over rows (global importance), descending."""
        return pd.Series(np.abs(self.values).mean(axis=0), index=self.feature_names, name=f"mean |SHAP| ({self.unit})").sort_values(ascending=False)

    def frame(self) -> pd.DataFrame:
        """Attributions as a table: rows x features (output unit)."""
        return pd.DataFrame(self.values, columns=self.feature_names, index=self.row_labels or None)

    def top(self, k: int = 10, row: int | None = None) -> pd.DataFrame:
        """The ``k`` largest attributions.

        For one row (``row`` given, or a one-row result): columns ``feature``,
        ``value`` (signed, output unit), ``data`` (the input's value) and ``unit``,
        sorted by |value|. For many rows: ``feature``, ``mean_abs``, ``mean`` and
        ``unit``, sorted by mean |value| (global importance).
        """
        if k < 1:
            raise InputError("k must be at least 1")
        if row is None and self.n_rows == 1:
            row = 0
        if row is not None:
            if not -self.n_rows <= row < self.n_rows:
                raise InputError(f"row {row} out of range (0..{self.n_rows - 1})")
            v = self.values[row]
            order = np.argsort(-np.abs(v), kind="stable")[:k]
            disp = self.display_data[row]
            return pd.DataFrame(
                {
                    "feature": [self.feature_names[j] for j in order],
                    "value": v[order],
                    "data": [disp[j] for j in order],
                    "unit": self.unit,
                }
            ).reset_index(drop=True)
        ma = np.abs(self.values).mean(axis=0)
        order = np.argsort(-ma, kind="stable")[:k]
        return pd.DataFrame(
            {
                "feature": [self.feature_names[j] for j in order],
                "mean_abs": ma[order],
                "mean": self.values.mean(axis=0)[order],
                "unit": self.unit,
            }
        ).reset_index(drop=True)

    def to_shap_explanation(self) -> Any:
        """A :class:`shap.Explanation` (numeric ``data`` with category codes, names in ``display_data``)."""
        import shap

        return shap.Explanation(
            values=self.values,
            base_values=self.base_values,
            data=self.data,
            display_data=self.display_data,
            feature_names=list(self.feature_names),
            output_names=self.output,
        )

    def to_json(self, row: int = 0) -> dict[str, Any]:
        """One row as JSON: ``output``, ``unit``, ``base``, ``prediction``, ``attributions``
        (feature -> value, sorted by |value|), ``data`` (feature -> input value),
        ``explainer``, ``additivity_error``."""
        v = self.values[row]
        order = np.argsort(-np.abs(v), kind="stable")
        disp = self.display_data[row]
        return {
            "output": self.output,
            "label": self.label,
            "unit": self.unit,
            "stage": self.stage,
            "inputs": self.inputs,
            "member": self.member,
            "explainer": self.explainer,
            "base": float(self.base_values[row]),
            "prediction": float(self.predictions[row]),
            "attributions": {self.feature_names[j]: float(v[j]) for j in order},
            "data": {self.feature_names[j]: (disp[j] if isinstance(disp[j], str) else float(disp[j])) for j in order},
            "additivity_error": float(abs(self.base_values[row] + v.sum() - self.predictions[row])),
            "seconds": float(self.seconds),
        }


# --------------------------------------------------------------------------- background


def weighted_multiset(weights: np.ndarray, size: int) -> np.ndarray:
    """Integer counts (sum ``size``) approximating ``weights`` by largest-remainder rounding.

    Row ``i`` of a weighted background appears ``counts[i]`` times in the
    unweighted multiset handed to shap's maskers.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError("background weights must be a non-empty vector of finite non-negative numbers")
    if size < 1:
        raise InputError("background size must be at least 1")
    target = w / w.sum() * size
    counts = np.floor(target).astype(np.int64)
    rest = size - int(counts.sum())
    if rest > 0:
        order = np.lexsort((np.arange(len(w)), -(target - counts)))
        counts[order[:rest]] += 1
    return counts


# --------------------------------------------------------------------------- the model as a function


def _mlp_layers(mlp: EnsembleMLP, dtype: torch.dtype) -> list[tuple[str, Any, Any]]:
    out: list[tuple[str, Any, Any]] = []
    for mod in mlp.net:
        if isinstance(mod, EnsembleLinear):
            out.append(("lin", mod.weight.detach().to(dtype), mod.bias.detach().to(dtype)))
        elif isinstance(mod, torch.nn.Dropout):
            continue  # evaluation mode: dropout is the identity
        else:
            out.append(("fn", mod, None))
    return out


def _run_layers(layers: list[tuple[str, Any, Any]], h: torch.Tensor, sel: slice) -> torch.Tensor:
    inplace = not torch.is_grad_enabled()
    for kind, a, b in layers:
        if kind == "lin":
            h = torch.baddbmm(b[sel], h, a[sel])
        elif inplace and isinstance(a, torch.nn.ReLU):
            h = h.relu_()  # h is a fresh baddbmm output: safe to overwrite
        else:
            h = a(h)
    return h


@dataclass
class _StageFn:
    """One stage with its standardisation folded into the first encoder layer."""

    numeric: list[str]
    categorical: list[str]
    n_categories: list[int]
    n_upstream: int
    bias: torch.Tensor  # (M, 1, h)
    w_up: torch.Tensor  # (M, n_upstream, h), acting on raw latents
    w_num: torch.Tensor  # (M, n_numeric, h), acting on raw numeric values
    w_cat: list[torch.Tensor]  # each (M, C, h)
    encoder_rest: list[tuple[str, Any, Any]]
    heads: list[list[tuple[str, Any, Any]]]
    target_mean: torch.Tensor  # (M, T)
    target_scale: torch.Tensor  # (M, T)

    def encode(self, sel: slice, up: torch.Tensor | None, num: torch.Tensor | None, cats: list[torch.Tensor]) -> torch.Tensor:
        """Latents (Ms, n, L). ``up``: (Ms, n, L_up) raw latents; ``num``: (n, k) raw values;
        ``cats``: per categorical input, codes (n,) long or relaxed one-hot (n, C)."""
        h = self.bias[sel]
        if self.n_upstream:
            assert up is not None
            h = h + torch.bmm(up, self.w_up[sel])
        if self.numeric:
            assert num is not None
            h = h + torch.matmul(num, self.w_num[sel])
        for c, w in zip(cats, self.w_cat):
            h = h + (w[sel][:, c] if c.dtype == torch.long else torch.matmul(c, w[sel]))
        return _run_layers(self.encoder_rest, h, sel)

    def head(self, sel: slice, z: torch.Tensor, t: int) -> torch.Tensor:
        """Target ``t`` in its unit: (Ms, n)."""
        y = _run_layers(self.heads[t], z, sel)[..., 0]
        return y * self.target_scale[sel, t, None] + self.target_mean[sel, t, None]


def _compile_stage(model: NestedAE, i: int, dtype: torch.dtype) -> _StageFn:
    p, net = model.prep[i], model.nets[i]
    net.eval()
    first = net.encoder.net[0]
    if not isinstance(first, EnsembleLinear):  # pragma: no cover - StageNet always starts with one
        raise InputError("unexpected encoder structure")
    w = first.weight.detach().to(dtype)
    b = first.bias.detach().to(dtype)
    n_cont = p.layout.n_continuous
    mean = torch.as_tensor(p.cont_mean, dtype=dtype)
    scale = torch.as_tensor(p.cont_scale, dtype=dtype)
    wc = w[:, :n_cont] / scale[:, :, None]
    bias = b - torch.bmm((mean / scale)[:, None, :], w[:, :n_cont])
    return _StageFn(
        numeric=list(p.numeric_columns),
        categorical=list(p.categorical_columns),
        n_categories=[len(c) for c in p.categories],
        n_upstream=p.n_upstream,
        bias=bias,
        w_up=wc[:, : p.n_upstream],
        w_num=wc[:, p.n_upstream :],
        w_cat=[w[:, sl] for sl in p.layout.category_slices()],
        encoder_rest=[layer for j, layer in enumerate(_mlp_layers(net.encoder, dtype)) if j > 0],
        heads=[_mlp_layers(h, dtype) for h in net.heads],
        target_mean=torch.as_tensor(p.target_mean, dtype=dtype),
        target_scale=torch.as_tensor(p.target_scale, dtype=dtype),
    )


@dataclass(frozen=True)
class _Feature:
    name: str
    kind: Literal["numeric", "categorical", "latent"]
    categories: tuple[str, ...] = ()
    index: int = -1  # latent position in the upstream latent vector


class _Problem:
    """The explained function: stage ``i``'s outputs over a feature space.

    ``inputs='chain'``: features are the raw columns of stages 0..i, evaluation runs
    every stage; ``inputs='stage'``: features are stage i's own inputs (upstream
    latents, numeric, categorical), evaluation runs stage i only.
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
        if member is not None and not 0 <= member < model.members:
            raise InputError(f"member {member} out of range 0..{model.members - 1}")
        self.member = member
        self.sel = slice(None) if member is None else slice(member, member + 1)
        self.outputs = outputs  # (kind 'target'|'latent', index)
        self.fns = [_compile_stage(model, s, self.dtype) for s in range(stage + 1)]
        upstream = model.spec.stages[stage].upstream
        # evaluation mode: a stage without upstream latents is its own chain
        self.mode: InputSpace = "chain" if stage == 0 or not upstream else inputs
        self.inputs: InputSpace = inputs
        cat_cols = {c: tuple(cats) for p in model.prep[: stage + 1] for c, cats in zip(p.categorical_columns, p.categories)}
        feats: list[_Feature] = []
        if self.mode == "chain":
            for c in model.raw_columns(stage):
                feats.append(_Feature(c, "categorical", cat_cols[c]) if c in cat_cols else _Feature(c, "numeric"))
        else:
            p = model.prep[stage]
            feats += [_Feature(n, "latent", index=k) for k, n in enumerate(model.latent_names(stage - 1))]
            feats += [_Feature(c, "numeric") for c in p.numeric_columns]
            feats += [_Feature(c, "categorical", tuple(cats)) for c, cats in zip(p.categorical_columns, p.categories)]
        self.features = feats
        self.names = [f.name for f in feats]
        self.col = {f.name: j for j, f in enumerate(feats)}
        self.latent_cols = [j for j, f in enumerate(feats) if f.kind == "latent"]
        # latent source table (Ms, S, L_up): background rows first, then explained rows
        self.sources: torch.Tensor | None = None

    # ---------------------------------------------------------------- raw evaluation

    def _chain_latents(self, upto: int, num: dict[str, torch.Tensor], cats: dict[str, torch.Tensor]) -> torch.Tensor:
        z: torch.Tensor | None = None
        for s in range(upto + 1):
            fn = self.fns[s]
            n_num = torch.stack([num[c] for c in fn.numeric], dim=-1) if fn.numeric else None
            z = fn.encode(self.sel, z if fn.n_upstream else None, n_num, [cats[c] for c in fn.categorical])
        assert z is not None
        return z

    def evaluate(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Outputs (rows, K) from per-feature tensors (differentiable).

        numeric: (n,) raw values; categorical: (n,) codes or (n, C) relaxed one-hot;
        latent: (Ms, n) values per member.
        """
        num = {f.name: tensors[f.name] for f in self.features if f.kind == "numeric"}
        cats = {f.name: tensors[f.name] for f in self.features if f.kind == "categorical"}
        if self.mode == "chain":
            z = self._chain_latents(self.stage, num, cats)
        else:
            fn = self.fns[self.stage]
            up = torch.stack([tensors[f.name] for f in self.features if f.kind == "latent"], dim=-1)
            n_num = torch.stack([num[c] for c in fn.numeric], dim=-1) if fn.numeric else None
            z = fn.encode(self.sel, up, n_num, [cats[c] for c in fn.categorical])
        fn = self.fns[self.stage]
        outs = [fn.head(self.sel, z, k) if kind == "target" else z[..., k] for kind, k in self.outputs]
        return torch.stack(outs, dim=-1).mean(dim=0)  # mean over (selected) members

    def _tensors_from_matrix(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for j, f in enumerate(self.features):
            if f.kind == "numeric":
                out[f.name] = X[:, j]
            elif f.kind == "categorical":
                out[f.name] = X[:, j].round().long()
            else:
                assert self.sources is not None
                out[f.name] = self.sources[:, X[:, j].round().long(), f.index]
        return out

    @torch.no_grad()
    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The explained function over the encoded matrix: (N, F) -> (N,) or (N, K)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        Xt = torch.as_tensor(X, dtype=self.dtype)
        parts = []
        for s in range(0, len(Xt), self.settings.chunk_rows):
            parts.append(self.evaluate(self._tensors_from_matrix(Xt[s : s + self.settings.chunk_rows])))
        y = torch.cat(parts).double().numpy() if parts else np.zeros((0, len(self.outputs)))
        return y[:, 0] if len(self.outputs) == 1 else y

    # ---------------------------------------------------------------- encoding frames

    def _codes(self, frame: pd.DataFrame, f: _Feature) -> np.ndarray:
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
            raise SchemaError(f"missing input column '{name}' (this explanation needs {', '.join(self._raw_needed())})")
        try:
            v = frame[name].to_numpy(dtype=np.float64, copy=True)
        except (TypeError, ValueError):
            raise SchemaError(f"column '{name}' must be numeric") from None
        if not np.isfinite(v).all():
            raise InputError(f"non-finite values in input column '{name}'")
        return v

    def _raw_needed(self) -> list[str]:
        return self.model.raw_columns(self.stage)

    @torch.no_grad()
    def _upstream_latents(self, frame: pd.DataFrame) -> torch.Tensor:
        """Per-member latents (Ms, n, L) of stage i-1 computed from the frame's raw columns."""
        up = self.stage - 1
        cols = self.model.raw_columns(up)
        cat_cols = {c: tuple(cats) for p in self.model.prep[: up + 1] for c, cats in zip(p.categorical_columns, p.categories)}
        num, cats = {}, {}
        for c in cols:
            if c in cat_cols:
                cats[c] = torch.as_tensor(self._codes(frame, _Feature(c, "categorical", cat_cols[c])), dtype=self.dtype).long()
            else:
                num[c] = torch.as_tensor(self._numeric(frame, c), dtype=self.dtype)
        return self._chain_latents(up, num, cats)

    def encode_frames(self, frame: pd.DataFrame, background: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded explained rows (n, F), encoded background rows (B, F) and display data (n, F)."""
        n, b = len(frame), len(background)
        if self.latent_cols:
            lat_bg = self._upstream_latents(background)
            lat_x = self._upstream_latents(frame)
            self.sources = torch.cat([lat_bg, lat_x], dim=1)
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
            lat = self.sources[:, b : b + n].double().mean(dim=0).numpy()  # (n, L): member's or ensemble mean
            for j in self.latent_cols:
                disp[:, j] = lat[:, self.features[j].index]
        return X, B, disp

    # ---------------------------------------------------------------- integrated gradients

    def integrated_gradients(self, X: np.ndarray, B: np.ndarray, weights: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """IG averaged over baselines ``B`` (weights sum 1): values (n, F, K) and base (K,)."""
        nodes, qw = np.polynomial.legendre.leggauss(steps)
        alphas = torch.as_tensor((nodes + 1) / 2, dtype=self.dtype)
        qweights = torch.as_tensor(qw / 2, dtype=self.dtype)
        bw = torch.as_tensor(weights, dtype=self.dtype)
        n, F = X.shape
        nb, K = len(B), len(self.outputs)
        Xt = torch.as_tensor(X, dtype=self.dtype)
        Bt = torch.as_tensor(B, dtype=self.dtype)
        xs = self._tensors_from_matrix(Xt)
        bs = self._tensors_from_matrix(Bt)
        per = max(1, self.settings.chunk_rows // (nb * steps))
        values = np.zeros((n, F, K))
        for r0 in range(0, n, per):
            r1 = min(n, r0 + per)
            m = r1 - r0
            # path points: (row, baseline, step) flattened
            a = alphas.view(1, 1, steps)
            leaves: dict[str, torch.Tensor] = {}
            deltas: dict[str, torch.Tensor] = {}
            for f in self.features:
                x, b0 = xs[f.name], bs[f.name]
                if f.kind == "numeric":
                    xv, bv = x[r0:r1].view(m, 1, 1), b0.view(1, nb, 1)
                    leaves[f.name] = (bv + a * (xv - bv)).reshape(-1).detach().requires_grad_(True)
                    deltas[f.name] = (xv - bv).expand(m, nb, steps).reshape(-1)
                elif f.kind == "categorical":
                    C = len(f.categories)
                    xo = torch.nn.functional.one_hot(x[r0:r1], C).to(self.dtype).view(m, 1, 1, C)
                    bo = torch.nn.functional.one_hot(b0, C).to(self.dtype).view(1, nb, 1, C)
                    leaves[f.name] = (bo + a.unsqueeze(-1) * (xo - bo)).reshape(-1, C).detach().requires_grad_(True)
                    deltas[f.name] = (xo - bo).expand(m, nb, steps, C).reshape(-1, C)
                else:
                    Ms = x.shape[0]
                    xv, bv = x[:, r0:r1].view(Ms, m, 1, 1), b0.view(Ms, 1, nb, 1)
                    leaves[f.name] = (bv + a * (xv - bv)).reshape(Ms, -1).detach().requires_grad_(True)
                    deltas[f.name] = (xv - bv).expand(Ms, m, nb, steps).reshape(Ms, -1)
            with torch.enable_grad():
                y = self.evaluate(leaves)  # (m*nb*steps, K)
                wts = (bw.view(1, nb, 1) * qweights.view(1, 1, steps)).expand(m, nb, steps).reshape(-1)
                for k in range(K):
                    grads = torch.autograd.grad(y[:, k].sum(), [leaves[f.name] for f in self.features], retain_graph=k < K - 1)
                    for j, (f, g) in enumerate(zip(self.features, grads)):
                        contrib = g * deltas[f.name]
                        if f.kind == "categorical":
                            contrib = contrib.sum(dim=-1)
                        elif f.kind == "latent":
                            contrib = contrib.sum(dim=0)
                        values[r0:r1, j, k] = (contrib * wts).view(m, nb * steps).sum(dim=1).detach().double().numpy()
        base = (self(B).reshape(nb, K) * weights[:, None]).sum(axis=0)
        return values, base


# --------------------------------------------------------------------------- running shap


def _shap_values(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    background: np.ndarray,
    method: str,
    settings: ExplainSettings,
    n_outputs: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run a shap explainer: values (n, F, K), base values (n, K), details."""
    import shap

    n, F = X.shape
    details: dict[str, Any] = {}
    state = np.random.get_state()
    try:
        if method == "exact":
            masker = shap.maskers.Independent(background, max_samples=len(background))
            varying = int((~np.isclose(X[:, None, :], background[None, :, :])).any(axis=(0, 1)).sum())
            details["evaluations_per_row"] = 2**varying
            ex = shap.explainers.Exact(f, masker)
            e = ex(X, max_evals=2**F + 1, silent=True)
            values, base = np.asarray(e.values), np.asarray(e.base_values)
        elif method == "permutation":
            masker = shap.maskers.Independent(background, max_samples=len(background))
            perms = settings.permutations if n <= settings.many_rows else settings.permutations_many
            max_evals = perms * (2 * F + 1)
            details["permutations"] = perms
            details["evaluations_per_row"] = max_evals
            ex = shap.explainers.Permutation(f, masker, seed=settings.seed)
            e = ex(X, max_evals=max_evals, silent=True)
            values, base = np.asarray(e.values), np.asarray(e.base_values)
        elif method == "kernel":
            np.random.seed(settings.seed)
            ke = shap.KernelExplainer(f, background)
            raw = ke.shap_values(X, nsamples=settings.kernel_samples, silent=True)
            values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
            base = np.broadcast_to(np.asarray(ke.expected_value, dtype=np.float64), (n,) + ((n_outputs,) if n_outputs > 1 else ()))
            details["evaluations_per_row"] = settings.kernel_samples
        else:  # pragma: no cover - validated by the callers
            raise InputError(f"unknown method '{method}'")
    finally:
        np.random.set_state(state)
    values = values.reshape(n, F, n_outputs)
    base = np.asarray(base, dtype=np.float64).reshape(n, n_outputs)
    return values, base, details


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown explainer method '{method}'; choose one of {', '.join(METHODS)}")
    return method


#: Fewest background rows an exact explanation may be cut down to.
MIN_EXACT_BACKGROUND = 4


def _background_rows(settings: ExplainSettings, weights: np.ndarray, method: str, n_features: int) -> int:
    size = settings.background_size or len(weights)
    if method == "exact":
        cap = settings.exact_max_rows >> n_features
        if cap < min(size, MIN_EXACT_BACKGROUND):
            raise InputError(
                f"the exact explainer needs 2^{n_features} evaluations per background row, too many for "
                f"exact_max_rows={settings.exact_max_rows}; use method='permutation' (or raise exact_max_rows)"
            )
        size = min(size, cap)
    return size


def _resolve_auto(settings: ExplainSettings, n_rows: int, n_features: int, n_background: int) -> str:
    size = min(settings.background_size or n_background, max(1, settings.exact_max_rows >> n_features))
    work = n_rows * (2**n_features) * size
    return "exact" if work <= settings.auto_exact_rows else "permutation"


def _compute(
    problem: _Problem,
    frame: pd.DataFrame,
    method: str,
    background: pd.DataFrame,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str, int, float, dict[str, Any]]:
    """Encode, run the explainer; returns values (n,F,K), base (n,K), predictions (n,K), display data, method, bg size, seconds, details."""
    settings = problem.settings
    _check_method(method)
    with limit_cpu_threads(settings.threads):
        X, Bfull, disp = problem.encode_frames(frame, background)
    F = X.shape[1]
    if method == "auto":
        method = _resolve_auto(settings, len(X), F, len(Bfull))
    size = _background_rows(settings, weights, method, F)
    counts = weighted_multiset(weights, size)
    keep = counts > 0
    B, w = Bfull[keep], counts[keep] / counts.sum()
    multiset = np.repeat(B, counts[keep], axis=0)
    K = len(problem.outputs)
    with limit_cpu_threads(settings.threads):
        t0 = time.perf_counter()
        if method == "gradient":
            values, base_k = problem.integrated_gradients(X, B, w, settings.gradient_steps)
            base = np.broadcast_to(base_k, (len(X), K)).copy()
            details: dict[str, Any] = {"quadrature_nodes": settings.gradient_steps, "baselines": int(len(B))}
        else:
            values, base, details = _shap_values(problem, X, multiset, method, settings, K)
        seconds = time.perf_counter() - t0
        pred = problem(X).reshape(len(X), K)
    logger.debug("%s attributions of %d rows x %d features in %.2f s", method, len(X), F, seconds)
    return values, base, pred, disp, method, size, seconds, details


# --------------------------------------------------------------------------- public API


def _row_labels(frame: pd.DataFrame) -> list[str]:
    for c in ("formula", "Formula", "Perovskite_composition_long_form", "material_id", "device_id"):
        if c in frame.columns:
            return frame[c].astype(str).tolist()
    return [str(i) for i in frame.index]


def _as_frame(frame: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(frame, pd.Series):
        return frame.to_frame().T.infer_objects()
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of raw inputs, got {type(frame).__name__}")
    if len(frame) == 0:
        raise InputError("the frame to explain has no rows")
    return frame


def _background_for(model: NestedAE, stage: int) -> tuple[pd.DataFrame, np.ndarray]:
    if len(model.backgrounds) <= stage or len(model.background_weights) <= stage:
        raise InputError("this model has no stored background for attributions; retrain or re-save it with a current version")
    return model.backgrounds[stage], np.asarray(model.background_weights[stage], dtype=np.float64)


def _resolve_output(model: NestedAE, stage: int, output: str | int) -> tuple[str, int, str, str, str]:
    """(kind, index, name, label, unit) of an output of a stage."""
    st = model.spec.stages[stage]
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not 0 <= output < len(st.targets):
            raise InputError(f"stage '{st.name}' has {len(st.targets)} target(s); index {output} is out of range")
        t = st.targets[int(output)]
        return "target", int(output), t.column, t.label or t.column, t.unit
    for j, t in enumerate(st.targets):
        if output in (t.column, t.label):
            return "target", j, t.column, t.label or t.column, t.unit
    names = model.latent_names(stage)
    short = [n.split(".", 1)[1] for n in names]
    if output in names or output in short:
        k = names.index(output) if output in names else short.index(output)
        return "latent", k, names[k], f"latent {names[k]}", ""
    raise InputError(f"stage '{st.name}' has no output '{output}'; targets: {', '.join(st.target_columns)}; latents: {names[0]} .. {names[-1]}")


def _explain(
    model: NestedAE,
    stage: int | str,
    outputs: list[str | int],
    frame: pd.DataFrame,
    *,
    inputs: InputSpace,
    method: str,
    member: int | None,
    settings: ExplainSettings | None,
) -> list[Attribution]:
    settings = settings or ExplainSettings()
    i = model.stage_index(stage)
    if inputs not in ("stage", "chain"):
        raise InputError("inputs must be 'stage' or 'chain'")
    frame = _as_frame(frame)
    resolved = [_resolve_output(model, i, o) for o in outputs]
    problem = _Problem(model, i, inputs, [(r[0], r[1]) for r in resolved], member, settings)
    bg_stage = i
    background, weights = _background_for(model, bg_stage)
    values, base, pred, disp, used, size, seconds, details = _compute(problem, frame, method, background, weights)
    cats = {f.name: list(f.categories) for f in problem.features if f.kind == "categorical"}
    labels = _row_labels(frame)
    out = []
    for k, (_, _, name, label, unit) in enumerate(resolved):
        out.append(
            Attribution(
                values=values[:, :, k].copy(),
                base_values=base[:, k].copy(),
                data=disp.copy(),
                feature_names=list(problem.names),
                output=name,
                unit=unit,
                explainer=used,
                seconds=seconds,
                predictions=pred[:, k].copy(),
                label=label,
                stage=model.stage_names[i],
                inputs=problem.inputs,
                member=member,
                categories=cats,
                row_labels=labels,
                background_size=size,
                details=dict(details),
            )
        )
    return out


def explain_stage_output(
    model: NestedAE,
    stage: int | str,
    output: str | int,
    frame: pd.DataFrame,
    *,
    inputs: InputSpace = "stage",
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """Attributions of one output of a stage for the rows of ``frame``.

    Args:
        model: a trained chain.
        stage: stage index or name.
        output: a target (column, label or index; unit of the target) or a latent
            (``materials.z3`` or ``z3``; dimensionless).
        frame: raw inputs (e.g. :meth:`NestedAE.query_frame` or a training table):
            the columns of ``model.raw_columns(stage)``.
        inputs: ``stage``: the stage's own inputs (upstream latents as given
            values, numeric and categorical inputs); ``chain``: the raw inputs of
            every stage up to this one (end to end). Identical for the first stage.
        method: ``auto``, ``exact``, ``permutation``, ``kernel`` or ``gradient``
            (see the module docstring).
        member: None for the ensemble mean, or a fold model's index.
        settings: explainer knobs (:class:`ExplainSettings`).
    """
    return _explain(model, stage, [output], frame, inputs=inputs, method=method, member=member, settings=settings)[0]


def explain_bandgap(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """(a) The first stage's first target (band gap, eV) w.r.t. its inputs (the 15 descriptors)."""
    return explain_stage_output(model, 0, 0, frame, inputs="stage", method=method, member=member, settings=settings)


def explain_latents(
    model: NestedAE,
    frame: pd.DataFrame,
    stage: int | str = 0,
    *,
    method: Method = "auto",
    member: int | None = 0,
    inputs: InputSpace = "stage",
    settings: ExplainSettings | None = None,
) -> dict[str, Attribution]:
    """(b) Every latent of a stage w.r.t. its inputs, in one explainer pass.

    Returns latent name -> :class:`Attribution` (dimensionless). ``member``
    defaults to fold model 0: latent ``k`` of one fold model has nothing to do
    with latent ``k`` of another, so their mean (``member=None``) is additive but
    hard to interpret.
    """
    i = model.stage_index(stage)
    names = model.latent_names(i)
    atts = _explain(model, i, list(names), frame, inputs=inputs, method=method, member=member, settings=settings)
    return dict(zip(names, atts))


def _last_stage_with_upstream(model: NestedAE) -> int:
    i = len(model.spec.stages) - 1
    if i == 0:
        raise InputError("this model has a single stage; explain its target with explain_bandgap or explain_stage_output")
    return i


def explain_pce(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """(c) The last stage's first target (PCE, %) w.r.t. that stage's own inputs:
    the stage-1 latents (``materials.z1`` ...) as given values, ETL and HTL."""
    return explain_stage_output(model, _last_stage_with_upstream(model), 0, frame, inputs="stage", method=method, member=member, settings=settings)


def explain_chain(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> Attribution:
    """(d) The last stage's first target (PCE, %) end to end: w.r.t. the raw inputs of
    the whole chain (atomic descriptors + ETL + HTL)."""
    return explain_stage_output(model, _last_stage_with_upstream(model), 0, frame, inputs="chain", method=method, member=member, settings=settings)


def model_function(
    model: NestedAE,
    stage: int | str,
    output: str | int,
    *,
    inputs: InputSpace = "chain",
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> tuple[Callable[[np.ndarray], np.ndarray], list[str], dict[str, list[str]]]:
    """The explained function itself, for use with other tools.

    Returns ``(f, feature_names, categories)``: ``f`` maps an (N, F) matrix of raw
    inputs (categorical columns holding category indices into ``categories``) to
    the output (N,) in its unit. Only ``inputs='chain'`` (or a first stage) is
    offered, since upstream-latent columns need a per-call source table.
    """
    settings = settings or ExplainSettings()
    i = model.stage_index(stage)
    kind, k, *_ = _resolve_output(model, i, output)
    problem = _Problem(model, i, inputs, [(kind, k)], member, settings)
    if problem.latent_cols:
        raise InputError("model_function needs inputs='chain' for a stage that consumes upstream latents")
    cats = {f.name: list(f.categories) for f in problem.features if f.kind == "categorical"}
    return problem, list(problem.names), cats


def explain_function(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    background: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    method: Literal["auto", "exact", "permutation", "kernel"] = "auto",
    output: str = "f",
    unit: str = "",
    settings: ExplainSettings | None = None,
) -> Attribution:
    """Shapley values of any vectorised function ``f: (N, F) -> (N,)`` with a (weighted) background.

    The background rows (B, F) with ``weights`` (default uniform) become the
    multiset described in the module docstring (``background_size`` rows,
    default B). For a linear ``f(x) = w.x + c`` with this independent background
    the exact values are ``w_j (x_j - E_background[x_j])``.
    """
    settings = settings or ExplainSettings()
    _check_method(method)
    if method == "gradient":
        raise InputError("the gradient method needs a torch model; use explain_stage_output")
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    bg = np.atleast_2d(np.asarray(background, dtype=np.float64))
    if X.shape[1] != bg.shape[1]:
        raise InputError(f"X has {X.shape[1]} features but the background has {bg.shape[1]}")
    w = np.full(len(bg), 1.0 / len(bg)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(bg):
        raise InputError("weights must have one entry per background row")
    F = X.shape[1]
    if method == "auto":
        method = _resolve_auto(settings, len(X), F, len(bg))
    size = _background_rows(replace(settings, background_size=settings.background_size or len(bg)), w, method, F)
    counts = weighted_multiset(w, size)
    multiset = np.repeat(bg[counts > 0], counts[counts > 0], axis=0)
    with limit_cpu_threads(settings.threads):
        t0 = time.perf_counter()
        values, base, details = _shap_values(f, X, multiset, method, settings, 1)
        seconds = time.perf_counter() - t0
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(F)]
    return Attribution(
        values=values[:, :, 0],
        base_values=base[:, 0],
        data=X.copy(),
        feature_names=names,
        output=output,
        unit=unit,
        explainer=method,
        seconds=seconds,
        predictions=np.asarray(f(X), dtype=np.float64).reshape(len(X)),
        label=output,
        row_labels=[str(i) for i in range(len(X))],
        background_size=size,
        details=details,
    )


def warm_up() -> float:
    """Compile shap's numba kernels now (exact and permutation, one and many outputs).

    The first shap explanation in a process pays a one-off compilation (several
    seconds); a long-running app can call this in the background at start-up.
    Returns the seconds spent.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    bg = rng.normal(size=(4, 3))
    x = rng.normal(size=(1, 3))
    w = np.array([1.0, -2.0, 0.5])
    settings = ExplainSettings(permutations=1)
    for method in ("exact", "permutation"):
        _shap_values(lambda a: a @ w, x, bg, method, settings, 1)
        _shap_values(lambda a: np.stack([a @ w, a @ -w], axis=1), x, bg, method, settings, 2)
    return time.perf_counter() - t0


#: What each explainer of :func:`explainer_comparison` is.
EXPLAINER_NOTES = {
    "exact": "exact Shapley values (all 2^F coalitions) w.r.t. the background",
    "permutation": "Monte-Carlo over antithetic permutations; additive by construction",
    "kernel": "weighted linear regression over sampled coalitions (KernelSHAP); approximate",
    "gradient": "integrated gradients averaged over background baselines; additive up to quadrature error",
}


def explainer_comparison(
    model: NestedAE,
    frame_row: pd.DataFrame | pd.Series,
    *,
    kind: Literal["bandgap", "pce", "chain"] = "chain",
    methods: Sequence[str] = ("exact", "permutation", "gradient"),
    member: int | None = None,
    settings: ExplainSettings | None = None,
) -> pd.DataFrame:
    """Compare explainers on one row.

    Returns one row per method: ``explainer``, ``is_exact`` (only ``exact``
    enumerates every coalition; the others approximate the same Shapley values, or
    in the case of ``gradient`` a different attribution that coincides for
    additive models), ``base``, ``prediction``, ``additivity_error`` and
    ``seconds``, ``max_abs_diff_vs_exact`` (output unit; NaN without ``exact``),
    ``background_size``, then one column per feature holding its attribution.
    All methods share the weighted background of the model; ``exact`` may use a
    smaller multiset (see :attr:`ExplainSettings.exact_max_rows`), so its base
    value can differ slightly from the others'.
    """
    frame = _as_frame(frame_row)
    if len(frame) != 1:
        raise InputError(f"explainer_comparison explains one row; got {len(frame)}")
    fns = {"bandgap": explain_bandgap, "pce": explain_pce, "chain": explain_chain}
    if kind not in fns:
        raise InputError(f"unknown kind '{kind}'; choose bandgap, pce or chain")
    results: dict[str, Attribution] = {}
    for m in methods:
        if _check_method(m) == "auto":
            raise InputError("list concrete methods to compare (not 'auto')")
        results[m] = fns[kind](model, frame, method=m, member=member, settings=settings)  # type: ignore[operator]
    ref = results.get("exact")
    rows = []
    for m, att in results.items():
        row: dict[str, Any] = {
            "explainer": m,
            "is_exact": m == "exact",
            "base": float(att.base_values[0]),
            "prediction": float(att.predictions[0]),
            "additivity_error": att.additivity_error(),
            "seconds": att.seconds,
            "max_abs_diff_vs_exact": float(np.max(np.abs(att.values[0] - ref.values[0]))) if ref is not None else float("nan"),
            "background_size": att.background_size,
            "unit": att.unit,
        }
        row.update(dict(zip(att.feature_names, att.values[0].tolist())))
        rows.append(row)
    return pd.DataFrame(rows)
