"""Safe CSV in and out: no formula injection in the files written, a bounded shape for the files read.

Output (every CSV the CLI writes and every CSV the dashboard offers for download):

* :func:`neutralize_frame` prefixes a single quote to every text cell (and
  column name) that a spreadsheet would run as a formula: one starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP, "CSV
  injection"). ``=HYPERLINK("http://evil")`` is written ``'=HYPERLINK("http://evil")``
  and shows as that text. Numbers are left alone: numeric columns (``-0.5``
  stays a number) and text cells that are a plain decimal number (``-0.5``,
  ``+3``, ``-1e-3``: a spreadsheet reads them as numbers, never as formulas).
* :func:`write_csv` / :func:`csv_bytes`: ``DataFrame.to_csv`` of the neutralized frame
  (text fields quoted when one holds a carriage return, which a spreadsheet would
  otherwise read as the start of a new row).

Input (``nestedae predict/explain/featurize --csv`` and the Predict page's upload and paste):

* the header line is scanned before pandas reads anything: more than
  :data:`MAX_COLUMNS` columns, or a header longer than :data:`MAX_LINE_BYTES`,
  is refused with one line naming the limit (a CSV of 1,000,001 columns used to
  take minutes and gigabytes before failing);
* every line (physical line: quoted line breaks start a new one) is at most
  :data:`MAX_LINE_BYTES` long, checked while pandas reads (:func:`open_checked`)
  or before it does (:func:`check_table_bytes`).
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "FORMULA_TRIGGERS",
    "MAX_COLUMNS",
    "MAX_LINE_BYTES",
    "HeaderShape",
    "check_table_bytes",
    "csv_bytes",
    "csv_text",
    "neutralize_cell",
    "neutralize_frame",
    "open_checked",
    "write_csv",
]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: The most columns a CSV read by the CLI or the dashboard may have.
MAX_COLUMNS = 1000
#: The longest line (header or data, in bytes) of a CSV read by the CLI or the dashboard: 1 MB.
MAX_LINE_BYTES = 1_000_000
#: How far a refused header line is scanned to count its columns (the message names the count).
HEADER_SCAN_BYTES = 64 * 1024 * 1024
#: Bytes read at a time while scanning.
_BLOCK = 1 << 20
#: A text cell that is a plain decimal number (a spreadsheet reads it as that number, not a formula).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")


# --------------------------------------------------------------------------- output


def neutralize_cell(value: Any) -> Any:
    """``value`` with a ``'`` in front when it is text a spreadsheet would run as a formula; else unchanged.

    Only strings change: those starting with ``= + - @``, a tab or a carriage
    return, unless they are a plain decimal number (``-0.5``, ``+3``, ``-1e-3``).
    """
    if isinstance(value, str) and value[:1] in FORMULA_TRIGGERS and not _NUMBER.match(value):
        return "'" + value
    return value


def _neutralize_values(values: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """(a copy of the object array ``values`` with its formula-like strings neutralized, or None when none is;
    whether a string holds a carriage return)."""
    cells = values.tolist()
    try:  # one search over the column's text cells decides most of the time
        joined = "\x00" + "\x00".join(cells)
    except TypeError:  # not every cell is text: search the text cells
        joined = "\x00" + "\x00".join([v for v in cells if isinstance(v, str)])
    if "\r" not in joined and not any("\x00" + t in joined for t in FORMULA_TRIGGERS):
        return None, False
    hits: list[int] = []
    carriage_return = False
    for i, v in enumerate(values):
        if isinstance(v, str):
            if v[:1] in FORMULA_TRIGGERS and not _NUMBER.match(v):
                hits.append(i)
            if not carriage_return and "\r" in v:
                carriage_return = True
    if not hits:
        return None, carriage_return
    out = values.copy()
    for i in hits:
        out[i] = "'" + out[i]
    return out, carriage_return


def _neutralized(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """:func:`neutralize_frame` of ``frame``, and whether a text cell or column name holds a carriage return."""
    changed: dict[int, pd.Series] = {}
    carriage_return = False
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        dtype = col.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            col = col.astype(object)
        elif not (dtype == object or pd.api.types.is_string_dtype(dtype)):
            continue
        new, cr = _neutralize_values(col.to_numpy(dtype=object))
        carriage_return |= cr
        if new is not None:
            changed[j] = pd.Series(new, index=frame.index, dtype=object)
    names = [neutralize_cell(c) for c in frame.columns]
    carriage_return |= any(isinstance(c, str) and "\r" in c for c in names)
    renamed = any(isinstance(a, str) and a != b for a, b in zip(names, frame.columns))
    if not changed and not renamed:
        return frame, carriage_return
    out = frame.copy(deep=False)
    if changed:
        out.columns = range(out.shape[1])  # positional: duplicate column names stay apart
        for j, series in changed.items():
            out[j] = series
    out.columns = pd.Index(names, dtype=object) if renamed else frame.columns
    return out, carriage_return


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every formula-like text cell and column name prefixed by ``'`` (see :func:`neutralize_cell`).

    Numeric, boolean and date columns are untouched (a negative number stays a
    number); so are text cells that are plain numbers. The index is not
    changed (write with ``index=False``). Returns ``frame`` itself when nothing
    needs to change, else a new frame (``frame`` is not modified).
    """
    return _neutralized(frame)[0]


