"""Tables without pandas: what a single prediction passes through the chain, and tables built on first use.

Importing pandas costs about 0.3 s of a cold ``nestedae predict`` (with the pyarrow it
loads); one query needs none of it. :class:`ColumnTable` holds named 1-D numpy columns
of equal length and answers the few questions the chain asks of a table (``len``,
``columns``, ``table[name]``, ``assign``), so the chain's forward pass, intervals and
domain check take either it or a :class:`pandas.DataFrame` and give the same numbers.
:class:`LazyFrames` holds tables as rows and column names and builds each DataFrame
the first time it is asked for (a loaded bundle's attribution backgrounds).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnTable", "LazyFrames", "column_values", "float_columns"]


class ColumnTable:
    """Named columns (1-D numpy arrays, all of ``n`` rows), in order.

    ``table[name] = value`` broadcasts a scalar to every row; :meth:`to_frame` gives the
    equivalent DataFrame (imports pandas).
    """

    def __init__(self, columns: Mapping[str, Any] | None = None, *, rows: int | None = None) -> None:
        self._data: dict[str, np.ndarray] = {}
        self._rows = rows
        for name, value in (columns or {}).items():
            self[name] = value

    def __len__(self) -> int:
        return int(self._rows or 0)

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self._data)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name]

    def __setitem__(self, name: str, value: Any) -> None:
        arr = np.asarray(value)
        if arr.ndim == 0:
            arr = np.full(len(self), value, dtype=object if isinstance(value, str) else None)
        if arr.ndim != 1:
            raise ValueError(f"column '{name}' must be one-dimensional, not of shape {arr.shape}")
        if self._rows is None:
            self._rows = len(arr)
        elif len(arr) != self._rows:
            raise ValueError(f"column '{name}' has {len(arr)} rows, the table {self._rows}")
        self._data[name] = arr

    def assign(self, **columns: Any) -> "ColumnTable":
        """A copy with ``columns`` set (as :meth:`pandas.DataFrame.assign`)."""
        out = ColumnTable(self._data, rows=len(self))
        for name, value in columns.items():
            out[name] = value
        return out

    def to_frame(self) -> "pd.DataFrame":
        """The same table as a DataFrame (imports pandas)."""
        import pandas as pd

        return pd.DataFrame(self._data, index=pd.RangeIndex(len(self)))


def column_values(table: Any, name: str) -> np.ndarray:
    """Column ``name`` of a DataFrame or a :class:`ColumnTable` as a numpy array."""
    col = table[name]
    return col if isinstance(col, np.ndarray) else col.to_numpy()


def float_columns(table: Any, names: Sequence[str]) -> np.ndarray:
    """Columns ``names`` of a DataFrame or a :class:`ColumnTable` as one float64 array (rows, len(names)).

    Raises TypeError or ValueError for a column that is not numeric (as ``DataFrame.to_numpy``).
    """
    if isinstance(table, ColumnTable):
        if not names:
            return np.zeros((len(table), 0))
        return np.column_stack([np.asarray(table[c], dtype=np.float64) for c in names])
    return table.loc[:, list(names)].to_numpy(dtype=np.float64)


class LazyFrames(MutableSequence["pd.DataFrame"]):
    """A list of DataFrames, each given as ``(rows, columns)`` and built on first access (or given built)."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: list[Any] = list(items)

    def _built(self, i: int) -> "pd.DataFrame":
        item = self._items[i]
        if isinstance(item, tuple):
            import pandas as pd

            rows, columns = item
            item = self._items[i] = pd.DataFrame(rows, columns=columns)
        return item

    @overload
    def __getitem__(self, i: int) -> "pd.DataFrame": ...
    @overload
    def __getitem__(self, i: slice) -> list["pd.DataFrame"]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self._built(j) for j in range(len(self._items))[i]]
        return self._built(i)

    def __setitem__(self, i: Any, value: Any) -> None:
        self._items[i] = value

    def __delitem__(self, i: Any) -> None:
        del self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def insert(self, index: int, value: Any) -> None:
        self._items.insert(index, value)

    def __iter__(self) -> Iterator["pd.DataFrame"]:
        return (self._built(i) for i in range(len(self._items)))

    def __repr__(self) -> str:
        return f"LazyFrames({len(self)} tables)"
