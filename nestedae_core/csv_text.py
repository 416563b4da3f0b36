"""A table as CSV text, character for character what ``DataFrame.to_csv`` writes, built column by column.

``DataFrame.to_csv`` (no index, minimal quoting, no float format) turns each float
into ``numpy``'s text of it and hands every row to :mod:`csv`; for the big batch
outputs (100,000 rows x 50 columns) that costs several seconds. :func:`csv_text`
formats each column with one pass of Python's ``repr`` (the same shortest text as
``numpy``'s for a double) and joins the rows with ``str.join``, quoting a text cell
as :mod:`csv` does (in double quotes, inner quotes doubled, when it holds the
separator, a quote or a line break). Only the frames whose every cell it can write
exactly are taken (float, integer and boolean columns; pandas' text columns; object columns of
``str``, ``bool`` and missing cells; no carriage return anywhere); for any other it returns
None and the caller writes with pandas.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["csv_text"]

_QUOTE_IF = (",", '"', "\n")
_NEEDS_QUOTES = re.compile('[,"\n]')


def _quoted(text: str) -> str:
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _column_text(values: Any, dtype: np.dtype, na_rep: str) -> list[str] | None:
    """Each cell of one column as ``to_csv`` writes it, or None when this module does not write that column."""
    if not isinstance(dtype, np.dtype):
        return None  # pandas' own types (nullable integers, categories, strings): pandas writes them
    if dtype == np.float64:
        cells = list(map(float.__repr__, values.tolist()))
        if np.isnan(values).any():
            for i in np.flatnonzero(np.isnan(values)).tolist():
                cells[i] = na_rep
        return cells
    if dtype.kind in "iu":
        return list(map(str, values.tolist()))
    if dtype == np.bool_:
        return ["True" if v else "False" for v in values.tolist()]
    if dtype != object:
        return None
    cells = []
    for v in values.tolist():
        kind = v.__class__
        if kind is str:
            cells.append(v)
        elif v is None or (kind is float and v != v):
            cells.append(na_rep)
        elif kind is bool:
            cells.append("True" if v else "False")
        else:
            return None
    joined = "\x00".join(cells)  # one search over the column: most columns need no quotes at all
    if "\r" in joined:
        return None
    return [_quoted(c) for c in cells] if _NEEDS_QUOTES.search(joined) else cells


def csv_text(frame: pd.DataFrame, *, header: bool = True, lineterminator: str = "\n", na_rep: str = "") -> str | None:
    """``frame.to_csv(index=False, header=header, lineterminator=lineterminator, na_rep=na_rep)``, or None.

    None: a frame this module does not write exactly (see the module docstring): a
    column of another type, a text cell with a carriage return or another kind of
    object, a single column (``csv`` quotes a lone empty cell), column names that are
    not text, or a line terminator other than ``\\n`` and ``\\r\\n``.
    """
    if frame.shape[1] < 2 or lineterminator not in ("\n", "\r\n") or "\r" in na_rep or any(c in na_rep for c in _QUOTE_IF):
        return None
    if isinstance(frame.columns, pd.MultiIndex) or not all(isinstance(c, str) and "\r" not in c for c in frame.columns):
        return None
    columns = []
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        if isinstance(col.dtype, pd.StringDtype):  # pandas' text type: its cells as str, missing ones as NaN or NA
            values = col.to_numpy(dtype=object, na_value=None)
            cells = _column_text(values, values.dtype, na_rep)
        else:
            cells = _column_text(col.to_numpy(), col.dtype, na_rep)
        if cells is None:
            return None
        columns.append(cells)
    lines = [",".join(_quoted(c) for c in frame.columns)] if header else []
    lines.extend(map(",".join, zip(*columns)))
    return lineterminator.join(lines) + lineterminator if lines else ""
