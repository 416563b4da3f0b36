"""Calibration: do the prediction intervals hold on data the chain has never seen?

Protocol (nested, grouped; nothing of a held-out row reaches its intervals):

1. Each stage's table (rebuilt as training checks it, :mod:`.stage_tables`) is
   dealt into ``folds`` *outer* folds. The stages of measured data (films,
   devices) share ONE split keyed on the canonical composition
   (:func:`nestedae_core.perovskite.splits.chain_folds`: ``grouped`` by
   composition, ``cluster`` or ``family``), so a held-out device's composition is
   never in the film stage's training rows; stages of computed DFT values keep
   their own grouped folds (by formula). Tables without site fractions (the
   synthetic chain) fall back to each stage's ``group_columns``.
2. For each outer fold ``k`` the whole chain is cross-validated (inner grouped
   folds, :func:`nestedae_core.train.cross_validate`; the measured stages' inner
   folds again share one split by canonical composition, so recipes are never
   grouped by their raw spelling) on every stage's rows outside fold ``k``; its
   CV+ intervals are calibrated on those inner out-of-fold residuals only. The
   inner split (``inner_split``) is ``grouped`` by default; ``cluster`` deals
   compositions within 0.05 in site fractions into one inner fold, so the
   residuals measure what a new composition costs (no near-duplicate of a
   calibration row in its fold model's training), as a family split asks.
   Nothing is tuned: every hyperparameter is the preset's.
3. That model predicts the rows of outer fold ``k`` of every stage
   (``NestedAE.predict(frame, level=...)``: ``StagePrediction.lower``/``upper``),
   and each finite target value counts as covered when it lies in its interval.

Reported per stage and target: the observed coverage (share of held-out values
inside their interval; the nominal level is the aim, 85-95 % for 90 %), the mean
interval width (target units) and the same per outer fold, and both apart for the
held-out rows inside the training domain of the scored stage and of every stage upstream
of it (``in_domain``) and those flagged out of one of them (``flagged``); a downstream
stage's verdict does not count.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..model.chain import NestedAE, StagePrediction
from ..model.config import ChainSpec
from ..perovskite.fidelity import target_fidelity
from ..perovskite.presets import preset
from ..perovskite.splits import chain_folds
from ..train import cross_validate, make_folds
from .reports import created_now, machine_info
from .stage_tables import stage_table

__all__ = ["calibration_benchmark", "inside_upstream_domains", "interval_coverage", "intervals_available", "stages_feeding"]

#: Observed coverage counted as calibrated for a 90 % interval (the issue's target), as fractions.
COVERAGE_TARGET_90: tuple[float, float] = (0.85, 0.95)


def inside_upstream_domains(preds: Mapping[str, Any], stages: Sequence[str], n: int) -> np.ndarray:
    """Whether each of ``n`` rows is inside the training domain of every stage in ``stages`` that predicted it.

    ``stages``: the stage being scored and those upstream of it, the ones its prediction depends on; a
    downstream stage's verdict says nothing of this stage's prediction (a DFT row whose composition the film
    stage has never seen is still inside the DFT stage's domain). ``preds``: stage name -> prediction with an
    ``in_domain`` array (as :meth:`NestedAE.predict` returns).
    """
    flags = [np.asarray(p.in_domain, dtype=bool) for name, p in preds.items()
             if name in stages and getattr(p, "in_domain", None) is not None]
    return np.all(flags, axis=0) if flags else np.ones(n, dtype=bool)


def stages_feeding(chain: ChainSpec, index: int) -> list[str]:
    """Names of stage ``index`` and of the stages its prediction depends on, first stage first: the previous
    stage while a stage consumes its latents (``upstream=True``); a stage with ``upstream=False`` starts afresh."""
    first = index
    while first > 0 and chain.stages[first].upstream:
        first -= 1
    return [st.name for st in chain.stages[first : index + 1]]


def intervals_available() -> str | None:
    """None when this version's predictions carry intervals, else why not (one sentence)."""
    names = {f.name for f in dataclasses.fields(StagePrediction)} | set(dir(StagePrediction))
    if not {"lower", "upper"} <= names:
        return "prediction intervals are not available in this version of nestedae_core (StagePrediction has no lower/upper)"
    if "level" not in inspect.signature(NestedAE.predict).parameters:
        return "prediction intervals are not available in this version of nestedae_core (NestedAE.predict takes no level)"
    return None


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict[str, float]:
    """Coverage of intervals ``[lower, upper]`` over the finite values of ``y`` (same units).

    Returns ``n`` (finite values), ``covered`` (count inside, ends included),
    ``coverage`` (their share, NaN when ``n`` is 0) and ``mean_width``.
    """
    y, lower, upper = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    ok = np.isfinite(y)
    n = int(ok.sum())
    covered = int(((y[ok] >= lower[ok]) & (y[ok] <= upper[ok])).sum())
    width = upper[ok] - lower[ok]
    return {"n": n, "covered": covered, "coverage": covered / n if n else float("nan"),
            "mean_width": float(width.mean()) if n else float("nan")}


#: Outer splits of the calibration benchmark.
CALIBRATION_SPLITS: tuple[str, ...] = ("grouped", "cluster", "family")


def _shared_folds(chain: ChainSpec, tables: list[pd.DataFrame], split: str) -> dict[str, np.ndarray]:
    """The measured stages' one split keyed on the canonical composition; {} for tables without site fractions (grouped only)."""
    try:
        return chain_folds(chain, tables, split)
    except DataError as exc:
        if split != "grouped":
            raise DataError(f"a {split} split needs the 14 site fractions in every measured stage's table: {exc}") from None
        return {}


def calibration_benchmark(
    preset_name: str = "measured",
    *,
    split: str = "grouped",
    spec: ChainSpec | None = None,
    tables: Mapping[str, pd.DataFrame] | None = None,
    folds: int = 5,
    level: float = 0.9,
    seed: int = 0,
    epochs: int | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    inner_split: str = "grouped",
) -> dict[str, Any]:
    """Observed coverage and mean width of the ``level`` prediction intervals on held-out outer folds.

    ``split``: the measured stages' shared outer split, ``grouped`` (by canonical
    composition), ``cluster`` or ``family`` (see the module docstring).
    ``inner_split``: the measured stages' shared split of each outer fold's
    cross-validation, whose out-of-fold residuals calibrate the intervals
    (``grouped``, ``cluster`` or ``family``; a family split needs ``folds`` ion
    families among the rows left after an outer fold is held out).

    ``spec`` replaces the preset (its folds, split and seed are set here: inner
    and outer folds are both ``folds``-fold and grouped); ``tables`` (by stage
    name) replace the registry tables; ``epochs`` overrides every stage's epochs
    (for quick runs). Trains the chain ``folds`` times. Returns the JSON-ready
    report; ``quantities`` lists, per stage and target, ``coverage`` (fraction),
    ``mean_width`` (target units), ``n`` and the per-fold values.
    """
    if not 0.0 < level < 1.0:
        raise ConfigError(f"the interval level must be between 0 and 1 (exclusive), got {level}")
    if split not in CALIBRATION_SPLITS:
        raise ConfigError(f"unknown calibration split '{split}'; use {', '.join(CALIBRATION_SPLITS)}")
    if inner_split not in CALIBRATION_SPLITS:
        raise ConfigError(f"unknown inner split '{inner_split}'; use {', '.join(CALIBRATION_SPLITS)}")
    why = intervals_available()
    if why:
        raise ConfigError(why)
    say = progress or (lambda msg: None)
    base = spec if spec is not None else preset(preset_name)
    stage_updates = [{"epochs": epochs}] * len(base.stages) if epochs is not None else None
    chain = base.with_updates(stages=stage_updates, folds=folds, split="grouped", seed=seed)
    checked = [stage_table(chain, i, data_dir, raw=(tables or {}).get(st.name)) for i, st in enumerate(chain.stages)]
    shared = _shared_folds(chain, checked, split)
    if inner_split != "grouped" and not shared:
        raise DataError(f"a {inner_split} inner split needs the 14 site fractions in every measured stage's table")
    outer = [shared[st.name] if st.name in shared else make_folds(t, folds, "grouped", st.group_columns, seed)
             for t, st in zip(checked, chain.stages)]
    counts: dict[tuple[str, str], list[dict[str, float]]] = {(st.name, t): [] for st in chain.stages for t in st.target_columns}
    t0 = time.perf_counter()
    for k in range(folds):
        say(f"outer fold {k + 1}/{folds}: cross-validating the chain on the other folds")
        rest = {st.name: t.loc[o != k].reset_index(drop=True) for st, t, o in zip(chain.stages, checked, outer)}
        inner = _shared_folds(chain, [rest[st.name] for st in chain.stages], inner_split) if shared else None
        model = cross_validate(chain, rest, device=device, stage_folds=inner).model
        for i, (st, t, o) in enumerate(zip(chain.stages, checked, outer)):
            held = t.loc[o == k].reset_index(drop=True)
            preds = model.predict(held, level=level)  # type: ignore[call-arg]
            pred = preds.get(st.name)
            if pred is None:
                raise DataError(f"the held-out rows of stage '{st.name}' lack its inputs; cannot predict them")
            lower, upper = getattr(pred, "lower", None), getattr(pred, "upper", None)
            if lower is None or upper is None:
                raise DataError(f"the cross-validated chain gives no prediction interval for stage '{st.name}' (no calibration stored)")
            inside = inside_upstream_domains(preds, stages_feeding(chain, i), len(held))
            for j, target in enumerate(st.target_columns):
                y = held[target].to_numpy(dtype=np.float64)
                c = interval_coverage(y, lower[:, j], upper[:, j])
                c["fold"] = k
                for part, rows in (("in_domain", inside), ("flagged", ~inside)):
                    c[part] = interval_coverage(y[rows], lower[rows, j], upper[rows, j])
                counts[(st.name, target)].append(c)
    quantities = []
    for st in chain.stages:
        for tspec in st.targets:
            per_fold = counts[(st.name, tspec.column)]
            n = int(sum(c["n"] for c in per_fold))
            covered = int(sum(c["covered"] for c in per_fold))
            width = sum(c["mean_width"] * c["n"] for c in per_fold if c["n"])
            entry = {
                "stage": st.name, "target": tspec.column, "label": tspec.label or tspec.column, "unit": tspec.unit,
                "fidelity": target_fidelity(st, tspec), "n": n, "coverage": covered / n if n else float("nan"),
                "mean_width": width / n if n else float("nan"), "folds": per_fold,
            }
            for part in ("in_domain", "flagged"):
                pn = int(sum(c[part]["n"] for c in per_fold))
                pc = int(sum(c[part]["covered"] for c in per_fold))
                pw = sum(c[part]["mean_width"] * c[part]["n"] for c in per_fold if c[part]["n"])
                entry[part] = {"n": pn, "coverage": pc / pn if pn else float("nan"), "mean_width": pw / pn if pn else float("nan")}
            quantities.append(entry)
    return {
        "kind": "calibration",
        "preset": chain.name,
        "level": level,
        "split": split,
        "inner_split": inner_split,
        "shared_split_stages": sorted(shared),
        "folds": folds,
        "seed": seed,
        "epochs": {st.name: st.epochs for st in chain.stages},
        "groups": {st.name: list(st.group_columns) for st in chain.stages},
        "coverage_target": list(COVERAGE_TARGET_90) if abs(level - 0.9) < 1e-9 else None,
        "seconds": round(time.perf_counter() - t0, 2),
        "created": created_now(),
        "machine": machine_info(),
        "quantities": quantities,
    }
