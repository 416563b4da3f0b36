"""Site descriptors of halide perovskites: ion property table -> composition-weighted A/B/X features.

Each of the 36 site descriptors is a linear mixture of a per-ion property over
the ions of one site: A and B sites weighted by amount per formula unit, the X
site by X-site fraction (Br0.51I2.49 -> 0.17 Br + 0.83 I). For example, for
Cs0.05FA0.79MA0.16PbBr0.51I2.49, ``A_IE`` = 0.05*375.7 + 0.79*849.1 + 0.16*926.3
kJ/mol. The descriptor names and their column order are those of ``PBE_data.csv``
(``A_ion_rad``, ``A_BP``, ..., ``X_period``).

Source of the ion property table (transcribed below as constants):
``Elem_prop.xlsx`` of github.com/mannodiarun/perovs_mfml_ga (commit 0a8994b),
the table behind the data of A. Mannodi-Kanakkithodi and M. K. Y. Chan,
"Data-driven design of novel halide perovskite alloys", Energy Environ. Sci. 15,
1930 (2022), doi:10.1039/D1EE02971A. Ionic radii are Shannon radii; MA
(CH3NH3+) and FA (CH(NH2)2+) carry the effective radii and effective values
(including an "atomic number" and "period") used there. Recomputing the
descriptors of ``PBE_data.csv`` from this table agrees to within 0.55 % (the CSV
is rounded to 3 significant figures).

Also computed: the Goldschmidt tolerance factor t = (rA + rX) / (sqrt(2) (rB + rX))
and the octahedral factor mu = rB / rX from the site-averaged ionic radii, as in
the ``Tolerance Factor`` and ``Octahedral Factor`` columns of the NestedAE device
data set (``PSC_efficiencies_dataset.csv``).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CompositionError, SchemaError
from ..vocabulary import (
    DESCRIPTOR_LABELS,
    DESCRIPTOR_UNITS,
    DESCRIPTORS,
    FACTOR_COLUMNS,
    IONS,
    PAPER_DESCRIPTORS,
    PROPERTY_KEYS,
    PROPERTY_LABELS,
    PROPERTY_UNITS,
    SITE_SLICES,
)
from .composition import Composition, parse_formula

if TYPE_CHECKING:  # tables load pandas on first use: one composition's descriptors need none
    import pandas as pd

__all__ = [
    "PROPERTY_KEYS",
    "PROPERTY_UNITS",
    "PROPERTY_LABELS",
    "ION_PROPERTIES",
    "DESCRIPTORS",
    "PAPER_DESCRIPTORS",
    "COLUMN_ALIASES",
    "FACTOR_COLUMNS",
    "FEATURE_COLUMNS",
    "DESCRIPTOR_UNITS",
    "DESCRIPTOR_LABELS",
    "TOLERANCE_RANGE",
    "OCTAHEDRAL_RANGE",
    "ion_property",
    "tolerance_factor",
    "octahedral_factor",
    "featurize",
    "featurize_fractions",
    "featurize_many",
    "featurize_matrix",
    "featurize_columns",
    "featurize_table",
]

logger = logging.getLogger(__name__)

# Elem_prop.xlsx (Mannodi-Kanakkithodi & Chan 2022), one row per ion, columns PROPERTY_KEYS:
#         ion_rad  BP       MP       dens    at_wt     EA      IE      hof    hov     En    at_num period
_TABLE: dict[str, tuple[float, ...]] = {
    "K": (1.51, 1033.0, 336.8, 0.86, 39.0983, 48.36, 418.8, 2.33, 76.9, 0.82, 19, 4),
    "Rb": (1.61, 961.0, 312.63, 1.532, 85.4678, 46.89, 403.0, 2.34, 69.2, 0.82, 37, 5),
    "Cs": (1.74, 944.0, 301.54, 1.87, 132.9054, 45.49, 375.7, 2.092, 67.74, 0.79, 55, 6),
    "MA": (2.17, 267.0, 180.65, 0.7, 32.066, 8.6837, 926.3, 6.13, 23.85, 2.55, 73, 7),
    "FA": (2.53, 319.0, 354.0, 1.1, 45.057, 8.6, 849.1, 6.5, 29.0, 2.57, 91, 8),
    "Ca": (1.0, 1757.0, 1112.0, 1.55, 40.078, -156.0, 589.8, 8.53, 154.67, 1.0, 20, 4),
    "Sr": (1.26, 1655.0, 1042.0, 2.54, 87.62, -168.0, 549.5, 8.2, 136.9, 0.95, 38, 5),
    "Ba": (1.42, 2078.0, 1002.0, 3.59, 137.33, -52.0, 502.9, 8.01, 140.2, 0.89, 56, 6),
    "Ge": (0.87, 3107.0, 1211.5, 5.32, 72.61, 120.0, 762.1, 31.8, 334.3, 2.01, 32, 4),
    "Sn": (1.15, 2876.0, 505.12, 7.31, 118.71, 121.0, 708.6, 7.2, 290.37, 1.96, 50, 5),
    "Pb": (1.19, 2023.0, 600.65, 11.35, 207.2, 110.0, 715.5, 4.77, 177.9, 2.33, 82, 6),
    "Cl": (1.81, 239.18, 172.17, 3.214, 35.4527, 348.8, 1251.1, 3.21, 10.2, 3.16, 17, 3),
    "Br": (1.96, 331.85, 265.95, 3.12, 79.904, 324.6, 1139.9, 5.286, 14.725, 2.96, 35, 4),
    "I": (2.2, 457.5, 386.7, 4.93, 126.9045, 295.3, 1008.4, 7.76, 20.9, 2.66, 53, 5),
}

# Private, read-only matrix (14 ions x 12 properties) used by every computation.
_MATRIX = np.array([_TABLE[ion] for ion in IONS], dtype=float)
_MATRIX.setflags(write=False)

#: Ion property table (a DataFrame built on first use, see :func:`__getattr__`).
ION_PROPERTIES: pd.DataFrame


def __getattr__(name: str) -> Any:
    """``ION_PROPERTIES``, the ion property table: index the 14 ions in IONS order, columns PROPERTY_KEYS (units in
    PROPERTY_UNITS); a copy for reading, editing it changes no result. Built on first use (it imports pandas)."""
    if name == "ION_PROPERTIES":
        import pandas as pd

        table = pd.DataFrame(_MATRIX.copy(), index=pd.Index(IONS, name="ion"), columns=list(PROPERTY_KEYS))
        globals()[name] = table
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Other spellings of descriptor columns in the data sets -> our name.
COLUMN_ALIASES: dict[str, str] = {"X_atom_wt": "X_at_wt"}

#: Every column :func:`featurize_fractions` returns: DESCRIPTORS then FACTOR_COLUMNS.
FEATURE_COLUMNS: tuple[str, ...] = DESCRIPTORS + FACTOR_COLUMNS

#: Usual window of the Goldschmidt tolerance factor for a 3D perovskite (rule of
#: thumb, e.g. Li et al., Acta Cryst. B 64, 702 (2008); outside it, hexagonal
#: or non-perovskite phases become likely).
TOLERANCE_RANGE: tuple[float, float] = (0.8, 1.0)

#: Usual window of the octahedral factor rB/rX (rule of thumb: 0.414 = sqrt(2) - 1,
#: the smallest B cation that fits the X6 octahedron, to 0.732 = sqrt(3) - 1).
OCTAHEDRAL_RANGE: tuple[float, float] = (0.414, 0.732)

_SITE_COLS = SITE_SLICES  # from the ion lists (vocabulary)
_SQRT2 = math.sqrt(2.0)
# Block-diagonal (14 ions x 36 descriptors) weights: fractions @ _WEIGHTS gives all descriptors at once.
_WEIGHTS = np.zeros((len(IONS), len(DESCRIPTORS)))
for _index, _site in enumerate(("A", "B", "X")):
    _WEIGHTS[_SITE_COLS[_site], _index * len(PROPERTY_KEYS) : (_index + 1) * len(PROPERTY_KEYS)] = _MATRIX[_SITE_COLS[_site]]
_WEIGHTS.setflags(write=False)
del _index, _site
_SITE_SUM_TOLERANCE = 0.01


def ion_property(ion: str, key: str) -> float:
    """One value of the ion property table (unit PROPERTY_UNITS[key])."""
    if ion not in _TABLE:
        raise CompositionError(f"unknown ion {ion!r}: known ions are {', '.join(IONS)}")
    if key not in PROPERTY_KEYS:
        raise CompositionError(f"unknown property {key!r}: known properties are {', '.join(PROPERTY_KEYS)}")
    return float(_TABLE[ion][PROPERTY_KEYS.index(key)])


def _as_composition(comp: Composition | str) -> Composition:
    if isinstance(comp, Composition):
        return comp
    if isinstance(comp, str):
        return parse_formula(comp)
    raise CompositionError(f"expected a Composition or a formula string, got {type(comp).__name__}")


def _compute(fractions: np.ndarray) -> np.ndarray:
    """Descriptors and factors (n, 38) from fraction rows (n, 14); no validation, NaN propagates."""
    out = np.empty((fractions.shape[0], len(FEATURE_COLUMNS)))
    n_keys = len(PROPERTY_KEYS)
    out[:, : len(DESCRIPTORS)] = fractions @ _WEIGHTS
    r_a = out[:, 0]
    r_b = out[:, n_keys]
    r_x = out[:, 2 * n_keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, -2] = (r_a + r_x) / (_SQRT2 * (r_b + r_x))
        out[:, -1] = r_b / r_x
    return out


def tolerance_factor(comp: Composition | str) -> float:
    """Goldschmidt tolerance factor t = (rA + rX) / (sqrt(2) (rB + rX)), dimensionless.

    rA, rB, rX are the composition-weighted ionic radii (Å) of the three sites.
    """
    vec = _as_composition(comp).fraction_vector()[None, :]
    return float(_compute(vec)[0, -2])


def octahedral_factor(comp: Composition | str) -> float:
    """Octahedral factor mu = rB / rX from composition-weighted ionic radii, dimensionless."""
    vec = _as_composition(comp).fraction_vector()[None, :]
    return float(_compute(vec)[0, -1])


def featurize(comp: Composition | str) -> dict[str, float]:
    """The 36 site descriptors (units in DESCRIPTOR_UNITS) plus tolerance and octahedral factors.

    Keys in FEATURE_COLUMNS order. A formula string is parsed with
    :func:`~nestedae_core.chemistry.composition.parse_formula` defaults.
    """
    vec = _as_composition(comp).fraction_vector()[None, :]
    row = _compute(vec)[0]
    return {name: float(value) for name, value in zip(FEATURE_COLUMNS, row)}


def _fraction_matrix(fractions: Any) -> tuple[np.ndarray, pd.Index | None]:
    import pandas as pd

    if isinstance(fractions, pd.DataFrame):
        missing = [ion for ion in IONS if ion not in fractions.columns]
        if missing:
            raise SchemaError(f"fraction table lacks ion columns {missing}: it needs the 14 columns {', '.join(IONS)}")
        return fractions.loc[:, list(IONS)].to_numpy(dtype=float), fractions.index
    try:
        array = np.asarray(fractions, dtype=float)
    except (TypeError, ValueError):
        raise CompositionError("fractions must be a numeric array of shape (n, 14)") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != len(IONS):
        raise CompositionError(f"fractions have shape {array.shape}, expected (n, 14) with columns {', '.join(IONS)}")
    return array, None


def featurize_fractions(fractions: np.ndarray | pd.DataFrame) -> pd.DataFrame:
    """Vectorised descriptors for many compositions.

    ``fractions`` has shape (n, 14), columns in IONS order, in the
    :meth:`Composition.fraction_vector` convention (A and B amounts, X
    fractions; each site sums to 1 within 0.01), e.g. the output of
    :func:`~nestedae_core.chemistry.composition.composition_grid` or the ion columns of
    ``PBE_data.csv`` (a DataFrame with the 14 ion columns is accepted and its
    index kept). Returns a DataFrame with FEATURE_COLUMNS (36 descriptors,
    units in DESCRIPTOR_UNITS, then the two factors).
    """
    array, index = _fraction_matrix(fractions)
    if array.size:
        if not np.isfinite(array).all():
            row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
            raise CompositionError(f"fractions row {row} holds a non-finite value: every fraction must be a number")
        if (array < 0).any():
            row, col = (int(v[0]) for v in np.nonzero(array < 0))
            raise CompositionError(f"fractions row {row} has a negative {IONS[col]} fraction: fractions must be >= 0")
        for site, cols in _SITE_COLS.items():
            sums = array[:, cols].sum(axis=1)
            bad = np.flatnonzero(np.abs(sums - 1.0) > _SITE_SUM_TOLERANCE)
            if bad.size:
                row = int(bad[0])
                raise CompositionError(
                    f"fractions row {row}: {site}-site fractions sum to {sums[row]:.4g}, expected 1 "
                    f"(X as fractions of the X site, not amounts per formula unit)"
                )
    import pandas as pd

    return pd.DataFrame(_compute(array), columns=list(FEATURE_COLUMNS), index=index)


def featurize_many(comps: Sequence[Composition | str]) -> pd.DataFrame:
    """Table of compositions: 14 fraction columns (K ... I), 36 descriptors, 2 factors.

    One row per composition, in order; formula strings are parsed.
    """
    items = [_as_composition(comp) for comp in comps]
    return featurize_matrix(np.array([comp.fraction_vector() for comp in items]).reshape(len(items), len(IONS)))


def featurize_matrix(fractions: np.ndarray) -> pd.DataFrame:
    """:func:`featurize_many` from fraction vectors (n, 14) already computed (:meth:`Composition.fraction_vector`).

    Returns the 14 fraction columns (K ... I, dimensionless), the 36 descriptors
    (units in DESCRIPTOR_UNITS) and the 2 factors; one row per input row, no
    validation (the vectors come from parsed compositions).
    """
    import pandas as pd

    fractions = np.asarray(fractions, dtype=float).reshape(-1, len(IONS))
    table = pd.DataFrame(fractions, columns=list(IONS))
    features = pd.DataFrame(_compute(fractions), columns=list(FEATURE_COLUMNS))
    return pd.concat([table, features], axis=1)


def featurize_columns(fractions: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of :func:`featurize_matrix` without pandas: name -> values (n,), in its order (the 14 fractions,
    dimensionless; the 36 descriptors, units in DESCRIPTOR_UNITS; the 2 factors). No validation, as there."""
    fractions = np.asarray(fractions, dtype=float).reshape(-1, len(IONS))
    features = _compute(fractions)
    out = {ion: fractions[:, j] for j, ion in enumerate(IONS)}
    out.update({name: features[:, j] for j, name in enumerate(FEATURE_COLUMNS)})
    return out


