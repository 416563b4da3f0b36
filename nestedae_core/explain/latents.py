"""Latent-space analysis of a trained NestedAE chain.

* :func:`latent_correlations`: latents x (inputs + targets) correlation table;
* :func:`active_latents`: which latents carry information (and how many);
* :func:`latent_traversal`: move one latent, decode inputs and predict targets;
* :func:`pca_projection`: a 2-D/3-D map of the latent space;
* :func:`factor_recovery`: how well latents recover known factors (synthetic data).

The latent-size scan (training one run per latent size) is
:mod:`nestedae_core.sweep.latent_size`.

Fold models and latents
-----------------------
The model is an ensemble of fold models, and each learnt its own latent basis:
latent ``k`` of member 0 and latent ``k`` of member 1 are unrelated (different
random initialisations, and any invertible mixing of latents predicts equally
well). Per-latent analyses therefore take ``member`` (default 0, the first fold
model). ``member=None`` means: the ensemble-mean latent for correlations (easy
to compute, hard to interpret), all members for :func:`active_latents` (counts
summarised by their median), and the members' latents side by side for
:func:`pca_projection` (a map independent of any one member's basis).

Units: latents are dimensionless (tanh range by default); decoded inputs are in
the inputs' raw units (descriptors in Å, u, eV ...), predictions in the targets'
units (band gap eV, PCE %).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..model.ceilings import has_ceilings
from ..model.chain import NestedAE

__all__ = [
    "factor_recovery",
    "ActiveLatents",
    "latent_correlations",
    "active_latents",
    "latent_traversal",
    "traversal_sensitivity",
    "pca_projection",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers


def _check_member(model: NestedAE, member: int | None, allow_none: bool = True) -> None:
    if member is None:
        if not allow_none:
            raise InputError("give a fold model index (member): latents of different fold models are not aligned")
        return
    if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or not 0 <= member < model.members:
        raise InputError(f"member must be an integer in 0..{model.members - 1}, got {member!r}")


def _latent_index(model: NestedAE, stage: int, latent: int | str) -> int:
    names = model.latent_names(stage)
    if isinstance(latent, (int, np.integer)) and not isinstance(latent, bool):
        if not 0 <= latent < len(names):
            raise InputError(f"latent index {latent} out of range 0..{len(names) - 1}")
        return int(latent)
    short = [n.split(".", 1)[1] for n in names]
    if latent in names:
        return names.index(latent)
    if latent in short:
        return short.index(latent)
    raise InputError(f"unknown latent '{latent}'; this stage has {names[0]} .. {names[-1]}")


def _check_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if isinstance(frame, pd.Series):
        frame = frame.to_frame().T.infer_objects()
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of raw inputs, got {type(frame).__name__}")
    if len(frame) == 0:
        raise InputError("the frame has no rows")
    return frame


def _select(arr: np.ndarray, member: int | None) -> np.ndarray:
    """(members, n, k) -> (n, k) of one member or the ensemble mean."""
    return arr.mean(axis=0) if member is None else arr[member]


# --------------------------------------------------------------------------- correlations


def _correlation_ratio(values: np.ndarray, groups: np.ndarray) -> float:
    """eta = sqrt(between-group sum of squares / total sum of squares), in [0, 1]."""
    total = ((values - values.mean()) ** 2).sum()
    if total <= 0:
        return float("nan")
    between = 0.0
    for g in np.unique(groups):
        sel = groups == g
        between += sel.sum() * (values[sel].mean() - values.mean()) ** 2
    return float(np.sqrt(between / total))


def latent_correlations(
    model: NestedAE,
    frame: pd.DataFrame,
    stage: int | str = 0,
    *,
    method: Literal["pearson", "spearman"] = "pearson",
    member: int | None = 0,
) -> pd.DataFrame:
    """Correlation of each latent of a stage with its inputs and targets over ``frame``.

    Rows: latents (``materials.z1`` ...). Columns: the stage's inputs (upstream
    latents, numeric inputs; for a categorical input such as ETL, the correlation
    ratio eta in [0, 1], unsigned), then for each target the measured column when
    ``frame`` has it and ``<target> (predicted)``. ``frame`` holds raw inputs
    (``model.raw_columns(stage)``), e.g. a training table.

    Correlations ignore scale: an inactive latent that barely moves (see
    :func:`active_latents`) can still correlate strongly with the one input its
    tiny weights pick up; a latent that is exactly constant gets NaN.
    """
    if method not in ("pearson", "spearman"):
        raise InputError("method must be 'pearson' or 'spearman'")
    frame = _check_frame(frame)
    i = model.stage_index(stage)
    _check_member(model, member)
    p = model.prep[i]
    upstream = model.latents(i - 1, frame) if p.n_upstream else None  # computed once, fed to the stage
    pred = model.predict_stage(i, frame, upstream_latents=upstream)
    z = _select(pred.latents, member)  # (n, L)
    cols: dict[str, np.ndarray] = {}
    if upstream is not None:
        up = _select(upstream, member)
        for k, name in enumerate(model.latent_names(i - 1)):
            cols[name] = up[:, k]
    for c in p.numeric_columns:
        cols[c] = frame[c].to_numpy(dtype=np.float64)
    targets: dict[str, np.ndarray] = {}
    yhat = _select(pred.members, member)
    for j, t in enumerate(p.target_columns):
        if t in frame.columns:
            targets[t] = pd.to_numeric(frame[t], errors="coerce").to_numpy(dtype=np.float64)
        targets[f"{t} (predicted)"] = yhat[:, j]
    names = model.latent_names(i)
    zf = pd.DataFrame(z, columns=names)
    out = pd.DataFrame(index=pd.Index(names, name="latent"))
    for name, v in {**cols, **targets}.items():
        other = pd.Series(v)
        out[name] = [zf[n].corr(other, method=method) if zf[n].std() > 1e-12 else np.nan for n in names]
    cat_cols = []
    for c in p.categorical_columns:
        groups = frame[c].astype(str).to_numpy()
        vals = zf.rank().to_numpy() if method == "spearman" else z
        out[c] = [_correlation_ratio(vals[:, k], groups) for k in range(len(names))]
        cat_cols.append(c)
    order = list(cols) + cat_cols + list(targets)
    out = out[order]
    out.attrs["categorical_columns"] = cat_cols
    out.attrs["method"] = method
    out.attrs["member"] = member
    return out


# --------------------------------------------------------------------------- active latents


@dataclass
class ActiveLatents:
    """Which latents of a stage carry information, per fold model.

    Rule: latent ``k`` of member ``m`` is *active* when both
    (1) its variance over the rows is at least ``threshold`` x the largest latent
    variance of that member, and (2) the L1 norm of its column in the encoder's
    last affine layer (the weights producing it) is at least ``weight_threshold``
    x the largest such norm of that member. A latent failing either is (nearly)
    constant: the decoder and heads can only read a bias from it.

    Arrays are (members, latents); ``members`` lists which fold models they hold.
    ``n_active`` is the median over members of their active counts (rounded
    half up): the number of informative latents of the ensemble.
    """

    stage: str
    latent_names: list[str]
    members: list[int]
    variance: np.ndarray
    relative_variance: np.ndarray
    weight_norm: np.ndarray
    relative_weight_norm: np.ndarray
    active: np.ndarray
    threshold: float
    weight_threshold: float
    n_rows: int
    rule: str = field(default="")

    @property
    def n_active_per_member(self) -> np.ndarray:
        """Active latents of each member (members,)."""
        return self.active.sum(axis=1)

    @property
    def n_active(self) -> int:
        """Median over members of the active counts (rounded half up)."""
        return int(np.floor(np.median(self.n_active_per_member) + 0.5))

    def frame(self) -> pd.DataFrame:
        """Long table: member, latent, variance, relative_variance, weight_norm, relative_weight_norm, active."""
        rows = []
        for a, m in enumerate(self.members):
            for k, name in enumerate(self.latent_names):
                rows.append(
                    {
                        "member": m,
                        "latent": name,
                        "variance": float(self.variance[a, k]),
                        "relative_variance": float(self.relative_variance[a, k]),
                        "weight_norm": float(self.weight_norm[a, k]),
                        "relative_weight_norm": float(self.relative_weight_norm[a, k]),
                        "active": bool(self.active[a, k]),
                    }
                )
        return pd.DataFrame(rows)


def active_latents(
    model: NestedAE,
    frame: pd.DataFrame,
    stage: int | str = 0,
    *,
    threshold: float = 1e-2,
    weight_threshold: float = 1e-2,
    member: int | None = None,
) -> ActiveLatents:
    """Count the latents that carry information (see :class:`ActiveLatents` for the rule).

    ``frame``: raw inputs of the stage (e.g. its training table; the stored
    background ``model.backgrounds[stage]`` works when no data is at hand).
    ``member``: one fold model, or None for all of them.
    """
    frame = _check_frame(frame)
    i = model.stage_index(stage)
    _check_member(model, member)
    if not 0 <= threshold < 1 or not 0 <= weight_threshold < 1:
        raise InputError("thresholds must be in [0, 1)")
    z = model.latents(i, frame)  # (M, n, L)
    var = z.var(axis=1) if len(frame) > 1 else np.zeros(z.shape[::2])
    last = model.nets[i].encoder.linear_layers()[-1]
    wn = last.weight.detach().abs().sum(dim=1).double().cpu().numpy()  # (M, L)
    members = list(range(model.members)) if member is None else [int(member)]
    var, wn = var[members], wn[members]
    rel_var = var / np.maximum(var.max(axis=1, keepdims=True), 1e-300)
    rel_w = wn / np.maximum(wn.max(axis=1, keepdims=True), 1e-300)
    active = (rel_var >= threshold) & (rel_w >= weight_threshold)
    rule = f"variance >= {threshold:g} x max and encoder column L1 norm >= {weight_threshold:g} x max (per member)"
    return ActiveLatents(
        stage=model.stage_names[i],
        latent_names=model.latent_names(i),
        members=members,
        variance=var,
        relative_variance=rel_var,
        weight_norm=wn,
        relative_weight_norm=rel_w,
        active=active,
        threshold=threshold,
        weight_threshold=weight_threshold,
        n_rows=len(frame),
        rule=rule,
    )


# --------------------------------------------------------------------------- traversal


@torch.no_grad()
def latent_traversal(
    model: NestedAE,
    frame_row: pd.DataFrame | pd.Series,
    stage: int | str,
    latent: int | str,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    member: int = 0,
) -> pd.DataFrame:
    """Move one latent of one fold model over ``values``, the others fixed at the row's latents.

    Returns one row per value: ``value``; every latent (``<stage>.z1`` ...);
    the decoded continuous inputs in raw units (descriptors; for a stage with
    upstream latents, those latents); for each categorical input its most
    probable category and that probability (``<input>_p``); and the targets in
    their units (``Gap``, ...). ``values`` default: 21 points spanning the
    latent's range over the model's stored background, widened by 10 %.
    """
    frame = _check_frame(frame_row)
    if len(frame) != 1:
        raise InputError(f"latent_traversal starts from one row; got {len(frame)}")
    i = model.stage_index(stage)
    _check_member(model, member, allow_none=False)
    k = _latent_index(model, i, latent)
    net = model.nets[i].eval()
    p = model.prep[i]
    z0 = model.latents(i, frame)[:, 0, :]  # (M, L)
    if values is None:
        zb = model.latents(i, model.backgrounds[i])[member, :, k] if len(model.backgrounds) > i else np.array([-1.0, 1.0])
        lo, hi = float(zb.min()), float(zb.max())
        pad = 0.1 * max(hi - lo, 1e-3)
        values = np.linspace(lo - pad, hi + pad, 21)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vals) == 0 or not np.isfinite(vals).all():
        raise InputError("values must be a non-empty sequence of finite numbers")
    Z = np.repeat(z0[:, None, :], len(vals), axis=1)  # (M, V, L)
    Z[member, :, k] = vals
    zt = torch.as_tensor(Z, dtype=torch.float32, device=model.device)
    cont, logits = net.decode(zt)
    up = model.latents(i - 1, frame) if has_ceilings(model.spec.stages[i]) else None
    # the member's own limits at the row (fixed along the traversal)
    ceilings = model.ceilings(i, up, pool=False, upstream_offsets=model.upstream_offsets(i, frame))
    if ceilings is not None:
        ceilings = ceilings.expand(-1, len(vals), -1)
    y = net.target_units(net.predict_from_latent(zt).double(), ceilings=ceilings).cpu().numpy()[member]
    if model.residual_pairs(i):  # residual targets: the previous stage's prediction on this row stays fixed along the traversal
        y = y + model.residual_offsets(i, model.latents(i - 1, frame))[member]
    out = pd.DataFrame({"value": vals})
    for j, name in enumerate(model.latent_names(i)):
        out[name] = Z[member, :, j]
    if cont is not None:
        c = cont.double().cpu().numpy()[member] * p.cont_scale[member] + p.cont_mean[member]
        for j, name in enumerate(model.input_names(i)[: p.layout.n_continuous]):
            out[name] = c[:, j]
    for col, cats, lg in zip(p.categorical_columns, p.categories, logits):
        prob = torch.softmax(lg[member].double(), dim=-1).cpu().numpy()
        best = prob.argmax(axis=1)
        out[col] = [cats[b] for b in best]
        out[f"{col}_p"] = prob[np.arange(len(vals)), best]
    for j, t in enumerate(p.target_columns):
        out[t] = y[:, j]
    out.attrs["latent"] = model.latent_names(i)[k]
    out.attrs["member"] = member
    out.attrs["units"] = {t.column: t.unit for t in model.spec.stages[i].targets}
    return out


# --------------------------------------------------------------------------- PCA


def pca_projection(
    model: NestedAE,
    frame: pd.DataFrame,
    stage: int | str = 0,
    n_components: int = 2,
    *,
    member: int | None = 0,
) -> pd.DataFrame:
    """Principal-component scores of a stage's latents over the rows of ``frame``.

    Returns a DataFrame (index = ``frame``'s index) with columns ``PC1`` ..
    ``PC<n>`` (dimensionless). ``.attrs`` holds ``explained_variance_ratio``
    (list, one share per component), ``components`` (list of lists, latent
    loadings) and ``latent_names``. ``member=None`` runs the PCA on all fold
    models' latents side by side (a map independent of any member's basis).
    """
    from sklearn.decomposition import PCA

    frame = _check_frame(frame)
    i = model.stage_index(stage)
    _check_member(model, member)
    if n_components not in (1, 2, 3):
        raise InputError("n_components must be 1, 2 or 3")
    z = model.latents(i, frame)  # (M, n, L)
    if member is None:
        X = np.concatenate(list(z), axis=1)
        names = [f"m{m}.{n}" for m in range(model.members) for n in model.latent_names(i)]
    else:
        X = z[member]
        names = model.latent_names(i)
    k = min(n_components, X.shape[0], X.shape[1])
    if k < n_components:
        raise InputError(f"{n_components} components need at least {n_components} rows; got {X.shape[0]}")
    pca = PCA(n_components=k, random_state=0).fit(X)
    scores = pca.transform(X)
    out = pd.DataFrame(scores, columns=[f"PC{j + 1}" for j in range(k)], index=frame.index)
    out.attrs["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    out.attrs["components"] = pca.components_.tolist()
    out.attrs["latent_names"] = names
    out.attrs["member"] = member
    return out


def factor_recovery(latents: np.ndarray, factors: pd.DataFrame, latent_names: list[str] | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """How well latents recover known factors (e.g. the synthetic set's ``true_z*``).

    Args:
        latents: (rows, L) latents of one model (e.g. ``model.latents(0, frame)[member]``).
        factors: (rows, K) true factor values, one column per factor.
        latent_names: names of the L latents (default ``z1..zL``).

    Returns:
        (Pearson r of each latent with each factor as an L x K DataFrame (NaN for a
        constant latent); R² of each factor from all latents together by least
        squares with an intercept). Latents recover factors *up to an invertible
        mix*, so single correlations can be partial while the R² is close to 1.
    """
    z = np.asarray(latents, dtype=np.float64)
    names = list(latent_names or [f"z{i + 1}" for i in range(z.shape[1])])
    zf = pd.DataFrame(z, columns=names, index=factors.index)
    corr = pd.DataFrame(
        {f: [zf[n].corr(factors[f]) if zf[n].std() > 1e-12 else np.nan for n in names] for f in factors.columns},
        index=names,
    )
    design = np.column_stack([z, np.ones(len(z))])
    r2 = {}
    for f in factors.columns:
        y = factors[f].to_numpy(dtype=np.float64)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        ss_tot = max(float(np.sum((y - y.mean()) ** 2)), 1e-300)
        r2[f] = 1.0 - float(np.sum((y - design @ coef) ** 2)) / ss_tot
    return corr, pd.Series(r2)


def traversal_sensitivity(traversal: pd.DataFrame, data: pd.DataFrame, inputs: Sequence[str]) -> pd.Series:
    """How much each decoded input moves along a latent traversal, most first.

    For every column of ``inputs`` present in ``traversal`` (:func:`latent_traversal` output): the range of its
    decoded value over the traversal divided by its standard deviation in ``data`` (the rows the stage was
    trained on; 1 where that is 0 or the column is absent), so inputs of different units compare. Dimensionless.
    """
    out: dict[str, float] = {}
    for c in inputs:
        if c not in traversal:
            continue
        values = pd.to_numeric(traversal[c], errors="coerce")
        sd = float(pd.to_numeric(data[c], errors="coerce").std()) if c in data else 0.0
        out[c] = float(values.max() - values.min()) / (sd if sd > 0 else 1.0)
    return pd.Series(out, dtype=float).sort_values(ascending=False, kind="stable")
