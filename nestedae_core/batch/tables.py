"""Batch tables: the query columns, reading a table in bounded chunks, rows to queries, streaming results to a CSV."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..chemistry.composition import parse_many
from ..errors import InputError
from ..model.chain import NestedAE
from ..query import fractions_query_frame
from ..schema import input_key
from ..vocabulary import ETL, HTL
from .isolate import split_failures

logger = logging.getLogger(__name__)

#: Rows read, predicted and written at a time by :func:`predict_csv`.
DEFAULT_CHUNK_ROWS = 5000
#: Rows explained at a time by :func:`explain_csv` (explaining costs far more per row).
DEFAULT_EXPLAIN_CHUNK_ROWS = 200
#: Provenance columns of every batch output.
PROVENANCE_COLUMNS = ("model_name", "model_sha256", "nestedae_version")
#: ``long``: one line per (row, output, feature); ``wide``: one line per row.
ExplainFormat = Literal["long", "wide"]
#: Parsed formulas remembered across chunks, keyed by their raw spelling (each distinct spelling is
#: parsed once); cleared when full, so memory stays bounded (about 30 MB at most).
_CACHE_SIZE = 65536
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
    from ..csv_safe import open_checked

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

    from ..csv_safe import check_table_bytes

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
    known = {col: set(model.categories(col)) for col in (ETL, HTL) if _stack_input(model, col)}
    texts = [str(v).strip() for v in chunk[columns.formula].to_numpy()]
    parsed = parse_many(texts, cache, max_cache=_CACHE_SIZE)  # each distinct spelling parsed once
    errors = [("" if not isinstance(comp, Exception) else f"column '{columns.formula}': {comp}") if text
              else f"column '{columns.formula}': empty formula" for text, comp in zip(texts, parsed)]
    # the stacks, column by column (ETL, then HTL: the first problem of a row is its error)
    took: dict[str, np.ndarray] = {}
    stacks: dict[str, np.ndarray] = {}
    for col, src in ((ETL, columns.etl), (HTL, columns.htl)):
        values = np.array([str(v).strip() for v in chunk[src].to_numpy()], dtype=object) if src else np.full(n, "", dtype=object)
        blank = values == ""
        if col not in known:
            for i in np.flatnonzero(~blank).tolist():
                if not errors[i]:
                    errors[i] = f"column '{src}': this model has no {col.split('_')[0]} input; leave it blank"
            continue
        unknown = ~blank & ~np.isin(values, list(known[col]))
        if unknown.any():
            names = ", ".join(model.categories(col))
            for i in np.flatnonzero(unknown).tolist():
                if not errors[i]:
                    errors[i] = f"column '{src}': unknown {col.split('_')[0]} stack '{values[i]}'; known: {names}"
        stacks[col] = np.where(blank, model.default_category(col), values)
        took[col] = blank
    good = [i for i, e in enumerate(errors) if not e]
    formulas = [parsed[i][0] for i in good]  # type: ignore[index]
    vectors = [parsed[i][1] for i in good]  # type: ignore[index]
    defaulted = [""] * n
    labels = {col: input_key(col) for col in took}
    for i in good:
        defaulted[i] = ";".join(labels[col] for col in took if took[col][i])
    if not good:
        return _Parsed(None, errors, defaulted)
    cats = {col: stacks[col][good].tolist() for col in known}
    fractions = np.vstack(vectors)
    def attempt(ks: list[int]) -> pd.DataFrame:  # ks: positions in ``good``
        if len(ks) == len(good):  # the whole chunk, as it is (no copies)
            f = fractions_query_frame(model, formulas, fractions, categorical=cats)
        else:
            f = fractions_query_frame(model, [formulas[k] for k in ks], fractions[ks], categorical={c: [v[k] for k in ks] for c, v in cats.items()})
        f.index = [good[k] for k in ks]
        return f

    parts, failed = split_failures(range(len(good)), attempt)  # the rows that fail, found by halves
    for k, exc in failed.items():
        errors[good[k]] = f"column '{columns.formula}': {exc}"
    frame = parts[0][1] if len(parts) == 1 else (pd.concat([f for _, f in parts]) if parts else None)
    return _Parsed(frame, errors, defaulted)


def _rename_clashes(chunk: pd.DataFrame, outputs: Iterable[str]) -> pd.DataFrame:
    taken = set(outputs)
    renames = {c: f"input_{c}" for c in chunk.columns if c in taken}
    return chunk.rename(columns=renames) if renames else chunk



def _stream(
    source: Any,
    out_path: str | os.PathLike[str],
    columns: BatchColumns,
    chunk_rows: int,
    work: Callable[[pd.DataFrame, int], pd.DataFrame],
) -> BatchSummary:
    """Read ``source`` in chunks, apply ``work(chunk, first_row)``, write the results to ``out_path`` atomically."""
    from ..csv_safe import write_csv
    from ..io_safe import atomic_open, refuse_input_as_output

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
