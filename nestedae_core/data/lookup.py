"""Find compositions in a dataset: site fractions of its rows, rows of one composition, nearest devices.

Every row of an alloy table (``mhp-*``) carries its 14 site fractions; the
device table (``psc-devices``) names its absorber by a formula only, so its
fractions come from parsing that formula (:func:`site_fractions`). With the
fractions in hand:

* :func:`same_composition` / :func:`matching_rows`: the rows whose composition
  equals a given one, every site fraction within a tolerance (default
  :data:`COMPOSITION_TOLERANCE`);
* :func:`nearest_devices`: the measured devices closest to a composition in the
  standardised site descriptors, devices of the same composition first, with
  their stack and measured results.

Fractions follow :meth:`~nestedae_core.chemistry.composition.Composition.fraction_vector`:
A and B amounts per formula unit, X as fractions of the X site (each site sums
to 1), columns in :data:`~nestedae_core.vocabulary.IONS` order.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..chemistry.composition import Composition
from ..chemistry.features import featurize, featurize_fractions, featurize_table
from ..vocabulary import DEVICE_COMPOSITION, ETL, FORMULA, HTL, IONS, MEASURED_BANDGAP, PAPER_DESCRIPTORS, PCE

__all__ = [
    "COMPOSITION_TOLERANCE",
    "DISTANCE",
    "SAME_COMPOSITION",
    "SAME_STACK",
    "formula_column",
    "site_fractions",
    "same_composition",
    "matching_rows",
    "nearest_devices",
    "measured_compositions",
    "nearest_measured",
]

logger = logging.getLogger(__name__)

#: Largest difference of any site fraction (mol/mol) for two compositions to count as the same.
COMPOSITION_TOLERANCE = 5e-3
#: Column of :func:`nearest_devices`: Euclidean distance in the standardised descriptors (dimensionless).
DISTANCE = "distance"
#: Column of :func:`nearest_devices`: the device's composition equals the query's.
SAME_COMPOSITION = "same_composition"
#: Column of :func:`nearest_devices`: the device has the query's ETL and HTL.
SAME_STACK = "same_stack"


def formula_column(dataset: str) -> str | None:
    """The column naming each row's composition in registry dataset ``dataset`` (``None`` if it has none)."""
    if dataset == "psc-devices":
        return DEVICE_COMPOSITION
    if dataset.startswith("mhp-") or dataset == "psc-gaps":
        return FORMULA
    return None


def site_fractions(table: pd.DataFrame, formula_column: str | None = None) -> pd.DataFrame:
    """The 14 site-fraction columns (mol/mol; K ... I) of every row of ``table``, index aligned with it.

    A table that carries all 14 ion columns gives them (as floats). Otherwise
    each formula of ``formula_column`` is parsed (rows that do not parse are
    NaN); a table with neither gives all-NaN rows.
    """
    if all(ion in table.columns for ion in IONS):
        return table.loc[:, list(IONS)].astype(float)
    if formula_column is None:
        return pd.DataFrame(np.nan, index=table.index, columns=list(IONS), dtype=float)
    parsed, n_failed = featurize_table(table[[formula_column]], formula_column)
    logger.info("site fractions of %d rows parsed from %r, %d failed", len(table), formula_column, n_failed)
    return parsed.loc[:, list(IONS)]


def same_composition(fractions: pd.DataFrame, comp: Composition, *, atol: float = COMPOSITION_TOLERANCE) -> pd.Series:
    """Per row of ``fractions`` (from :func:`site_fractions`): every site fraction within ``atol`` (mol/mol) of ``comp``'s.

    Rows with a missing fraction never match.
    """
    close = np.abs(fractions.loc[:, list(IONS)].to_numpy(dtype=float) - comp.fraction_vector()[None, :]) <= atol
    return pd.Series(close.all(axis=1), index=fractions.index, name=SAME_COMPOSITION)


def matching_rows(table: pd.DataFrame, fractions: pd.DataFrame, comp: Composition, *,
                  atol: float = COMPOSITION_TOLERANCE) -> pd.DataFrame:
    """Rows of ``table`` whose composition equals ``comp`` (see :func:`same_composition`), in table order.

    ``fractions`` are the site fractions of ``table``'s rows (:func:`site_fractions`).
    """
    mask = same_composition(fractions, comp, atol=atol)
    return table.loc[fractions.index[mask.to_numpy()]]


