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
inside each training fold (nested), never on the folds that report. With ``nested=True`` the film task also gets
``nestedae-nested``: the film stage's weight decay and correction bound chosen per outer fold by an inner cluster CV
of the outer-training rows (:mod:`.nested`), since the preset's setting was compared on the reported family folds.
Every model entry carries the MAE over
rows (the mean of the fold MAEs) and, for comparison with the NestedAE paper,
the paper's batch-scored MAE (:mod:`.paper_scoring`) of the same predictions.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.tables import load_dataset_table
from ..errors import ConfigError, DataError, NestedAEError
from ..model.config import ChainSpec
from ..perovskite.presets import PRESETS, preset
from ..train import cross_validate, make_folds
from .baselines import BASELINES, baseline_factories, design_matrix, fit_baseline_fold, summarize_baseline
from .nested import NESTED_GRID, nested_film_cv
from .paper_scoring import paper_batch_scored_mae
from .reports import SPLIT_ORDER, created_now, machine_info
from .runner import Step, StepDone, check_jobs, run_steps
from .stage_tables import stage_table
from .tasks import TASKS, BenchmarkTask
from ..vocabulary import SITE_FRACTION_COLUMNS
from ..perovskite.splits import SPLITS, chain_folds, family_of, split_folds

__all__ = ["accuracy_benchmark", "MODELS", "NESTED", "QUICK"]

logger = logging.getLogger(__name__)

#: What the report says about hyperparameter choice (nothing is tuned on the folds that report).
TUNING = ("nested: this benchmark selects nothing on the validation folds; NestedAE's hyperparameters are its preset's "
          "(set beforehand, see the preset), the baselines' fixed in code, ridge's alpha and kernel ridge's grid chosen "
          "inside each training fold")

#: The report's name of NestedAE with its film setting chosen by nested CV (``nested=True``; :mod:`.nested`).
NESTED = "nestedae-nested"
#: What a nested report adds to :data:`TUNING`.
NESTED_TUNING = ("; nestedae-nested: the film stage's weight decay and correction bound chosen per outer fold by an inner cluster "
                 "cross-validation on the outer-training rows only (benchmark.nested), then refitted on them; 'nestedae' beside it "
                 "keeps the preset's setting, which was compared on the reported folds; the baselines keep their fixed settings")

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


@dataclass(frozen=True)
class _ChainOutcome:
    """What the report needs of one NestedAE cross-validation (picklable, small): by stage name."""

    metrics: dict[str, Any]
    oof: dict[str, pd.DataFrame]
    folds: dict[str, np.ndarray]
    tables: dict[str, pd.DataFrame]


def _chain_step(spec: ChainSpec, data_dir: str | None, device: str, stages: tuple[str, ...],
                stage_folds: dict[str, np.ndarray] | None = None) -> _ChainOutcome | str:
    """Cross-validate a preset (on ``stage_folds`` where given: the shared cluster/family split); the stages' metrics,
    out-of-fold predictions, folds and tables, or the error's message."""
    try:
        r = cross_validate(spec, data_dir=data_dir, device=device, stage_folds=stage_folds)
    except NestedAEError as exc:
        return str(exc)
    return _ChainOutcome({s: r.metrics[s] for s in stages}, {s: r.oof[s] for s in stages}, {s: r.folds[s] for s in stages},
                         {s: r.tables[s] for s in stages})


def _nested_step(spec: ChainSpec, stage: str, target: str, folds: np.ndarray, data_dir: str | None, device: str,
                 grid: dict[str, tuple[float, ...]]) -> dict[str, Any] | str:
    """NestedAE with its film setting chosen by nested CV on the outer ``folds`` (:func:`.nested.nested_film_cv`), or the error's message."""
    try:
        return nested_film_cv(spec, folds, stage=stage, target=target, grid=grid, data_dir=data_dir, device=device)
    except NestedAEError as exc:
        return str(exc)


