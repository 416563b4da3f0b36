"""Batch explanations: the attributions of every row of a table, long or wide (see :mod:`nestedae_core.batch`)."""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model.chain import NestedAE
from ..perovskite.fidelity import target_fidelity
from ..predict import model_provenance, target_name
from ..query import composition_problem
from ..vocabulary import ETL, HTL
from .isolate import split_failures
from .tables import DEFAULT_EXPLAIN_CHUNK_ROWS, PROVENANCE_COLUMNS, BatchColumns, BatchSummary, ExplainFormat, _check_columns, _parse_rows, _rename_clashes, _stream

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- explanations


def _measured_gap(model: NestedAE) -> tuple[int, str] | None:
    """(stage index, column) of a measured-scale band gap after the first stage, else None."""
    for i, st in enumerate(model.spec.stages[1:], start=1):
        for t in st.targets:
            if target_fidelity(st, t) == "measured":
                return i, t.column
    return None


def explain_outputs(model: NestedAE, frame: pd.DataFrame, *, method: str = "auto") -> dict[str, Any]:
    """Attributions of the outputs ``nestedae explain`` shows, for every row of a raw-input table.

    Returns key -> :class:`~nestedae_core.explain.Attribution`, keyed exactly as
    ``nestedae predict --json`` keys the same quantity (:mod:`nestedae_core.schema`),
    in this order: the first stage's band gap w.r.t. its own inputs (e.g.
    ``bandgap_pbe_eV``), then the measured-scale gap ``bandgap_eV`` end to end
    (when a later stage predicts one) and the last stage's first output, e.g.
    ``pce_percent``, end to end (descriptors + ETL + HTL; absent for a one-stage
    model). Attributions are in the output's unit (eV, %).
    """
    from ..explain import explain_chain, explain_stage_output
    from ..perovskite.explain import explain_bandgap

    results: dict[str, Any] = {}
    first = explain_bandgap(model, frame, method=method)  # type: ignore[arg-type]
    results[_output_name(model, first.stage, first.output)] = first
    if (measured := _measured_gap(model)) is not None:
        att = explain_stage_output(model, measured[0], measured[1], frame, inputs="chain", method=method)  # type: ignore[arg-type]
        results[_output_name(model, att.stage, att.output)] = att
    if len(model.spec.stages) > 1:
        att = explain_chain(model, frame, method=method)  # type: ignore[arg-type]
        results[_output_name(model, att.stage, att.output)] = att
    return results


def _output_name(model: NestedAE, stage: str, output: str) -> str:
    st = next(s for s in model.spec.stages if s.name == stage)
    t = next((t for t in st.targets if t.column == output), None)
    return target_name(st, t) if t is not None else output


_LONG = ["row", "composition", "etl", "htl", "output", "output_label", "stage", "inputs", "explainer", "feature",
         "input_value", "attribution", "unit", "base_value", "prediction"]


