"""Data quality of the device table: values that cannot be physical, and the rule training applies to them.

Two checks, per device (row) of a device table such as ``psc-devices``:

* ``ff_above_1``: a fill factor above 1 (FF is a fraction; FF = Pmax / (Voc Jsc)
  cannot exceed 1). In ``psc-devices`` 4 devices report one (1.01-1.43).
* ``pce_above_sq``: a PCE above the Shockley-Queisser limit at the device's
  measured band gap (:func:`~nestedae_core.physics.sq_limit`, AM1.5G,
  cell at 300 K), where a gap is reported. No device of ``psc-devices`` is
  above it (the highest reaches 72 % of its limit).

The training rule (:data:`TRAINING_RULE`, applied by :func:`mask_unphysical`):
a flagged value is set to NaN, so that the masked loss ignores it and the
device's other values still train: FF > 1 masks that device's FF; a PCE above
the limit masks its PCE, Voc, Jsc and FF (one of them is wrong and the
record does not say which). Inputs and rows are never dropped.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..physics import sq_limit
from .gap_quality import (
    GAP_BASIS,
    GAP_FIT,
    GAP_NEIGHBOURS,
    LABEL_QUALITY,
    LABEL_REASON,
    LABEL_WEIGHT,
    N_NEIGHBOURS,
    QUALITY_RULE,
    WEIGHT_RULE,
    gap_label_quality,
    label_quality_counts,
)
from ..errors import SchemaError
from ..vocabulary import DEVICE_TARGETS, FF, MEASURED_BANDGAP, PCE

__all__ = [
    "FF_ABOVE_1",
    "PCE_ABOVE_SQ",
    "REASON",
    "FLAG_COLUMNS",
    "TRAINING_RULE",
    "MASKED_BY_FLAG",
    "device_flags",
    "flag_counts",
    "mask_unphysical",
    "sq_pce_limit",
    "gap_label_quality",
    "label_quality_counts",
    "QUALITY_RULE",
    "WEIGHT_RULE",
    "GAP_BASIS",
    "GAP_FIT",
    "GAP_NEIGHBOURS",
    "N_NEIGHBOURS",
    "LABEL_QUALITY",
    "LABEL_REASON",
    "LABEL_WEIGHT",
]

#: Flag column: the device's fill factor is above 1.
FF_ABOVE_1 = "ff_above_1"
#: Flag column: the device's PCE is above the Shockley-Queisser limit at its measured band gap.
PCE_ABOVE_SQ = "pce_above_sq"
#: Text column: why a device is flagged ("" when it is not).
REASON = "reason"
#: The boolean flag columns of :func:`device_flags`.
FLAG_COLUMNS: tuple[str, ...] = (FF_ABOVE_1, PCE_ABOVE_SQ)
#: The device targets masked (set to NaN) in training for each flag.
MASKED_BY_FLAG: dict[str, tuple[str, ...]] = {FF_ABOVE_1: (FF,), PCE_ABOVE_SQ: tuple(DEVICE_TARGETS)}
#: The rule training applies to flagged devices, in words (shown on the Data page).
TRAINING_RULE = (
    "Flagged values are masked in training (set to missing, so the loss ignores them; the device's other "
    "values and its inputs still train): a fill factor above 1 masks that device's FF; a PCE above the "
    "Shockley-Queisser limit at its measured band gap masks its PCE, Voc, Jsc and FF."
)


def _numeric(devices: pd.DataFrame, column: str) -> pd.Series:
    if column not in devices.columns:
        raise SchemaError(f"device table lacks column '{column}' needed for the data-quality flags")
    return pd.to_numeric(devices[column], errors="coerce")


def sq_pce_limit(devices: pd.DataFrame) -> pd.Series:
    """The Shockley-Queisser PCE limit (%) at each device's measured band gap (NaN where none is reported).

    Index aligned with ``devices``; band gaps that are not a positive number count as not reported.
    """
    gaps = _numeric(devices, MEASURED_BANDGAP)
    usable = gaps.notna() & np.isfinite(gaps) & (gaps > 0)
    limit = pd.Series(np.nan, index=devices.index, name="sq_pce_limit_percent")
    if usable.any():
        unique, inverse = np.unique(gaps.loc[usable].to_numpy(dtype=float), return_inverse=True)
        limit.loc[usable] = sq_limit(unique)["pce_percent"][inverse]
    return limit


def device_flags(devices: pd.DataFrame) -> pd.DataFrame:
    """Devices whose values cannot be physical: columns ``ff_above_1``, ``pce_above_sq`` (bool) and ``reason`` (str).

    Index aligned with ``devices``. ``reason`` is ``""`` for an unflagged device,
    otherwise one phrase per flag joined by "; ", e.g. ``"FF 1.165 > 1"`` or
    ``"PCE 35.1 % above the Shockley-Queisser limit 30.5 % at its measured gap 1.60 eV"``.
    Missing values never flag (a device without a measured gap is not checked
    against the limit).

    Raises:
        SchemaError: a needed column (FF, PCE, measured band gap) is missing.
    """
    ff = _numeric(devices, FF)
    pce = _numeric(devices, PCE)
    gaps = _numeric(devices, MEASURED_BANDGAP)
    limit = sq_pce_limit(devices)
    ff_above = (ff > 1.0).fillna(False).astype(bool)
    pce_above = (pce > limit).fillna(False).astype(bool)
    reasons = [""] * len(devices)  # worded only for the few flagged devices (no per-row pandas access)
    ff_hit, pce_hit = ff_above.to_numpy(), pce_above.to_numpy()
    ff_v, pce_v, lim_v, gap_v = (s.to_numpy(dtype=float) for s in (ff, pce, limit, gaps))
    for i in np.flatnonzero(ff_hit | pce_hit).tolist():
        parts = []
        if ff_hit[i]:
            parts.append(f"FF {ff_v[i]:.4g} > 1")
        if pce_hit[i]:
            parts.append(
                f"PCE {pce_v[i]:.3g} % above the Shockley-Queisser limit {lim_v[i]:.3g} % "
                f"at its measured gap {gap_v[i]:.2f} eV"
            )
        reasons[i] = "; ".join(parts)
    return pd.DataFrame(
        {FF_ABOVE_1: ff_above.to_numpy(), PCE_ABOVE_SQ: pce_above.to_numpy(), REASON: reasons},
        index=devices.index,
    )


def flag_counts(flags: pd.DataFrame) -> dict[str, int]:
    """Number of devices each flag hits, plus ``"any"`` (devices with at least one flag)."""
    counts = {column: int(flags[column].sum()) for column in FLAG_COLUMNS}
    counts["any"] = int(flags[list(FLAG_COLUMNS)].any(axis=1).sum())
    return counts


def mask_unphysical(devices: pd.DataFrame, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """A copy of ``devices`` with the flagged values set to NaN (:data:`TRAINING_RULE`).

    ``flags`` defaults to :func:`device_flags` of ``devices``. Target columns
    absent from the table are skipped; no row or other column changes.
    """
    flags = device_flags(devices) if flags is None else flags
    out = devices.copy()
    for flag, columns in MASKED_BY_FLAG.items():
        hit = flags[flag].reindex(out.index, fill_value=False).to_numpy(dtype=bool)
        for column in columns:
            if column in out.columns and hit.any():
                out[column] = pd.to_numeric(out[column], errors="coerce")
                out.loc[hit, column] = np.nan
    return out
