"""Accuracy: NestedAE and the baselines on identical folds, grouped splits first.

For each task of :data:`~.tasks.TASKS` the stage table is rebuilt exactly as
NestedAE trains on it (:mod:`.stage_tables`), fold ids come from
:func:`nestedae_core.train.make_folds` with the same seed for every model, and
NestedAE's cross-validation is checked to have used those very folds. The
headline split is *grouped* (by formula or composition for band gaps, by recipe
for devices: each validation fold holds only groups never trained on); the
*random* split is reported beside it. ``cluster`` and ``family`` splits
(:mod:`nestedae_core.perovskite.splits`) key every measured stage of the chain on
the canonical composition with one shared split (a held-out composition's film
gap and devices are both held out); stages of computed DFT values keep their
own grouped folds (a DFT value can be computed for any composition).
Hyperparameters: NestedAE's are fixed in its preset and the baselines' in
:mod:`.baselines`; the only tuning (ridge's alpha, kernel ridge's grid) runs
inside each training fold (nested), never on the folds that report. Every model entry carries the MAE over
rows (the mean of the fold MAEs) and, for comparison with the NestedAE paper,
the paper's batch-scored MAE (:mod:`.paper_scoring`) of the same predictions.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data.tables import load_dataset_table
from ..errors import ConfigError, DataError, NestedAEError
from ..model.config import ChainSpec
from ..perovskite.presets import PRESETS, preset
from ..train import cross_validate, make_folds
from .baselines import BASELINES, baseline_factories, design_matrix, fit_baseline
from .paper_scoring import paper_batch_scored_mae
from .reports import SPLIT_ORDER, created_now, machine_info
from .stage_tables import stage_table
from .tasks import TASKS, BenchmarkTask
from ..vocabulary import SITE_FRACTION_COLUMNS
from ..perovskite.splits import SPLITS, chain_folds, family_of, split_folds

__all__ = ["accuracy_benchmark", "MODELS"]

logger = logging.getLogger(__name__)

#: What the report says about hyperparameter choice (nothing is tuned on the folds that report).
TUNING = ("nested: this benchmark selects nothing on the validation folds; NestedAE's hyperparameters are its preset's "
          "(set beforehand, see the preset), the baselines' fixed in code, ridge's alpha and kernel ridge's grid chosen "
          "inside each training fold")

#: Every model name a report can hold: NestedAE, then the baselines.
MODELS: tuple[str, ...] = ("nestedae", *BASELINES)


def _spec_and_stage(task: BenchmarkTask, *, epochs: int | None, folds: int, split: str, seed: int,
                    needed: Sequence[str] = ()) -> tuple[ChainSpec | None, int | None, str | None]:
    """The task's preset (up to the last of the ``needed`` stages and the task's own: later stages are not
    trained) and the index of its stage, or a note saying why there is none."""
    if task.preset not in PRESETS:
        return None, None, f"NestedAE not run: preset '{task.preset}' does not exist in this version"
    spec = preset(task.preset, epochs=epochs, folds=folds, split=split if split in ("random", "grouped") else "grouped", seed=seed)
    names = [s.name for s in spec.stages]
    if task.stage not in names:
        return None, None, f"NestedAE not run: preset '{task.preset}' has no stage '{task.stage}' (stages: {', '.join(names)})"
    i = names.index(task.stage)
    if task.target not in spec.stages[i].target_columns:
        return None, None, f"NestedAE not run: stage '{task.stage}' of preset '{task.preset}' does not predict {task.target}"
    last = max([i] + [names.index(n) for n in needed if n in names])
    if last + 1 < len(spec.stages):  # stages train in order: the later ones change nothing before them
        spec = ChainSpec.model_validate({**spec.model_dump(), "stages": spec.model_dump()["stages"][: last + 1]})
    return spec, i, None


def _baseline_table(task: BenchmarkTask, data_dir: str | None) -> pd.DataFrame:
    """The task's dataset with rows lacking a baseline input or group value dropped (no preset to follow)."""
    raw = load_dataset_table(task.dataset, data_dir)
    needed = list(task.numeric) + list(task.categorical) + list(task.groups) + [task.target]
    missing = [c for c in needed if c not in raw.columns]
    if missing:
        raise DataError(f"dataset {task.dataset} has no column(s) {', '.join(missing)}")
    keep = raw[list(task.numeric) + list(task.categorical) + list(task.groups)].notna().all(axis=1)
    return raw.loc[keep].reset_index(drop=True)