def _baseline_step(name: str, seed: int, X: np.ndarray, y: np.ndarray, folds: np.ndarray, fold: int, n_numeric: int) -> np.ndarray:
    """One baseline on one fold (:func:`.baselines.fit_baseline_fold`)."""
    return fit_baseline_fold(name, baseline_factories(seed)[name], X, y, folds, fold, n_numeric)


@dataclass
class _Plan:
    """One task under one split: its rows, folds and the models to run."""

    name: str
    task: BenchmarkTask
    split: str
    notes: list[str]
    table: pd.DataFrame
    fold_ids: np.ndarray
    y: np.ndarray
    X: np.ndarray | None  # None: the baselines cannot run (see notes)
    preset: str | None  # the NestedAE chain of this task, when it runs
    chain: int | None = None  # index of that chain's step
    nested: int | None = None  # index of the nested-CV step (nested=True, film tasks)
    baseline_steps: dict[str, list[int]] = field(default_factory=dict)


def _plan_split(
    tasks: Sequence[str], split: str, *, folds: int, seed: int, wanted: Sequence[str], data_dir: str | None,
    epochs: int | None, device: str, steps: list[Step], chains: dict[tuple[str, str], int],
    nested: dict[str, tuple[float, ...]] | None = None,
) -> tuple[list[_Plan], dict[str, str]]:
    """The plans of one split and their steps (appended to ``steps``; chains shared by the tasks of one preset)."""
    plans: list[_Plan] = []
    skipped: dict[str, str] = {}
    shared: dict[str, dict[str, np.ndarray]] = {}  # preset -> its stages' shared cluster/family folds
    pending: list[tuple[_Plan, ChainSpec]] = []
    for name in tasks:
        task = TASKS[name]
        notes: list[str] = []
        needed = [TASKS[t].stage for t in tasks if TASKS[t].preset == task.preset]
        spec, i, note = _spec_and_stage(task, epochs=epochs, folds=folds, split=split, seed=seed, needed=needed)
        if note and "nestedae" in wanted:
            notes.append(note)
        try:
            try:
                table = stage_table(spec, i, data_dir) if spec is not None and i is not None else _baseline_table(task, data_dir)
            except NestedAEError:
                if spec is None:
                    raise
                table = _baseline_table(task, data_dir)  # the chain's training will say why its table failed
        except NestedAEError as exc:
            skipped[name] = f"{task.description}: {exc}"
            logger.warning("benchmark task %s skipped: %s", name, exc)
            continue
        if split in ("random", "grouped"):
            fold_ids = make_folds(table, folds, split, list(task.groups), seed)
        else:
            try:
                if spec is not None and task.preset not in shared:
                    shared[task.preset] = _shared_folds(spec, split, data_dir, needed) or {}
                given = shared.get(task.preset, {}) if spec is not None else {}
                fold_ids = given[task.stage] if task.stage in given else split_folds(table, folds, split, task.groups, seed)
            except DataError:
                fold_ids = make_folds(table, folds, "grouped", list(task.groups), seed)
        has_fractions = all(c in table.columns for c in SITE_FRACTION_COLUMNS)
        if split in ("cluster", "family") and not has_fractions:
            notes.append(f"this table has no site fractions: its folds are grouped by {', '.join(task.groups)}, not {split}")
        y = table[task.target].to_numpy(dtype=np.float64)
        bad_inputs = [c for c in task.numeric if c not in table.columns or not np.isfinite(table[c].to_numpy(dtype=np.float64)).all()]
        X = None if bad_inputs else design_matrix(table, task.numeric, task.categorical)
        run_chain = spec is not None and i is not None and "nestedae" in wanted
        plan = _Plan(name, task, split, notes, table, fold_ids, y, X, task.preset if run_chain else None)
        if run_chain and spec is not None:
            pending.append((plan, spec))
        if bad_inputs:
            plan.notes.append(f"baselines not run: input column(s) {', '.join(bad_inputs)} missing or not finite in the stage table")
        plans.append(plan)
    for plan, spec in pending:  # one chain per preset, training every stage its tasks read
        key = (split, plan.task.preset)
        if key not in chains:
            stages = tuple(dict.fromkeys(p.task.stage for p, _ in pending if p.task.preset == plan.task.preset))
            chains[key] = len(steps)
            steps.append(Step(f"{plan.task.preset} chain", split, "nestedae", None, _chain_step,
                              (spec, data_dir, device, stages, shared.get(plan.task.preset) or None)))
        plan.chain = chains[key]
        if nested is not None:
            if spec.stages[1:2] and spec.stages[1].name == plan.task.stage and spec.stages[1].residual:
                plan.nested = len(steps)
                steps.append(Step(plan.name, split, NESTED, None, _nested_step,
                                  (spec, plan.task.stage, plan.task.target, plan.fold_ids, data_dir, device, dict(nested))))
            else:
                plan.notes.append(f"{NESTED} not run: nested CV covers the film stage (a residual second stage), not stage '{plan.task.stage}'")
    for plan in plans:
        if plan.X is None:
            continue
        for model in BASELINES:
            if model in wanted:
                plan.baseline_steps[model] = []
                for f in range(int(plan.fold_ids.max()) + 1):
                    plan.baseline_steps[model].append(len(steps))
                    steps.append(Step(plan.name, split, model, f, _baseline_step,
                                      (model, seed, plan.X, plan.y, plan.fold_ids, f, len(plan.task.numeric))))
    return plans, skipped


