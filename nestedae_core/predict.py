"""Chain predictions for compositions: single queries, line scans and screening.

All functions take a trained :class:`~nestedae_core.model.NestedAE` and return
ensemble means and standard deviations in the targets' units (band gap in eV,
PCE in %), with an in-domain flag per row.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .chemistry.composition import Composition, composition_grid, mix, parse_formula
from .errors import InputError
from .chemistry.features import featurize_fractions
from .model.chain import NestedAE
from .query import Query, QueryLike, query_frame, resolve_categorical
from .vocabulary import BANDGAP_PBE, ETL, HTL, JSON_NAMES, PCE

__all__ = [
    "BANDGAP_COLUMN",
    "PCE_COLUMN",
    "QueryResult",
    "predict_composition",
    "predict_table",
    "line_scan",
    "screen",
    "grid_formulas",
]

#: Target columns with a conventional JSON name.
BANDGAP_COLUMN = BANDGAP_PBE
PCE_COLUMN = PCE


def _json_name(column: str, unit: str) -> str:
    return JSON_NAMES.get(column, column if not unit else f"{column}_{unit.replace('/', '_per_').replace('%', 'percent')}")


@dataclass
class QueryResult:
    """Prediction of the chain for one composition (and device stack).

    ``targets``: column -> dict(mean, std, unit, label, stage); ``in_domain``:
    True when every stage's query lies inside its training domain;
    ``stage_in_domain``: per stage; ``latents``: stage -> ensemble-mean latents;
    ``categorical``: the categorical inputs used (e.g. ETL/HTL) and
    ``defaulted``: those that were not given and took the most common value.
    """

    formula: str
    targets: dict[str, dict[str, Any]]
    in_domain: bool
    stage_in_domain: dict[str, bool]
    domain_distance: dict[str, float]
    latents: dict[str, list[float]]
    categorical: dict[str, str]
    defaulted: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON object: ``formula``, one key per target (``bandgap_eV``, ``pce_percent`` ...)
        with ``mean`` and ``std``, ``in_domain``, ``stage_in_domain``, ``etl``/``htl`` or
        ``categorical``, ``defaulted`` and ``latents``."""
        out: dict[str, Any] = {"formula": self.formula}
        for col, t in self.targets.items():
            out[_json_name(col, t["unit"])] = {"mean": t["mean"], "std": t["std"], "unit": t["unit"]}
        out["in_domain"] = bool(self.in_domain)
        out["stage_in_domain"] = {k: bool(v) for k, v in self.stage_in_domain.items()}
        out["domain_distance"] = self.domain_distance
        if ETL in self.categorical:
            out["etl"] = self.categorical[ETL]
        if HTL in self.categorical:
            out["htl"] = self.categorical[HTL]
        out["categorical"] = self.categorical
        out["defaulted"] = self.defaulted
        out["latents"] = self.latents
        return out


def predict_composition(
    model: NestedAE,
    composition: QueryLike,
    *,
    etl: str | None = None,
    htl: str | None = None,
    categorical: dict[str, str] | None = None,
    numeric: dict[str, float] | None = None,
) -> QueryResult:
    """Predict every stage of the chain for one query (formula, Composition, site fractions or :class:`Query`).

    ``etl``/``htl`` given here replace the query's own; stacks not given default to
    the most common ones in the training data (reported in ``defaulted``); an
    unknown stack raises :class:`InputError` listing the known ones.
    """
    query = Query.of(composition, etl=etl, htl=htl)
    comp = query.composition
    cats, defaulted = resolve_categorical(model, query.etl, query.htl, {**dict(query.categorical), **(categorical or {})})
    numeric = {**dict(query.numeric), **(numeric or {})} or None
    frame = query_frame(model, [comp], categorical=cats, numeric=numeric)
    preds = model.predict(frame)
    targets: dict[str, dict[str, Any]] = {}
    for i, st in enumerate(model.spec.stages):
        if st.name not in preds:
            continue
        sp = preds[st.name]
        for j, t in enumerate(st.targets):
            targets[t.column] = {
                "mean": float(sp.mean[0, j]),
                "std": float(sp.std[0, j]),
                "unit": t.unit,
                "label": t.label or t.column,
                "stage": st.name,
            }
    stage_dom = {k: bool(v.in_domain[0]) for k, v in preds.items()}
    return QueryResult(
        formula=comp.formula,
        targets=targets,
        in_domain=all(stage_dom.values()),
        stage_in_domain=stage_dom,
        domain_distance={k: float(v.domain_distance[0]) for k, v in preds.items()},
        latents={k: v.latents.mean(axis=0)[0].tolist() for k, v in preds.items()},
        categorical=cats,
        defaulted=defaulted,
    )


def predict_table(model: NestedAE, frame: pd.DataFrame) -> pd.DataFrame:
    """Predictions for a raw-input table: ``<stage>.<target>_mean``/``_std``, ``<stage>.in_domain``."""
    out = pd.DataFrame(index=frame.index)
    for name, sp in model.predict(frame).items():
        f = sp.frame()
        f.index = frame.index
        for c in f.columns:
            out[f"{name}.{c}"] = f[c]
    return out


