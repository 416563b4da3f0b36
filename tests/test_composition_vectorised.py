"""Plain formulas in bulk (nestedae_core.chemistry.composition.vectorised): identical to the one-by-one parse."""
from __future__ import annotations

import numpy as np
import pytest

from nestedae_core.chemistry.composition.fast import canonical_fractions
from nestedae_core.chemistry.composition.vectorised import canonical_fractions_many, round_decimals
from nestedae_core.errors import CompositionError

pytestmark = pytest.mark.unit


def test_round_decimals_is_pythons_round() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(1e-6, 3.0, 20000), np.arange(1, 4000) / 8000.0, [0.125, 0.375, 2.5e-05, 1.0, 3.0]])
    for p in (0, 1, 3, 5, 8, 12):
        got = round_decimals(x, p)
        want = np.array([round(float(v), p) for v in x])
        assert np.array_equal(got, want), p
    p = rng.integers(3, 13, len(x))
    assert np.array_equal(round_decimals(x, p), np.array([round(float(v), int(k)) for v, k in zip(x, p)]))


def _texts(rng: np.random.Generator, count: int) -> list[str]:
    """Plain formulas: mixed sites, amounts to 1..6 decimals, totals off by up to 1.5 % (rescaled), some tiny amounts."""
    out = []
    for _ in range(count):
        parts = []
        for ions, total in ((["Cs", "FA", "MA", "Rb"], 1.0), (["Pb", "Sn"], 1.0), (["I", "Br", "Cl"], 3.0)):
            chosen = list(rng.choice(ions, size=int(rng.integers(1, len(ions) + 1)), replace=False))
            w = rng.dirichlet(np.full(len(chosen), 0.4)) * total * rng.uniform(0.985, 1.015)
            places = rng.integers(1, 7, len(chosen))
            parts += [f"{ion}{max(round(v, int(d)), 10.0 ** -int(d)):g}" for ion, v, d in zip(chosen, w, places)]
        out.append("".join(parts))
    return out + ["MAPbI3", " CsPbBr3 ", "MA.5FA.5PbI3", "MA0.0001FA0.9999PbI3", "FA0.0000000001MA0.9999999999PbI3",
                  "MA0.333333333333FA0.666666666667PbI3", "MAPbI3.07", "PbI3", "MAPbI1.5I1.5", "XxPbI3", "MAPb(I)3"]


def test_bulk_results_are_the_one_by_one_results() -> None:
    texts = _texts(np.random.default_rng(9), 3000)
    bulk = canonical_fractions_many(texts)
    covered = valid = 0
    for text, got in zip(texts, bulk):
        try:
            want = canonical_fractions(text)
        except CompositionError:
            assert got is None, text  # refused texts go one by one, for the parser's own message
            continue
        valid += 1
        if got is None:
            continue
        covered += 1
        assert got[0] == want[0] and np.array_equal(got[1], want[1]), text
    assert covered >= 0.9 * valid > 1000  # the bulk path does the work, not the fallback
    assert bulk[texts.index("MAPbI1.5I1.5")] is None and bulk[texts.index("MAPb(I)3")] is None  # not plain
