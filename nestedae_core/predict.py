"""Chain predictions for compositions: single queries, line scans and screening.

All functions take a trained :class:`~nestedae_core.model.NestedAE` and return
ensemble means in the targets' units (band gap in eV, PCE in %), the CV+
prediction interval at a stated level (default 90 %; absent for a model without
calibration, e.g. one fitted on all rows), the model disagreement (the standard
deviation of the fold models, ``std``) and an in-domain flag per row. Band gaps
name their fidelity (measured, PBE, HSE; see :func:`bandgaps`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .chemistry.composition import Composition, composition_grid, mix, parse_formula
from .errors import InputError
from .chemistry.features import featurize_fractions
from .perovskite.fidelity import gap_name, phase_name, target_fidelity
from .model.intervals import DEFAULT_LEVEL
from .query import Query, QueryLike, query_columns, query_frame, resolve_categorical
from .schema import GAP_KEYS, STATS, input_key, quantity_key, target_key
from .vocabulary import DECOMPOSITION, FIDELITIES, PCE, PHASE

if TYPE_CHECKING:  # a model's module loads torch: naming a quantity (quantity_name) needs none; one query needs no pandas
    import pandas as pd

    from .model.chain import NestedAE

__all__ = [
    "PCE_COLUMN",
    "QueryResult",
    "bandgaps",
    "screening_gap_column",
    "SCREENING_FIDELITIES",
    "predict_composition",
    "predict_table",
    "line_scan",
    "screen",
    "predict_fractions",
    "grid_formulas",
    "model_provenance",
    "target_name",
    "quantity_name",
    "DECOMPOSITION_KEY",
    "has_decomposition",
    "NO_DECOMPOSITION_NOTE",
    "query_phase",
]

#: The PCE target column.
PCE_COLUMN = PCE


#: JSON key of the band gap at each fidelity (the one schema, :mod:`nestedae_core.schema`).
GAP_JSON_KEYS: dict[str, str] = GAP_KEYS
#: ``bandgap_note`` of a model without a measured-scale band gap.
NO_MEASURED_GAP_NOTE = "this model has no measured-gap stage; see bandgap_pbe_eV"
#: Key of the decomposition energy (eV per formula unit) in every output.
DECOMPOSITION_KEY = quantity_key(DECOMPOSITION)
#: Said where a model has no decomposition-energy head (e.g. a bundle trained before the DFT stage had one).
NO_DECOMPOSITION_NOTE = "not in this model: it has no decomposition-energy head (train the measured preset again to get one)"


#: The fields of each quantity in ``predict --json``: ``label`` names it (a band gap with its fidelity and, for a
#: DFT gap, its phase), ``phase`` is the crystal phase of a DFT-stage output (None for the film and device stages).
JSON_ENTRY_FIELDS: tuple[str, ...] = ("mean", "std", "lower", "upper", "level", "unit", "fidelity", "phase", "label")


def _json_entry(t: dict[str, Any]) -> dict[str, Any]:
    entry = {k: t.get(k) for k in JSON_ENTRY_FIELDS}
    entry["label"] = t.get("name") or t.get("label")
    return entry


def query_phase(model: NestedAE, categorical: dict[str, str] | None = None) -> str | None:
    """The crystal phase a query's DFT gaps are for: ``categorical["phase"]`` when given, else the model's default
    (the most common phase of its DFT data, cubic for the shipped chains); None when the model takes no phase input."""
    names = [c for p in model.prep for c in p.categorical_columns]
    if PHASE not in names:
        return None
    given = (categorical or {}).get(PHASE)
    return str(given) if given else str(model.default_category(PHASE))


def quantity_name(label: str, fidelity: str | None, phase: str | None = None) -> str:
    """How an output is named to a reader: a band gap by :func:`~nestedae_core.perovskite.fidelity.gap_name` (its
    fidelity and, for a DFT gap, its ``phase``), any other quantity by its ``label``, with the ``phase`` it is
    computed for when given (``decomposition energy (cubic)``)."""
    if fidelity:
        return gap_name(fidelity, phase)
    return f"{label} ({phase_name(phase)})" if phase_name(phase) else label


def target_name(stage: Any, target: Any) -> str:
    """The key of a target in every output (:func:`nestedae_core.schema.target_key`): ``bandgap_eV`` (measured),
    ``bandgap_pbe_eV``, ``bandgap_hse_soc_eV``, ``pce_percent``, ``voc_V``, ``jsc_mA_per_cm2``, ``ff``.

    ``stage``/``target``: a :class:`~nestedae_core.model.config.StageSpec` and one of its targets.
    """
    return target_key(stage, target)


def model_provenance(model: NestedAE) -> dict[str, Any]:
    """Which model produced an output: ``name`` (the bundle's folder name, or the preset's name for a
    model not loaded from a bundle), ``bundle_sha256`` (SHA-256 of the bundle's ``manifest.json``, which
    lists the SHA-256 of every other file; None for an unsaved model), ``bundle_path`` and ``version``
    (the nestedae_core package version).

    Every JSON, CSV and HTML output of the CLI and the dashboard names it.
    """
    import hashlib
    from pathlib import Path

    from . import __version__

    record = getattr(model, "record", None) or {}
    path = record.get("bundle_path")
    digest = None
    if path:
        try:
            digest = hashlib.sha256((Path(path) / "manifest.json").read_bytes()).hexdigest()
        except OSError:
            digest = None
    name = record.get("name") or getattr(model.spec, "name", None) or "unsaved model"
    return {"name": str(name), "bundle_sha256": digest, "bundle_path": str(path) if path else None, "version": __version__}


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass
class QueryResult:
    """Prediction of the chain for one composition (and device stack).

    ``targets``: column -> dict with ``mean`` (the prediction), ``lower``/``upper``
    (the prediction interval at ``level``, in the target's unit; None without
    calibration or when the calibration is too small for the level), ``level``,
    ``std`` and ``disagreement`` (both the ensemble spread: model disagreement,
    not an error bar), ``unit``, ``label`` (the target's own), ``stage``, ``fidelity`` ("measured",
    "PBE", "HSE" for a band gap, else None), ``phase`` (the crystal phase an output of a stage
    that takes one is computed for, e.g. ``"Cubic"`` for the DFT gaps and the decomposition energy;
    None otherwise), ``name`` (what to call it: :func:`quantity_name`, e.g.
    ``band gap, DFT HSE06+SOC (cubic)``) and ``key`` (its name in every output,
    :mod:`nestedae_core.schema`). ``in_domain``: True when every
    stage's query lies inside its training domain; ``stage_in_domain``: per stage;
    ``domain_stage``: the first stage where the query leaves its training data
    (None when inside); ``domain_message``: one sentence saying which stage and
    why ("" when inside); ``latents``: stage -> ensemble-mean latents;
    ``categorical``: the categorical inputs used (e.g. ETL/HTL) and ``defaulted``:
    those that were not given and took the most common value; ``model``: the
    model's provenance (:func:`model_provenance`).
    """

    formula: str
    targets: dict[str, dict[str, Any]]
    in_domain: bool
    stage_in_domain: dict[str, bool]
    domain_distance: dict[str, float]
    latents: dict[str, list[float]]
    categorical: dict[str, str]
    defaulted: list[str] = field(default_factory=list)
    domain_stage: str | None = None
    domain_message: str = ""
    model: dict[str, Any] | None = None
    domain_reasons: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON object (what ``nestedae predict --json`` prints).

        ``formula``; ``bandgap_eV``: the measured-scale band gap, or null with
        ``bandgap_note`` when the model has no measured stage; ``bandgap_pbe_eV``
        and ``bandgap_hse_soc_eV`` (null when absent); one key per other target
        (``pce_percent``, ``voc_V``, ``jsc_mA_per_cm2``, ``ff`` ...; the keys of
        :mod:`nestedae_core.schema`). Each target is ``{mean,
        std, lower, upper, level, unit, fidelity, phase, label}`` (``std``: the fold models'
        disagreement; ``lower``/``upper``: the prediction interval at ``level``,
        null without calibration; ``phase``: the crystal phase of a DFT-stage output
        (the DFT gaps, the decomposition energy), null for the others; ``label``: its name, e.g. ``band gap, DFT HSE06+SOC (cubic)``).
        A perovskite model (one that predicts a band gap) always has
        ``decomposition_eV_per_fu``: null with ``decomposition_note`` when the model
        has no decomposition-energy head. Then ``in_domain``, ``stage_in_domain``,
        ``domain_distance``, ``domain_stage``, ``domain_message``, ``domain_reasons``
        (per stage: why the query is outside it, "" inside), ``etl``/``htl``,
        ``categorical``, ``defaulted``, ``latents`` and ``model`` (``name``,
        ``bundle_sha256``, ``bundle_path``, ``version``: see :func:`model_provenance`).
        """
        gaps = bandgaps(self)
        out: dict[str, Any] = {"formula": self.formula}
        for fidelity, key in GAP_JSON_KEYS.items():
            out[key] = _json_entry(gaps[fidelity]) if fidelity in gaps else None
            if fidelity == "measured" and fidelity not in gaps:
                out["bandgap_note"] = NO_MEASURED_GAP_NOTE
        gap_columns = {e["column"] for e in gaps.values()}
        for column, t in self.targets.items():
            if column not in gap_columns:
                out[t.get("key") or quantity_key(column, t.get("unit"), t.get("fidelity"))] = _json_entry(t)
        if gaps and DECOMPOSITION_KEY not in out:
            out[DECOMPOSITION_KEY] = None
            out["decomposition_note"] = NO_DECOMPOSITION_NOTE
        out["in_domain"] = bool(self.in_domain)
        out["stage_in_domain"] = {k: bool(v) for k, v in self.stage_in_domain.items()}
        out["domain_distance"] = self.domain_distance
        out["domain_stage"] = self.domain_stage
        out["domain_message"] = self.domain_message
        out["domain_reasons"] = dict(self.domain_reasons)
        for col, value in self.categorical.items():
            out[input_key(col)] = value
        out["categorical"] = self.categorical
        out["defaulted"] = self.defaulted
        out["latents"] = self.latents
        out["model"] = self.model
        return out


