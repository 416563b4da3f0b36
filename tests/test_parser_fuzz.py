"""Fuzz test of the formula parser (hypothesis).

Whatever text a user types, pastes or puts in a URL, ``parse_formula`` either
returns a Composition or raises the library's own
:class:`~nestedae_core.errors.CompositionError` (an InputError-like
``NestedAEError``) with a one-line message; and every valid composition
survives ``parse_formula(comp.formula)`` unchanged.
"""
from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nestedae_core.chemistry.composition import (
    MAX_FORMULA_LENGTH,
    SITE_IONS,
    Composition,
    parse_formula,
)
from nestedae_core.errors import CompositionError, NestedAEError

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=int(os.environ.get("NESTEDAE_FUZZ_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Decimal digits of several scripts, sub- and superscript digits, other number characters.
UNICODE_DIGITS = "٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९０１２３４５６７８９𝟎𝟏𝟐𝟑₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹½¼①Ⅲ٫．"
ION_SYMBOLS = [ion for ions in SITE_IONS.values() for ion in ions] + ["CH3NH3", "CH(NH2)2", "HC(NH2)2", "X", "Zz", "ma"]
PIECES = st.one_of(
    st.sampled_from(ION_SYMBOLS),
    st.sampled_from(list("0123456789.")),
    st.sampled_from(list(UNICODE_DIGITS)),
    st.sampled_from(list("()[]{}_ +-*/\\'\"`<>!#:")),
    st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,4})?", fullmatch=True),
    st.characters(),
)
FORMULA_LIKE = st.lists(PIECES, max_size=40).map("".join)


def _parse_or_input_error(text: str) -> Composition | None:
    """Parse ``text``; None when the library rejected it with its own error (anything else fails the test)."""
    try:
        comp = parse_formula(text)
    except CompositionError as exc:
        message = str(exc)
        assert message and "\n" not in message, repr(message)
        return None
    assert isinstance(comp, Composition)
    return comp


@FUZZ
@given(st.text(max_size=MAX_FORMULA_LENGTH + 20))
def test_arbitrary_text_parses_or_raises_composition_error(text: str) -> None:
    _parse_or_input_error(text)


@FUZZ
@given(FORMULA_LIKE)
def test_formula_like_text_parses_or_raises_composition_error(text: str) -> None:
    comp = _parse_or_input_error(text)
    if comp is not None:  # whatever parsed prints a formula that parses back to itself
        assert parse_formula(comp.formula) == comp


@FUZZ
@given(FORMULA_LIKE, st.booleans(), st.floats(min_value=0, max_value=1, allow_nan=False))
def test_renormalize_and_tolerance_never_raise_another_error(text: str, renormalize: bool, tolerance: float) -> None:
    try:
        parse_formula(text, renormalize=renormalize, tolerance=tolerance)
    except CompositionError:
        pass


def _site(site: str) -> st.SearchStrategy[dict[str, float]]:
    ions = SITE_IONS[site]
    return st.dictionaries(st.sampled_from(ions), st.floats(min_value=1e-6, max_value=10.0), min_size=1, max_size=len(ions))


@FUZZ
@given(_site("A"), _site("B"), _site("X"))
def test_valid_compositions_round_trip_through_their_formula(a: dict[str, float], b: dict[str, float], x: dict[str, float]) -> None:
    comp = Composition.from_fractions({**a, **b, **x}, renormalize=True)
    assert parse_formula(comp.formula) == comp
    assert Composition.from_dict(comp.to_dict()) == comp


def _to_script(text: str, zero: str) -> str:
    """``text`` with its ASCII digits written in the script whose digit zero is ``zero``."""
    return "".join(chr(ord(zero) + int(ch)) if ch.isdigit() else ch for ch in text)


@FUZZ
@given(_site("A"), _site("B"), _site("X"), st.sampled_from(["٠", "۰", "०", "０", "𝟎", "߀"]))
def test_any_decimal_script_reads_as_ascii_digits(a: dict[str, float], b: dict[str, float], x: dict[str, float], zero: str) -> None:
    assert unicodedata.decimal(zero) == 0
    comp = Composition.from_fractions({**a, **b, **x}, renormalize=True)
    assert parse_formula(_to_script(comp.formula, zero)) == comp


@pytest.mark.parametrize("bad", ["", " ", "\x00", "\ud800", "((((((((((", "))", "MA" * 200, "1e999", "9" * 199])
def test_edge_cases_raise_composition_error(bad: str) -> None:
    with pytest.raises(NestedAEError):
        parse_formula(bad)
