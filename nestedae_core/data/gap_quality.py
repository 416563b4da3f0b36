"""Quality of the measured band-gap labels of ``psc-gaps``: each label against its neighbours and a Vegard-plus-bowing fit.

One row per composition (a label is the median measured gap of its devices, eV).
Two independent estimates of what the label should be:

* **Vegard plus bowing** (:func:`vegard_bowing_fit`): the gap as a linear function
  of the site fractions plus one bowing term ``x_i x_j`` per pair of ions on the
  same site (terms present in at least :data:`MIN_TERM_ROWS` compositions),
  fitted robustly (iteratively reweighted least squares with Huber weights,
  tuning constant 1.345 robust standard deviations) and read **leave-one-out**
  (each label is compared with the fit made without it, from the hat matrix of
  the final weighted fit). A label that alone fixes a term (leverage above
  :data:`MAX_LEVERAGE`) cannot be judged by the fit.
* **Neighbours** (:func:`neighbour_estimates`): the other compositions within
  :data:`NEIGHBOUR_DISTANCE` in site fractions (on every site, at most that share
  of the site's ions swapped: half the L1 distance of the site's fractions), each
  moved to the label's composition along the fit; their median. Two passes: the
  outliers of the first are no one's neighbour in the second.

The rule (:data:`QUALITY_RULE`): a label more than :data:`THRESHOLD_EV` from both
estimates is an ``outlier``; so is one with only one estimate available that it
misses by more than twice that. A label off by more than :data:`THRESHOLD_EV` from
one estimate only is ``suspect``. Training weight (:data:`WEIGHT_RULE`,
``label_weight``): 0 for an outlier, 1 otherwise (suspect labels and labels
resting on one device included: on 5-fold grouped splits of the dft + film chain,
weighting by device count, n/(n + 1), or halving suspect labels gave a larger
error on the labels that are not outliers, 0.040 and 0.038 eV against 0.036 eV).
Rows are never dropped: a weight of 0 removes a label from the loss, the row stays in the
table with its reason.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import combinations

import numpy as np
import pandas as pd

from ..vocabulary import GAP_DEVICES, IONS, LABEL_WEIGHT, MEASURED_BANDGAP, SITE_SLICES

__all__ = [
    "BASIS_COLUMN",
    "GAP_BASIS",
    "GAP_FIT",
    "GAP_NEIGHBOURS",
    "N_NEIGHBOURS",
    "LABEL_QUALITY",
    "LABEL_REASON",
    "LABEL_WEIGHT",
    "QUALITY_COLUMNS",
    "THRESHOLD_EV",
    "NEIGHBOUR_DISTANCE",
    "MIN_TERM_ROWS",
    "MIN_FIT_ROWS",
    "MAX_LEVERAGE",
    "QUALITY_RULE",
    "WEIGHT_RULE",
    "basis_summary",
    "gap_label_quality",
    "label_quality_counts",
    "neighbour_estimates",
    "vegard_bowing_fit",
]

#: Column of the device table saying how each device's band gap was obtained.
BASIS_COLUMN = "Perovskite_band_gap_estimation_basis"
#: Per composition: the estimation bases of its devices' gaps with counts, e.g. ``"Composition (3), not stated (1)"``.
GAP_BASIS = "gap_basis"
#: Leave-one-out Vegard-plus-bowing gap at the composition (eV; NaN where the fit cannot judge).
GAP_FIT = "gap_fit_eV"
#: Median of the neighbours' gaps moved to the composition along the fit (eV; NaN without neighbours).
GAP_NEIGHBOURS = "gap_neighbours_eV"
#: Number of neighbouring compositions.
N_NEIGHBOURS = "n_neighbours"
#: ``ok``, ``suspect`` or ``outlier``.
LABEL_QUALITY = "label_quality"
#: Why a label is suspect or an outlier ("" when ok).
LABEL_REASON = "label_reason"
#: The columns :func:`gap_label_quality` adds, in order.
QUALITY_COLUMNS: tuple[str, ...] = (GAP_FIT, GAP_NEIGHBOURS, N_NEIGHBOURS, LABEL_QUALITY, LABEL_REASON, LABEL_WEIGHT)

#: A label further than this from an estimate (eV) disagrees with it: about 5 robust standard deviations of
#: the fit's residuals on psc-gaps (0.03 eV) and 7 times the typical spread of one composition's devices (0.02 eV).
THRESHOLD_EV = 0.15
#: Compositions are neighbours when no site has more than this share of its ions swapped.
NEIGHBOUR_DISTANCE = 0.1
#: A fraction or bowing term enters the fit only when this many compositions have it.
MIN_TERM_ROWS = 3
#: Below this many labels there is no fit (a fit on fewer judges nothing).
MIN_FIT_ROWS = 20
#: A label with a larger leverage fixes its own terms: the fit cannot judge it.
MAX_LEVERAGE = 0.9
_HUBER_K = 1.345
_RIDGE = 1e-6

QUALITY_RULE = (
    f"A measured-gap label more than {THRESHOLD_EV:g} eV from both its leave-one-out Vegard-plus-bowing fit and its "
    f"neighbours (compositions within {NEIGHBOUR_DISTANCE:g} in site fractions) is an outlier, as is one more than "
    f"{2 * THRESHOLD_EV:g} eV from the only estimate it has; more than {THRESHOLD_EV:g} eV from one of them only: suspect."
)
WEIGHT_RULE = (
    "Film-stage training weights each composition's label: 0 for an outlier (kept in the table, left out of the loss); "
    "every other label weighs 1 (suspect labels are shown, not down-weighted)."
)


def basis_summary(bases: Iterable[object]) -> str:
    """The estimation bases of one composition's devices with counts, most common first (missing: "not stated"),
    e.g. ``"Composition (730), not stated (252), Absorption (2)"``."""
    names = ["not stated" if b is None or (isinstance(b, float) and np.isnan(b)) or not str(b).strip() else str(b).strip()
             for b in bases]
    return ", ".join(f"{name} ({n})" for name, n in sorted(Counter(names).items(), key=lambda kv: (-kv[1], kv[0])))


def _terms(fractions: np.ndarray) -> np.ndarray:
    """Design matrix: intercept, each site fraction, each same-site product, kept where MIN_TERM_ROWS rows have them."""
    cols = [np.ones(len(fractions))]
    for sl in SITE_SLICES.values():
        idx = list(range(sl.start, sl.stop))
        cols += [fractions[:, i] for i in idx]
        cols += [fractions[:, i] * fractions[:, j] for i, j in combinations(idx, 2)]
    design = np.column_stack(cols)
    keep = (design != 0).sum(axis=0) >= MIN_TERM_ROWS
    keep[0] = True
    return design[:, keep]


def vegard_bowing_fit(fractions: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust Vegard-plus-bowing fit of ``gaps`` (eV) on ``fractions`` (rows x 14 site fractions, mol/mol).

    Returns ``(fitted, leave_one_out)`` (eV): the fit at each row, and the fit at
    each row made without that row (NaN where the row's leverage exceeds
    :data:`MAX_LEVERAGE`). Both are NaN everywhere below :data:`MIN_FIT_ROWS` rows.
    """
    y = np.asarray(gaps, dtype=float)
    n = len(y)
    if n < MIN_FIT_ROWS:
        return np.full(n, np.nan), np.full(n, np.nan)
    X = _terms(np.asarray(fractions, dtype=float))
    w = np.ones(n)
    ridge = _RIDGE * np.eye(X.shape[1])
    for _ in range(100):
        A = X.T @ (w[:, None] * X) + ridge
        beta = np.linalg.solve(A, X.T @ (w * y))
        r = y - X @ beta
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-3)
        c = _HUBER_K * scale
        new = np.where(np.abs(r) <= c, 1.0, c / np.maximum(np.abs(r), 1e-12))
        done = np.max(np.abs(new - w)) < 1e-8
        w = new
        if done:
            break
    A = X.T @ (w[:, None] * X) + ridge
    beta = np.linalg.solve(A, X.T @ (w * y))
    fitted = X @ beta
    leverage = w * np.einsum("ij,jk,ik->i", X, np.linalg.inv(A), X)
    loo = np.where(leverage < MAX_LEVERAGE, y - (y - fitted) / (1 - np.minimum(leverage, MAX_LEVERAGE)), np.nan)
    return fitted, loo


