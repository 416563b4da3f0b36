"""Batch predictions: every row of a table through the chain, in the one output schema (see :mod:`nestedae_core.batch`)."""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE, StagePrediction
from ..model.intervals import DEFAULT_LEVEL
from ..predict import model_provenance, target_name
from ..query import composition_problem
from ..schema import STATS, stage_domain_key
from ..vocabulary import ETL, HTL, PHASE
from .isolate import split_failures
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


def _fill_predictions(data: dict[str, np.ndarray], model: NestedAE, frame: pd.DataFrame, preds: dict[str, StagePrediction]) -> None:
    """Write the predictions of ``frame``'s rows (their index: positions in ``data``'s arrays) into ``data``, in place."""
    idx = frame.index.to_numpy()
    data["composition"][idx] = frame["formula"].to_numpy(dtype=object)
    for c, col in (("etl", ETL), ("htl", HTL), ("phase", PHASE)):  # the phase of the DFT gaps (blank without one)
        if col in frame:
            data[c][idx] = frame[col].to_numpy(dtype=object)
    inside = np.ones(len(frame), dtype=bool)
    stage_out = np.full(len(frame), "", dtype=object)
    message = np.full(len(frame), "", dtype=object)
    for st in model.spec.stages:
        sp = preds.get(st.name)
        if sp is None:
            continue
        for j, t in enumerate(st.targets):
            name = target_name(st, t)
            data[f"{name}_mean"][idx] = sp.mean[:, j]
            data[f"{name}_std"][idx] = sp.std[:, j]
            if sp.lower is not None and sp.upper is not None:
                data[f"{name}_lower"][idx] = sp.lower[:, j]
                data[f"{name}_upper"][idx] = sp.upper[:, j]
                data["interval_level"][idx] = sp.level
        ok_stage = np.asarray(sp.in_domain, dtype=bool)
        data[stage_domain_key(st.name)][idx] = ok_stage.tolist()  # Python bools
        first_time = inside & ~ok_stage
        stage_out[first_time] = st.name
        message[first_time] = np.asarray(sp.domain_reason, dtype=object)[first_time]
        inside &= ok_stage
    data["in_domain"][idx] = inside.tolist()
    data["domain_stage"][idx] = stage_out
    data["domain_message"][idx] = message


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
    n = len(table)
    # the output columns as arrays, filled in place, made a frame once (no per-column pandas assignment)
    data: dict[str, np.ndarray] = {c: np.full(n, np.nan) for c in out_cols}
    for c in ("composition", "etl", "htl", "phase", "domain_stage", "domain_message"):
        data[c] = np.full(n, "", dtype=object)
    for c in ("in_domain", *(stage_domain_key(st.name) for st in model.spec.stages)):
        data[c] = np.full(n, None, dtype=object)
    data["row"] = np.arange(first_row, first_row + n)
    data["stacks_defaulted"] = np.array(parsed.defaulted, dtype=object)
    errors = list(parsed.errors)
    frame = parsed.frame
    if frame is not None and len(frame):
        rows_of = lambda rows: frame if len(rows) == len(frame) else frame.loc[rows]  # noqa: E731 (no copy when whole)
        parts, failed = split_failures(frame.index.tolist(), lambda rows: _predict_distinct(model, rows_of(rows), level))
        for i, exc in failed.items():
            errors[i] = str(exc)
        for rows, preds in parts:
            _fill_predictions(data, model, rows_of(rows), preds)
    data["error"] = np.array(errors, dtype=object)
    prov = _provenance or model_provenance(model)
    for c, key in zip(PROVENANCE_COLUMNS, ("name", "bundle_sha256", "version")):  # failed rows too say which model was asked
        data[c] = np.full(n, str(prov.get(key) or ""), dtype=object)
    out = pd.DataFrame(data, index=table.index, columns=out_cols)
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
