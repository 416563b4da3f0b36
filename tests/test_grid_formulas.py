"""Vectorised display formulas of screening grids parse back to their compositions."""
from __future__ import annotations

import numpy as np
import pytest

from nestedae_core.chemistry.composition import composition_grid, parse_formula
from nestedae_core.predict import grid_formulas

pytestmark = pytest.mark.unit


def test_grid_formulas_parse_back() -> None:
    grid = composition_grid(["Cs", "MA", "FA"], ["Pb", "Sn"], ["I", "Br"], 0.25)
    formulas = grid_formulas(grid)
    assert len(formulas) == len(grid)
    for text, row in zip(formulas, grid):
        assert np.allclose(parse_formula(text).fraction_vector(), row, atol=1e-9)
    assert "MAPbI3" in formulas and "Cs0.25FA0.75PbBr0.75I2.25" in formulas


def test_grid_formulas_round_to_significant_digits() -> None:
    grid = composition_grid(["MA", "FA"], ["Pb"], ["I"], 1 / 12)
    assert "FA0.08333MA0.9167PbI3" in grid_formulas(grid)


def test_grid_size_counts_the_grid_without_building_it() -> None:
    from nestedae_core.chemistry.composition import composition_grid, grid_size

    assert grid_size(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 10) == 66 * 1 * 11
    assert grid_size(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 10) == len(composition_grid(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 0.1))
    assert grid_size(["Cs"], ["Pb", "Sn"], ["I"], 4) == len(composition_grid(["Cs"], ["Pb", "Sn"], ["I"], 0.25)) == 5
    assert grid_size([], ["Pb"], ["I"], 10) == 0