def write_csv(frame: pd.DataFrame, handle: IO[str], **to_csv: Any) -> None:
    """``frame.to_csv(handle, **to_csv)`` with formula-like cells neutralized (:func:`neutralize_frame`).

    When a text cell holds a carriage return, every text field is quoted
    (``csv.QUOTE_NONNUMERIC``): pandas leaves a lone carriage return unquoted,
    and a spreadsheet would start a new row there, whose first cell could be a formula.
    """
    safe, carriage_return = _neutralized(frame)
    if carriage_return and "quoting" not in to_csv:
        to_csv["quoting"] = csv.QUOTE_NONNUMERIC
    elif not {"quoting", "float_format", "decimal"} & set(to_csv):
        if set(to_csv) <= {"index", "header", "lineterminator", "na_rep"} and to_csv.get("index", True) is False \
                and isinstance(to_csv.get("header", True), bool):
            text = csv_text(safe, header=to_csv.get("header", True), lineterminator=to_csv.get("lineterminator", os.linesep),
                            na_rep=str(to_csv.get("na_rep", "")))
            if text is not None:  # the same characters pandas writes, built column by column
                handle.write(text)
                return
        safe = _repeated_floats_as_text(safe, str(to_csv.get("na_rep", "")))
    safe.to_csv(handle, **to_csv)


def _repeated_floats_as_text(frame: pd.DataFrame, na_rep: str) -> pd.DataFrame:
    """Float columns whose values repeat, as the text pandas would write for them, each distinct value formatted once.

    pandas writes a float column (no ``float_format``, no quoting) as
    ``values.astype(str)`` with ``na_rep`` for NaN; formatting a float is most of the
    cost of writing a big file, and batch outputs repeat values (one composition in
    many rows). The same strings, so the same file.
    """
    changed: dict[int, np.ndarray] = {}
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        if col.dtype != np.float64 or len(col) < 64:
            continue
        values = col.to_numpy()
        uniq, inverse = np.unique(values, return_inverse=True)
        if len(uniq) * 2 > len(values):
            continue  # mostly distinct: nothing to save
        text = uniq.astype(str).astype(object)
        text[np.isnan(uniq)] = na_rep
        changed[j] = text[inverse.reshape(-1)]
    if not changed:
        return frame
    out = frame.copy(deep=False)
    names = out.columns
    out.columns = range(out.shape[1])  # positional: duplicate column names stay apart
    for j, text in changed.items():
        out[j] = pd.Series(text, index=out.index, dtype=object)
    out.columns = names
    return out


# --------------------------------------------------------------------------- CSV text, column by column
#
# ``DataFrame.to_csv`` (no index, minimal quoting, no float format) turns each float into numpy's text of it and
# hands every row to :mod:`csv`; for the big batch outputs (100,000 rows x 50 columns) that costs several seconds.
# :func:`csv_text` formats each column with one pass of Python's ``repr`` (the same shortest text as numpy's for a
# double) and joins the rows with ``str.join``, quoting a text cell as :mod:`csv` does (in double quotes, inner
# quotes doubled, when it holds the separator, a quote or a line break). Only the frames whose every cell it can
# write exactly are taken (float, integer and boolean columns; pandas' text columns; object columns of ``str``,
# ``bool`` and missing cells; no carriage return anywhere); for any other it returns None and pandas writes.

_QUOTE_IF = (",", '"', "\n")
_NEEDS_QUOTES = re.compile('[,"\n]')


def _quoted(text: str) -> str:
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


#: Float columns of at least this many cells are formatted by pyarrow (when installed) instead of ``repr`` one by one.
_ARROW_FLOATS = 256