def bandgaps(result: QueryResult) -> dict[str, dict[str, Any]]:
    """The band gaps of a query by fidelity: ``"measured"``, ``"PBE"``, ``"HSE"`` -> its target entry plus ``column``.

    Only fidelities the model predicts are present, in that order; entries have
    the keys of :attr:`QueryResult.targets` (values in eV).
    """
    found = {t["fidelity"]: {**t, "column": col} for col, t in result.targets.items() if t.get("fidelity") in FIDELITIES}
    return {f: found[f] for f in FIDELITIES if f in found}


def _predict_at_phase(model: NestedAE, frame: Any, phase: str | None, level: float) -> dict[str, Any]:
    """Every stage's prediction, the stages that take the phase at ``phase`` and the chain after them at the model's
    default phase: downstream stages were trained on films taken as cubic (or the data's most common phase), so a phase
    picked for the DFT gaps never changes the measured gap or the device."""
    if phase is None or phase == model.default_category(PHASE):
        return model.predict(frame, level=level)
    chain = frame.assign(**{PHASE: model.default_category(PHASE)})
    preds = model.predict(chain, level=level)
    for i, st in enumerate(model.spec.stages):
        if st.name in preds and PHASE in st.categorical_inputs:
            preds[st.name] = model.predict_stage(i, frame, level=level)
    return preds


