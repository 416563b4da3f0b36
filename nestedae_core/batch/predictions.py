"""Batch predictions: every row of a table through the chain, in the one output schema (see :mod:`nestedae_core.batch`)."""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, NestedAEError
from ..model.chain import NestedAE, StagePrediction
from ..model.intervals import DEFAULT_LEVEL
from ..predict import model_provenance, target_name
from ..query import composition_problem
from ..schema import STATS, stage_domain_key
from ..vocabulary import ETL, HTL, PHASE
from .tables import DEFAULT_CHUNK_ROWS, PROVENANCE_COLUMNS, BatchColumns, BatchSummary, _check_columns, _parse_rows, _rename_clashes, _stream

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- predictions


def predict_columns(model: NestedAE) -> list[str]:
    """The columns a batch prediction adds to the input's, in order (see the module docstring).

    The predictions come first (per target ``_mean``, ``_lower``, ``_upper``,
    ``_std``, in the chain's order), then whether the row is in the training
    domain and any row error, then the bookkeeping (row number, canonical
    formula, stacks used, interval level, per-stage domain flags, provenance).
    """
    cols: list[str] = []
    for st in model.spec.stages:
        for t in st.targets:
            name = target_name(st, t)
            cols += [f"{name}_{part}" for part in STATS]
    cols += ["in_domain", "domain_message", "error", "row", "composition", "etl", "htl", "phase", "stacks_defaulted",
             "interval_level", "domain_stage", *(stage_domain_key(st.name) for st in model.spec.stages), *PROVENANCE_COLUMNS]
    return cols


def _empty_like(columns: list[str], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(np.nan, index=index, dtype=float) for c in columns})


def _predict_distinct(model: NestedAE, frame: pd.DataFrame, level: float) -> dict[str, StagePrediction]:
    """``model.predict(frame)``, each distinct query (canonical formula + categorical inputs) predicted once.

    A file of one composition spelled many ways, or repeated with a few stacks,
    costs a handful of predictions; the rows get their query's prediction back.
    """
    keys = ["formula", *(c for p in model.prep for c in p.categorical_columns if c in frame.columns)]
    codes = frame.groupby(list(dict.fromkeys(keys)), sort=False, dropna=False).ngroup().to_numpy()
    first = np.unique(codes, return_index=True)[1]  # ngroup numbers groups by first appearance
    if len(first) == len(frame):
        return model.predict(frame, level=level)
    preds = model.predict(frame.iloc[first], level=level)
    return {name: replace(sp, members=sp.members[:, codes], latents=sp.latents[:, codes], domain_distance=sp.domain_distance[codes],
                          in_domain=sp.in_domain[codes], lower=None if sp.lower is None else sp.lower[codes],
                          upper=None if sp.upper is None else sp.upper[codes],
                          domain_reason=[sp.domain_reason[k] for k in codes] if sp.domain_reason else [])
            for name, sp in preds.items()}


