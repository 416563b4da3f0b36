"""Derived datasets: tables computed by code, at load time, from the registry's pinned files.

Nothing here is ever written to disk or committed: :func:`nestedae_core.data.load`
loads the source datasets (hash-checked as usual), calls :func:`derive` and
caches the result per source-file version.

* ``psc-gaps`` (:func:`psc_gaps`): one row per composition of ``psc-devices``
  that reports a measured band gap. Compositions are parsed with
  :func:`~nestedae_core.chemistry.features.featurize_table` and grouped by their
  site fractions rounded to :data:`FRACTION_DECIMALS` decimals, so one
  composition written two ways (``FAPbI3`` / ``FA1PbI3``) is one row. Columns:
  the canonical formula (``composition_key`` and ``Formula``), the median
  measured gap ``Perovskite_band_gap`` (eV), its sample standard deviation over
  the devices ``gap_sd`` (eV; 0 for a single device), ``n_devices``, ``phase``
  (``"Cubic"`` for every row: the stated assumption that absorbers are taken in
  their cubic or pseudo-cubic phase), ``gap_basis`` (how the devices' gaps were
  obtained, with counts, from ``Perovskite_band_gap_estimation_basis``), the
  label-quality columns of :func:`~.gap_quality.gap_label_quality`
  (``label_quality`` ok/suspect/outlier, ``label_reason``, ``label_weight``, the
  leave-one-out Vegard-plus-bowing and neighbour estimates), the 14 site
  fractions and the 36 descriptors and two structural factors of our featurizer
  (so they equal what a query computes).
* ``mhp-dft`` (:func:`mhp_dft`): the PBE (``mhp-pbe``) and HSE06 (``mhp-hse``)
  alloy tables merged per (``Formula``, ``phase``): ``Gap_PBE`` and ``Gap_HSE``
  (eV; NaN where a fidelity has no value), ``phase`` as one categorical column
  (from the one-hot Cubic/Tetra/Ortho/Hex columns), the 14 site fractions of the
  files and the descriptors and factors recomputed by our featurizer from those
  fractions (the files' own descriptors are rounded to 3 significant figures;
  ours agree with them to 0.55 % at most). A (formula, phase) listed twice in
  one file (two structures) gets the mean of its gaps. ``Decomp``: the
  decomposition energy of the PBE table (eV per formula unit; lower is more
  stable), averaged the same way; NaN for HSE-only rows.
"""
from __future__ import annotations

from collections import Counter

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ..chemistry.composition import parse_formula
from ..chemistry.features import featurize_fractions, featurize_table
from ..errors import DataError
from .gap_quality import BASIS_COLUMN, GAP_BASIS, basis_summary, gap_label_quality
from ..vocabulary import (
    BANDGAP_HSE,
    BANDGAP_PBE,
    BANDGAP_PBE_DFT,
    COMPOSITION_KEY,
    DECOMPOSITION,
    DEVICE_COMPOSITION,
    FORMULA,
    GAP_DEVICES,
    GAP_SPREAD,
    IONS,
    MEASURED_BANDGAP,
    PHASE,
    PHASE_COLUMNS,
)

__all__ = [
    "ASSUMED_FILM_PHASE",
    "FRACTION_DECIMALS",
    "UNKNOWN_PHASE",
    "DERIVATIONS",
    "derive",
    "mhp_dft",
    "phase_column",
    "psc_gaps",
]

logger = logging.getLogger(__name__)

#: Phase given to every measured film and device (stated assumption: cubic or pseudo-cubic absorbers).
ASSUMED_FILM_PHASE = "Cubic"
#: Phase of an alloy row whose one-hot phase columns are all zero.
UNKNOWN_PHASE = "unknown"
#: Decimals the site fractions (mol/mol) are rounded to when compositions are grouped.
FRACTION_DECIMALS = 4


