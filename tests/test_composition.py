"""Tests of nestedae_core.chemistry.composition: parsing, validation, canonical formulas, mixing, grids."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nestedae_core.chemistry.composition import (
    A_SITE_IONS,
    B_SITE_IONS,
    IONS,
    SITE_OF_ION,
    X_SITE_IONS,
    Composition,
    composition_grid,
    mix,
    parse_formula,
)
from nestedae_core.errors import CompositionError, NestedAEError

pytestmark = pytest.mark.unit


def amounts(comp: Composition) -> dict[str, float]:
    return {**comp.a, **comp.b, **comp.x}


# ----------------------------------------------------------------- constants
def test_ion_constants() -> None:
    assert A_SITE_IONS == ("K", "Rb", "Cs", "MA", "FA")
    assert B_SITE_IONS == ("Ca", "Sr", "Ba", "Ge", "Sn", "Pb")
    assert X_SITE_IONS == ("Cl", "Br", "I")
    assert IONS == A_SITE_IONS + B_SITE_IONS + X_SITE_IONS and len(IONS) == 14
    assert list(SITE_OF_ION) == list(IONS)
    assert {SITE_OF_ION[i] for i in A_SITE_IONS} == {"A"}
    assert {SITE_OF_ION[i] for i in B_SITE_IONS} == {"B"}
    assert {SITE_OF_ION[i] for i in X_SITE_IONS} == {"X"}


# ------------------------------------------------------------------ notations
# Expected amounts per formula unit (X as amounts summing to 3).
NOTATIONS: list[tuple[str, dict[str, float]]] = [
    ("MAPbI3", {"MA": 1, "Pb": 1, "I": 3}),
    ("CsPbI2Br", {"Cs": 1, "Pb": 1, "I": 2, "Br": 1}),
    ("FAPbI3", {"FA": 1, "Pb": 1, "I": 3}),
    ("MAPbBrI2", {"MA": 1, "Pb": 1, "Br": 1, "I": 2}),
    ("MAGeCl_3", {"MA": 1, "Ge": 1, "Cl": 3}),
    ("RbCaCl_2.25_I_0.75", {"Rb": 1, "Ca": 1, "Cl": 2.25, "I": 0.75}),
    ("FA_0.5K_0.25Rb_0.125Cs_0.125BaBr_3", {"FA": 0.5, "K": 0.25, "Rb": 0.125, "Cs": 0.125, "Ba": 1, "Br": 3}),
    ("MAPbIBr_2", {"MA": 1, "Pb": 1, "I": 1, "Br": 2}),
    ("Cs0.05FA0.79MA0.16PbBr0.51I2.49", {"Cs": 0.05, "FA": 0.79, "MA": 0.16, "Pb": 1, "Br": 0.51, "I": 2.49}),
    ("FA0.6MA0.4Pb0.4Sn0.6I3", {"FA": 0.6, "MA": 0.4, "Pb": 0.4, "Sn": 0.6, "I": 3}),
    (
        "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3",
        {"Cs": 0.05, "FA": 0.7885, "MA": 0.1615, "Pb": 1, "I": 2.49, "Br": 0.51},
    ),
    ("(FAPbI3)0.85(MAPbBr3)0.15", {"FA": 0.85, "MA": 0.15, "Pb": 1, "I": 2.55, "Br": 0.45}),
    ("[FAPbI3]0.9[CsPbBr3]0.1", {"FA": 0.9, "Cs": 0.1, "Pb": 1, "I": 2.7, "Br": 0.3}),
    ("  Cs0.05 FA0.79 MA0.16 Pb Br0.51 I2.49 ", {"Cs": 0.05, "FA": 0.79, "MA": 0.16, "Pb": 1, "Br": 0.51, "I": 2.49}),
    ("CH3NH3PbI3", {"MA": 1, "Pb": 1, "I": 3}),
    ("HC(NH2)2PbBr3", {"FA": 1, "Pb": 1, "Br": 3}),
    # tokenisation of look-alike symbols: Cs/Ca/Cl, Ba/Br, Sn/Sr, K/KI
    ("CsCaCl3", {"Cs": 1, "Ca": 1, "Cl": 3}),
    ("KBaBr3", {"K": 1, "Ba": 1, "Br": 3}),
    ("RbSr0.5Sn0.5ClBrI", {"Rb": 1, "Sr": 0.5, "Sn": 0.5, "Cl": 1, "Br": 1, "I": 1}),
    ("FA0.5MA0.5SnI3", {"FA": 0.5, "MA": 0.5, "Sn": 1, "I": 3}),
    ("K0.5Cs0.5GeI3", {"K": 0.5, "Cs": 0.5, "Ge": 1, "I": 3}),
]


@pytest.mark.parametrize(("text", "expected"), NOTATIONS, ids=[t for t, _ in NOTATIONS])
def test_notations_parse_to_expected_amounts(text: str, expected: dict[str, float]) -> None:
    comp = parse_formula(text)
    got = amounts(comp)
    assert set(got) == set(expected)
    for ion, value in expected.items():
        assert got[ion] == pytest.approx(value, abs=1e-12), ion


@pytest.mark.parametrize("text", [t for t, _ in NOTATIONS])
def test_formula_round_trip(text: str) -> None:
    comp = parse_formula(text)
    again = parse_formula(comp.formula)
    assert again == comp
    assert hash(again) == hash(comp)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("MAPbI3", "MAPbI3"),
        ("Cs0.05FA0.79MA0.16PbBr0.51I2.49", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"),
        ("CsPbI2Br", "CsPbBrI2"),
        ("FA_0.5K_0.25Rb_0.125Cs_0.125BaBr_3", "Cs0.125FA0.5K0.25Rb0.125BaBr3"),
        ("Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3", "Cs0.05FA0.7885MA0.1615PbBr0.51I2.49"),
        ("Cs0.30FA0.70PbI3", "Cs0.3FA0.7PbI3"),
        ("MAPb(I0.8Br0.2)3", "MAPbBr0.6I2.4"),
        ("(CsPbI3)0.5(CsPbI3)0.5", "CsPbI3"),
    ],
)
def test_canonical_formula(text: str, canonical: str) -> None:
    assert parse_formula(text).formula == canonical


def test_formula_uses_more_digits_only_when_needed() -> None:
    third = 1.0 / 3.0
    comp = Composition.from_fractions({"Cs": third, "FA": third, "MA": third, "Pb": 1, "I": 1})
    assert comp.formula == "Cs0.3333FA0.3333MA0.3333PbI3"
    assert parse_formula(comp.formula) == comp
    # 0.12345 / 0.87655 cannot be written with 4 digits without changing the composition.
    odd = Composition(a={"Cs": 0.12345, "FA": 0.87655}, b={"Pb": 1}, x={"I": 3})
    assert parse_formula(odd.formula) == odd
    assert "0.12345" in odd.formula


def test_within_tolerance_is_scaled_exactly() -> None:
    comp = parse_formula("Cs0.05FA0.8MA0.16PbI3")  # A sums to 1.01
    assert sum(comp.a.values()) == pytest.approx(1.0, abs=1e-12)
    assert comp.a["FA"] == pytest.approx(0.8 / 1.01)
    with pytest.raises(CompositionError, match=r"A-site amounts sum to 1\.01"):
        parse_formula("Cs0.05FA0.8MA0.16PbI3", tolerance=0.001)


def test_renormalize_scales_each_site() -> None:
    assert parse_formula("FA0.5PbI3", renormalize=True) == parse_formula("FAPbI3")
    assert parse_formula("Cs2PbI3", renormalize=True) == parse_formula("CsPbI3")
    comp = parse_formula("MA2Pb2Br2I4", renormalize=True)
    assert comp == parse_formula("MAPbBrI2")


# --------------------------------------------------------------------- errors
ERRORS: list[tuple[object, list[str]]] = [
    ("FA0.5PbI3", ["A-site amounts sum to 0.5", "expected 1 ± 0.02", "renormalize"]),
    ("Cs2PbI3", ["A-site amounts sum to 2", "expected 1"]),
    ("MAPb0.5I3", ["B-site amounts sum to 0.5"]),
    ("MAPbI2", ["X-site amounts sum to 2", "expected 3 ± 0.06"]),
    ("", ["empty formula"]),
    ("   ", ["empty formula"]),
    ("MA" * 129, ["258 characters", "limit is 256"]),
    ("MAPbI3-DAP", ["additives are not supported", "remove '-DAP'"]),
    ("MAPbI3 + KI", ["additives are not supported", "remove '+ KI'"]),
    ("Cs0.05(FA0.83MA0.17PbI3", ["unbalanced parentheses", "'('", "never closed"]),
    ("MAPbI3)", ["unbalanced parentheses", "')'"]),
    ("MA(PbI3]", ["unbalanced parentheses", "']'"]),
    ("MA()PbI3", ["empty parentheses"]),
    ("Cs-0.5FA1.5PbI3", ["negative amount '-0.5'"]),
    ("FA0Cs0.00PbI3", ["no A-site ion"]),  # zero amounts are absent ions: nothing left on the A site
    ("MAPb(I0Br0.0)3", ["no X-site ion"]),
    ("Cs0.5.5FA0.5PbI3", ["garbled number '0.5.5'"]),
    ("MAPbI3.", ["garbled number '3.'"]),
    ("MAPbI1e0", ["garbled number '1e'"]),
    ("GAPbI3", ["unknown species 'GA'", "known ions are K, Rb, Cs, MA, FA"]),
    ("PEA2PbI4", ["unknown species 'PEA'"]),
    ("MAPbI3DAP", ["unknown species 'DAP'"]),
    ("InPbI3", ["unknown species 'In'"]),
    ("CPbI3", ["unknown species 'C'"]),
    ("KrPbI3", ["unknown species 'Kr'"]),
    ("mapbi3", ["'mapbi'", "case-sensitive"]),
    ("MAPb(I1-xBrx)3", ["symbolic amount '-x'"]),
    ("MAPbI3:PEAI", ["unexpected character ':'"]),
    ("PbI2", ["no A-site ion", "K, Rb, Cs, MA, FA"]),
    ("CsI", ["no B-site ion"]),
    ("CsPb", ["no X-site ion"]),
    ("2MAPbI3", ["amount '2'", "does not follow an ion"]),
    (None, ["must be a string"]),
]


@pytest.mark.parametrize(("text", "fragments"), ERRORS, ids=[repr(t)[:30] for t, _ in ERRORS])
def test_parse_errors_are_specific(text: object, fragments: list[str]) -> None:
    with pytest.raises(CompositionError) as info:
        parse_formula(text)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, ValueError) and isinstance(info.value, NestedAEError)


def test_renormalize_cannot_fix_missing_site_or_bad_tokens() -> None:
    with pytest.raises(CompositionError, match="no A-site ion"):
        parse_formula("PbI3", renormalize=True)
    with pytest.raises(CompositionError, match="unknown species 'GA'"):
        parse_formula("GAPbI3", renormalize=True)
    with pytest.raises(CompositionError, match="tolerance"):
        parse_formula("MAPbI3", tolerance=-1)


# ---------------------------------------------------------- Composition API
def test_composition_members_and_views() -> None:
    comp = parse_formula("Cs0.05FA0.79MA0.16PbBr0.51I2.49")
    assert dict(comp.a) == pytest.approx({"Cs": 0.05, "MA": 0.16, "FA": 0.79})
    assert dict(comp.b) == {"Pb": 1.0}
    assert dict(comp.x) == pytest.approx({"Br": 0.51, "I": 2.49})
    fractions = comp.fractions()
    assert list(fractions) == list(IONS)
    assert fractions["Br"] == pytest.approx(0.17) and fractions["I"] == pytest.approx(0.83)
    assert fractions["K"] == 0.0
    vector = comp.fraction_vector()
    assert vector.shape == (14,)
    np.testing.assert_allclose(vector, list(fractions.values()))
    for site in (slice(0, 5), slice(5, 11), slice(11, 14)):
        assert vector[site].sum() == pytest.approx(1.0)
    assert comp.ions == ("Cs", "MA", "FA", "Pb", "Br", "I")
    assert str(comp) == comp.formula and "Cs0.05" in repr(comp)


def test_composition_is_immutable_and_hashable() -> None:
    comp = parse_formula("MAPbI3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        comp.a = {"FA": 1.0}  # type: ignore[misc]
    with pytest.raises(TypeError):
        comp.a["MA"] = 0.5  # type: ignore[index]
    assert len({comp, parse_formula("CH3NH3PbI3"), parse_formula("MAPbI_3")}) == 1
    assert comp != parse_formula("FAPbI3")


def test_direct_constructor_validates_sites() -> None:
    comp = Composition(a={"MA": 1}, b={"Pb": 1}, x={"I": 3})
    assert comp == parse_formula("MAPbI3")
    with pytest.raises(CompositionError, match="Br is an X-site ion, not an A-site ion"):
        Composition(a={"Br": 1}, b={"Pb": 1}, x={"I": 3})
    with pytest.raises(CompositionError, match="X-site amounts sum to 2"):
        Composition(a={"MA": 1}, b={"Pb": 1}, x={"I": 2})
    with pytest.raises(CompositionError, match="unknown ion 'Xe'"):
        Composition(a={"Xe": 1}, b={"Pb": 1}, x={"I": 3})


def test_to_dict_from_dict_round_trip() -> None:
    comp = parse_formula("Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3")
    data = json.loads(json.dumps(comp.to_dict()))
    assert data["formula"] == comp.formula
    assert Composition.from_dict(data) == comp
    assert Composition.from_dict({"formula": "MAPbI3"}) == parse_formula("MAPbI3")
    with pytest.raises(CompositionError, match="needs keys"):
        Composition.from_dict({"name": "MAPbI3"})


def test_from_fractions_detects_x_convention() -> None:
    expected = parse_formula("MAPbBr0.51I2.49")
    assert Composition.from_fractions({"MA": 1, "Pb": 1, "Br": 0.17, "I": 0.83}) == expected
    assert Composition.from_fractions({"MA": 1, "Pb": 1, "Br": 0.51, "I": 2.49}) == expected
    row = {ion: 0.0 for ion in IONS} | {"MA": 1.0, "Pb": 1.0, "Br": 0.17, "I": 0.83}
    assert Composition.from_fractions(pd.Series(row)) == expected
    with pytest.raises(CompositionError, match="X-site values sum to 2"):
        Composition.from_fractions({"MA": 1, "Pb": 1, "I": 2})
    assert Composition.from_fractions({"MA": 1, "Pb": 1, "I": 2}, renormalize=True) == parse_formula("MAPbI3")
    with pytest.raises(CompositionError, match="A-site amounts sum to 0.5"):
        Composition.from_fractions({"MA": 0.5, "Pb": 1, "I": 1})
    with pytest.raises(CompositionError, match="unknown ion 'GA'"):
        Composition.from_fractions({"GA": 1, "Pb": 1, "I": 1})
    with pytest.raises(CompositionError, match="fraction of Pb is -1"):
        Composition.from_fractions({"MA": 1, "Pb": -1, "I": 1})


# ---------------------------------------------------------------------- mix
def test_mix_line_scan() -> None:
    iodide, bromide = parse_formula("MAPbI3"), parse_formula("MAPbBr3")
    assert mix([(iodide, 0.7), (bromide, 0.3)]) == parse_formula("MAPbBr0.9I2.1")
    assert mix([(iodide, 7), (bromide, 3)]) == parse_formula("MAPbBr0.9I2.1")  # weights normalised
    assert mix([(iodide, 1.0)]) == iodide
    assert mix([(iodide, 1.0), (bromide, 0.0)]) == iodide
    end_members = mix([(parse_formula("FAPbI3"), 0.85), (parse_formula("MAPbBr3"), 0.15)])
    assert end_members == parse_formula("(FAPbI3)0.85(MAPbBr3)0.15")


@pytest.mark.parametrize(
    ("parts", "fragment"),
    [
        ([], "at least one"),
        ([(None, 1.0)], "expected a Composition"),
        ([("MAPbI3", 1.0)], "expected a Composition"),
        ([(Composition(a={"MA": 1}, b={"Pb": 1}, x={"I": 3}), -1.0)], "weight 0 is -1"),
        ([(Composition(a={"MA": 1}, b={"Pb": 1}, x={"I": 3}), 0.0)], "sum to 0"),
    ],
)
def test_mix_errors(parts: list, fragment: str) -> None:
    with pytest.raises(CompositionError, match=re.escape(fragment)):
        mix(parts)


# --------------------------------------------------------------------- grid
def test_grid_enumerates_every_simplex_point() -> None:
    grid = composition_grid(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 0.1)
    assert grid.shape == (66 * 1 * 11, 14)
    cols = {ion: IONS.index(ion) for ion in IONS}
    for site in (slice(0, 5), slice(5, 11), slice(11, 14)):
        np.testing.assert_allclose(grid[:, site].sum(axis=1), 1.0)
    assert len(np.unique(np.round(grid, 9), axis=0)) == len(grid)
    np.testing.assert_allclose(grid * 10, np.round(grid * 10), atol=1e-9)
    for ion in ("K", "Rb", "Ca", "Sr", "Ba", "Ge", "Sn", "Cl"):
        assert not grid[:, cols[ion]].any()
    # every row is a valid composition in the fraction_vector convention
    row = grid[123]
    comp = Composition.from_fractions(dict(zip(IONS, row)))
    np.testing.assert_allclose(comp.fraction_vector(), row, atol=1e-12)
    assert composition_grid(["MA"], ["Pb"], ["I"], 1.0).shape == (1, 14)
    assert composition_grid(["MA"], ["Pb"], ["Br", "I"], 0.25).shape == (5, 14)


def test_large_grid_has_every_composition_once() -> None:
    """Its speed is a figure of benchmarks/bench_parse.py."""
    grid = composition_grid(["Cs", "MA", "FA"], ["Sn", "Pb"], ["Br", "I"], 0.05)
    assert grid.shape == (231 * 21 * 21, 14)  # 101,871 rows
    assert len(np.unique(np.round(grid * 20).astype(np.int64), axis=0)) == len(grid)
    for site in (slice(0, 5), slice(5, 11), slice(11, 14)):
        np.testing.assert_allclose(grid[:, site].sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((["MA"], ["Pb"], ["I"], 0), "not in (0, 1]"),
        ((["MA"], ["Pb"], ["I"], -0.1), "not in (0, 1]"),
        ((["MA"], ["Pb"], ["I"], 1.5), "not in (0, 1]"),
        ((["MA"], ["Pb"], ["I"], float("nan")), "not in (0, 1]"),
        ((["MA"], ["Pb"], ["I"], 0.3), "does not divide 1"),
        ((["Br"], ["Pb"], ["I"], 0.1), "Br is an X-site ion but was given as an A-site ion"),
        ((["MA"], ["I"], ["Br"], 0.1), "I is an X-site ion but was given as a B-site ion"),
        ((["MA"], ["Pb"], ["Cs"], 0.1), "Cs is an A-site ion"),
        ((["GA"], ["Pb"], ["I"], 0.1), "unknown ion 'GA'"),
        (([], ["Pb"], ["I"], 0.1), "no A-site ions"),
        ((["MA", "MA"], ["Pb"], ["I"], 0.1), "listed twice"),
        ((list(A_SITE_IONS), list(B_SITE_IONS), list(X_SITE_IONS), 0.01), "limit"),
    ],
)
def test_grid_errors(args: tuple, fragment: str) -> None:
    with pytest.raises(CompositionError, match=re.escape(fragment)):
        composition_grid(*args)


# ----------------------------------------------------------- dataset formulas
def test_every_pbe_formula_parses_and_round_trips(data_dir: Path) -> None:
    formulas = pd.read_csv(data_dir / "PBE_data.csv")["Formula"].unique()
    assert len(formulas) == 473
    for text in formulas:
        comp = parse_formula(text)
        assert parse_formula(comp.formula) == comp, text


def test_device_long_forms_are_canonical_formulas(data_dir: Path) -> None:
    """Our canonical formula is the Perovskite Database long form up to trailing zeros (0.30 -> 0.3)."""
    column = pd.read_csv(data_dir / "PSC_efficiencies_dataset.csv")["Perovskite_composition_long_form"]
    for text in column.unique():
        stripped = re.sub(r"\d+\.\d+", lambda m: m.group(0).rstrip("0").rstrip("."), text)
        assert parse_formula(text).formula == stripped, text
