"""Batch predictions and explanations: a table of compositions (and device stacks) in, a table out.

One input row is one query: a formula column and, optionally, an ETL and an HTL
column (a blank cell takes the model's most common stack, as a single query does).
The output keeps every input column and adds, per row:

* ``row``: the input's data row number (1 = the first row under the header);
* ``composition``: the canonical formula; ``etl`` / ``htl``: the stacks used;
  ``stacks_defaulted``: the stacks that took their default (``;``-separated,
  e.g. ``etl;htl``);
* per target, ``<key>_mean``, ``_lower`` and ``_upper`` (the prediction interval
  at ``interval_level``; blank without calibration) and ``_std`` (the fold
  models' disagreement). ``<key>`` is the quantity's name in every output
  (:mod:`nestedae_core.schema`): ``bandgap_eV`` (measured), ``bandgap_pbe_eV``,
  ``bandgap_hse_soc_eV``, ``pce_percent``, ``voc_V``, ``jsc_mA_per_cm2``, ``ff``;
* ``in_domain``, ``domain_stage`` (the first stage whose training domain the row
  leaves, blank inside), ``domain_message`` (why) and ``<stage>_in_domain`` per stage;
* ``error``: blank for a row that was predicted, else one line naming the column
  and what is wrong (the prediction columns are then blank);
* ``model_name``, ``model_sha256`` (of the bundle's ``manifest.json``) and
  ``nestedae_version``: the model that produced the row
  (:func:`nestedae_core.predict.model_provenance`). Provenance is in columns, not
  a comment line, so every CSV reader reads the file as it is.

An input column whose name clashes with an output column is kept as
``input_<name>``. A bad row never stops the file: its ``error`` says why and the
rest are predicted. Files are read and written in chunks (``chunk_rows``), so
memory stays bounded whatever the number of rows, and the output is written to
a temp file renamed at the end (:mod:`nestedae_core.io_safe`): a failure leaves
no partial file. In the CSV written, a text cell a spreadsheet would run as a
formula (``=``, ``+``, ``-``, ``@``...) gets a ``'`` in front; the input read is
bounded in columns and line length (:mod:`nestedae_core.csv_safe`).

Explanations (:func:`explain_csv`, :func:`explain_rows`) come ``long`` (one line
per row, output and feature) or ``wide`` (one line per row, a column per output
and feature). Units: band gaps eV, PCE %, other targets their own unit;
attributions in the explained output's unit.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .chemistry.composition import Composition, parse_formula
from .errors import InputError, NestedAEError
from .model.chain import NestedAE
from .perovskite.fidelity import target_fidelity
from .model.intervals import DEFAULT_LEVEL
from .predict import model_provenance, target_name
from .query import composition_problem, query_frame
from .schema import STATS, input_key, stage_domain_key
from .vocabulary import ETL, HTL

__all__ = [
    "BatchColumns",
    "BatchSummary",
    "DEFAULT_CHUNK_ROWS",
    "DEFAULT_EXPLAIN_CHUNK_ROWS",
    "ExplainFormat",
    "PROVENANCE_COLUMNS",
    "explain_csv",
    "explain_outputs",
    "explain_rows",
    "predict_columns",
    "predict_csv",
    "predict_rows",
    "read_table",
    "read_small_table",
]

logger = logging.getLogger(__name__)

#: Rows read, predicted and written at a time by :func:`predict_csv`.
DEFAULT_CHUNK_ROWS = 5000
#: Rows explained at a time by :func:`explain_csv` (explaining costs far more per row).
DEFAULT_EXPLAIN_CHUNK_ROWS = 200
#: Provenance columns of every batch output.
PROVENANCE_COLUMNS = ("model_name", "model_sha256", "nestedae_version")
#: ``long``: one line per (row, output, feature); ``wide``: one line per row.
ExplainFormat = Literal["long", "wide"]
#: Parsed formulas remembered across chunks (repeated formulas are parsed once); cleared when full.
_CACHE_SIZE = 2048
#: The most row errors kept in a :class:`BatchSummary`.
_KEPT_ERRORS = 5


@dataclass(frozen=True)
class BatchColumns:
    """Which input columns hold the query: the formula, and optionally the ETL and HTL stacks."""

    formula: str
    etl: str | None = None
    htl: str | None = None

    def required(self) -> list[str]:
        """The input columns that must be present."""
        return [c for c in (self.formula, self.etl, self.htl) if c]


@dataclass
class BatchSummary:
    """What a batch run did: ``rows`` read, ``failed`` rows (with an ``error``), the first errors."""

    rows: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def succeeded(self) -> int:
        """Rows predicted (or explained) without error."""
        return self.rows - self.failed

    def message(self) -> str:
        """One line: ``3 of 40 rows failed (first: row 5: ...)``, or ``all 40 rows predicted``."""
        if not self.failed:
            return f"all {self.rows} rows done"
        first = f" (first: {self.errors[0]})" if self.errors else ""
        return f"{self.failed} of {self.rows} rows failed; see the error column{first}"

    def _add(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        bad = frame[frame["error"] != ""]
        self.failed += len(bad)
        for r, e in zip(bad["row"], bad["error"]):
            if len(self.errors) >= _KEPT_ERRORS:
                break
            self.errors.append(f"row {r}: {e}")


# --------------------------------------------------------------------------- reading


def _check_columns(frame: pd.DataFrame, columns: BatchColumns) -> None:
    missing = [c for c in columns.required() if c not in frame.columns]
    if missing:
        have = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise InputError(f"column {', '.join(repr(c) for c in missing)} not found in the input; its columns are: {have}")


def read_table(source: Any, columns: BatchColumns, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The rows of a CSV (path or file object) in chunks of ``chunk_rows``, every cell as text.

    Blank cells are empty strings (no value is turned into NaN: a formula ``NA``
    stays ``NA``). Raises :class:`InputError` when a column of ``columns`` is
    missing (naming the columns the file has), the file is not a readable CSV,
    or its shape is out of bounds: the header is checked before pandas reads
    anything (at most :data:`~nestedae_core.csv_safe.MAX_COLUMNS` columns) and
    every line is at most :data:`~nestedae_core.csv_safe.MAX_LINE_BYTES` long.
    """
    from .csv_safe import open_checked

    if chunk_rows < 1:
        raise InputError("chunk_rows must be at least 1")
    try:
        first = True
        with open_checked(source) as stream, pd.read_csv(stream, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                                                         skipinitialspace=False) as reader:
            for chunk in reader:
                if first:
                    _check_columns(chunk, columns)
                    first = False
                yield chunk
        if first:  # header only, or an empty file: check the header anyway
            header = pd.read_csv(source, dtype=str, nrows=0) if isinstance(source, (str, os.PathLike)) else None
            if header is not None:
                _check_columns(header, columns)
    except pd.errors.EmptyDataError:
        raise InputError("the input CSV is empty; give a header line naming the columns, then one row per query") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"the input is not a readable CSV: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise InputError("the input CSV is not UTF-8 text; save it as CSV UTF-8 and try again") from None
    except OSError as exc:  # the input, not the output: say so (an OSError here would read as a write failure)
        where = exc.filename or source
        raise InputError(f"cannot read the input {where}: {exc.strerror or exc}; check the path") from None