def predict_rows(
    model: NestedAE,
    table: pd.DataFrame,
    columns: BatchColumns,
    *,
    level: float = DEFAULT_LEVEL,
    first_row: int = 1,
    _cache: dict[str, Any] | None = None,
    _provenance: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Predict every row of ``table`` (cells as text or values); a bad row gets an ``error``, never an exception.

    Returns the input's formula column, then :func:`predict_columns` (predictions
    first), then the other input columns (a clashing one renamed ``input_<name>``). ``first_row``: the number of the table's first row
    (``row`` column). Raises :class:`InputError` only for what concerns the whole
    table: a missing column, or a model that takes no composition.
    """
    _check_columns(table, columns)
    if (problem := composition_problem(model)) is not None:
        raise InputError(problem)
    table = table.reset_index(drop=True)
    parsed = _parse_rows(model, table.astype(str).where(table.notna(), ""), columns, {} if _cache is None else _cache)
    out_cols = predict_columns(model)
    out = _empty_like(out_cols, table.index)
    for c in ("composition", "etl", "htl", "phase", "domain_stage", "domain_message", "model_name", "model_sha256", "nestedae_version"):
        out[c] = ""
    for c in ("in_domain", *(stage_domain_key(st.name) for st in model.spec.stages)):
        out[c] = pd.Series([None] * len(table), index=table.index, dtype=object)
    out["row"] = np.arange(first_row, first_row + len(table))
    out["stacks_defaulted"] = parsed.defaulted
    errors = list(parsed.errors)
    frame = parsed.frame
    if frame is not None and len(frame):
        idx = frame.index
        try:
            preds = _predict_distinct(model, frame, level)
        except NestedAEError:
            preds = None
        if preds is None:  # isolate the failing rows
            for i in list(idx):
                one = predict_rows(model, table.iloc[[i]], columns, level=level, first_row=first_row + i, _cache=_cache,
                                   _provenance=_provenance)
                errors[i] = one["error"].iloc[0] if "error" in one else ""
                for c in out_cols:
                    if c not in ("row", "error"):
                        out.at[i, c] = one[c].iloc[0]
        else:
            out.loc[idx, "composition"] = frame["formula"].to_numpy()
            if ETL in frame:
                out.loc[idx, "etl"] = frame[ETL].to_numpy()
            if HTL in frame:
                out.loc[idx, "htl"] = frame[HTL].to_numpy()
            if PHASE in frame:  # the crystal phase of the DFT gaps (blank for a model without one)
                out.loc[idx, "phase"] = frame[PHASE].to_numpy()
            inside = np.ones(len(frame), dtype=bool)
            stage_out = np.full(len(frame), "", dtype=object)
            message = np.full(len(frame), "", dtype=object)
            for st in model.spec.stages:
                sp = preds.get(st.name)
                if sp is None:
                    continue
                for j, t in enumerate(st.targets):
                    name = target_name(st, t)
                    out.loc[idx, f"{name}_mean"] = sp.mean[:, j]
                    out.loc[idx, f"{name}_std"] = sp.std[:, j]
                    if sp.lower is not None and sp.upper is not None:
                        out.loc[idx, f"{name}_lower"] = sp.lower[:, j]
                        out.loc[idx, f"{name}_upper"] = sp.upper[:, j]
                        out.loc[idx, "interval_level"] = sp.level
                out.loc[idx, stage_domain_key(st.name)] = pd.Series(np.asarray(sp.in_domain, dtype=bool), index=idx, dtype=object)
                first_time = inside & ~np.asarray(sp.in_domain, dtype=bool)
                stage_out[first_time] = st.name
                message[first_time] = np.asarray(sp.domain_reason, dtype=object)[first_time]
                inside &= np.asarray(sp.in_domain, dtype=bool)
            out.loc[idx, "in_domain"] = pd.Series(inside, index=idx, dtype=object)
            out.loc[idx, "domain_stage"] = stage_out
            out.loc[idx, "domain_message"] = message
    out["error"] = errors
    prov = _provenance or model_provenance(model)
    ok = out["error"] == ""
    out.loc[ok, "model_name"] = str(prov.get("name") or "")
    out.loc[ok, "model_sha256"] = str(prov.get("bundle_sha256") or "")
    out.loc[ok, "nestedae_version"] = str(prov.get("version") or "")
    # failed rows still say which model was asked
    out.loc[~ok, "model_name"] = str(prov.get("name") or "")
    out.loc[~ok, "model_sha256"] = str(prov.get("bundle_sha256") or "")
    out.loc[~ok, "nestedae_version"] = str(prov.get("version") or "")
    inputs = _rename_clashes(table, out_cols)
    formula = inputs.columns[list(table.columns).index(columns.formula)]
    return pd.concat([inputs[[formula]], out[out_cols], inputs.drop(columns=[formula])], axis=1)



def predict_csv(
    model: NestedAE,
    source: Any,
    out_path: str | os.PathLike[str],
    columns: BatchColumns,
    *,
    level: float = DEFAULT_LEVEL,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> BatchSummary:
    """Predict every row of the CSV ``source`` (path or file object) into the CSV ``out_path``.

    Streams: ``chunk_rows`` rows in memory at a time. The output replaces
    ``out_path`` only when every row was written (temp file + rename). Returns a
    :class:`BatchSummary` (rows read, rows failed, the first errors). Raises
    :class:`InputError` for a missing column, an unreadable or empty input, or an
    output that cannot be written (one line saying what to do).
    """
    cache: dict[str, Any] = {}
    prov = model_provenance(model)
    return _stream(source, out_path, columns, chunk_rows,
                   lambda chunk, first: predict_rows(model, chunk, columns, level=level, first_row=first, _cache=cache, _provenance=prov))