def _site_distance(fractions: np.ndarray) -> np.ndarray:
    """(rows x rows): the largest share of any site's ions swapped between two compositions."""
    out = np.zeros((len(fractions), len(fractions)))
    for sl in SITE_SLICES.values():
        f = fractions[:, sl]
        out = np.maximum(out, 0.5 * np.abs(f[:, None, :] - f[None, :, :]).sum(axis=-1))
    return out


def neighbour_estimates(fractions: np.ndarray, gaps: np.ndarray, fitted: np.ndarray,
                        usable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the median of its neighbours' gaps moved to it along ``fitted`` (eV; NaN without neighbours), and their number.

    ``usable``: rows that may serve as a neighbour (default all).
    """
    f = np.asarray(fractions, dtype=float)
    y = np.asarray(gaps, dtype=float)
    shift = np.nan_to_num(np.asarray(fitted, dtype=float))
    near = _site_distance(f) <= NEIGHBOUR_DISTANCE + 1e-9
    np.fill_diagonal(near, False)
    if usable is not None:
        near &= np.asarray(usable, dtype=bool)[None, :]
    est = np.full(len(y), np.nan)
    for k in range(len(y)):
        j = np.flatnonzero(near[k])
        if len(j):
            est[k] = float(np.median(y[j] + shift[k] - shift[j]))
    return est, near.sum(axis=1)


def _side(diff: float, what: str) -> str:
    return f"{abs(diff):.2f} eV {'above' if diff > 0 else 'below'} {what}"


def gap_label_quality(table: pd.DataFrame) -> pd.DataFrame:
    """The quality columns (:data:`QUALITY_COLUMNS`) of a ``psc-gaps`` table, index aligned; the rule in the module docstring.

    ``table`` needs the measured gap (eV), the 14 site fractions and ``n_devices``;
    ``gap_basis`` is quoted in the reason when present.
    """
    fractions = table.loc[:, list(IONS)].to_numpy(dtype=float)
    gaps = table[MEASURED_BANDGAP].to_numpy(dtype=float)
    devices = table[GAP_DEVICES].to_numpy(dtype=float)
    fitted, loo = vegard_bowing_fit(fractions, gaps)
    outlier = np.zeros(len(gaps), dtype=bool)
    for _ in range(2):  # the second pass leaves the first pass's outliers out of every neighbourhood
        near, count = neighbour_estimates(fractions, gaps, fitted, usable=~outlier)
        d_fit, d_near = gaps - loo, gaps - near
        off_fit = np.abs(d_fit) > THRESHOLD_EV  # NaN compares False: not checked
        off_near = np.abs(d_near) > THRESHOLD_EV
        has_fit, has_near = ~np.isnan(loo), ~np.isnan(near)
        far = np.abs(np.where(has_fit, d_fit, d_near)) > 2 * THRESHOLD_EV
        outlier = (off_fit & off_near) | ((has_fit ^ has_near) & (off_fit | off_near) & far)
    suspect = ~outlier & (off_fit | off_near)
    quality = np.where(outlier, "outlier", np.where(suspect, "suspect", "ok"))
    weight = np.where(outlier, 0.0, 1.0)
    bases = table[GAP_BASIS] if GAP_BASIS in table.columns else pd.Series([""] * len(table), index=table.index)
    reasons = []
    for k in range(len(table)):
        if quality[k] == "ok":
            reasons.append("")
            continue
        parts = []
        if has_fit[k]:
            parts.append(_side(d_fit[k], f"the Vegard-plus-bowing fit ({loo[k]:.2f} eV)"))
        else:
            parts.append("no Vegard-plus-bowing estimate (its terms rest on it alone)")
        if has_near[k]:
            parts.append(_side(d_near[k], f"its {count[k]} neighbour{'s' if count[k] > 1 else ''} ({near[k]:.2f} eV)"))
        else:
            parts.append("no neighbour")
        n = int(devices[k])
        tail = f"{n} device{'s' if n != 1 else ''}" + (f"; gap basis: {bases.iloc[k]}" if bases.iloc[k] else "")
        reasons.append(f"{gaps[k]:.2f} eV: " + "; ".join(parts) + f" ({tail})")
    return pd.DataFrame(
        {GAP_FIT: loo, GAP_NEIGHBOURS: near, N_NEIGHBOURS: count.astype(int), LABEL_QUALITY: quality,
         LABEL_REASON: reasons, LABEL_WEIGHT: weight},
        index=table.index,
    )


def label_quality_counts(table: pd.DataFrame) -> dict[str, int]:
    """Compositions per label quality (``ok``, ``suspect``, ``outlier``), ``weight_zero`` (left out of the loss) and
    ``single_device`` (labels resting on one device)."""
    counts = {q: int((table[LABEL_QUALITY] == q).sum()) for q in ("ok", "suspect", "outlier")}
    counts["weight_zero"] = int((table[LABEL_WEIGHT] == 0).sum())
    counts["single_device"] = int((table[GAP_DEVICES] == 1).sum())
    return counts