def _float_texts(values: np.ndarray) -> list[str]:
    """``repr`` of every float64 of ``values`` (the shortest text that reads back as the same double, as ``to_csv`` writes it).

    Long columns go through pyarrow's cast to text (the same shortest digits, about 4x
    faster); where its text is not the one ``repr`` writes (an exponent, a whole number,
    a magnitude outside ``repr``'s positional range [1e-4, 1e16), NaN, infinities)
    ``repr`` writes that cell.
    """
    if len(values) < _ARROW_FLOATS:
        return list(map(float.__repr__, values.tolist()))
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pragma: no cover - pyarrow comes with pandas' text columns; without it, repr
        return list(map(float.__repr__, values.tolist()))
    texts = pc.cast(pa.array(values, type=pa.float64()), pa.string())
    magnitude = np.abs(values)
    other = ~((magnitude >= 1e-4) & (magnitude < 1e16))  # NaN too
    other |= pc.match_substring(texts, "e").to_numpy(zero_copy_only=False)
    other |= ~pc.match_substring(texts, ".").to_numpy(zero_copy_only=False)
    cells = texts.to_pylist()
    for i in np.flatnonzero(other).tolist():
        cells[i] = float.__repr__(float(values[i]))
    return cells


def _column_text(values: Any, dtype: np.dtype, na_rep: str) -> list[str] | None:
    """Each cell of one column as ``to_csv`` writes it, or None when this module does not write that column."""
    if not isinstance(dtype, np.dtype):
        return None  # pandas' own types (nullable integers, categories, strings): pandas writes them
    if dtype == np.float64:
        cells = _float_texts(values)
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
    cells = values.tolist()
    kinds = set(map(type, cells))
    if not kinds <= {str}:  # text, missing cells (None, NaN) and booleans only
        if not kinds <= {str, bool, float, type(None)} or any(v == v for v in cells if v.__class__ is float):
            return None
        cells = [v if v.__class__ is str else na_rep if v is None or v != v else "True" if v else "False" for v in cells]
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


def csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """``frame`` as UTF-8 CSV bytes (for a download button), formula-like cells neutralized as by :func:`write_csv`."""
    buffer = io.StringIO()
    write_csv(frame, buffer, index=index)
    return buffer.getvalue().encode("utf-8")


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class HeaderShape:
    """The first line of a CSV: its ``columns``, its ``length`` in bytes and its ``separator``."""

    columns: int
    length: int
    separator: str


class _HeaderScan:
    """Counts the fields of a CSV's first line, block by block, without keeping the blocks.

    A quote opens a quoted field only at the start of a field (elsewhere it is a
    literal character, as pandas reads it); separators and line breaks inside
    quotes do not count.
    """

    def __init__(self, separators: tuple[bytes, ...]) -> None:
        self.counts = dict.fromkeys(separators, 0)
        self.length = 0
        self.done = False
        self._quoted = False
        self._state = "start"  # "start" (of a field), "close" (just after a closing quote) or "text"

    def _plain(self, part: bytes) -> None:
        """Unquoted text of the header: count its separators, stop at the first line break."""
        if not part:
            return
        cut = min((i for i in (part.find(b"\n"), part.find(b"\r")) if i >= 0), default=-1)
        if cut >= 0:
            part = part[:cut]
            self.done = True
        for sep in self.counts:
            self.counts[sep] += part.count(sep)
        self.length += len(part)
        if part:
            self._state = "start" if part[-1:] in self.counts else "text"

    def feed(self, block: bytes) -> None:
        """Scan the next ``block`` of the file (nothing once the first line has ended)."""
        for k, part in enumerate(block.split(b'"')):
            if self.done:
                return
            if k:  # a quote precedes this part
                self.length += 1
                if self._quoted:
                    self._quoted, self._state = False, "close"
                elif self._state in ("start", "close"):  # opens a field, or the second quote of an escaped ""
                    self._quoted = True
                else:
                    self._state = "text"
            if self._quoted:
                self.length += len(part)
            else:
                self._plain(part)

    def shape(self) -> HeaderShape:
        """The header's shape: the separator is a comma when there is one outside quotes, else a tab when there is one."""
        sep = next((s for s in self.counts if self.counts[s]), next(iter(self.counts)))
        return HeaderShape(self.counts[sep] + 1, self.length, sep.decode())


def _check_header(scan: _HeaderScan, name: str) -> HeaderShape:
    shape = scan.shape()
    more = "" if scan.done else "at least "
    if shape.columns > MAX_COLUMNS:
        raise InputError(f"{name}: the header has {more}{shape.columns:,} columns; at most {MAX_COLUMNS:,} are read: "
                         "keep only the columns needed (the formula and stack columns)")
    if shape.length > MAX_LINE_BYTES:
        raise InputError(f"{name}: the header line is {more}{shape.length:,} bytes long; lines of at most "
                         f"{MAX_LINE_BYTES:,} bytes are read: check that the file is a CSV with a header line naming the columns")
    return shape


