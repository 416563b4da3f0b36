"""How a stage's coverage check reads to a chemist: "Cs on the A site 1.00 (the measured films reach 0.40)".

The chain's applicability domain (:mod:`nestedae_core.model.domain`) checks each of a
stage's numeric inputs against the range its weighted training rows cover, and knows
no chemistry; this module registers the words (:func:`coverage_wording`): a site
fraction is "<ion> on the <site> site", a descriptor its label, and the training rows
are named after the stage's dataset (the measured films, the DFT alloys, the devices).
Importing the perovskite layer registers it.
"""
from __future__ import annotations

from ..model.domain import register_coverage_wording
from ..vocabulary import SITE_FRACTION_COLUMNS, SITE_OF_ION, label

__all__ = ["TRAINING_ROWS", "coverage_wording"]

#: Who a dataset's training rows are, as a reason names them.
TRAINING_ROWS: dict[str, str] = {
    "psc-gaps": "the measured films",
    "psc-devices": "the devices",
    "mhp-dft": "the DFT alloys",
    "mhp-pbe": "the DFT alloys",
    "mhp-pbe-paper": "the DFT alloys",
}


def coverage_wording(dataset: str, column: str) -> tuple[str, str] | None:
    """``(name of the input, who the training rows are)`` for a perovskite input, e.g. ``("Cs on the A site",
    "the measured films")`` for the Cs fraction of ``psc-gaps``; None for a column this layer does not know."""
    rows = TRAINING_ROWS.get(dataset, "its training rows")
    if column in SITE_FRACTION_COLUMNS:
        return f"{column} on the {SITE_OF_ION[column]} site", rows
    name = label(column)
    if name == column and dataset not in TRAINING_ROWS:
        return None
    return name, rows


register_coverage_wording(coverage_wording)
