"""The :class:`Composition` type: amounts of each ion per formula unit of ABX3, validated and canonical.

A :class:`Composition` holds the amount of each ion per formula unit of ABX3:
A-site amounts sum to 1, B-site amounts sum to 1, X-site amounts sum to 3
(dimensionless, mol of ion per mol of formula units). The same numbers in the
convention of the Mannodi-Kanakkithodi & Chan data sets (``PBE_data.csv``:
A and B as amounts, X as fractions of the X site, so that every site sums to 1)
come from :meth:`Composition.fractions` and :meth:`Composition.fraction_vector`.
Site totals are checked (:class:`SiteTotalError`) and amounts canonicalised here,
for the parser (:mod:`.formula`), mixtures (:mod:`.mixing`) and grids (:mod:`.grids`).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ...errors import CompositionError
from ...vocabulary import IONS, SITE_IONS, SITE_OF_ION, SITE_SLICES, SITE_TOTALS

__all__ = ["IonAmounts", "Composition", "SiteTotalError"]

logger = logging.getLogger(__name__)

_KNOWN_LIST = ", ".join(IONS)
_SLICE = SITE_SLICES  # from the ion lists (vocabulary)
_INDEX = {ion: i for i, ion in enumerate(IONS)}
# Amounts are rounded to this many decimals so that float noise from arithmetic
# (0.83 * 0.95 = 0.7884999999999999) does not break equality or hashing.
_DECIMALS = 12
# A site whose total is this close to the nominal one (relative) is not scaled:
# canonical amounts (rounded to _DECIMALS) sum to the nominal total only to about
# 1e-12, and scaling them again could flip their last digit, so that a
# composition would not survive its own formula or to_dict().
_EXACT = 1e-9

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
        from .formula import parse_formula  # the parser builds Compositions: imported on use

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
            from .formula import parse_formula  # the parser builds Compositions: imported on use
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