def _split_report(split: str, folds: int, seed: int, plans: list[_Plan], skipped: dict[str, str], results: list[Any],
                  seconds: list[float]) -> dict[str, Any]:
    """The report of one split from its plans and the steps' results."""
    report: dict[str, Any] = {"kind": "accuracy", "split": split, "folds": folds, "seed": seed, "created": created_now(),
                              "machine": machine_info(), "tuning": TUNING, "tasks": {}, "skipped": dict(skipped)}
    for plan in plans:
        task, table, y, fold_ids = plan.task, plan.table, plan.y, plan.fold_ids
        notes = list(plan.notes)
        outcome = results[plan.chain] if plan.chain is not None else None
        if isinstance(outcome, str):
            notes.insert(len(plan.notes) - (1 if plan.X is None else 0), f"NestedAE not run: training preset '{task.preset}' failed: {outcome}")
            outcome = None
        if outcome is not None:
            table = outcome.tables[task.stage]
            if len(table) != len(plan.table) or not np.array_equal(outcome.folds[task.stage], fold_ids):
                raise DataError(f"internal error: NestedAE folds differ from the baseline folds in task {plan.name}")
        entry: dict[str, Any] = {**task.as_json(), "n": int(len(table)), "n_target": int(np.isfinite(y).sum()), "models": {}, "notes": notes}
        if split == "family" and all(c in table.columns for c in SITE_FRACTION_COLUMNS):  # what each validation fold holds out
            fam = family_of(table)
            entry["fold_families"] = [sorted(set(fam[fold_ids == k])) for k in range(folds)]
        if outcome is not None and plan.chain is not None:
            pred = outcome.oof[task.stage][f"{task.target}_pred"].to_numpy(dtype=np.float64)
            m = dict(outcome.metrics[task.stage][task.target])
            m["mae_paper_batches"] = paper_batch_scored_mae(y, pred, fold_ids)
            m["seconds"] = round(seconds[plan.chain], 2)
            m["preset"] = task.preset
            entry["models"]["nestedae"] = m
        if plan.nested is not None:
            got = results[plan.nested]
            if isinstance(got, str):
                entry["notes"].append(f"{NESTED} not run: {got}")
            else:
                m = dict(got)
                pred = np.asarray(m.pop("oof_pred"), dtype=np.float64)
                m["mae_paper_batches"] = paper_batch_scored_mae(y, pred, fold_ids)
                m["seconds"] = round(seconds[plan.nested], 2)
                m["preset"] = task.preset
                if "fold_families" in entry:
                    for sel in m["selection"]:
                        sel["families"] = entry["fold_families"][sel["fold"]]
                entry["models"][NESTED] = m
        for model, idx in plan.baseline_steps.items():
            m, pred = summarize_baseline(y, fold_ids, [results[k] for k in idx])
            m["mae_paper_batches"] = paper_batch_scored_mae(y, pred, fold_ids)
            m["seconds"] = round(sum(seconds[k] for k in idx), 2)
            entry["models"][model] = m
        if not entry["notes"]:
            del entry["notes"]
        report["tasks"][plan.name] = entry
    if not report["skipped"]:
        del report["skipped"]
    return report