def nearest_devices(
    devices: pd.DataFrame,
    fractions: pd.DataFrame,
    comp: Composition,
    *,
    etl: str | None = None,
    htl: str | None = None,
    same_stack_only: bool = False,
    n: int = 15,
    descriptors: Sequence[str] = PAPER_DESCRIPTORS,
    atol: float = COMPOSITION_TOLERANCE,
) -> pd.DataFrame:
    """The ``n`` measured devices nearest to ``comp``: same composition first, then by descriptor distance.

    ``devices`` is the device table (``psc-devices``) and ``fractions`` its site
    fractions (:func:`site_fractions`); devices whose composition does not parse
    are left out. The distance is Euclidean over ``descriptors`` (default: the 15
    of the NestedAE paper), each standardised by its spread over the devices
    (dimensionless); ties are broken by the higher measured PCE.

    Returns columns: the composition, :data:`SAME_COMPOSITION`, :data:`DISTANCE`,
    ETL, HTL, measured band gap (eV), PCE (%), and :data:`SAME_STACK` when both
    ``etl`` and ``htl`` are given (``same_stack_only`` then keeps only those
    devices). Index: the devices' rows.
    """
    ok = fractions.notna().all(axis=1)
    desc = featurize_fractions(fractions[ok])[list(descriptors)]
    scale = desc.std(ddof=0).replace(0, 1.0)
    query = pd.Series(featurize(comp))[list(descriptors)]
    distance = np.sqrt((((desc - query) / scale) ** 2).sum(axis=1))
    near = devices.loc[ok, [DEVICE_COMPOSITION, ETL, HTL, MEASURED_BANDGAP, PCE]].copy()
    near.insert(1, DISTANCE, distance)
    near.insert(1, SAME_COMPOSITION, same_composition(fractions[ok], comp, atol=atol))
    if etl is not None and htl is not None:
        near[SAME_STACK] = (near[ETL] == etl) & (near[HTL] == htl)
        if same_stack_only:
            near = near[near[SAME_STACK]]
    return near.sort_values([SAME_COMPOSITION, DISTANCE, PCE], ascending=[False, True, False]).head(n)


def measured_compositions(devices: pd.DataFrame, fractions: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct measured composition of a device table, with its medians.

    ``devices`` is ``psc-devices`` and ``fractions`` its site fractions (:func:`site_fractions`); rows whose
    composition does not parse are left out. Columns: ``formula`` (the most used spelling), the 14 site
    fractions (mol/mol), ``bandgap_eV`` (median measured band gap over the devices that report one, eV; NaN
    when none does), ``pce_percent`` (median PCE, %), ``n_devices``.
    """
    ok = fractions.notna().all(axis=1).to_numpy()
    frac = fractions.loc[ok, list(IONS)].astype(float)
    key = frac.round(4)
    groups = key.groupby(list(IONS), sort=False).ngroup().to_numpy()
    table = devices.loc[ok, [DEVICE_COMPOSITION, MEASURED_BANDGAP, PCE]].copy()
    table["_group"] = groups
    gap = pd.to_numeric(table[MEASURED_BANDGAP], errors="coerce")
    pce = pd.to_numeric(table[PCE], errors="coerce")
    by = table["_group"]
    out = pd.DataFrame(
        {
            "formula": table.groupby(by)[DEVICE_COMPOSITION].agg(lambda s: s.astype(str).value_counts().index[0]),
            "bandgap_eV": gap.groupby(by).median(),
            "pce_percent": pce.groupby(by).median(),
            "n_devices": by.groupby(by).size(),
        }
    )
    first = frac.groupby(groups).first()
    return pd.concat([out[["formula"]], first, out[["bandgap_eV", "pce_percent", "n_devices"]]], axis=1).reset_index(drop=True)


def nearest_measured(measured: pd.DataFrame, fractions: np.ndarray) -> pd.DataFrame:
    """For each composition of ``fractions`` ((n, 14), IONS order), the nearest of ``measured`` (:func:`measured_compositions`).

    Distance: the L1 difference of the 14 site fractions over 6 (0 = the same
    composition, 1 = nothing in common on every site; dimensionless). Columns: ``nearest_formula``,
    ``nearest_distance``, ``nearest_bandgap_eV``, ``nearest_pce_percent``, ``nearest_devices``.
    """
    q = np.asarray(fractions, dtype=np.float64).reshape(-1, len(IONS))
    ref = measured.loc[:, list(IONS)].to_numpy(dtype=np.float64)
    if not len(ref):
        return pd.DataFrame({"nearest_formula": [""] * len(q), "nearest_distance": np.nan, "nearest_bandgap_eV": np.nan,
                             "nearest_pce_percent": np.nan, "nearest_devices": 0})
    best = np.empty(len(q), dtype=np.int64)
    dist = np.empty(len(q), dtype=np.float64)
    for start in range(0, len(q), 2048):  # bounded memory: 2048 x n_measured x 14 at a time
        d = np.abs(q[start:start + 2048, None, :] - ref[None, :, :]).sum(axis=2) / 6.0
        best[start:start + 2048] = d.argmin(axis=1)
        dist[start:start + 2048] = d.min(axis=1)
    near = measured.iloc[best]
    return pd.DataFrame(
        {
            "nearest_formula": near["formula"].to_numpy(),
            "nearest_distance": dist,
            "nearest_bandgap_eV": near["bandgap_eV"].to_numpy(),
            "nearest_pce_percent": near["pce_percent"].to_numpy(),
            "nearest_devices": near["n_devices"].to_numpy(),
        }
    )
