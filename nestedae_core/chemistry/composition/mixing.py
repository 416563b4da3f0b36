"""Mixtures of compositions: the weighted linear mix of end members (line scans)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ...errors import CompositionError
from ...vocabulary import IONS, SITE_IONS
from .core import _INDEX, Composition

__all__ = ["mix"]


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
