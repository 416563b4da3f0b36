"""The proposals of a design as a table to read, save and open: formula first, predictions, domain,
the nearest measured composition of our data.

Column names follow the one output schema, as ``nestedae predict --csv`` writes them
(``formula``, ``etl``, ``htl``, ``bandgap_eV_mean`` ... ``in_domain``, ``domain_stage``), then the
design's own (``rank``, ``status``, ``pareto_rank``, ``p_beats_next``) and the nearest measured
composition (``nearest_formula``, ``nearest_distance``, ``nearest_bandgap_eV``, ``nearest_pce_percent``,
``nearest_devices``), then the 14 site fractions and the two factors.
"""
from __future__ import annotations

import logging
import os

import pandas as pd

from ..data.lookup import measured_compositions, nearest_measured, site_fractions
from ..data.loading import load
from ..errors import DataError
from ..vocabulary import DEVICE_COMPOSITION, IONS
from .optimise import DesignResult

__all__ = ["proposal_table", "measured_reference"]

logger = logging.getLogger(__name__)

_LEADING = ("rank", "formula", "etl", "htl")
_DESIGN = ("status", "pareto_rank", "p_beats_next")
_TRAILING = (*IONS, "tolerance_factor", "octahedral_factor")


def measured_reference(data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """Our measured compositions (:func:`~nestedae_core.data.lookup.measured_compositions` of ``psc-devices``),
    None when the device data is not available (the design still runs; the nearest columns stay empty)."""
    try:
        devices = load("psc-devices", data_dir, download=False)
    except (DataError, OSError) as exc:
        logger.info("no nearest measured compositions: %s", exc)
        return None
    return measured_compositions(devices, site_fractions(devices, DEVICE_COMPOSITION))


def proposal_table(result: DesignResult, *, measured: pd.DataFrame | None = None, top: int | None = None) -> pd.DataFrame:
    """The ranked proposals of ``result`` in the column order above (``top``: the first rows only)."""
    props = result.proposals if top is None else result.proposals.head(top)
    props = props.reset_index(drop=True)
    predicted = [c for c in props.columns if c.rsplit("_", 1)[-1] in ("mean", "lower", "upper", "std") and c not in _TRAILING]
    out = props[[*_LEADING, *predicted, "in_domain", "domain_stage", *_DESIGN]].copy()
    out.insert(out.columns.get_loc("in_domain"), "interval_level", result.problem.level)
    if measured is not None and len(props):
        near = nearest_measured(measured, props[list(IONS)].to_numpy(dtype=float))
    else:
        near = pd.DataFrame({c: pd.Series([None] * len(props), dtype=object) for c in
                             ("nearest_formula", "nearest_distance", "nearest_bandgap_eV", "nearest_pce_percent", "nearest_devices")})
    return pd.concat([out, near.reset_index(drop=True), props[list(_TRAILING)]], axis=1)