#: ``--quick``: a first look in a fraction of the time (3 grouped folds, short NestedAE training, four fast models).
QUICK: dict[str, Any] = {"folds": 3, "split": "grouped", "epochs": 150, "models": ("nestedae", "mean", "ridge", "hist_gradient_boosting")}


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
    jobs: int = 1,
    progress: Callable[[StepDone], None] | None = None,
    nested: bool = False,
    nested_grid: dict[str, tuple[float, ...]] | None = None,
) -> dict[str, Any]:
    """Run NestedAE and the baselines on identical folds; returns the JSON-ready report.

    ``split``: ``"family"``, ``"cluster"``, ``"grouped"`` or ``"random"`` for a one-split report; None (default)
    runs both: the grouped report at the top level (the headline) and the random
    one under ``other_splits["random"]``. ``models`` restricts which models run
    (``nestedae`` and names in :data:`~.baselines.BASELINES`); ``epochs`` overrides
    the NestedAE epochs (for quick runs). Each task entry holds ``models``: name ->
    ``{"mae", "mae_std", "rmse", "r2", "n", "mae_paper_batches", "seconds", "folds": [...]}``
    (target units; ``mae`` is the mean of the fold MAEs over rows; ``seconds``: wall
    clock of its steps), plus ``notes`` when a model was not run. Tasks whose
    dataset cannot be loaded are listed under ``skipped`` with the reason.

    The work is cut into steps (one NestedAE cross-validation per preset and split,
    one baseline per fold; :mod:`.runner`): ``jobs`` worker processes run them in
    parallel (1: here, in order), with the same results whatever ``jobs``;
    ``progress`` is called with a :class:`~.runner.StepDone` as each step finishes.

    ``nested``: the film task(s) also get :data:`NESTED`, NestedAE whose film setting
    (``nested_grid``, default :data:`~.nested.NESTED_GRID`: weight decay x correction
    bound in eV) is chosen inside each outer fold by an inner cluster CV of its
    training rows (:mod:`.nested`); its entry adds ``selection`` (the setting of each
    outer fold, with the held-out families on a family split) and ``grid``.
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
    jobs = check_jobs(jobs)
    splits = [split] if split else list(SPLIT_ORDER)
    steps: list[Step] = []
    chains: dict[tuple[str, str], int] = {}
    grid = (dict(nested_grid or NESTED_GRID) if nested and "nestedae" in wanted else None)
    planned = [_plan_split(tasks, s, folds=folds, seed=seed, wanted=wanted, data_dir=data_dir, epochs=epochs, device=device,
                           steps=steps, chains=chains, nested=grid) for s in splits]
    order = sorted(range(len(steps)), key=lambda k: steps[k].fold is not None)  # the long chains first, then the folds
    seconds = [0.0] * len(steps)

    def done(d: StepDone) -> None:
        seconds[order[d.index]] = d.seconds
        if progress is not None:
            progress(d)

    ran = run_steps([steps[k] for k in order], jobs=jobs, progress=done)
    results: list[Any] = [None] * len(steps)
    for k, out in zip(order, ran):
        results[k] = out
    reports = [_split_report(s, folds, seed, plans, skipped, results, seconds) for s, (plans, skipped) in zip(splits, planned)]
    if grid is not None:
        for r in reports:
            r["tuning"] += NESTED_TUNING
    head = reports[0]
    if len(reports) > 1:
        head["other_splits"] = {r["split"]: r for r in reports[1:]}
    return head