def phase_column(table: pd.DataFrame) -> pd.Series:
    """The crystal phase of each row as one string column, from the one-hot ``Cubic/Tetra/Ortho/Hex`` columns.

    Rows whose phase columns are all zero get :data:`UNKNOWN_PHASE`.

    Raises:
        DataError: ``table`` has none of the phase columns.
    """
    phases = [c for c in PHASE_COLUMNS if c in table.columns]
    if not phases:
        raise DataError(f"the table has no phase columns ({', '.join(PHASE_COLUMNS)})")
    one_hot = table[phases].astype(float)
    return one_hot.idxmax(axis=1).where(one_hot.sum(axis=1) > 0, UNKNOWN_PHASE).rename(PHASE)


def _descriptors(fractions: pd.DataFrame) -> pd.DataFrame:
    """The 36 descriptors and 2 factors of our featurizer for each row of a 14-column fraction table."""
    return featurize_fractions(fractions.loc[:, list(IONS)])


def psc_gaps(devices: pd.DataFrame) -> pd.DataFrame:
    """One row per composition of a device table with a measured band gap (``psc-gaps``; see the module docstring).

    Devices without a measured gap, or whose composition does not parse, are
    left out (the latter logged). Rows are sorted by ``composition_key``.

    Raises:
        DataError: no device is left.
    """
    devices = devices.reset_index(drop=True)  # row labels name one row each: the bases below are taken by label
    measured = devices.loc[pd.to_numeric(devices[MEASURED_BANDGAP], errors="coerce").notna(),
                           [DEVICE_COMPOSITION, MEASURED_BANDGAP]]
    bases = devices[BASIS_COLUMN] if BASIS_COLUMN in devices.columns else pd.Series(np.nan, index=devices.index)
    parsed, n_failed = featurize_table(measured, DEVICE_COMPOSITION)
    if n_failed:
        logger.warning("psc-gaps: %d device(s) with a composition that does not parse left out", n_failed)
    parsed = parsed.loc[parsed["error"] == ""]
    if parsed.empty:
        raise DataError("psc-gaps: no device has both a measured band gap and a composition that parses")
    key = parsed.loc[:, list(IONS)].round(FRACTION_DECIMALS)
    group_ids = key.groupby(list(IONS), sort=False).ngroup().to_numpy()
    gaps = parsed[MEASURED_BANDGAP].astype(float).to_numpy()
    spelled = parsed[DEVICE_COMPOSITION].astype(str).to_numpy()
    basis = bases.loc[parsed.index].to_numpy(dtype=object)
    # rows of each group in table order (plain arrays: about 0.25 s less than pandas per group for 151 groups)
    order = np.argsort(group_ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(group_ids[order]) != 0])
    rows = []
    for members in np.split(order, starts[1:]):
        # the canonical formula of the spelling most devices use (ties: alphabetical)
        counts = Counter(spelled[members].tolist())
        most = max(counts.values())
        comp = parse_formula(min(w for w, c in counts.items() if c == most))
        member_gaps = gaps[members]
        rows.append(
            {
                COMPOSITION_KEY: comp.formula,
                FORMULA: comp.formula,
                MEASURED_BANDGAP: float(np.median(member_gaps)),
                GAP_SPREAD: float(np.std(member_gaps, ddof=1)) if len(member_gaps) > 1 else 0.0,
                GAP_DEVICES: int(len(member_gaps)),
                GAP_BASIS: basis_summary(basis[members]),
                PHASE: ASSUMED_FILM_PHASE,
                **dict(zip(IONS, comp.fraction_vector().tolist())),
            }
        )
    table = pd.DataFrame(rows).sort_values(COMPOSITION_KEY, kind="stable").reset_index(drop=True)
    if table[COMPOSITION_KEY].duplicated().any():  # pragma: no cover - one key per rounded fraction vector
        raise DataError("psc-gaps: two composition groups share a canonical formula")
    return pd.concat([table, gap_label_quality(table), _descriptors(table)], axis=1)