def predict_composition(
    model: NestedAE,
    composition: QueryLike,
    *,
    etl: str | None = None,
    htl: str | None = None,
    categorical: dict[str, str] | None = None,
    numeric: dict[str, float] | None = None,
    level: float = DEFAULT_LEVEL,
) -> QueryResult:
    """Predict every stage of the chain for one query (formula, Composition, site fractions or :class:`Query`).

    ``etl``/``htl`` given here replace the query's own; stacks not given default to
    the most common ones in the training data (reported in ``defaulted``); an
    unknown stack raises :class:`InputError` listing the known ones. ``level``:
    the level of the prediction intervals (0.9: 90 %).
    """
    query = Query.of(composition, etl=etl, htl=htl)
    comp = query.composition
    cats, defaulted = resolve_categorical(model, query.etl, query.htl, {**dict(query.categorical), **(categorical or {})})
    numeric = {**dict(query.numeric), **(numeric or {})} or None
    frame = query_columns(model, [comp], categorical=cats, numeric=numeric)  # a ColumnTable: no pandas
    phase = query_phase(model, cats)
    preds = _predict_at_phase(model, frame, phase, level)
    targets: dict[str, dict[str, Any]] = {}
    for i, st in enumerate(model.spec.stages):
        if st.name not in preds:
            continue
        sp = preds[st.name]
        mean, std = sp.mean, sp.std
        for j, t in enumerate(st.targets):
            fidelity = target_fidelity(st, t)
            target_phase = phase if PHASE in st.categorical_inputs else None  # outputs of a stage that takes the phase
            targets[t.column] = {
                "mean": float(mean[0, j]),
                "std": float(std[0, j]),
                "disagreement": float(std[0, j]),
                "lower": None if sp.lower is None else _finite_or_none(sp.lower[0, j]),
                "upper": None if sp.upper is None else _finite_or_none(sp.upper[0, j]),
                "level": sp.level,
                "unit": t.unit,
                "label": t.label or t.column,
                "stage": st.name,
                "fidelity": fidelity,
                "phase": target_phase,
                "name": quantity_name(t.label or t.column, fidelity, target_phase),
                "key": target_key(st, t),
            }
    stage_dom = {k: bool(v.in_domain[0]) for k, v in preds.items()}
    first_out = next((k for k, ok in stage_dom.items() if not ok), None)
    return QueryResult(
        formula=comp.formula,
        targets=targets,
        in_domain=all(stage_dom.values()),
        stage_in_domain=stage_dom,
        domain_distance={k: float(v.domain_distance[0]) for k, v in preds.items()},
        latents={k: v.latents.mean(axis=0)[0].tolist() for k, v in preds.items()},
        categorical=cats,
        defaulted=defaulted,
        domain_stage=first_out,
        domain_message="" if first_out is None else preds[first_out].domain_reason[0],
        model=model_provenance(model),
        domain_reasons={k: ("" if ok else str(preds[k].domain_reason[0])) for k, ok in stage_dom.items()},
    )


