"""The one output schema: how every predicted quantity is named in every output.

The same quantity has the same key in the estimator's DataFrame, ``nestedae predict
--json``, ``nestedae explain --json``, the batch CSV files, the dashboard's tables and
downloads and the HTML reports: snake_case, with its unit, e.g.

===================  ==========================================  ===========
key                  quantity                                    unit
===================  ==========================================  ===========
``bandgap_eV``       band gap of the film, measured scale        eV
``bandgap_pbe_eV``   band gap, DFT PBE (no spin-orbit coupling)  eV
``bandgap_hse_soc_eV``  band gap, DFT HSE06 with spin-orbit coupling  eV
``decomposition_eV_per_fu``  decomposition energy, DFT (lower = more stable)  eV per formula unit
``pce_percent``      power conversion efficiency                 %
``voc_V``            open-circuit voltage                        V
``jsc_mA_per_cm2``   short-circuit current density               mA/cm2
``ff``               fill factor                                 (fraction)
===================  ==========================================  ===========

A table column adds the statistic: ``<key>_mean`` (the prediction), ``<key>_lower`` /
``<key>_upper`` (the prediction interval at the stated level), ``<key>_std`` (the
disagreement of the ensemble members, not an error bar). A JSON entry is
``{"<key>": {"mean", "std", "lower", "upper", "level", "unit", "fidelity", "phase", "label"}}``
(``phase``: the crystal phase of a DFT-stage output (DFT gaps, decomposition energy), e.g. ``Cubic``, null otherwise; ``label``: the
readable name, e.g. ``band gap, DFT HSE06+SOC (cubic)``).
Inputs are ``formula``, ``etl``, ``htl`` (the device stack) and ``phase``; the
domain check is ``in_domain``, ``domain_stage``, ``domain_message`` and
``<stage>_in_domain``.

A target this table does not know (e.g. a synthetic ``y1``) is named by its column
in snake case with its unit (``%`` as ``percent``, ``/`` as ``_per_``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .vocabulary import BANDGAP_HSE, BANDGAP_PBE, BANDGAP_PBE_DFT, DECOMPOSITION, ETL, FF, HTL, JSC, MEASURED_BANDGAP, PCE, PHASE, SLME, VOC

__all__ = [
    "STATS",
    "GAP_KEYS",
    "INPUT_KEYS",
    "DOMAIN_KEYS",
    "quantity_key",
    "target_key",
    "column",
    "stat_columns",
    "stage_domain_key",
    "input_key",
]

#: The statistics of a quantity in a table, in column order.
STATS: tuple[str, ...] = ("mean", "lower", "upper", "std")
#: Key of the band gap at each fidelity.
GAP_KEYS: dict[str, str] = {"measured": "bandgap_eV", "PBE": "bandgap_pbe_eV", "HSE": "bandgap_hse_soc_eV"}
#: Keys of the known quantities by dataset column (band gaps are named by fidelity, :data:`GAP_KEYS`).
_COLUMN_KEYS: dict[str, str] = {
    PCE: "pce_percent",
    VOC: "voc_V",
    JSC: "jsc_mA_per_cm2",
    FF: "ff",
    DECOMPOSITION: "decomposition_eV_per_fu",
    SLME: "slme",
}
#: Columns that are band gaps when no fidelity is given: their default fidelity.
_GAP_COLUMNS: dict[str, str] = {MEASURED_BANDGAP: "measured", BANDGAP_PBE_DFT: "PBE", BANDGAP_HSE: "HSE", BANDGAP_PBE: "PBE"}
#: Keys of the raw inputs by dataset column.
INPUT_KEYS: dict[str, str] = {ETL: "etl", HTL: "htl", PHASE: "phase"}
#: The domain columns of every prediction table.
DOMAIN_KEYS: tuple[str, ...] = ("in_domain", "domain_stage", "domain_message")


def _snake(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


def _unit_suffix(unit: str | None) -> str:
    if not unit:
        return ""
    return _snake(unit.replace("%", "percent").replace("/", "_per_").replace("²", "2").replace("³", "3"))


def quantity_key(column: str, unit: str | None = None, fidelity: str | None = None) -> str:
    """The key of a quantity: a band gap by its ``fidelity`` (``bandgap_pbe_eV``), a known quantity by its
    column (``pce_percent``), any other column as ``<column>_<unit>`` in snake case (``y1``, ``z_eV``)."""
    if fidelity is None:
        fidelity = _GAP_COLUMNS.get(column)
    if fidelity in GAP_KEYS:
        return GAP_KEYS[fidelity]
    if column in _COLUMN_KEYS:
        return _COLUMN_KEYS[column]
    suffix = _unit_suffix(unit)
    base = _snake(column) or "output"
    return f"{base}_{suffix}" if suffix and not base.endswith(f"_{suffix}") else base


def target_key(stage: Any, target: Any) -> str:
    """The key of a :class:`~nestedae_core.model.config.TargetSpec` of a stage (its fidelity decides a band gap's key)."""
    from .perovskite.fidelity import target_fidelity

    return quantity_key(target.column, target.unit, target_fidelity(stage, target))


def column(key: str, stat: str) -> str:
    """A table column: ``column("pce_percent", "lower") == "pce_percent_lower"``."""
    if stat not in STATS:
        raise ValueError(f"unknown statistic {stat!r}; one of {', '.join(STATS)}")
    return f"{key}_{stat}"


def stat_columns(keys: Iterable[str], stats: Iterable[str] = STATS) -> list[str]:
    """Every ``<key>_<stat>`` column, key by key."""
    wanted = tuple(stats)
    return [column(k, s) for k in keys for s in wanted]


def stage_domain_key(stage: str) -> str:
    """The column that says whether a query is inside one stage's training domain: ``<stage>_in_domain``."""
    return f"{_snake(stage)}_in_domain"


def input_key(column_name: str) -> str:
    """The key of a raw input column in outputs: ``etl``, ``htl``, ``phase``; others as they are."""
    return INPUT_KEYS.get(column_name, column_name)
