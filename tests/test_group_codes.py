"""Rows grouped by their values (folds, distinct network inputs, row names) without joining text row by row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nestedae_core.train.folds import group_codes, make_folds
from nestedae_core.train.stages import row_names

pytestmark = pytest.mark.unit


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "etl": rng.choice(["SnO2", "TiO2", None], n),
        "x": rng.choice([0.1, 0.25, np.nan], n),
        "k": rng.integers(0, 3, n),
        "s": pd.array(rng.choice(["a", "b"], n), dtype="string"),
    })


def test_group_codes_number_rows_as_factorizing_their_joined_text() -> None:
    t = _frame()
    # missing text (None in a string column) stays missing after astype(str): spelled out for the join
    joined = pd.factorize(t.astype(str).fillna("<missing>").agg("\x1f".join, axis=1))[0]
    codes = group_codes(t)
    assert codes.dtype == np.int64 and codes[0] == 0
    assert np.array_equal(codes, joined)
    assert np.array_equal(group_codes(t[["k"]]), pd.factorize(t["k"])[0])


def test_group_codes_read_numbers_as_text() -> None:
    t = pd.DataFrame({
        "z": [0.0, -0.0, 0.0, np.nan, np.nan, 0.1 + 0.2],
        "n": pd.array([1, None, 1, None, 2, 3], dtype="Int64"),
        "b": [True, False, True, False, False, True],
    })
    joined = pd.factorize(t.astype(str).fillna("<missing>").agg("\x1f".join, axis=1))[0]
    assert np.array_equal(group_codes(t), joined)
    assert group_codes(t[["z"]]).tolist() == [0, 1, 0, 2, 2, 3]  # -0.0 is written apart from 0.0


def test_group_codes_keep_large_integers_of_a_nullable_column_with_a_missing_value_apart() -> None:
    t = pd.DataFrame({"n": pd.array([2**53, 2**53 + 1, None, 2**53], dtype="Int64")})
    assert group_codes(t).tolist() == [0, 1, 2, 0]  # as text: 9007199254740992, ...993, <NA>, ...992


def test_group_codes_of_no_columns_is_one_group() -> None:
    assert group_codes(_frame(7)[[]]).tolist() == [0] * 7


def test_grouped_folds_are_those_of_the_joined_text() -> None:
    t = _frame(400, seed=3)
    joined = pd.factorize(t[["etl", "k"]].astype(str).fillna("<missing>").agg("|".join, axis=1))[0]
    from sklearn.model_selection import GroupKFold

    expected = np.empty(len(t), dtype=np.int64)
    for f, (_, va) in enumerate(GroupKFold(n_splits=3, shuffle=True, random_state=4).split(np.zeros(len(t)), groups=joined)):
        expected[va] = f
    assert np.array_equal(make_folds(t, 3, "grouped", ["etl", "k"], seed=4), expected)


@pytest.mark.parametrize("n,k,seed", [(7, 2, 0), (60, 5, 1), (151, 5, 0), (568, 5, 3), (2018, 10, 11)])
def test_folds_are_those_scikit_learn_draws_with_the_same_seed(n: int, k: int, seed: int) -> None:
    from sklearn.model_selection import GroupKFold, KFold

    t = pd.DataFrame({"g": np.random.default_rng(seed).integers(0, max(k, n // 3), n)})
    for split, splitter, groups in (("random", KFold(n_splits=k, shuffle=True, random_state=seed), None),
                                    ("grouped", GroupKFold(n_splits=k, shuffle=True, random_state=seed), group_codes(t))):
        expected = np.full(n, -1, dtype=np.int64)
        for f, (_, va) in enumerate(splitter.split(np.zeros(n), groups=groups)):
            expected[va] = f
        assert np.array_equal(make_folds(t, k, split, ["g"], seed=seed), expected), split


def test_folds_import_no_scikit_learn() -> None:
    import subprocess
    import sys

    code = ("import sys, pandas as pd; from nestedae_core.train.folds import make_folds; "
            "t = pd.DataFrame({'g': [1, 2, 3, 1, 2, 3]}); make_folds(t, 2, 'random'); make_folds(t, 3, 'grouped', ['g']); "
            "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_row_names_append_the_categorical_values() -> None:
    names = ["MAPbI3", "CsPbBr3"]
    t = pd.DataFrame({"name": names, "formula": names, "etl": ["SnO2", "TiO2"], "htl": ["Spiro", "PTAA"]}, index=[5, 9])
    assert row_names(t).tolist() == names
    assert row_names(t, ["etl", "htl"]).tolist() == ["MAPbI3 | SnO2 | Spiro", "CsPbBr3 | TiO2 | PTAA"]