def read_small_table(data: bytes | str, *, max_rows: int = 5000, name: str = "the table") -> pd.DataFrame:
    """A whole table from CSV text or bytes (an upload, or cells pasted from a spreadsheet: tab-separated), every cell as text.

    The same reading rules as :func:`read_table`. Raises :class:`InputError`
    for an empty or unreadable table, for more than ``max_rows`` rows (the
    message points to ``nestedae predict --csv`` for big files), and, before
    the table is decoded or parsed, for a shape out of bounds (more than
    :data:`~nestedae_core.csv_safe.MAX_COLUMNS` columns, a line longer than
    :data:`~nestedae_core.csv_safe.MAX_LINE_BYTES`). ``name`` names the table in
    the messages (e.g. the uploaded file's name).
    """
    import io

    from .csv_safe import check_table_bytes

    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    start = len(raw) - len(raw.lstrip())  # the header is the first line that is not blank
    sep = check_table_bytes(raw[start:], name).separator  # by its shape, before reading it all
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("the table is not UTF-8 text; save it as CSV UTF-8 and try again") from None
    text = data.lstrip("\ufeff")
    if not text.strip():
        raise InputError("the table is empty; give a header line naming the columns, then one row per query")
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, nrows=max_rows + 1)
    except pd.errors.EmptyDataError:
        raise InputError("the table is empty; give a header line naming the columns, then one row per query") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"the table is not readable as CSV: {str(exc).splitlines()[0]}") from None
    if len(table) > max_rows:
        raise InputError(f"the table has more than {max_rows} rows; split it, or use `nestedae predict --csv IN --out OUT` for big files")
    if table.empty:
        raise InputError("the table has a header but no rows; add one row per query")
    table.columns = [str(c).strip() for c in table.columns]
    return table