class _LineBound:
    """Checks that no line of a stream of blocks is longer than :data:`MAX_LINE_BYTES`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._run = 0  # bytes of the current line so far
        self._line = 1

    def _fail(self, before: bytes) -> None:
        line = self._line + before.count(b"\n")
        raise InputError(f"{self.name}: line {line:,} is longer than {MAX_LINE_BYTES:,} bytes, the longest line read: "
                         "check that the file is a CSV with one query per line")

    def feed(self, block: bytes) -> None:
        """Check the next ``block``; raises :class:`InputError` naming the first line that is too long."""
        limit = MAX_LINE_BYTES
        n = len(block)
        start = 0  # the current line began at block[start] (or before the block when self._run > 0)
        while True:
            window_end = start + limit + 1 - self._run  # a break must come before this position
            if window_end > n:  # no break needed in the rest of the block: the line goes on after its last break
                last = max(block.rfind(b"\n", start, n), block.rfind(b"\r", start, n))
                self._run = n - last - 1 if last >= 0 else self._run + n - start
                break
            brk = max(block.rfind(b"\n", start, window_end), block.rfind(b"\r", start, window_end))
            if brk < 0:
                self._fail(block[:start])
            start = brk + 1  # the furthest break inside the window: every line up to it is short enough
            self._run = 0
        self._line += block.count(b"\n")


class _Checked(io.RawIOBase):
    """A binary stream: ``head`` then the rest of ``read``, every line checked by :class:`_LineBound`."""

    def __init__(self, head: bytes, read: Callable[[int], bytes], name: str) -> None:
        super().__init__()
        self._pending = head
        self._read = read
        self._bound = _LineBound(name)
        self._eof = False

    def readable(self) -> bool:  # noqa: D102
        return True

    def readinto(self, buffer: Any) -> int:  # noqa: D102
        want = len(buffer)
        if self._pending:
            data, self._pending = self._pending[:want], self._pending[want:]
        elif self._eof:
            return 0
        else:
            data = self._read(want)
            if not data:
                self._eof = True
                return 0
        self._bound.feed(data)
        buffer[: len(data)] = data
        return len(data)


def _as_bytes_reader(stream: Any) -> Callable[[int], bytes]:
    """``read(n) -> bytes`` of a binary or text stream (text is encoded as UTF-8)."""
    if isinstance(stream, io.TextIOBase) or isinstance(stream.read(0), str):
        return lambda n: stream.read(n).encode("utf-8", "surrogatepass")
    return lambda n: bytes(stream.read(n))


def _scan_head(read: Callable[[int], bytes], name: str, separators: tuple[bytes, ...] = (b",",)) -> tuple[bytes, HeaderShape]:
    """Read until the header line ends; refuse it if too wide or too long. Returns the bytes read and the shape."""
    scan = _HeaderScan(separators)
    kept: list[bytes] = []
    size = 0
    while not scan.done and scan.length <= HEADER_SCAN_BYTES:
        block = read(_BLOCK)
        if not block:
            scan.done = True  # the file is its header
            break
        scan.feed(block)
        if size <= MAX_LINE_BYTES + _BLOCK:  # beyond, the header is refused anyway: do not keep it
            kept.append(block)
            size += len(block)
    return b"".join(kept), _check_header(scan, name)


@contextlib.contextmanager
def open_checked(source: Any, name: str | None = None) -> Iterator[IO[bytes]]:
    """A binary stream of the CSV ``source`` (a path or a file object) for ``pandas.read_csv``, its shape bounded.

    Before anything is returned the header line is checked (at most
    :data:`MAX_COLUMNS` comma-separated columns, at most :data:`MAX_LINE_BYTES`
    bytes); every line is then checked as it is read. A violation raises
    :class:`InputError` naming ``name`` (default: the path, or the file's name)
    and the limit. A path is opened (and closed) here; a file object is read
    from its current position and left open. An :class:`OSError` opening the
    path propagates.
    """
    label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", "the input CSV")))
    with contextlib.ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            raw: Any = stack.enter_context(open(source, "rb"))  # noqa: SIM115 (closed by the stack)
        else:
            raw = source
        read = _as_bytes_reader(raw)
        head, _ = _scan_head(read, label)
        yield io.BufferedReader(_Checked(head, read, label), buffer_size=_BLOCK)


def check_table_bytes(data: bytes, name: str = "the table") -> HeaderShape:
    """Check the shape of a whole CSV or tab-separated table held in memory, before it is parsed.

    The header is scanned first (comma- or tab-separated, as :attr:`HeaderShape.separator`
    says), then every line's length; the limits are those of :func:`open_checked`.
    Raises :class:`InputError` naming ``name`` and the limit; returns the header's shape.
    """
    data = bytes(data)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        block = data[pos:pos + n]
        pos += len(block)
        return block

    _, shape = _scan_head(read, name, (b",", b"\t"))
    _LineBound(name).feed(data)
    return shape
