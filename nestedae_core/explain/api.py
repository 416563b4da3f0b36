"""The public explanations of a trained chain: which output, w.r.t. which inputs.

What is explained: see :mod:`.explained_function` (raw inputs; one column per
categorical input; upstream latents per member), with the background of
:mod:`.background` and the methods of :mod:`.methods`.

The kinds (public functions):

(a) :func:`explain_stage_output`: any target or latent of a stage w.r.t. that
    stage's own inputs (upstream latents as given values) or end to end;
(b) :func:`explain_latents`: each latent of a stage w.r.t. that stage's inputs;
(d) :func:`explain_chain`: the last stage's first target as a function of the raw
    inputs of the whole chain, end to end;
(e) every function takes ``member``: ``None`` explains the fold-ensemble mean
    (attributions add up to the ensemble-mean prediction; by linearity of Shapley
    values they are the mean of the members' attributions), an integer explains
    that fold model alone. Latent indices are NOT aligned across fold models
    (each member learnt its own latent basis), so :func:`explain_latents`
    defaults to ``member=0``.

:func:`explain_stage_output` is the general form; :func:`explain_function`
explains any numpy callable with the same machinery (used by the tests and the
teaching pages); :func:`model_function` hands out the explained function itself.
The perovskite shortcuts (band gap, PCE, found by column) are in
:mod:`nestedae_core.perovskite.explain`; nothing here knows a column name: rows
are labelled by the first of ``label_columns`` a frame has (default: the
registered table source's, :func:`nestedae_core.train.tables.table_source`), else by
their index.

Units: attributions and base values are in the explained output's unit (a
target's unit, latents dimensionless); inputs keep their raw units.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from ..threads import limit_cpu_threads
from ..train.tables import table_source
from .attribution import Attribution
from .background import background_multiset, multiset_size, stored_background
from .explained_function import ExplainedFunction, InputSpace
from .methods import Method, check_method, choose_auto, run_method
from .settings import ExplainSettings
from .shap_backend import shap_values

__all__ = [
    "explain_latents",
    "explain_chain",
    "explain_stage_output",
    "explain_function",
    "model_function",
]


def _row_labels(frame: pd.DataFrame, label_columns: Sequence[str] | None = None) -> list[str]:
    for c in (table_source().label_columns if label_columns is None else label_columns):
        if c in frame.columns:
            return frame[c].astype(str).tolist()
    return [str(i) for i in frame.index]


def as_frame(frame: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """The rows to explain as a non-empty frame (a Series is one row)."""
    if isinstance(frame, pd.Series):
        return frame.to_frame().T.infer_objects()
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of raw inputs, got {type(frame).__name__}")
    if len(frame) == 0:
        raise InputError("the frame to explain has no rows")
    return frame


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
    label_columns: Sequence[str] | None = None,
) -> list[Attribution]:
    settings = settings or ExplainSettings()
    i = model.stage_index(stage)
    if inputs not in ("stage", "chain"):
        raise InputError("inputs must be 'stage' or 'chain'")
    frame = as_frame(frame)
    resolved = [_resolve_output(model, i, o) for o in outputs]
    fn = ExplainedFunction(model, i, inputs, [(r[0], r[1]) for r in resolved], member, settings)
    background, weights = stored_background(model, i)
    res = run_method(fn, frame, method, background, weights)
    cats = fn.categories
    labels = _row_labels(frame, label_columns)
    out = []
    for k, (_, _, name, label, unit) in enumerate(resolved):
        out.append(
            Attribution(
                values=res.values[:, :, k].copy(),
                base_values=res.base[:, k].copy(),
                data=res.data.copy(),
                feature_names=list(fn.names),
                output=name,
                unit=unit,
                explainer=res.method,
                seconds=res.seconds,
                predictions=res.predictions[:, k].copy(),
                label=label,
                stage=model.stage_names[i],
                inputs=fn.inputs,
                member=member,
                categories=cats,
                row_labels=labels,
                background_size=res.background_size,
                details=dict(res.details),
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
    label_columns: Sequence[str] | None = None,
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
        label_columns: columns that name a row (first found wins; default
            the table source's), for :attr:`Attribution.row_labels`.
    """
    return _explain(model, stage, [output], frame, inputs=inputs, method=method, member=member, settings=settings,
                    label_columns=label_columns)[0]


def explain_latents(
    model: NestedAE,
    frame: pd.DataFrame,
    stage: int | str = 0,
    *,
    method: Method = "auto",
    member: int | None = 0,
    inputs: InputSpace = "stage",
    settings: ExplainSettings | None = None,
    label_columns: Sequence[str] | None = None,
) -> dict[str, Attribution]:
    """(b) Every latent of a stage w.r.t. its inputs, in one explainer pass.

    Returns latent name -> :class:`Attribution` (dimensionless). ``member``
    defaults to fold model 0: latent ``k`` of one fold model has nothing to do
    with latent ``k`` of another, so their mean (``member=None``) is additive but
    hard to interpret.
    """
    i = model.stage_index(stage)
    names = model.latent_names(i)
    atts = _explain(model, i, list(names), frame, inputs=inputs, method=method, member=member, settings=settings,
                    label_columns=label_columns)
    return dict(zip(names, atts))


def _last_stage_with_upstream(model: NestedAE) -> int:
    i = len(model.spec.stages) - 1
    if i == 0:
        raise InputError("this model has a single stage; explain its target with explain_stage_output")
    return i


def explain_chain(
    model: NestedAE,
    frame: pd.DataFrame,
    *,
    method: Method = "auto",
    member: int | None = None,
    settings: ExplainSettings | None = None,
    label_columns: Sequence[str] | None = None,
) -> Attribution:
    """(d) The last stage's first target end to end: w.r.t. the raw inputs of the whole
    chain (e.g. PCE w.r.t. the atomic descriptors + ETL + HTL)."""
    return explain_stage_output(model, _last_stage_with_upstream(model), 0, frame, inputs="chain", method=method, member=member, settings=settings,
                                label_columns=label_columns)


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
    fn = ExplainedFunction(model, i, inputs, [(kind, k)], member, settings)
    if fn.latent_cols:
        raise InputError("model_function needs inputs='chain' for a stage that consumes upstream latents")
    return fn, list(fn.names), fn.categories


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
    multiset described in :mod:`nestedae_core.explain.background` (``background_size`` rows,
    default B). For a linear ``f(x) = w.x + c`` with this independent background
    the exact values are ``w_j (x_j - E_background[x_j])``.
    """
    settings = settings or ExplainSettings()
    check_method(method)
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
        method = choose_auto(settings, len(X), F, len(bg))
    size = multiset_size(settings, len(bg), method, F)
    _, _, multiset = background_multiset(bg, w, size)
    with limit_cpu_threads(settings.threads):
        t0 = time.perf_counter()
        values, base, details = shap_values(f, X, multiset, method, settings, 1)
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
