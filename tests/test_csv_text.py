"""CSV text built column by column (nestedae_core.csv_safe.csv_text): character for character what pandas writes."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from nestedae_core.csv_safe import csv_text, write_csv

pytestmark = pytest.mark.unit


def _frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    floats = rng.normal(size=rows) * 10.0 ** rng.integers(-8, 18, rows)
    floats[:12] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e16, 1e-05, 0.0001, 123456789012345678.0, 1 / 3, 2.5e-07, 3.0]
    texts = np.array(["plain", "a,b", 'say "hi"', "line\nbreak", "", " pad ", "tab\tin", "ünï ∑", "'=quoted"] * rows, dtype=object)[:rows]
    flags = np.array([True, False, None] * rows, dtype=object)[:rows]
    mixed = texts.copy()
    mixed[::7] = np.nan
    return pd.DataFrame({"x": floats, "n": rng.integers(-5, 10**12, rows), "b": rng.random(rows) < 0.5, "t": texts, "flag": flags,
                         "with,comma": mixed, "all_nan": np.full(rows, np.nan)})


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_csv_text_is_what_pandas_writes(header: bool, terminator: str) -> None:
    frame = _frame()
    got = csv_text(frame, header=header, lineterminator=terminator, na_rep="NA")
    assert got is not None
    assert got == frame.to_csv(index=False, header=header, lineterminator=terminator, na_rep="NA")


def test_frames_it_does_not_write_exactly_go_to_pandas() -> None:
    frame = _frame(20)
    assert csv_text(frame[["x"]]) is None  # one column: csv quotes a lone empty cell
    assert csv_text(frame.assign(t="car\rriage")) is None
    assert csv_text(frame.assign(t=pd.Series(["a", 1.5] * 10, dtype=object))) is None  # a float object in a text column
    assert csv_text(frame.astype({"n": "Int64"})) is None  # a pandas type
    assert csv_text(frame, lineterminator="\r") is None


def test_write_csv_takes_the_fast_path_and_writes_the_same_file(monkeypatch) -> None:
    import nestedae_core.csv_safe as fast

    frame = _frame().assign(t=lambda f: f["t"].where(f.index % 2 == 0, "=SUM(A1)"))
    calls = []
    real = fast.csv_text
    monkeypatch.setattr(fast, "csv_text", lambda *a, **k: calls.append(1) or real(*a, **k))
    ours, theirs = io.StringIO(), io.StringIO()
    write_csv(frame, ours, index=False, lineterminator="\n")
    frame.assign(t=frame["t"].where(frame.index % 2 == 0, "'=SUM(A1)")).to_csv(theirs, index=False, lineterminator="\n")
    assert calls and ours.getvalue() == theirs.getvalue()


def test_float_cells_are_repr_of_every_double() -> None:
    """Long float columns are formatted in bulk (pyarrow's shortest text where it is repr's): the same text as repr
    for doubles of every magnitude, whole numbers, the ends of repr's positional range, NaN and infinities."""
    from nestedae_core.csv_safe import _float_texts

    rng = np.random.default_rng(8)
    doubles = rng.integers(0, 2**64, 60_000, dtype=np.uint64).view(np.float64)  # every exponent, NaN payloads, infinities
    scaled = rng.normal(size=60_000) * 10.0 ** rng.integers(-6, 18, 60_000)
    edges = np.array([1e-4, np.nextafter(1e-4, 0), 1e16, np.nextafter(1e16, 0), 1.0, -2.0, 0.0, -0.0, 0.1, 5e-324, np.inf, -np.inf])
    for values in (doubles, scaled, np.round(scaled, 3), edges, scaled[:10]):
        assert _float_texts(values) == [repr(v) for v in values.tolist()]
