"""The pandas-free table of a single prediction gives the DataFrame path's numbers, and loaded backgrounds build on use."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.model.columns import ColumnTable, LazyFrames, column_values, float_columns

pytestmark = pytest.mark.unit


def test_column_table_broadcasts_assigns_and_converts() -> None:
    t = ColumnTable({"a": np.array([1.0, 2.0]), "s": ["x", "y"]})
    t["c"] = "TiO2-c"
    assert len(t) == 2 and t.columns == ["a", "s", "c"] and "c" in t and "z" not in t
    assert list(t["c"]) == ["TiO2-c", "TiO2-c"]
    u = t.assign(c="SnO2-c")
    assert list(u["c"]) == ["SnO2-c", "SnO2-c"] and list(t["c"]) == ["TiO2-c", "TiO2-c"]  # a copy
    frame = t.to_frame()
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"], "c": ["TiO2-c", "TiO2-c"]}))
    np.testing.assert_array_equal(float_columns(t, ["a"]), float_columns(frame, ["a"]))
    assert list(column_values(t, "s")) == list(column_values(frame, "s"))
    with pytest.raises(ValueError, match="rows"):
        t["bad"] = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        float_columns(t, ["s"])


def test_lazy_frames_build_each_table_once_on_access() -> None:
    frames = LazyFrames([([[1.0, "a"], [2.0, "b"]], ["x", "k"])])
    assert isinstance(frames._items[0], tuple)  # not built yet
    first = frames[0]
    assert list(first.columns) == ["x", "k"] and first["x"].tolist() == [1.0, 2.0]
    assert frames[0] is first and [f is first for f in frames] == [True]
    frames.append(pd.DataFrame({"y": [3.0]}))
    assert len(frames) == 2 and frames[1]["y"].tolist() == [3.0]


def test_query_columns_match_query_frame_and_predict_the_same() -> None:
    from nestedae_core.api import NestedAEModel
    from nestedae_core.query import query_columns, query_frame

    model = NestedAEModel.load().model_
    comps = ["MAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "FASnI3"]
    table, frame = query_columns(model, comps), query_frame(model, comps)
    pd.testing.assert_frame_equal(table.to_frame(), frame)
    light, full = model.predict(table), model.predict(frame)
    assert list(light) == list(full)
    for name in full:
        np.testing.assert_array_equal(light[name].members, full[name].members)
        np.testing.assert_array_equal(light[name].lower, full[name].lower)
        np.testing.assert_array_equal(light[name].in_domain, full[name].in_domain)
        assert light[name].domain_reason == full[name].domain_reason
