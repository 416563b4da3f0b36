"""Finding the failing rows of a batch chunk by halves (nestedae_core.batch.isolate)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core import batch, store
from nestedae_core.batch import BatchColumns
from nestedae_core.batch.isolate import split_failures
from nestedae_core.errors import InputError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return store.load_default_bundle()


def test_split_failures_finds_each_bad_row_with_few_retries() -> None:
    bad = {5, 6, 900}
    calls: list[int] = []

    def attempt(rows: list[int]) -> int:
        calls.append(len(rows))
        if bad & set(rows):
            raise InputError(f"bad {sorted(bad & set(rows))}")
        return sum(rows)

    parts, failed = split_failures(range(1000), attempt)
    assert sorted(failed) == sorted(bad) and str(failed[900]) == "bad [900]"
    done = [i for rows, _ in parts for i in rows]
    assert done == [i for i in range(1000) if i not in bad]  # in order, each once
    assert all(result == sum(rows) for rows, result in parts)
    assert len(calls) <= 1 + 3 * 2 * 10  # three bad rows, two tries per halving level, ten levels
    assert split_failures([], attempt) == ([], {})


def test_split_failures_lets_a_bug_through() -> None:
    def attempt(rows: list[int]) -> int:
        raise ZeroDivisionError("a bug, not a bad row")

    with pytest.raises(ZeroDivisionError):
        split_failures([1, 2, 3], attempt)


def test_an_explanation_refused_for_one_row_keeps_the_others(model, monkeypatch) -> None:
    table = pd.DataFrame({"formula": ["MAPbI3", "FAPbI3", "MAPbBr3", "CsPbBr3"]})
    cols = BatchColumns("formula")
    reference = batch.explain_rows(model, table, cols, fmt="wide", method="gradient")
    plain = batch.explanations.explain_outputs

    def refuse_fa(m, frame, method):  # type: ignore[no-untyped-def]
        if (frame["formula"] == "FAPbI3").any():
            raise InputError("no FA today")
        return plain(m, frame, method=method)

    monkeypatch.setattr(batch.explanations, "explain_outputs", refuse_fa)
    out = batch.explain_rows(model, table, cols, fmt="wide", method="gradient")
    assert out.loc[1, "error"] == "no FA today"
    feats = [c for c in out.columns if c.startswith("pce_percent__")]
    assert feats and out.loc[1, feats].isna().all()
    keep = [0, 2, 3]
    assert (out.loc[keep, "error"] == "").all()
    np.testing.assert_allclose(out.loc[keep, feats].to_numpy(float), reference.loc[keep, feats].to_numpy(float), atol=1e-3)


def test_a_composition_the_query_refuses_is_one_rows_error(model, monkeypatch) -> None:
    plain = batch.tables.fractions_query_frame

    def refuse_br(m, formulas, fractions, categorical=None):  # type: ignore[no-untyped-def]
        if any("Br" in f for f in formulas):
            raise InputError("no Br today")
        return plain(m, formulas, fractions, categorical=categorical)

    monkeypatch.setattr(batch.tables, "fractions_query_frame", refuse_br)
    table = pd.DataFrame({"formula": ["MAPbI3", "FAPbI3", "MAPbBr3", "CsPbI3", "MASnI3"]})
    out = batch.predict_rows(model, table, BatchColumns("formula"))
    assert out.loc[2, "error"] == "column 'formula': no Br today"
    assert (out.drop(index=2)["error"] == "").all() and out.drop(index=2)["pce_percent_mean"].notna().all()
    assert list(out["composition"]) == ["MAPbI3", "FAPbI3", "", "CsPbI3", "MASnI3"]


def test_stacked_parts_name_every_explainer_they_used() -> None:
    """Parts of a split chunk may be explained by different methods (``auto`` goes by row count): the result names each."""
    from nestedae_core.batch.explanations import _stack_attributions
    from nestedae_core.explain import Attribution

    def att(explainer: str, n: int, seconds: float) -> Attribution:
        return Attribution(values=np.ones((n, 2)), base_values=np.zeros(n), data=np.zeros((n, 2)), feature_names=["a", "b"],
                           output="y", unit="eV", explainer=explainer, seconds=seconds, predictions=np.full(n, 2.0),
                           row_labels=[f"r{i}" for i in range(n)])

    one = _stack_attributions([{"y": att("exact", 2, 0.5)}, {"y": att("permutation", 3, 1.0)}, {"y": att("exact", 1, 0.25)}])["y"]
    assert one.explainer == "exact/permutation" and one.seconds == pytest.approx(1.75)
    assert one.values.shape == (6, 2) and one.row_labels == ["r0", "r1", "r0", "r1", "r2", "r0"]
    same = _stack_attributions([{"y": att("permutation", 2, 0.5)}, {"y": att("permutation", 1, 0.5)}])["y"]
    assert same.explainer == "permutation"