def _shared_folds(spec: ChainSpec, split: str, data_dir: str | None, reported: Sequence[str] = ()) -> dict[str, np.ndarray] | None:
    """For cluster and family splits: one split of every measured stage, keyed on the canonical composition, and
    the split of each ``reported`` stage of computed values on its own table (when it has site fractions; otherwise
    that stage keeps its grouped folds and the report says so)."""
    if split in ("random", "grouped"):
        return None
    tables = [stage_table(spec, i, data_dir) for i in range(len(spec.stages))]
    out = chain_folds(spec, tables, split)
    for i, st in enumerate(spec.stages):
        if st.name in reported and st.name not in out:
            try:
                out[st.name] = split_folds(tables[i], spec.folds, split, seed=spec.seed)
            except DataError:
                logger.info("stage %s has no site fractions: its folds stay grouped", st.name)
    return out


def _one_split(
    tasks: Sequence[str], split: str, *, folds: int, seed: int, wanted: Sequence[str], data_dir: str | None,
    epochs: int | None, device: str, say: Callable[[str], None],
) -> dict[str, Any]:
    factories = baseline_factories(seed)
    report: dict[str, Any] = {"kind": "accuracy", "split": split, "folds": folds, "seed": seed, "created": created_now(),
                              "machine": machine_info(), "tuning": TUNING, "tasks": {}, "skipped": {}}
    chains: dict[str, Any] = {}  # preset -> (TrainResult, seconds) or the error its training raised
    for name in tasks:
        task = TASKS[name]
        notes: list[str] = []
        needed = [TASKS[t].stage for t in tasks if TASKS[t].preset == task.preset]
        spec, i, note = _spec_and_stage(task, epochs=epochs, folds=folds, split=split, seed=seed, needed=needed)
        if note and "nestedae" in wanted:
            notes.append(note)
        result = None
        try:
            if spec is not None and i is not None and "nestedae" in wanted:
                say(f"{name} ({split}): nestedae ({task.preset})")
                if task.preset not in chains:
                    t0 = time.perf_counter()
                    try:
                        shared = _shared_folds(spec, split, data_dir, needed)
                        chains[task.preset] = (cross_validate(spec, data_dir=data_dir, device=device, stage_folds=shared), time.perf_counter() - t0)
                    except NestedAEError as exc:
                        chains[task.preset] = exc
                outcome = chains[task.preset]
                if isinstance(outcome, NestedAEError):
                    notes.append(f"NestedAE not run: training preset '{task.preset}' failed: {outcome}")
                    table = _baseline_table(task, data_dir)
                else:
                    result, secs = outcome
                    table = result.tables[task.stage]
            elif spec is not None and i is not None:
                table = stage_table(spec, i, data_dir)
            else:
                table = _baseline_table(task, data_dir)
        except NestedAEError as exc:
            report["skipped"][name] = f"{task.description}: {exc}"
            logger.warning("benchmark task %s skipped: %s", name, exc)
            continue
        if split in ("random", "grouped"):
            fold_ids = make_folds(table, folds, split, list(task.groups), seed)
        elif result is not None:
            fold_ids = result.folds[task.stage]
        else:
            try:
                given = (_shared_folds(spec, split, data_dir, needed) or {}) if spec is not None else {}
                fold_ids = given[task.stage] if task.stage in given else split_folds(table, folds, split, task.groups, seed)
            except DataError:
                fold_ids = make_folds(table, folds, "grouped", list(task.groups), seed)
        has_fractions = all(c in table.columns for c in SITE_FRACTION_COLUMNS)
        if split in ("cluster", "family") and not has_fractions:
            notes.append(f"this table has no site fractions: its folds are grouped by {', '.join(task.groups)}, not {split}")
        y = table[task.target].to_numpy(dtype=np.float64)
        entry: dict[str, Any] = {**task.as_json(), "n": int(len(table)), "n_target": int(np.isfinite(y).sum()), "models": {}, "notes": notes}
        if split == "family" and has_fractions:  # what each validation fold holds out
            fam = family_of(table)
            entry["fold_families"] = [sorted(set(fam[fold_ids == k])) for k in range(folds)]
        if result is not None:
            if not np.array_equal(result.folds[task.stage], fold_ids):
                raise DataError(f"internal error: NestedAE folds differ from the baseline folds in task {name}")
            oof = result.oof[task.stage]
            pred = oof[f"{task.target}_pred"].to_numpy(dtype=np.float64)
            m = dict(result.metrics[task.stage][task.target])
            m["mae_paper_batches"] = paper_batch_scored_mae(y, pred, fold_ids)
            m["seconds"] = round(secs, 2)
            m["preset"] = task.preset
            entry["models"]["nestedae"] = m
        bad_inputs = [c for c in task.numeric if c not in table.columns or not np.isfinite(table[c].to_numpy(dtype=np.float64)).all()]
        if bad_inputs:
            notes.append(f"baselines not run: input column(s) {', '.join(bad_inputs)} missing or not finite in the stage table")
        else:
            X = design_matrix(table, task.numeric, task.categorical)
            for model in BASELINES:
                if model not in wanted:
                    continue
                say(f"{name} ({split}): {model}")
                m, pred, secs_b = fit_baseline(model, factories[model], X, y, fold_ids, len(task.numeric))
                m["mae_paper_batches"] = paper_batch_scored_mae(y, pred, fold_ids)
                m["seconds"] = round(secs_b, 2)
                entry["models"][model] = m
        if not entry["notes"]:
            del entry["notes"]
        report["tasks"][name] = entry
    if not report["skipped"]:
        del report["skipped"]
    return report


