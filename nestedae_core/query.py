"""Queries: a perovskite composition plus a device stack, turned into a model's raw inputs.

This is where the perovskite domain meets the domain-agnostic chain
(:mod:`nestedae_core.model`): a formula or a set of site fractions becomes the
descriptor columns (:mod:`nestedae_core.chemistry.features`), and the ETL/HTL
stacks become the model's categorical inputs. Prediction
(:mod:`nestedae_core.predict`) and explanation (:mod:`nestedae_core.explain`)
take the same :class:`Query`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .chemistry.composition import Composition, parse_formula
from .chemistry.features import featurize_columns, featurize_many, featurize_matrix
from .errors import InputError, NestedAEError
from .model.columns import ColumnTable
from .vocabulary import ETL, HTL

if TYPE_CHECKING:  # a model's module loads torch: building a query's rows needs none until a model predicts
    import pandas as pd

    from .model.chain import NestedAE

__all__ = ["Query", "QueryLike", "query_frame", "query_columns", "fractions_query_frame", "resolve_categorical",
           "composition_problem"]


@dataclass(frozen=True)
class Query:
    """One composition and (optionally) its device stack.

    Attributes:
        composition: the absorber (parsed and validated).
        etl: electron-transport-layer stack (None: the model's most common one).
        htl: hole-transport-layer stack (None: the model's most common one).
        categorical: other categorical inputs by column name.
        numeric: inputs not derivable from the composition, by column name (their units).
    """

    composition: Composition
    etl: str | None = None
    htl: str | None = None
    categorical: Mapping[str, str] = field(default_factory=dict)
    numeric: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, value: "QueryLike", *, etl: str | None = None, htl: str | None = None) -> "Query":
        """A query from a formula, a :class:`Composition`, a mapping of site fractions
        (ion -> amount per formula unit, e.g. ``{"MA": 1, "Pb": 1, "I": 3}``) or a Query.

        ``etl``/``htl`` given here replace the query's own. Raises
        :class:`~nestedae_core.errors.CompositionError` for a bad composition and
        :class:`~nestedae_core.errors.InputError` for a value of another type.
        """
        if isinstance(value, Query):
            q = value
        elif isinstance(value, Composition):
            q = cls(value)
        elif isinstance(value, str):
            q = cls(parse_formula(value))
        elif isinstance(value, Mapping):
            q = cls(Composition.from_fractions(value))
        else:
            raise InputError(f"a query is a formula, a Composition, a mapping of site fractions or a Query; got {type(value).__name__}")
        if etl is not None or htl is not None:
            q = cls(q.composition, etl if etl is not None else q.etl, htl if htl is not None else q.htl, q.categorical, q.numeric)
        return q

    @property
    def formula(self) -> str:
        """Canonical formula of the composition."""
        return self.composition.formula

    def resolve(self, model: NestedAE) -> tuple[dict[str, str], list[str]]:
        """Categorical inputs for ``model`` (see :func:`resolve_categorical`)."""
        return resolve_categorical(model, self.etl, self.htl, dict(self.categorical))

    def frame(self, model: NestedAE) -> pd.DataFrame:
        """The model's raw-input table for this query (one row)."""
        cats, _ = self.resolve(model)
        return query_frame(model, [self.composition], categorical=cats, numeric=dict(self.numeric) or None)


#: What :meth:`Query.of` accepts.
QueryLike = Query | Composition | str | Mapping[str, float]


def resolve_categorical(
    model: NestedAE, etl: str | None = None, htl: str | None = None, extra: dict[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The categorical inputs of a query: given ETL/HTL (checked against the known stacks),
    ``extra`` values, and the most common training value for the rest.

    Returns (column -> value, columns that took their default). An unknown stack
    raises :class:`InputError` listing the known ones.
    """
    cats: dict[str, str] = dict(extra or {})
    names = [c for p in model.prep for c in p.categorical_columns]
    for col, val in ((ETL, etl), (HTL, htl)):
        if val is None:
            continue
        if col not in names:
            raise InputError(f"this model has no {col.split('_')[0]} input; it takes: {', '.join(names) or 'no categorical inputs'}")
        known = model.categories(col)
        if val not in known:
            raise InputError(f"unknown {col.split('_')[0]} stack '{val}'; known: {', '.join(known)}")
        cats[col] = val
    defaulted = [c for c in names if c not in cats]
    for c in defaulted:
        cats[c] = model.default_category(c)
    return cats, defaulted


def query_frame(
    model: NestedAE,
    compositions: Sequence[Any],
    categorical: Mapping[str, str | Sequence[str]] | None = None,
    numeric: Mapping[str, float | Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Raw-input table of ``model`` for compositions (Composition objects or formula strings).

    Descriptors and site fractions come from :mod:`nestedae_core.chemistry.features`;
    categorical inputs (e.g. ``ETL_stack_sequence``) default to the most common
    training value; extra numeric inputs not derivable from the composition
    must be given in ``numeric``.
    """
    comps = [c if isinstance(c, Composition) else parse_formula(str(c)) for c in compositions]
    frame = featurize_many(comps)
    frame.insert(0, "formula", [c.formula for c in comps])
    return _complete_frame(model, frame, categorical, numeric)


def query_columns(
    model: NestedAE,
    compositions: Sequence[Any],
    categorical: Mapping[str, str | Sequence[str]] | None = None,
    numeric: Mapping[str, float | Sequence[float]] | None = None,
) -> ColumnTable:
    """:func:`query_frame` as a :class:`~nestedae_core.model.columns.ColumnTable`: the same columns and values, no
    pandas (what a single prediction passes to the chain; ``.to_frame()`` gives the DataFrame)."""
    comps = [c if isinstance(c, Composition) else parse_formula(str(c)) for c in compositions]
    vectors = np.array([c.fraction_vector() for c in comps]).reshape(len(comps), -1)
    table = ColumnTable({"formula": np.array([c.formula for c in comps], dtype=object)}, rows=len(comps))
    for name, values in featurize_columns(vectors).items():
        table[name] = values
    return _complete_frame(model, table, categorical, numeric)


def fractions_query_frame(
    model: NestedAE,
    formulas: Sequence[str],
    fractions: np.ndarray,
    categorical: Mapping[str, str | Sequence[str]] | None = None,
) -> pd.DataFrame:
    """:func:`query_frame` from canonical formulas and their fraction vectors (n, 14) already computed.

    The batch path (:mod:`nestedae_core.batch`) parses each distinct formula once
    (:func:`~nestedae_core.chemistry.composition.fast.parse_many`) and builds the
    table here, vectorised; the table is the one :func:`query_frame` returns for
    the same compositions.
    """
    frame = featurize_matrix(fractions)
    frame.insert(0, "formula", list(formulas))
    return _complete_frame(model, frame, categorical, None)


def _complete_frame(
    model: NestedAE,
    frame: Any,
    categorical: Mapping[str, str | Sequence[str]] | None,
    numeric: Mapping[str, float | Sequence[float]] | None,
) -> Any:
    """The composition table (a DataFrame or a ColumnTable) with the model's categorical and extra numeric inputs
    added (see :func:`query_frame`)."""
    categorical = dict(categorical or {})
    numeric = dict(numeric or {})
    needed_cats: dict[str, tuple[list[str], str]] = {}
    for p in model.prep:
        for col, cats, default in zip(p.categorical_columns, p.categories, p.default_categories):
            needed_cats[col] = (cats, default)
    unknown = sorted(set(categorical) - set(needed_cats))
    if unknown:
        raise InputError(f"this model has no categorical input {', '.join(unknown)}; it has: {', '.join(needed_cats) or 'none'}")
    for col, (cats, default) in needed_cats.items():
        frame[col] = categorical.get(col, default)
    for col, val in numeric.items():
        frame[col] = val
    missing = [c for i in range(len(model.nets)) for c in model.raw_columns(i) if c not in frame.columns]
    if missing:
        raise InputError(f"inputs not derivable from the composition; give them explicitly: {', '.join(dict.fromkeys(missing))}")
    return frame


def composition_problem(model: NestedAE) -> str | None:
    """Why ``model`` cannot be queried with a perovskite composition, or None when it can.

    (A model trained on other inputs, e.g. the synthetic set, needs columns that a
    composition does not give.)
    """
    try:
        query_frame(model, [parse_formula("MAPbI3")])
    except NestedAEError as exc:
        return str(exc)
    return None