# --------------------------------------------------------------------------- rows -> queries


def _stack_input(model: NestedAE, column: str) -> bool:
    return any(column in p.categorical_columns for p in model.prep)


@dataclass
class _Parsed:
    """The rows of a chunk that parsed, as a model's raw-input table, and the error of every row."""

    frame: pd.DataFrame | None  # raw inputs of the good rows (index: positions in the chunk)
    errors: list[str]  # per row of the chunk: "" or a message
    defaulted: list[str]


def _parse_rows(model: NestedAE, chunk: pd.DataFrame, columns: BatchColumns, cache: dict[str, Any]) -> _Parsed:
    n = len(chunk)
    errors = [""] * n
    defaulted = [""] * n
    comps: list[Composition] = []
    good: list[int] = []
    stacks: dict[str, list[str]] = {ETL: [], HTL: []}
    known = {col: set(model.categories(col)) for col in (ETL, HTL) if _stack_input(model, col)}
    formulas = chunk[columns.formula].to_numpy()
    given = {ETL: chunk[columns.etl].to_numpy() if columns.etl else None, HTL: chunk[columns.htl].to_numpy() if columns.htl else None}
    for i in range(n):
        text = str(formulas[i]).strip()
        if not text:
            errors[i] = f"column '{columns.formula}': empty formula"
            continue
        comp = cache.get(text)
        if comp is None:
            try:
                comp = parse_formula(text)
            except NestedAEError as exc:
                comp = exc
            if len(cache) >= _CACHE_SIZE:  # bounded: a file of unique formulas must not grow memory with its rows
                cache.clear()
            cache[text] = comp
        if isinstance(comp, Exception):
            errors[i] = f"column '{columns.formula}': {comp}"
            continue
        row_stacks: dict[str, str] = {}
        took_default: list[str] = []
        problem = ""
        for col, values in given.items():
            src = columns.etl if col == ETL else columns.htl
            value = "" if values is None else str(values[i]).strip()
            if col not in known:
                if value:
                    problem = f"column '{src}': this model has no {col.split('_')[0]} input; leave it blank"
                    break
                continue
            if not value:
                row_stacks[col] = model.default_category(col)
                took_default.append(col)
            elif value in known[col]:
                row_stacks[col] = value
            else:
                problem = f"column '{src}': unknown {col.split('_')[0]} stack '{value}'; known: {', '.join(model.categories(col))}"
                break
        if problem:
            errors[i] = problem
            continue
        comps.append(comp)
        good.append(i)
        defaulted[i] = ";".join(input_key(c) for c in took_default)
        for col in known:
            stacks[col].append(row_stacks[col])
    if not good:
        return _Parsed(None, errors, defaulted)
    cats = {col: stacks[col] for col in known}
    try:
        frame = query_frame(model, comps, categorical=cats)
        frame.index = good
    except NestedAEError:  # isolate the row that fails (e.g. a descriptor that cannot be computed)
        parts = []
        for k, i in enumerate(good):
            try:
                f = query_frame(model, [comps[k]], categorical={c: v[k] for c, v in cats.items()})
                f.index = [i]
                parts.append(f)
            except NestedAEError as exc:
                errors[i] = f"column '{columns.formula}': {exc}"
        frame = pd.concat(parts) if parts else None
    return _Parsed(frame, errors, defaulted)