def _stage_target_frame(model: NestedAE, frame: pd.DataFrame) -> pd.DataFrame:
    res = predict_table(model, frame)
    cols = {}
    for st in model.spec.stages:
        for t in st.targets:
            key = f"{st.name}.{t.column}"
            if f"{key}_mean" in res:
                cols[f"{t.column}_mean"] = res[f"{key}_mean"]
                cols[f"{t.column}_std"] = res[f"{key}_std"]
    dom = [c for c in res.columns if c.endswith(".in_domain")]
    cols["in_domain"] = res[dom].all(axis=1) if dom else True
    return pd.DataFrame(cols, index=frame.index)


def line_scan(
    model: NestedAE,
    start: Composition | str,
    end: Composition | str,
    steps: int = 21,
    *,
    etl: str | None = None,
    htl: str | None = None,
) -> pd.DataFrame:
    """Predictions along the straight line between two compositions.

    Returns one row per x in [0, 1] (``x`` = share of ``end``): ``x``, ``formula``,
    ``<target>_mean``/``_std`` for every target, ``in_domain``.
    """
    if not 2 <= steps <= 1001:
        raise InputError("steps must be between 2 and 1001")
    a = start if isinstance(start, Composition) else parse_formula(start)
    b = end if isinstance(end, Composition) else parse_formula(end)
    xs = np.linspace(0.0, 1.0, steps)
    comps = [mix([(a, 1 - x), (b, x)]) if 0 < x < 1 else (a if x == 0 else b) for x in xs]
    cats, _ = resolve_categorical(model, etl, htl, None)
    frame = query_frame(model, comps, categorical=cats)
    res = _stage_target_frame(model, frame)
    res.insert(0, "formula", frame["formula"].to_numpy())
    res.insert(0, "x", xs)
    return res.reset_index(drop=True)


def screen(
    model: NestedAE,
    a_ions: Sequence[str],
    b_ions: Sequence[str],
    x_ions: Sequence[str],
    step: float,
    *,
    etl: str | None = None,
    htl: str | None = None,
    bandgap_window: tuple[float, float] | None = None,
    tolerance_window: tuple[float, float] | None = None,
    rank_by: str | None = None,
    max_candidates: int = 200_000,
) -> pd.DataFrame:
    """Enumerate compositions on a simplex grid, predict, filter and rank them.

    ``step`` is the grid step of each site's fractions (e.g. 0.1). Candidates are
    kept when their predicted band gap (eV) lies in ``bandgap_window`` and their
    tolerance factor in ``tolerance_window``; they are sorted by the mean of
    ``rank_by`` (default: the last stage's first target, e.g. PCE), descending.
    Columns: ``formula``, the 14 site fractions, ``tolerance_factor``,
    ``octahedral_factor``, ``<target>_mean``/``_std``, ``in_domain``.
    """
    from .chemistry.composition import IONS

    grid = composition_grid(a_ions, b_ions, x_ions, step)
    if len(grid) > max_candidates:
        raise InputError(f"the grid has {len(grid)} candidates, more than {max_candidates}; use a coarser step or fewer ions")
    feats = featurize_fractions(grid)
    frame = pd.concat([pd.DataFrame(grid, columns=list(IONS)), feats.reset_index(drop=True)], axis=1)
    frame.insert(0, "formula", grid_formulas(grid))
    cats, _ = resolve_categorical(model, etl, htl, None)
    for c, v in cats.items():
        frame[c] = v
    res = _stage_target_frame(model, frame)
    out = pd.concat([frame[["formula", *IONS, "tolerance_factor", "octahedral_factor"]], res], axis=1)
    if bandgap_window is not None and f"{BANDGAP_COLUMN}_mean" in out:
        lo, hi = bandgap_window
        out = out[(out[f"{BANDGAP_COLUMN}_mean"] >= lo) & (out[f"{BANDGAP_COLUMN}_mean"] <= hi)]
    if tolerance_window is not None:
        lo, hi = tolerance_window
        out = out[(out["tolerance_factor"] >= lo) & (out["tolerance_factor"] <= hi)]
    if rank_by is None:
        last = model.spec.stages[-1]
        rank_by = last.targets[0].column
    key = f"{rank_by}_mean"
    if key not in out:
        raise InputError(f"cannot rank by '{rank_by}'; this model predicts: {', '.join(c[:-5] for c in out.columns if c.endswith('_mean'))}")
    return out.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)


def grid_formulas(fractions: np.ndarray, digits: int = 4) -> list[str]:
    """Compact formulas of many compositions at once (display only, ``digits`` significant digits).

    ``fractions``: (n, 14) in the :meth:`Composition.fraction_vector` convention (X
    fractions summing to 1; printed per formula unit, i.e. x 3). Amounts of 1 are
    omitted, e.g. ``Cs0.1FA0.9PbBr0.6I2.4``. Vectorised: 10,000 rows in a few
    milliseconds, unlike building a :class:`Composition` per row.
    """
    from .chemistry.composition import A_SITE_IONS, B_SITE_IONS, IONS, X_SITE_IONS

    arr = np.asarray(fractions, dtype=np.float64)
    out = np.full(len(arr), "", dtype=object)
    order = [*sorted(A_SITE_IONS), *sorted(B_SITE_IONS), *sorted(X_SITE_IONS)]  # as Composition.formula
    for ion in order:
        j = IONS.index(ion)
        amount = arr[:, j] * (3.0 if j >= 11 else 1.0)
        present = amount > 1e-9
        if not present.any():
            continue
        text = np.array([f"{v:.{digits}g}" for v in np.round(amount[present], 10)], dtype=object)
        text[text == "1"] = ""
        piece = np.full(len(arr), "", dtype=object)
        piece[present] = ion + text
        out = out + piece
    return out.tolist()