def explain_rows(
    model: NestedAE,
    table: pd.DataFrame,
    columns: BatchColumns,
    *,
    fmt: ExplainFormat = "long",
    method: str = "auto",
    first_row: int = 1,
    _cache: dict[str, Any] | None = None,
    _provenance: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Attributions for every row of ``table``; a bad row gets an ``error``, never an exception.

    ``long``: one line per (row, output, feature): ``row``, ``composition``,
    ``etl``, ``htl``, ``output`` (e.g. ``bandgap_pbe_eV``,
    ``pce_percent``), ``output_label``, ``stage``, ``inputs`` (``stage`` or
    ``chain``), ``explainer``, ``feature``, ``input_value``, ``attribution``,
    ``unit``, ``base_value``, ``prediction``, ``error``, provenance; a failed row
    is one line with its ``error``. ``wide``: the input columns, then per row
    ``<output>_base``, ``<output>_prediction`` and ``<output>__<feature>`` (the
    attribution), ``explainer``, ``error``, provenance. ``base + sum(attributions)
    = prediction`` (output unit).
    """
    if fmt not in ("long", "wide"):
        raise InputError(f"format must be 'long' or 'wide', not '{fmt}'")
    _check_columns(table, columns)
    if (problem := composition_problem(model)) is not None:
        raise InputError(problem)
    table = table.reset_index(drop=True)
    parsed = _parse_rows(model, table.astype(str).where(table.notna(), ""), columns, {} if _cache is None else _cache)
    errors = list(parsed.errors)
    prov = _provenance or model_provenance(model)
    results: dict[str, Any] = {}
    frame = parsed.frame
    if frame is not None and len(frame):
        whole = frame
        parts, failed = split_failures(list(whole.index), lambda rows: explain_outputs(
            model, whole if len(rows) == len(whole) else whole.loc[rows], method=method))
        if len(whole) == 1 and failed:
            raise next(iter(failed.values()))
        for i, exc in failed.items():
            errors[i] = str(exc)
        if len(parts) == 1 and not failed:
            results = parts[0][1]
        else:
            frame = whole.loc[[i for rows, _ in parts for i in rows]] if parts else None
            results = _stack_attributions([r for _, r in parts]) if parts else {}
    prov_cols = {"model_name": str(prov.get("name") or ""), "model_sha256": str(prov.get("bundle_sha256") or ""),
                 "nestedae_version": str(prov.get("version") or "")}
    pos = {i: k for k, i in enumerate(frame.index)} if frame is not None else {}
    if fmt == "long":
        lines: list[dict[str, Any]] = []
        for i in range(len(table)):
            base = {"row": first_row + i}
            if errors[i] or i not in pos:
                lines.append({**base, "error": errors[i] or "not explained", **prov_cols})
                continue
            k = pos[i]
            assert frame is not None
            for att in results.values():
                disp = att.display_data[k]
                for j, feat in enumerate(att.feature_names):
                    lines.append({**base, "composition": frame["formula"].iloc[k], "etl": frame[ETL].iloc[k] if ETL in frame else "",
                                  "htl": frame[HTL].iloc[k] if HTL in frame else "",
                                  "output": _output_name(model, att.stage, att.output), "output_label": att.label, "stage": att.stage,
                                  "inputs": att.inputs, "explainer": att.explainer, "feature": feat, "input_value": disp[j],
                                  "attribution": float(att.values[k, j]), "unit": att.unit, "base_value": float(att.base_values[k]),
                                  "prediction": float(att.predictions[k]), "error": "", **prov_cols})
        return pd.DataFrame(lines, columns=[*_LONG, "error", *PROVENANCE_COLUMNS])
    # wide
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(table))})
    out["composition"] = ""
    out["etl"] = ""
    out["htl"] = ""
    good = [i for i in range(len(table)) if i in pos and not errors[i]]
    if frame is not None and good:
        ks = [pos[i] for i in good]
        out.loc[good, "composition"] = frame["formula"].to_numpy()[ks]
        if ETL in frame:
            out.loc[good, "etl"] = frame[ETL].to_numpy()[ks]
        if HTL in frame:
            out.loc[good, "htl"] = frame[HTL].to_numpy()[ks]
    explainers = []
    for att in _wide_template(model, results):
        name = _output_name(model, att.stage, att.output)
        out[f"{name}_base"] = np.nan
        out[f"{name}_prediction"] = np.nan
        for feat in att.feature_names:
            out[f"{name}__{feat}"] = np.nan
        if good and att.n_rows:
            ks = [pos[i] for i in good]
            out.loc[good, f"{name}_base"] = att.base_values[ks]
            out.loc[good, f"{name}_prediction"] = att.predictions[ks]
            for j, feat in enumerate(att.feature_names):
                out.loc[good, f"{name}__{feat}"] = att.values[ks, j]
            explainers.append(att.explainer)
    out["explainer"] = ""
    if good:
        out.loc[good, "explainer"] = ";".join(dict.fromkeys(explainers))
    out["error"] = [e if e or i in pos else "not explained" for i, e in enumerate(errors)]
    for c, v in prov_cols.items():
        out[c] = v
    inputs = _rename_clashes(table, out.columns)
    return pd.concat([inputs, out], axis=1)


def _wide_template(model: NestedAE, results: dict[str, Any]) -> list[Any]:
    """The attributions of ``results``, or empty stand-ins naming the same outputs and features (all rows failed)."""
    if results:
        return list(results.values())
    from ..explain.attribution import Attribution

    names = _explain_feature_names(model)
    return [Attribution(values=np.zeros((0, len(f))), base_values=np.zeros(0), data=np.zeros((0, len(f))), feature_names=f,
                        output=o, unit="", explainer="", seconds=0.0, predictions=np.zeros(0), stage=s) for s, o, f in names]


def _explain_feature_names(model: NestedAE) -> list[tuple[str, str, list[str]]]:
    """(stage, output, features) of each output :func:`explain_outputs` explains, without explaining."""
    from ..explain.explained_function import ExplainedFunction
    from ..explain.settings import ExplainSettings

    specs: list[tuple[int, str, str]] = [(0, model.spec.stages[0].targets[0].column, "stage")]
    if (m := _measured_gap(model)) is not None:
        specs.append((m[0], m[1], "chain"))
    if len(model.spec.stages) > 1:
        last = len(model.spec.stages) - 1
        specs.append((last, model.spec.stages[last].targets[0].column, "chain"))
    out = []
    for i, col, inputs in specs:
        j = [t.column for t in model.spec.stages[i].targets].index(col)
        fn = ExplainedFunction(model, i, inputs, [("target", j)], None, ExplainSettings())  # type: ignore[arg-type]
        out.append((model.spec.stages[i].name, col, list(fn.names)))
    return out


def _stack_attributions(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Attributions of several explanations (of consecutive parts of a table) as one multi-row result per key."""
    import dataclasses

    out: dict[str, Any] = {}
    for key in parts[0]:
        atts = [p[key] for p in parts]
        a0 = atts[0]
        out[key] = dataclasses.replace(
            a0,
            values=np.concatenate([a.values for a in atts]),
            base_values=np.concatenate([a.base_values for a in atts]),
            data=np.concatenate([a.data for a in atts]),
            predictions=np.concatenate([a.predictions for a in atts]),
            row_labels=[lbl for a in atts for lbl in a.row_labels],
            # ``auto`` chooses by row count, so parts of another size may use another explainer: name every one
            explainer="/".join(dict.fromkeys(a.explainer for a in atts)),
            seconds=float(sum(a.seconds for a in atts)),
        )
    return out


def explain_csv(
    model: NestedAE,
    source: Any,
    out_path: str | os.PathLike[str],
    columns: BatchColumns,
    *,
    fmt: ExplainFormat = "long",
    method: str = "auto",
    chunk_rows: int = DEFAULT_EXPLAIN_CHUNK_ROWS,
) -> BatchSummary:
    """Explain every row of the CSV ``source`` into the CSV ``out_path`` (``long`` or ``wide``, see :func:`explain_rows`).

    Streams ``chunk_rows`` rows at a time; the output replaces ``out_path`` only
    when complete. Returns a :class:`BatchSummary`.
    """
    if fmt not in ("long", "wide"):
        raise InputError(f"format must be 'long' or 'wide', not '{fmt}'")
    cache: dict[str, Any] = {}
    prov = model_provenance(model)
    return _stream(source, out_path, columns, chunk_rows,
                   lambda chunk, first: explain_rows(model, chunk, columns, fmt=fmt, method=method, first_row=first, _cache=cache,
                                                     _provenance=prov))
