"""What our data says about one composition: its measured values, and the device stack its family is made with.

* :func:`measured_values`: the values a table (the device data, the DFT alloys)
  holds for the rows of exactly one composition, per quantity: how many rows,
  median, quartiles and range, in the column's own unit; shown beside a
  prediction, never used by the model.
* :func:`composition_family` and :func:`common_stack`: a composition's family is
  the set of its B-site metals (``Pb``, ``Sn``, ``Pb-Sn``, ...); the default
  device stack of a query is the (ETL, HTL) pair most often used by the devices
  of that family (Sn perovskites are mostly p-i-n, Pb ones n-i-p).

Rows are matched on their site fractions (:func:`.lookup.site_fractions`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..chemistry.composition import Composition
from ..vocabulary import B_SITE_IONS, ETL, HTL
from .lookup import COMPOSITION_TOLERANCE, same_composition

__all__ = ["StackChoice", "common_stack", "composition_family", "family_mask", "measured_values"]

#: Columns of :func:`measured_values`.
MEASURED_COLUMNS = ("column", "n", "median", "p25", "p75", "min", "max")


def composition_family(comp: Composition) -> str:
    """The family of ``comp``: its B-site metals joined by ``-`` in :data:`~nestedae_core.vocabulary.B_SITE_IONS` order (``"Pb"``, ``"Pb-Sn"``)."""
    return "-".join(ion for ion in B_SITE_IONS if comp.b.get(ion, 0.0) > 0)


def family_mask(fractions: pd.DataFrame, comp: Composition) -> pd.Series:
    """Per row of ``fractions`` (:func:`.lookup.site_fractions`): same B-site metals as ``comp``; rows that did not parse: False."""
    present = fractions.loc[:, list(B_SITE_IONS)].to_numpy(dtype=float) > 0
    wanted = np.array([comp.b.get(ion, 0.0) > 0 for ion in B_SITE_IONS])
    ok = fractions.notna().all(axis=1).to_numpy()
    return pd.Series((present == wanted[None, :]).all(axis=1) & ok, index=fractions.index, name="same_family")


def measured_values(
    table: pd.DataFrame,
    fractions: pd.DataFrame,
    comp: Composition,
    columns: Sequence[str],
    *,
    where: Mapping[str, object] | None = None,
    atol: float = COMPOSITION_TOLERANCE,
) -> pd.DataFrame:
    """The values of ``columns`` in the rows of ``table`` whose composition equals ``comp``.

    ``where``: further conditions, column -> value (e.g. ``{"phase": "Cubic"}``
    for the DFT table, whose alloys come in several phases); a column the table
    lacks is ignored.
    ``fractions``: the site fractions of ``table``'s rows (:func:`.lookup.site_fractions`).
    One row per column of ``columns`` present in ``table`` with at least one
    value, in that order: ``column`` (the dataset column; its output-schema
    name is :func:`nestedae_core.schema.quantity_key` of it), ``n`` (rows with a value, count), ``median``, ``p25`` and
    ``p75`` (the quartiles), ``min`` and ``max``, in the column's unit (eV, %,
    V, mA/cm², dimensionless FF). Empty (with these columns) when no row matches.
    """
    rows = table.loc[fractions.index[same_composition(fractions, comp, atol=atol).to_numpy()]]
    for column, value in (where or {}).items():
        if column in rows:
            rows = rows[rows[column] == value]
    out = []
    for column in columns:
        if column not in rows:
            continue
        values = pd.to_numeric(rows[column], errors="coerce").dropna()
        if values.empty:
            continue
        out.append({"column": column, "n": len(values), "median": float(values.median()),
                    "p25": float(values.quantile(0.25)), "p75": float(values.quantile(0.75)),
                    "min": float(values.min()), "max": float(values.max())})
    return pd.DataFrame(out, columns=list(MEASURED_COLUMNS))


@dataclass(frozen=True)
class StackChoice:
    """The device stack most used by a composition's family in the device data.

    ``etl``, ``htl``: the stack; ``family``: the B-site metals (:func:`composition_family`);
    ``n_stack``: devices of the family with this stack; ``n_family``: devices of the family (counts).
    """

    etl: str
    htl: str
    family: str
    n_stack: int
    n_family: int

    def describe(self) -> str:
        """One line, e.g. ``the most common stack of Sn perovskites in the device data (120 of 400 devices)``."""
        return (f"the most common stack of {self.family} perovskites in the device data "
                f"({self.n_stack} of {self.n_family} devices)")


def common_stack(
    devices: pd.DataFrame,
    fractions: pd.DataFrame,
    comp: Composition,
    *,
    etls: Iterable[str] | None = None,
    htls: Iterable[str] | None = None,
) -> StackChoice | None:
    """The (ETL, HTL) pair used most by the devices of ``comp``'s family (:func:`family_mask`).

    ``devices``: the device table (``psc-devices``), ``fractions`` its site
    fractions. Only pairs whose ETL is in ``etls`` and HTL in ``htls`` count
    (a model's known stacks; default: any). Ties go to the pair that sorts
    first. ``None`` when no device of the family has an allowed stack.
    """
    family = family_mask(fractions, comp)
    rows = devices.loc[family[family].index, [ETL, HTL]].dropna()
    n_family = len(rows)
    if etls is not None:
        rows = rows[rows[ETL].isin(set(etls))]
    if htls is not None:
        rows = rows[rows[HTL].isin(set(htls))]
    if rows.empty:
        return None
    counts = rows.groupby([ETL, HTL]).size().reset_index(name="n")
    best = counts.sort_values(["n", ETL, HTL], ascending=[False, True, True]).iloc[0]
    return StackChoice(str(best[ETL]), str(best[HTL]), composition_family(comp), int(best["n"]), n_family)