def predict_table(model: NestedAE, frame: pd.DataFrame, *, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Predictions for a raw-input table: ``<stage>.<target>_mean``/``_std`` (and ``_lower``/``_upper``,
    the prediction interval at ``level``, when the model is calibrated), ``<stage>.in_domain``,
    ``<stage>.domain_distance``."""
    import pandas as pd

    out = pd.DataFrame(index=frame.index)
    for name, sp in model.predict(frame, level=level).items():
        f = sp.frame()
        f.index = frame.index
        for c in f.columns:
            out[f"{name}.{c}"] = f[c]
    return out


def _stage_target_frame(model: NestedAE, frame: pd.DataFrame, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Per target ``<key>_mean``/``_lower``/``_upper``/``_std`` (the keys of :mod:`nestedae_core.schema`; the
    interval only with calibration), then ``in_domain`` and ``domain_stage`` (the first stage whose domain the
    row leaves, "" when inside)."""
    import pandas as pd

    res = predict_table(model, frame, level=level)
    cols = {}
    for st in model.spec.stages:
        for t in st.targets:
            key = f"{st.name}.{t.column}"
            for part in STATS:
                if f"{key}_{part}" in res:
                    cols[f"{target_key(st, t)}_{part}"] = res[f"{key}_{part}"]
    names = [st.name for st in model.spec.stages if f"{st.name}.in_domain" in res]
    inside = res[[f"{n}.in_domain" for n in names]].to_numpy(dtype=bool) if names else np.ones((len(res), 0), dtype=bool)
    cols["in_domain"] = pd.Series(inside.all(axis=1), index=frame.index)
    first_out = np.where(inside.all(axis=1), "", np.array(names, dtype=object)[np.argmin(inside, axis=1)] if names else "")
    cols["domain_stage"] = pd.Series(first_out, index=frame.index, dtype=object)
    return pd.DataFrame(cols, index=frame.index)


def line_scan(
    model: NestedAE,
    start: Composition | str,
    end: Composition | str,
    steps: int = 21,
    *,
    etl: str | None = None,
    htl: str | None = None,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Predictions along the straight line between two compositions.

    Returns one row per x in [0, 1] (``x`` = share of ``end``): ``x``, ``formula``,
    ``<key>_mean``/``_std`` for every target (keys of :mod:`nestedae_core.schema`) (``_lower``/``_upper``: the
    prediction interval at ``level`` when the model is calibrated), ``in_domain``
    and ``domain_stage``.
    """
    if not 2 <= steps <= 1001:
        raise InputError("steps must be between 2 and 1001")
    a = start if isinstance(start, Composition) else parse_formula(start)
    b = end if isinstance(end, Composition) else parse_formula(end)
    xs = np.round(np.linspace(0.0, 1.0, steps), 12)  # 0.15, not 0.15000000000000002 (1/6 stays 0.166666666667)
    comps = [mix([(a, 1 - x), (b, x)]) if 0 < x < 1 else (a if x == 0 else b) for x in xs]
    cats, _ = resolve_categorical(model, etl, htl, None)
    frame = query_frame(model, comps, categorical=cats)
    res = _stage_target_frame(model, frame, level)
    res.insert(0, "formula", frame["formula"].to_numpy())
    res.insert(0, "x", xs)
    return res.reset_index(drop=True)


def has_decomposition(model: NestedAE) -> bool:
    """True when ``model`` predicts the decomposition energy (``decomposition_eV_per_fu``, eV per formula unit)."""
    return any(t.column == DECOMPOSITION for st in model.spec.stages for t in st.targets)


#: Order in which :func:`screening_gap_column` picks the band gap of the screening window.
SCREENING_FIDELITIES = ("measured", "HSE", "PBE")


def screening_gap_column(model: NestedAE) -> tuple[str, str] | None:
    """The band gap the screening window applies to: ``(key, fidelity)`` (``key`` as in :mod:`nestedae_core.schema`,
    e.g. ``bandgap_eV``), or None when the model predicts no band gap.

    The measured-scale gap when the model has one; otherwise a DFT gap, HSE06
    (closer to measured gaps) before PBE.
    """
    found: dict[str, str] = {}
    for st in model.spec.stages:
        for t in st.targets:
            f = target_fidelity(st, t)
            if f is not None and f not in found:
                found[f] = target_key(st, t)
    return next(((found[f], f) for f in SCREENING_FIDELITIES if f in found), None)


def predict_fractions(
    model: NestedAE,
    fractions: np.ndarray,
    *,
    etl: str | None = None,
    htl: str | None = None,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Predictions for many compositions given as site fractions, in one vectorised pass.

    ``fractions``: (n, 14) in :data:`~nestedae_core.vocabulary.IONS` order, the
    :meth:`Composition.fraction_vector` convention (A and B amounts, X fractions; each site sums to 1).
    ``etl``/``htl``: the device stack (None: the model's most common one). Columns: ``formula``, the 14
    fractions, ``tolerance_factor``, ``octahedral_factor`` (dimensionless), ``<key>_mean``/``_std`` and,
    when calibrated, ``_lower``/``_upper`` at ``level`` for every target (schema keys), ``in_domain``,
    ``domain_stage``. Used by :func:`screen` and by the design optimiser; thousands of rows a second.
    """
    import pandas as pd

    from .chemistry.composition import IONS

    arr = np.asarray(fractions, dtype=np.float64).reshape(-1, len(IONS))
    feats = featurize_fractions(arr)
    frame = pd.concat([pd.DataFrame(arr, columns=list(IONS)), feats.reset_index(drop=True)], axis=1)
    frame.insert(0, "formula", grid_formulas(arr))
    cats, _ = resolve_categorical(model, etl, htl, None)
    for c, v in cats.items():
        frame[c] = v
    res = _stage_target_frame(model, frame, level)
    return pd.concat([frame[["formula", *IONS, "tolerance_factor", "octahedral_factor"]], res], axis=1)


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
    level: float = DEFAULT_LEVEL,
    decomposition_max: float | None = None,
) -> pd.DataFrame:
    """Enumerate compositions on a simplex grid, predict, filter and rank them.

    ``step`` is the grid step of each site's fractions (e.g. 0.1). Candidates are
    kept when their predicted band gap (eV) lies in ``bandgap_window``, their
    tolerance factor in ``tolerance_window`` and, when ``decomposition_max`` is given,
    their predicted decomposition energy (eV per formula unit, DFT, cubic phase; lower
    is more stable) is at most ``decomposition_max`` (:class:`InputError` for a model
    without that head, :func:`has_decomposition`). The band gap is the measured-scale
    one when the model predicts it, else a DFT gap (see
    :func:`screening_gap_column`); its key and fidelity are in
    ``result.attrs["bandgap_key"]`` / ``["bandgap_fidelity"]``.

    Ranking: by the mean of ``rank_by`` (a key such as ``pce_percent`` or a target column; default: the last
    stage's first target, e.g. PCE), descending, **in-domain candidates first**: every candidate inside
    every stage's training domain comes before any candidate outside one, so an
    out-of-domain extrapolation never tops the ranking (select
    ``result[result.in_domain]`` for the ranking proper, the rest are shown apart).

    Columns: ``formula``, the 14 site fractions, ``tolerance_factor``,
    ``octahedral_factor``, ``<key>_mean``/``_std`` (``_lower``/``_upper``: the
    prediction interval at ``level`` when the model is calibrated), ``in_domain``,
    ``domain_stage``, and :data:`RANK_CONFIDENCE` (``p_beats_next``: the probability
    that the candidate beats the next one of its list, :func:`rank_confidence`).
    """
    from .chemistry.composition import IONS

    grid = composition_grid(a_ions, b_ions, x_ions, step)
    if len(grid) > max_candidates:
        raise InputError(f"the grid has {len(grid)} candidates, more than {max_candidates}; use a coarser step or fewer ions")
    out = predict_fractions(model, grid, etl=etl, htl=htl, level=level)
    gap = screening_gap_column(model)
    if bandgap_window is not None and gap is not None and f"{gap[0]}_mean" in out:
        lo, hi = bandgap_window
        out = out[(out[f"{gap[0]}_mean"] >= lo) & (out[f"{gap[0]}_mean"] <= hi)]
    if tolerance_window is not None:
        lo, hi = tolerance_window
        out = out[(out["tolerance_factor"] >= lo) & (out["tolerance_factor"] <= hi)]
    if decomposition_max is not None:
        if f"{DECOMPOSITION_KEY}_mean" not in out:
            raise InputError(f"cannot filter by decomposition energy: {NO_DECOMPOSITION_NOTE}")
        out = out[out[f"{DECOMPOSITION_KEY}_mean"] <= float(decomposition_max)]
    if rank_by is None:
        last = model.spec.stages[-1]
        rank_by = target_key(last, last.targets[0])
    by_column = {t.column: target_key(st, t) for st in model.spec.stages for t in st.targets}
    key = f"{by_column.get(rank_by, rank_by)}_mean"
    if key not in out:
        raise InputError(f"cannot rank by '{rank_by}'; this model predicts: {', '.join(c[:-5] for c in out.columns if c.endswith('_mean'))}")
    ranked = out.sort_values(key, ascending=False, kind="stable")
    parts = [ranked[ranked["in_domain"]], ranked[~ranked["in_domain"]]]
    base = key[: -len("_mean")]
    for part in parts:  # each list ranked apart: how sure is each place?
        part[RANK_CONFIDENCE] = rank_confidence(part, base, level)
    import pandas as pd

    ranked = pd.concat(parts).reset_index(drop=True)
    ranked.attrs["bandgap_key"] = gap[0] if gap else None
    ranked.attrs["bandgap_fidelity"] = gap[1] if gap else None
    return ranked


#: Column of :func:`screen`: the probability (0 to 1) that a candidate truly beats the next one in the ranking.
RANK_CONFIDENCE = "p_beats_next"


def rank_confidence(ranked: pd.DataFrame, key: str, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Per row of ``ranked`` (best first), the probability that it beats the next row on quantity ``key``.

    ``key`` is an output-schema key such as ``pce_percent``: its ``_mean`` and,
    when present, its ``_lower``/``_upper`` prediction interval at ``level`` give
    each candidate's spread (:func:`nestedae_core.model.ranking.sd_from_interval`),
    else ``_std``, the fold models' disagreement (which understates the error).
    See :func:`nestedae_core.model.ranking.beats_next_probability`; NaN for the last row.
    """
    from .model.ranking import beats_next_probability, sd_from_interval

    if f"{key}_lower" in ranked and f"{key}_upper" in ranked and ranked[f"{key}_lower"].notna().all():
        sd = sd_from_interval(ranked[f"{key}_lower"].to_numpy(), ranked[f"{key}_upper"].to_numpy(), level)
    else:
        sd = ranked[f"{key}_std"].to_numpy(dtype=float)
    return beats_next_probability(ranked[f"{key}_mean"].to_numpy(dtype=float), sd)


def grid_formulas(fractions: np.ndarray, digits: int = 4) -> list[str]:
    """Compact formulas of many compositions at once (display only, ``digits`` significant digits).

    ``fractions``: (n, 14) in the :meth:`Composition.fraction_vector` convention (X
    fractions summing to 1; printed per formula unit, i.e. x 3). Amounts of 1 are
    omitted, e.g. ``Cs0.1FA0.9PbBr0.6I2.4``. Vectorised: 10,000 rows in a few
    milliseconds, unlike building a :class:`Composition` per row.
    """
    from .chemistry.composition import A_SITE_IONS, B_SITE_IONS, IONS, X_SITE_IONS
    from .vocabulary import SITE_SLICES

    arr = np.asarray(fractions, dtype=np.float64)
    out = np.full(len(arr), "", dtype=object)
    order = [*sorted(A_SITE_IONS), *sorted(B_SITE_IONS), *sorted(X_SITE_IONS)]  # as Composition.formula
    for ion in order:
        j = IONS.index(ion)
        amount = arr[:, j] * (3.0 if j >= SITE_SLICES["X"].start else 1.0)
        present = amount > 1e-9
        if not present.any():
            continue
        text = np.array([f"{v:.{digits}g}" for v in np.round(amount[present], 10)], dtype=object)
        text[text == "1"] = ""
        piece = np.full(len(arr), "", dtype=object)
        piece[present] = ion + text
        out = out + piece
    return out.tolist()