def _per_formula_and_phase(table: pd.DataFrame, gap_column: str, decomposition: bool = False) -> pd.DataFrame:
    """One row per (Formula, phase) of an alloy table: the mean gap (eV) as ``gap_column``, the first row's fractions;
    with ``decomposition``, also the mean decomposition energy ``Decomp`` (eV per formula unit)."""
    extra = [DECOMPOSITION] if decomposition else []
    frame = table.loc[:, [FORMULA, BANDGAP_PBE, *extra, *IONS]].copy()
    frame[PHASE] = phase_column(table)
    grouped = frame.groupby([FORMULA, PHASE], sort=False)
    merged = grouped[list(IONS)].first()
    if decomposition:
        merged.insert(0, DECOMPOSITION, grouped[DECOMPOSITION].mean())
    merged.insert(0, gap_column, grouped[BANDGAP_PBE].mean())
    repeated = int((grouped.size() > 1).sum())
    if repeated:
        logger.info("%s: %d (formula, phase) listed more than once; their gaps averaged", gap_column, repeated)
    return merged.reset_index()


def mhp_dft(pbe: pd.DataFrame, hse: pd.DataFrame) -> pd.DataFrame:
    """The PBE and HSE06 alloy tables merged per (Formula, phase) (``mhp-dft``; see the module docstring).

    Rows in PBE-table order, then HSE-only rows. Where a (formula, phase) is in
    both tables and their site fractions differ by more than 1e-6, a
    :class:`DataError` is raised (the merge would pair different materials).
    """
    left = _per_formula_and_phase(pbe, BANDGAP_PBE_DFT, decomposition=DECOMPOSITION in pbe.columns)
    right = _per_formula_and_phase(hse, BANDGAP_HSE)
    merged = left.merge(right, on=[FORMULA, PHASE], how="left", sort=False, suffixes=("", "_hse"))
    hse_only = right.merge(left[[FORMULA, PHASE]], on=[FORMULA, PHASE], how="left", indicator=True)
    hse_only = hse_only.loc[hse_only["_merge"] == "left_only"].drop(columns="_merge")
    hse_only = hse_only.rename(columns={ion: f"{ion}_hse" for ion in IONS})
    merged = pd.concat([merged, hse_only], ignore_index=True)
    for ion in IONS:  # HSE-only rows have no PBE fractions
        merged[ion] = merged[ion].astype(float)
    hse_fractions = merged[[f"{ion}_hse" for ion in IONS]].to_numpy(dtype=float)
    pbe_fractions = merged[list(IONS)].to_numpy(dtype=float)
    both = ~np.isnan(pbe_fractions).any(axis=1) & ~np.isnan(hse_fractions).any(axis=1)
    if both.any() and np.abs(pbe_fractions[both] - hse_fractions[both]).max() > 1e-6:
        raise DataError("mhp-dft: a formula and phase has different site fractions in the PBE and HSE tables")
    fractions = np.where(np.isnan(pbe_fractions), hse_fractions, pbe_fractions)
    table = pd.DataFrame(
        {FORMULA: merged[FORMULA], PHASE: merged[PHASE], BANDGAP_PBE_DFT: merged[BANDGAP_PBE_DFT],
         BANDGAP_HSE: merged[BANDGAP_HSE]}
    )
    if DECOMPOSITION in merged.columns:
        table[DECOMPOSITION] = merged[DECOMPOSITION].astype(float)
    table = pd.concat([table, pd.DataFrame(fractions, columns=list(IONS))], axis=1)
    return pd.concat([table, _descriptors(table)], axis=1)


def _psc_gaps(sources: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return psc_gaps(sources["psc-devices"])


def _mhp_dft(sources: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return mhp_dft(sources["mhp-pbe"], sources["mhp-hse"])


#: Derived dataset name -> function of its source tables (by source name); the sources are in the registry.
DERIVATIONS: dict[str, Callable[[Mapping[str, pd.DataFrame]], pd.DataFrame]] = {
    "psc-gaps": _psc_gaps,
    "mhp-dft": _mhp_dft,
}


def derive(name: str, sources: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Compute derived dataset ``name`` from its source tables (``sources``: source dataset name -> table).

    Raises:
        DataError: ``name`` is not a derived dataset.
    """
    try:
        derivation = DERIVATIONS[name]
    except KeyError:
        raise DataError(f"dataset '{name}' is not derived; derived datasets: {', '.join(DERIVATIONS)}") from None
    return derivation(sources)

