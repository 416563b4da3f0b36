"""Formulas -> :class:`~.core.Composition`: the parser of the notations found in the data sets and the literature.

:func:`parse_formula` reads::

    MAPbI3  CsPbI2Br  MAPbBrI2                      plain
    MAGeCl_3  RbCaCl_2.25_I_0.75                    underscores before amounts
    Cs0.05FA0.79MA0.16PbBr0.51I2.49                 compact decimals
    Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3        nested groups with multipliers
    (FAPbI3)0.85(MAPbBr3)0.15                       weighted end members
    MAPbI₃  MAPbI³  MAPbI٣  ＭＡＰｂＩ３              unicode digits (decimal, sub-/superscript)

Any Unicode decimal digit (Arabic-Indic, full-width, ...) and the sub- and
superscript digits are read as the digits they are, and full-width ASCII forms
as their ASCII letters and signs; other number characters (``½``, ``①``) and
other characters are rejected. It rejects everything else with a one-line
:class:`~nestedae_core.errors.CompositionError` that names the offending token.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from ...errors import CompositionError
from ...vocabulary import SITE_OF_ION
from .core import _KNOWN_LIST, Composition, _build, _check_tolerance

__all__ = ["MAX_FORMULA_LENGTH", "parse_formula"]

#: Longest formula string :func:`parse_formula` accepts (characters); every
#: canonical :attr:`Composition.formula` (at most 14 ions with 12 decimals) fits.
MAX_FORMULA_LENGTH: int = 256
# Spelled-out molecular cations accepted as aliases of MA and FA.
_ALIASES: tuple[tuple[str, str], ...] = (
    ("CH3NH3", "MA"),
    ("CH(NH2)2", "FA"),
    ("HC(NH2)2", "FA"),
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_DIGITS = frozenset("0123456789")
_NUMBER_RUN = re.compile(r"[0-9.]+")
_NUMBER_OK = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_UNKNOWN_WORD = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Z][a-z]*|[A-Z]+")


class _Token(NamedTuple):
    kind: str  # "ion", "num", "open", "close"
    text: str
    pos: int
    value: float = 0.0


def _fold_character(ch: str) -> str:
    """``ch`` read as the ASCII character it stands for, or ``ch`` itself.

    Decimal digits of any script (category Nd: Arabic-Indic, full-width,
    mathematical, ...) become their value, sub- and superscript digits (``₃``,
    ``³``) the digit, the Arabic decimal separator ``٫`` a ``.``, and full-width
    ASCII forms (``Ｍ``, ``（``, ``．``) their ASCII character. One character always stays one character, so that
    positions in messages point at what the user typed.
    """
    if ch.isascii():
        return ch
    if ch == "\u066b":  # ARABIC DECIMAL SEPARATOR, the decimal point of Arabic-Indic digits
        return "."
    value = unicodedata.decimal(ch, None)
    if value is not None:
        return str(value)
    folded = unicodedata.normalize("NFKC", ch)
    if len(folded) == 1 and folded.isascii() and folded.isprintable():
        tag = unicodedata.decomposition(ch).split(" ", 1)[0]
        if tag in ("<super>", "<sub>") and folded in _DIGITS:
            return folded
        if tag == "<wide>":
            return folded
    return ch


def _fold_text(text: str) -> str:
    """:func:`_fold_character` applied to every character of ``text`` (same length)."""
    return text if text.isascii() else "".join(_fold_character(ch) for ch in text)


def _describe_character(ch: str) -> str:
    """``'x'``, or for a character outside ASCII ``'½' (U+00BD VULGAR FRACTION ONE HALF)``."""
    if ch.isascii():
        return repr(ch)
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"


def _tokenize(text: str, shown: str) -> list[_Token]:
    """Split a formula into ion, number and bracket tokens; whitespace and "_" only separate.

    ``text`` holds only what :func:`_fold_text` made of the user's text; any
    character left outside ASCII (other than whitespace) is rejected.
    """
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch == "_":
            i += 1
            continue
        if ch == "+":
            raise CompositionError(f"additives are not supported: remove {text[i:].strip()!r} from {shown!r}")
        if ch == "-":
            rest = text[i + 1 :].lstrip()
            number = _NUMBER_RUN.match(rest)
            if number is not None:
                raise CompositionError(
                    f"negative amount '-{number.group(0)}' at position {i} in {shown!r}: amounts must be positive"
                )
            word = re.match(r"[a-z]+", rest)
            if word is not None:
                raise CompositionError(
                    f"symbolic amount {'-' + word.group(0)!r} at position {i} in {shown!r} is not supported: "
                    "give numbers, e.g. MAPb(I0.8Br0.2)3, or use mix() for line scans"
                )
            raise CompositionError(f"additives are not supported: remove {text[i:].strip()!r} from {shown!r}")
        if ch in _OPENERS:
            tokens.append(_Token("open", ch, i))
            i += 1
            continue
        if ch in _CLOSERS:
            tokens.append(_Token("close", ch, i))
            i += 1
            continue
        if ch in _DIGITS or ch == ".":
            run = _NUMBER_RUN.match(text, i)
            number = run.group(0) if run is not None else ch
            end = i + len(number)
            trailing = re.match(r"[a-z]*", text[end:]).group(0)  # type: ignore[union-attr]
            if not _NUMBER_OK.fullmatch(number) or trailing:
                raise CompositionError(
                    f"garbled number {number + trailing!r} at position {i} in {shown!r}: write amounts like 0.5 or 2.49"
                )
            value = float(number)  # a zero amount (FA1.00Cs0.00PbI3) means the ion is absent
            tokens.append(_Token("num", number, i, value))
            i = end
            continue
        if "A" <= ch <= "Z":
            two = text[i : i + 2]
            if two in ("MA", "FA"):
                tokens.append(_Token("ion", two, i))
                i += 2
                continue
            if len(two) == 2 and "a" <= two[1] <= "z":
                if two in SITE_OF_ION:
                    tokens.append(_Token("ion", two, i))
                    i += 2
                    continue
            elif ch in SITE_OF_ION:
                tokens.append(_Token("ion", ch, i))
                i += 1
                continue
            word = _UNKNOWN_WORD.match(text, i)
            name = word.group(0) if word else ch
            raise CompositionError(f"unknown species {name!r} at position {i} in {shown!r}: known ions are {_KNOWN_LIST}")
        if "a" <= ch <= "z":
            name = re.match(r"[a-z]+", text[i:]).group(0)  # type: ignore[union-attr]
            raise CompositionError(
                f"unexpected {name!r} at position {i} in {shown!r}: ion symbols are case-sensitive ({_KNOWN_LIST})"
            )
        if unicodedata.category(ch).startswith("N"):
            raise CompositionError(
                f"unsupported number character {_describe_character(ch)} at position {i} in {shown!r}: "
                "write amounts with digits and a '.' decimal point, e.g. 0.5 or 2.49"
            )
        raise CompositionError(
            f"unexpected character {_describe_character(ch)} at position {i} in {shown!r}: "
            "use ion symbols, amounts, parentheses and '_' only"
        )
    return tokens


def _parse_group(tokens: list[_Token], pos: int, opener: _Token | None, shown: str) -> tuple[dict[str, float], int]:
    """Parse a sequence of terms up to the closer matching ``opener``; return amounts and the next position."""
    amounts: dict[str, float] = {}
    n = len(tokens)
    while pos < n:
        tok = tokens[pos]
        if tok.kind == "close":
            if opener is None:
                raise CompositionError(f"unbalanced parentheses: {tok.text!r} at position {tok.pos} in {shown!r} has no matching opening bracket")
            if _OPENERS[opener.text] != tok.text:
                raise CompositionError(
                    f"unbalanced parentheses: {opener.text!r} at position {opener.pos} is closed by {tok.text!r} at position {tok.pos} in {shown!r}"
                )
            if not amounts:
                raise CompositionError(f"empty parentheses at position {opener.pos} in {shown!r}")
            return amounts, pos + 1
        if tok.kind == "num":
            raise CompositionError(
                f"amount {tok.text!r} at position {tok.pos} in {shown!r} does not follow an ion or a parenthesised group: "
                "write amounts after the ion, e.g. (FAPbI3)0.85"
            )
        if tok.kind == "open":
            term, pos = _parse_group(tokens, pos + 1, tok, shown)
        else:  # ion
            term, pos = {tok.text: 1.0}, pos + 1
        multiplier = 1.0
        if pos < n and tokens[pos].kind == "num":
            multiplier = tokens[pos].value
            pos += 1
        for ion, value in term.items():
            amounts[ion] = amounts.get(ion, 0.0) + value * multiplier
    amounts = {ion: value for ion, value in amounts.items() if value > 0}
    if opener is not None:
        raise CompositionError(f"unbalanced parentheses: {opener.text!r} at position {opener.pos} in {shown!r} is never closed")
    return amounts, pos


def parse_formula(text: str, *, renormalize: bool = False, tolerance: float = 0.02) -> Composition:
    """Parse a perovskite formula into a :class:`Composition`.

    Accepts plain (``MAPbI3``, ``CsPbI2Br``), underscore (``RbCaCl_2.25_I_0.75``),
    compact-decimal (``Cs0.05FA0.79MA0.16PbBr0.51I2.49``), nested-group
    (``Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3``) and end-member-mixture
    (``(FAPbI3)0.85(MAPbBr3)0.15``) notations; whitespace is ignored, ``[]`` and
    ``{}`` work like ``()``, and ``CH3NH3`` / ``CH(NH2)2`` / ``HC(NH2)2`` are
    read as MA / FA. Ion symbols are case-sensitive.

    A zero amount (``FA1.00Cs0.00PbI3``, ``MAPb(I1.0Br0.0)3``, as written by
    scripts that print every ion of a series) is read as the ion being absent.

    Each site total must be within ``tolerance`` (relative) of its nominal value
    (A: 1, B: 1, X: 3; with the default 0.02, X may sum to 3 ± 0.06) and is then
    scaled exactly to it; with ``renormalize=True`` any positive total is scaled.

    Raises:
        CompositionError: empty or over-long text, unknown species, additives
            (``-DAP``, ``+ KI``), unbalanced parentheses, negative or
            garbled amounts, a missing site, or site totals out of tolerance.
    """
    _check_tolerance(tolerance)
    if not isinstance(text, str):
        raise CompositionError(f"formula must be a string, got {type(text).__name__}")
    shown = text.strip()
    if not shown:
        raise CompositionError("empty formula: give a composition such as 'MAPbI3'")
    if len(shown) > MAX_FORMULA_LENGTH:
        raise CompositionError(
            f"formula is {len(shown)} characters long, the limit is {MAX_FORMULA_LENGTH}: shorten it or pass site fractions instead"
        )
    work = _fold_text(shown)
    for alias, ion in _ALIASES:
        work = work.replace(alias, ion)
    tokens = _tokenize(work, shown)
    amounts, _ = _parse_group(tokens, 0, None, shown)
    return _build(amounts, renormalize=renormalize, tolerance=tolerance, source=repr(shown))