def _describe_columns(columns: Sequence[Any], limit: int = 30) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown or "(none)"


def featurize_table(
    df: pd.DataFrame,
    formula_column: str,
    *,
    renormalize: bool = False,
    tolerance: float = 0.02,
) -> tuple[pd.DataFrame, int]:
    """Featurize every formula of a table; one bad row never stops the table.

    Returns ``(table, n_failed)``: ``table`` keeps the input columns and index
    and adds the 14 fraction columns (K ... I; A and B amounts, X fractions),
    the 36 descriptors, ``tolerance_factor``, ``octahedral_factor`` and
    ``error`` (empty string when the row parsed, else the CompositionError
    message; its feature columns are then NaN). Input columns that share a name
    with an added column are replaced (a warning is logged). ``renormalize``
    and ``tolerance`` are passed to :func:`parse_formula`.

    Raises:
        SchemaError: ``df`` is not a DataFrame or lacks ``formula_column``.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"featurize_table expects a pandas DataFrame, got {type(df).__name__}")
    if formula_column not in df.columns:
        raise SchemaError(f"formula column {formula_column!r} not found; available columns: {_describe_columns(df.columns)}")
    column = df[formula_column]
    if isinstance(column, pd.DataFrame):
        raise SchemaError(f"formula column {formula_column!r} appears more than once: rename the duplicates")
    cache: dict[str, tuple[np.ndarray | None, str]] = {}
    n = len(df)
    fractions = np.full((n, len(IONS)), np.nan)
    errors: list[str] = [""] * n
    for row, raw in enumerate(column.tolist()):
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip()):
            errors[row] = "empty formula: give a composition such as 'MAPbI3'"
            continue
        text = str(raw)
        if text not in cache:
            try:
                cache[text] = (parse_formula(text, renormalize=renormalize, tolerance=tolerance).fraction_vector(), "")
            except CompositionError as exc:
                cache[text] = (None, str(exc))
        vec, message = cache[text]
        if vec is None:
            errors[row] = message
        else:
            fractions[row] = vec
    added = pd.DataFrame(fractions, columns=list(IONS), index=df.index)
    features = pd.DataFrame(_compute(fractions), columns=list(FEATURE_COLUMNS), index=df.index)
    new = pd.concat([added, features, pd.Series(errors, index=df.index, name="error", dtype=object)], axis=1)
    overlap = [c for c in df.columns if c in new.columns]
    if overlap:
        logger.warning("featurize_table: replacing existing columns %s", ", ".join(map(str, overlap)))
    table = pd.concat([df.drop(columns=overlap), new], axis=1)
    n_failed = sum(1 for message in errors if message)
    logger.info("featurized %d rows, %d failed", n, n_failed)
    return table, n_failed