def _rename_clashes(chunk: pd.DataFrame, outputs: Iterable[str]) -> pd.DataFrame:
    taken = set(outputs)
    renames = {c: f"input_{c}" for c in chunk.columns if c in taken}
    return chunk.rename(columns=renames) if renames else chunk


# --------------------------------------------------------------------------- predictions


def predict_columns(model: NestedAE) -> list[str]:
    """The columns a batch prediction adds to the input's, in order (see the module docstring)."""
    cols = ["row", "composition", "etl", "htl", "stacks_defaulted"]
    for st in model.spec.stages:
        for t in st.targets:
            name = target_name(st, t)
            cols += [f"{name}_{part}" for part in STATS]
    cols += ["interval_level", "in_domain", "domain_stage", "domain_message", *(stage_domain_key(st.name) for st in model.spec.stages),
             "error", *PROVENANCE_COLUMNS]
    return cols


def _empty_like(columns: list[str], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(np.nan, index=index, dtype=float) for c in columns})


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

    Returns the input columns (a clashing one renamed ``input_<name>``) followed by
    :func:`predict_columns`. ``first_row``: the number of the table's first row
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
    for c in ("composition", "etl", "htl", "domain_stage", "domain_message", "model_name", "model_sha256", "nestedae_version"):
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
            preds = model.predict(frame, level=level)
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
    return pd.concat([inputs, out[out_cols]], axis=1)


def _stream(
    source: Any,
    out_path: str | os.PathLike[str],
    columns: BatchColumns,
    chunk_rows: int,
    work: Callable[[pd.DataFrame, int], pd.DataFrame],
) -> BatchSummary:
    """Read ``source`` in chunks, apply ``work(chunk, first_row)``, write the results to ``out_path`` atomically."""
    from .csv_safe import write_csv
    from .io_safe import atomic_open, refuse_input_as_output

    refuse_input_as_output(out_path, source, flag="the output CSV")
    summary = BatchSummary(path=str(out_path))
    next_row = 1
    with atomic_open(out_path, "w", newline="") as fh:
        header: list[str] | None = None
        for chunk in read_table(source, columns, chunk_rows=chunk_rows):
            res = work(chunk, next_row)
            next_row += len(chunk)
            if header is None:
                header = list(res.columns)
            res = res.reindex(columns=header)
            write_csv(res, fh, index=False, header=fh.tell() == 0, lineterminator="\n")  # formula-like cells neutralized
            if "error" in res:
                per_row = res.groupby("row", sort=False)["error"].first().reset_index()
                summary._add(per_row)
        if header is None or summary.rows == 0:
            raise InputError("the input CSV has a header but no rows; add one row per query")
    return summary


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
    from .explain import explain_chain, explain_stage_output
    from .perovskite.explain import explain_bandgap

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
        try:
            results = explain_outputs(model, frame, method=method)
        except NestedAEError:
            if len(frame) == 1:
                raise
            parts = []  # isolate the failing rows, one at a time
            for i in list(frame.index):
                try:
                    parts.append((i, explain_outputs(model, frame.loc[[i]], method=method)))
                except NestedAEError as exc:
                    errors[i] = str(exc)
            frame = frame.loc[[i for i, _ in parts]] if parts else None
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
    from .explain.attribution import Attribution

    names = _explain_feature_names(model)
    return [Attribution(values=np.zeros((0, len(f))), base_values=np.zeros(0), data=np.zeros((0, len(f))), feature_names=f,
                        output=o, unit="", explainer="", seconds=0.0, predictions=np.zeros(0), stage=s) for s, o, f in names]


def _explain_feature_names(model: NestedAE) -> list[tuple[str, str, list[str]]]:
    """(stage, output, features) of each output :func:`explain_outputs` explains, without explaining."""
    from .explain.explained_function import ExplainedFunction
    from .explain.settings import ExplainSettings

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
    """Attributions of several one-row explanations as one multi-row result per key."""
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
