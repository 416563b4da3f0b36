"""Halide-perovskite compositions ABX3: parse, validate, normalise, mix, enumerate.

A :class:`Composition` holds the amount of each ion per formula unit of ABX3:
A-site amounts sum to 1, B-site amounts sum to 1, X-site amounts sum to 3
(dimensionless, mol of ion per mol of formula units). The same numbers in the
convention of the Mannodi-Kanakkithodi & Chan data sets (``PBE_data.csv``:
A and B as amounts, X as fractions of the X site, so that every site sums to 1)
come from :meth:`Composition.fractions` and :meth:`Composition.fraction_vector`.

:func:`parse_formula` reads the notations found in the data sets and in the
literature::

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

import itertools
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ..errors import CompositionError
from ..vocabulary import A_SITE_IONS, B_SITE_IONS, IONS, SITE_IONS, SITE_OF_ION, SITE_TOTALS, X_SITE_IONS

__all__ = [
    "A_SITE_IONS",
    "B_SITE_IONS",
    "X_SITE_IONS",
    "IONS",
    "SITE_OF_ION",
    "SITE_IONS",
    "SITE_TOTALS",
    "MAX_FORMULA_LENGTH",
    "MAX_GRID_ROWS",
    "IonAmounts",
    "Composition",
    "SiteTotalError",
    "parse_formula",
    "mix",
    "composition_grid",
    "grid_size",
]

logger = logging.getLogger(__name__)

#: Longest formula string :func:`parse_formula` accepts (characters); every
#: canonical :attr:`Composition.formula` (at most 14 ions with 12 decimals) fits.
MAX_FORMULA_LENGTH: int = 256
#: Largest grid :func:`composition_grid` builds (rows).
MAX_GRID_ROWS: int = 2_000_000

_KNOWN_LIST = ", ".join(IONS)
_SLICE = {"A": slice(0, 5), "B": slice(5, 11), "X": slice(11, 14)}
_INDEX = {ion: i for i, ion in enumerate(IONS)}
# Amounts are rounded to this many decimals so that float noise from arithmetic
# (0.83 * 0.95 = 0.7884999999999999) does not break equality or hashing.
_DECIMALS = 12
# A site whose total is this close to the nominal one (relative) is not scaled:
# canonical amounts (rounded to _DECIMALS) sum to the nominal total only to about
# 1e-12, and scaling them again could flip their last digit, so that a
# composition would not survive its own formula or to_dict().
_EXACT = 1e-9
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


def _fmt(value: float, digits: int = 4) -> str:
    """Format a positive number with ``digits`` significant digits, no exponent, no trailing zeros."""
    if value == 0 or not math.isfinite(value):
        return repr(float(value))
    if abs(value) >= 1e15:  # only in messages (amounts in formulas are at most 3): 1e+240, not 240 digits
        return f"{value:.{digits}g}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _site_name(site: str) -> str:
    """'an A-site', 'a B-site', 'an X-site'."""
    return ("a " if site == "B" else "an ") + site + "-site"


def _canon(value: float) -> float:
    return round(float(value), _DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


class SiteTotalError(CompositionError):
    """A site's amounts do not add up to its nominal total (A 1, B 1, X 3 per formula unit).

    The message is worded for the Python API ("pass renormalize=True"); the
    attributes carry the problem so that a command line or a dashboard can word
    its own remedy (a ``--renormalize`` flag, a check box).

    Attributes:
        site: "A", "B" or "X".
        total: the sum of the site's amounts as given (per formula unit).
        expected: the nominal total of the site (per formula unit).
        allowed: the accepted deviation from ``expected`` (per formula unit).
        source: what was being read, e.g. the formula in quotes.
    """

    def __init__(self, message: str, *, site: str, total: float, expected: float, allowed: float, source: str) -> None:
        super().__init__(message)
        self.site = site
        self.total = total
        self.expected = expected
        self.allowed = allowed
        self.source = source

    def describe(self) -> str:
        """The problem without a remedy, e.g. ``X-site amounts sum to 2.5 in 'MAPbI2.5', expected 3 ± 0.06``."""
        return (f"{self.site}-site amounts sum to {_fmt(self.total)} in {self.source}, "
                f"expected {_fmt(self.expected)} ± {_fmt(self.allowed)}")


class IonAmounts(Mapping[str, float]):
    """Immutable, hashable mapping ion -> amount (only nonzero amounts, in IONS order)."""

    __slots__ = ("_items", "_dict")

    def __init__(self, items: Iterable[tuple[str, float]] = ()) -> None:
        pairs = tuple(sorted(((str(k), float(v)) for k, v in items), key=lambda kv: _INDEX.get(kv[0], 99)))
        self._items = pairs
        self._dict = dict(pairs)

    def __getitem__(self, key: str) -> float:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._dict == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._items) + "}"


@dataclass(frozen=True, repr=False)
class Composition:
    """Amounts of each ion per ABX3 formula unit (dimensionless).

    ``a`` and ``b`` sum to 1, ``x`` sums to 3; each holds only nonzero amounts.
    Build one with :func:`parse_formula`, :meth:`from_fractions`, :func:`mix` or
    directly, ``Composition(a={"MA": 1}, b={"Pb": 1}, x={"I": 3})``; the direct
    constructor accepts site totals off by at most 1e-6 (relative) and scales
    them exactly. Instances are immutable, hashable and compare by amounts
    (rounded to 12 decimals).
    """

    a: Mapping[str, float]
    b: Mapping[str, float]
    x: Mapping[str, float]

    def __post_init__(self) -> None:
        for site, given in (("A", self.a), ("B", self.b), ("X", self.x)):
            object.__setattr__(self, site.lower(), _canonical_site(site, given))

    # ------------------------------------------------------------------ views
    def _amount_vector(self) -> np.ndarray:
        """Amounts per formula unit in IONS order (X sums to 3)."""
        vec = np.zeros(len(IONS))
        for mapping in (self.a, self.b, self.x):
            for ion, value in mapping.items():
                vec[_INDEX[ion]] = value
        return vec

    def fractions(self) -> dict[str, float]:
        """Site fractions of all 14 ions in IONS order (dimensionless).

        A and B values are amounts per formula unit (each site sums to 1); X
        values are fractions of the X site (sum to 1), i.e. amount / 3. This is
        the convention of the ion columns of ``PBE_data.csv``.
        """
        return dict(zip(IONS, (float(v) for v in self.fraction_vector())))

    def fraction_vector(self) -> np.ndarray:
        """:meth:`fractions` as a float array of shape (14,), IONS order."""
        vec = self._amount_vector()
        vec[_SLICE["X"]] /= SITE_TOTALS["X"]
        return vec

    @property
    def ions(self) -> tuple[str, ...]:
        """Ions present (nonzero amount), in IONS order."""
        return tuple(self.a) + tuple(self.b) + tuple(self.x)

    @cached_property
    def formula(self) -> str:
        """Canonical compact formula, e.g. ``Cs0.05FA0.79MA0.16PbBr0.51I2.49`` or ``MAPbI3``.

        Sites in the order A, B, X; ions alphabetical within a site (the
        Perovskite Database convention); amounts with 4 significant digits,
        trailing zeros stripped, a coefficient of 1 omitted. When 4 digits would
        not parse back to exactly this composition (e.g. after renormalising
        0.33 + 0.33 + 0.33), as many more digits as needed are used, up to the
        12 decimals the amounts are stored with (which always parse back).
        """
        for digits in range(4, 14):
            text = self._format(digits)
            try:
                if parse_formula(text) == self:
                    return text
            except CompositionError:  # pragma: no cover - defensive
                continue
        return self._format_exact()

    def _format_exact(self) -> str:
        """The formula with every amount to :data:`_DECIMALS` decimals: exactly the stored amounts."""
        parts: list[str] = []
        for mapping in (self.a, self.b, self.x):
            for ion in sorted(mapping):
                text = f"{mapping[ion]:.{_DECIMALS}f}".rstrip("0").rstrip(".")
                parts.append(ion if text == "1" else ion + text)
        return "".join(parts)

    def _format(self, digits: int) -> str:
        parts: list[str] = []
        for mapping in (self.a, self.b, self.x):
            for ion in sorted(mapping):
                value = mapping[ion]
                text = _fmt(value, digits)
                parts.append(ion if text == "1" else ion + text)
        return "".join(parts)

    def __str__(self) -> str:
        return self.formula

    def __repr__(self) -> str:
        return f"Composition({self.formula!r})"

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"formula": str, "a": {...}, "b": {...}, "x": {...}}`` (amounts per f.u.)."""
        return {"formula": self.formula, "a": dict(self.a), "b": dict(self.b), "x": dict(self.x)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Composition:
        """Inverse of :meth:`to_dict`; a mapping with only ``formula`` is parsed instead."""
        if not isinstance(data, Mapping):
            raise CompositionError(f"Composition.from_dict expects a mapping, got {type(data).__name__}")
        if all(key in data for key in ("a", "b", "x")):
            return cls(a=data["a"], b=data["b"], x=data["x"])
        if "formula" in data:
            return parse_formula(str(data["formula"]))
        raise CompositionError(f"Composition.from_dict needs keys 'a', 'b', 'x' or 'formula', got {sorted(map(str, data))}")

    @classmethod
    def from_fractions(
        cls,
        mapping: Mapping[str, float],
        *,
        renormalize: bool = False,
        tolerance: float = 0.02,
    ) -> Composition:
        """Build a composition from ion -> value (dimensionless; missing ions are 0).

        A and B values are amounts per formula unit (each site sums to 1). X
        values may be fractions of the X site (sum to 1, the ``PBE_data.csv``
        convention) or amounts per formula unit (sum to 3); which one is
        detected from their sum. Site totals are validated exactly like
        :func:`parse_formula` (within ``tolerance`` relative to the nominal
        total, or any positive total when ``renormalize`` is true) and then
        scaled to the nominal totals.
        """
        _check_tolerance(tolerance)
        if not hasattr(mapping, "items"):
            raise CompositionError(f"from_fractions expects a mapping ion -> value, got {type(mapping).__name__}")
        amounts: dict[str, float] = {}
        for key, raw in mapping.items():
            ion = str(key)
            if ion not in SITE_OF_ION:
                raise CompositionError(f"unknown ion {ion!r} in fractions: known ions are {_KNOWN_LIST}")
            value = _non_negative(raw, f"fraction of {ion}")
            if value > 0:
                amounts[ion] = amounts.get(ion, 0.0) + value
        x_sum = sum(v for ion, v in amounts.items() if SITE_OF_ION[ion] == "X")
        if x_sum > 0 and abs(x_sum - 1.0) <= tolerance:
            amounts = {ion: (v * SITE_TOTALS["X"] if SITE_OF_ION[ion] == "X" else v) for ion, v in amounts.items()}
        elif x_sum > 0 and abs(x_sum - SITE_TOTALS["X"]) > tolerance * SITE_TOTALS["X"] and not renormalize:
            raise CompositionError(
                f"X-site values sum to {_fmt(x_sum)}, expected fractions summing to 1 ± {_fmt(tolerance)} "
                f"or amounts summing to 3 ± {_fmt(3 * tolerance)} (or pass renormalize=True)"
            )
        return _build(amounts, renormalize=renormalize, tolerance=tolerance, source="fractions")


def _non_negative(raw: Any, what: str) -> float:
    """``raw`` as a finite float >= 0 (CompositionError naming ``what`` otherwise)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise CompositionError(f"{what} is {raw!r}, expected a number") from None
    if not math.isfinite(value) or value < 0:
        raise CompositionError(f"{what} is {value!r}, expected a finite number >= 0")
    return value


def _canonical_site(site: str, given: Mapping[str, float]) -> IonAmounts:
    """Validate one site of a directly constructed Composition and scale it exactly."""
    if not hasattr(given, "items"):
        raise CompositionError(f"{site}-site amounts must be a mapping ion -> amount, got {type(given).__name__}")
    values: dict[str, float] = {}
    for key, raw in given.items():
        ion = str(key)
        if ion not in SITE_OF_ION:
            raise CompositionError(f"unknown ion {ion!r} on the {site} site: known ions are {_KNOWN_LIST}")
        if SITE_OF_ION[ion] != site:
            raise CompositionError(f"{ion} is {_site_name(SITE_OF_ION[ion])} ion, not {_site_name(site)} ion: move it to the {SITE_OF_ION[ion]} site")
        value = _non_negative(raw, f"amount of {ion}")
        if value > 0:
            values[ion] = values.get(ion, 0.0) + value
    nominal = SITE_TOTALS[site]
    total = sum(values.values())
    if total <= 0:
        raise CompositionError(f"no {site}-site ion given: add one of {', '.join(SITE_IONS[site])}")
    if abs(total - nominal) > 1e-6 * nominal:
        raise CompositionError(
            f"{site}-site amounts sum to {_fmt(total)}, expected {_fmt(nominal)}: "
            "use Composition.from_fractions(..., renormalize=True) to scale them"
        )
    scale = 1.0 if abs(total - nominal) <= _EXACT * nominal else nominal / total
    items = ((ion, _canon(v * scale)) for ion, v in values.items())
    return IonAmounts((ion, v) for ion, v in items if v > 0)


def _check_tolerance(tolerance: float) -> None:
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise CompositionError(f"tolerance must be a finite number >= 0, got {tolerance!r}")


def _build(amounts: Mapping[str, float], *, renormalize: bool, tolerance: float, source: str) -> Composition:
    """Check site totals of raw amounts (X as amounts) and scale each site to its nominal total."""
    sites: dict[str, dict[str, float]] = {"A": {}, "B": {}, "X": {}}
    for ion, value in amounts.items():
        sites[SITE_OF_ION[ion]][ion] = value
    scaled: dict[str, dict[str, float]] = {}
    for site, values in sites.items():
        nominal = SITE_TOTALS[site]
        total = sum(values.values())
        if total <= 0:
            raise CompositionError(f"no {site}-site ion in {source}: add one of {', '.join(SITE_IONS[site])}")
        allowed = tolerance * nominal
        if not renormalize and abs(total - nominal) > allowed + 1e-12:
            raise SiteTotalError(
                f"{site}-site amounts sum to {_fmt(total)} in {source}, expected {_fmt(nominal)} ± {_fmt(allowed)}: "
                "fix the amounts or pass renormalize=True to scale each site",
                site=site, total=total, expected=nominal, allowed=allowed, source=source,
            )
        if abs(total - nominal) <= _EXACT * nominal:
            scaled[site] = dict(values)
            continue
        logger.debug("%s: scaling %s site from %g to %g", source, site, total, nominal)
        scaled[site] = {ion: v * nominal / total for ion, v in values.items()}
    return Composition(a=scaled["A"], b=scaled["B"], x=scaled["X"])


# ---------------------------------------------------------------- the parser
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
            value = float(number)
            if value == 0:
                raise CompositionError(f"zero amount {number!r} at position {i} in {shown!r}: leave the ion out instead")
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

    Each site total must be within ``tolerance`` (relative) of its nominal value
    (A: 1, B: 1, X: 3; with the default 0.02, X may sum to 3 ± 0.06) and is then
    scaled exactly to it; with ``renormalize=True`` any positive total is scaled.

    Raises:
        CompositionError: empty or over-long text, unknown species, additives
            (``-DAP``, ``+ KI``), unbalanced parentheses, zero, negative or
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


# --------------------------------------------------------------- mixtures
def mix(parts: Sequence[tuple[Composition, float]]) -> Composition:
    """Weighted linear mixture of compositions (weights >= 0, normalised to sum to 1).

    ``mix([(parse_formula("MAPbI3"), 0.7), (parse_formula("MAPbBr3"), 0.3)])`` is
    MAPbBr0.9I2.1; used for line scans between end members.
    """
    items = list(parts)
    if not items:
        raise CompositionError("mix needs at least one (composition, weight) pair")
    total_vec = np.zeros(len(IONS))
    total_weight = 0.0
    for index, item in enumerate(items):
        try:
            comp, weight = item
        except (TypeError, ValueError):
            raise CompositionError(f"mix part {index} must be a (Composition, weight) pair, got {item!r}") from None
        if not isinstance(comp, Composition):
            raise CompositionError(f"mix part {index} holds {type(comp).__name__}, expected a Composition (use parse_formula)")
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise CompositionError(f"mix weight {index} is {weight!r}, expected a number") from None
        if not math.isfinite(w) or w < 0:
            raise CompositionError(f"mix weight {index} is {weight!r}, expected a finite number >= 0")
        total_vec += w * comp._amount_vector()
        total_weight += w
    if total_weight <= 0:
        raise CompositionError("mix weights sum to 0: give at least one positive weight")
    vec = total_vec / total_weight
    return Composition(**_split_vector(vec))


def _split_vector(vec: np.ndarray) -> dict[str, dict[str, float]]:
    return {
        site.lower(): {ion: float(vec[_INDEX[ion]]) for ion in SITE_IONS[site] if vec[_INDEX[ion]] > 0}
        for site in ("A", "B", "X")
    }


# ------------------------------------------------------------------- grids
def _check_site_ions(site: str, ions: Sequence[str]) -> list[str]:
    if isinstance(ions, str):
        ions = [ions]
    names = [str(ion) for ion in ions]
    if not names:
        raise CompositionError(f"no {site}-site ions given for the grid: pass at least one of {', '.join(SITE_IONS[site])}")
    for ion in names:
        if ion not in SITE_OF_ION:
            raise CompositionError(f"unknown ion {ion!r} for the grid: known ions are {_KNOWN_LIST}")
        if SITE_OF_ION[ion] != site:
            raise CompositionError(
                f"{ion} is {_site_name(SITE_OF_ION[ion])} ion but was given as {_site_name(site)} ion: pass it in {SITE_OF_ION[ion].lower()}_ions"
            )
    duplicates = sorted({ion for ion in names if names.count(ion) > 1})
    if duplicates:
        raise CompositionError(f"ion {duplicates[0]} is listed twice for the {site} site")
    return names


def _simplex(k: int, m: int) -> np.ndarray:
    """All vectors of k non-negative integers summing to m (stars and bars), shape (C(m+k-1, k-1), k)."""
    if k == 1:
        return np.array([[m]], dtype=np.int64)
    bars = np.array(list(itertools.combinations(range(m + k - 1), k - 1)), dtype=np.int64)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), m + k - 1)])
    return np.diff(edges, axis=1) - 1


def grid_size(a_ions: Sequence[str], b_ions: Sequence[str], x_ions: Sequence[str], divisions: int) -> int:
    """Number of compositions :func:`composition_grid` makes with step ``1/divisions`` (0 when a site has no ion).

    Each site contributes C(divisions + k - 1, k - 1) points for its k ions.
    """
    sites = (a_ions, b_ions, x_ions)
    if not all(sites):
        return 0
    return math.prod(math.comb(int(divisions) + len(ions) - 1, len(ions) - 1) for ions in sites)


def composition_grid(
    a_ions: Sequence[str],
    b_ions: Sequence[str],
    x_ions: Sequence[str],
    step: float,
) -> np.ndarray:
    """Every composition whose site fractions are multiples of ``step`` (dimensionless).

    Returns an array of shape (n, 14) in the :meth:`Composition.fraction_vector`
    convention (A and B amounts, X fractions; each site sums to 1), one row per
    combination of an A-site, a B-site and an X-site simplex point; e.g.
    ``composition_grid(["Cs", "FA", "MA"], ["Pb"], ["Br", "I"], 0.1)`` has
    66 x 1 x 11 = 726 rows. ``step`` must be 1/n for an integer n >= 1.
    """
    a = _check_site_ions("A", a_ions)
    b = _check_site_ions("B", b_ions)
    x = _check_site_ions("X", x_ions)
    try:
        step_f = float(step)
    except (TypeError, ValueError):
        raise CompositionError(f"grid step {step!r} is not a number: use e.g. 0.1") from None
    if not math.isfinite(step_f) or not 0 < step_f <= 1:
        raise CompositionError(f"grid step {step!r} is not in (0, 1]: use e.g. 0.1 or 0.25")
    m = round(1.0 / step_f)
    if abs(m * step_f - 1.0) > 1e-9:
        raise CompositionError(f"grid step {step!r} does not divide 1: use 1/n, e.g. {_fmt(1 / max(m, 1))}")
    counts = [math.comb(m + len(ions) - 1, len(ions) - 1) for ions in (a, b, x)]
    rows = grid_size(a, b, x, m)
    if rows > MAX_GRID_ROWS:
        raise CompositionError(f"grid would have {rows} rows (limit {MAX_GRID_ROWS}): use a larger step or fewer ions")
    out = np.zeros((rows, len(IONS)))
    blocks = [_simplex(len(ions), m) / m for ions in (a, b, x)]
    na, nb, nx = counts
    for site_index, (ions, block) in enumerate(zip((a, b, x), blocks)):
        cols = [_INDEX[ion] for ion in ions]
        if site_index == 0:
            values = np.repeat(block, nb * nx, axis=0)
        elif site_index == 1:
            values = np.tile(np.repeat(block, nx, axis=0), (na, 1))
        else:
            values = np.tile(block, (na * nb, 1))
        out[:, cols] = values
    return out