def accuracy_benchmark(
    tasks: list[str] | None = None,
    *,
    split: str | None = None,
    folds: int = 5,
    seed: int = 0,
    models: list[str] | None = None,
    data_dir: str | None = None,
    epochs: int | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run NestedAE and the baselines on identical folds; returns the JSON-ready report.

    ``split``: ``"family"``, ``"cluster"``, ``"grouped"`` or ``"random"`` for a one-split report; None (default)
    runs both: the grouped report at the top level (the headline) and the random
    one under ``other_splits["random"]``. ``models`` restricts which models run
    (``nestedae`` and names in :data:`~.baselines.BASELINES`); ``epochs`` overrides
    the NestedAE epochs (for quick runs). Each task entry holds ``models``: name ->
    ``{"mae", "mae_std", "rmse", "r2", "n", "mae_paper_batches", "seconds", "folds": [...]}``
    (target units; ``mae`` is the mean of the fold MAEs over rows), plus ``notes``
    when a model was not run. Tasks whose dataset cannot be loaded are listed
    under ``skipped`` with the reason.
    """
    tasks = list(tasks or TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"unknown benchmark task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    wanted = list(models or MODELS)
    bad = [m for m in wanted if m not in MODELS]
    if bad:
        raise ConfigError(f"unknown model(s) {', '.join(bad)}; known: {', '.join(MODELS)}")
    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split '{split}'; use {', '.join(SPLITS)}")
    say = progress or (lambda msg: None)
    splits = [split] if split else list(SPLIT_ORDER)
    reports = [_one_split(tasks, s, folds=folds, seed=seed, wanted=wanted, data_dir=data_dir, epochs=epochs, device=device, say=say) for s in splits]
    head = reports[0]
    if len(reports) > 1:
        head["other_splits"] = {r["split"]: r for r in reports[1:]}
    return head
