"""``nestedae sweep``: a hyperparameter sweep with Optuna, each trial a job."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import print_table, whole_number


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sweep",
        help="hyperparameter sweep (Optuna): each trial a training job, minimising the grouped-fold validation MAE",
        description=(
            "Sample architectures, learning rates, epochs and seeds with Optuna's TPE sampler; each trial is a "
            "training job (the job limits apply) cross-validated on the same grouped folds; the value is the mean "
            "validation-fold MAE of the objective's target. The study is kept in the job store (or --storage) and a "
            "sweep given with --study NAME that exists is resumed."
        ),
    )
    p.add_argument("--preset", help="chain to sweep (paper, measured, synthetic, ...); not needed to resume a --study")
    p.add_argument("--trials", type=whole_number(1, "--trials", "a sweep needs at least 1 trial"), help="number of trials in all (default 20 for a new sweep)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///<job store>; postgresql://USER@HOST/DB to share a sweep between machines)")
    p.add_argument("--study", metavar="NAME", help="study name (default <preset>-<date>-<time>); an existing study is resumed")
    p.add_argument("--epochs", type=whole_number(1, "--epochs"), help="base epochs of every stage (the space scales them by 0.25-1)")
    p.add_argument("--folds", type=whole_number(2, "--folds", "cross-validation needs at least 2 folds"), help="folds (default: the preset's)")
    p.add_argument("--fold-seed", type=whole_number(0, "--fold-seed"), default=0, help="seed of the grouped folds every trial shares (default 0)")
    p.add_argument("--stage", help="stage whose target is minimised (default: the last)")
    p.add_argument("--target", help="target column minimised (default: the stage's first)")
    p.add_argument("--space", metavar="FILE", help="search space as JSON ({\"params\": [...]}; default: per-stage latent size and head width, lr, epochs scale, seed)")
    p.add_argument("--parallel", type=whole_number(1, "--parallel"), default=2, help="trials run at once (default 2; the job limits may allow fewer)")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $NESTEDAE_DATA_DIR, then the cache)")
    p.add_argument("--save", metavar="NAME", help="save the best trial's model under this name in the models folder")
    p.add_argument("--json", metavar="FILE", help="write the trials and the best as JSON")
    p.add_argument("--owner", default="cli", help="owner of the trial jobs (default 'cli')")
    p.add_argument("--timeout", type=whole_number(1, "--timeout"), help="stop after this many seconds; trials still running are interrupted (on a Dask cluster they finish); resume with --study NAME")
    p.set_defaults(func=run)


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


#: SweepConfig field -> the option that sets it (for messages).
_OPTIONS = {"n_trials": "--trials", "epochs": "--epochs", "folds": "--folds", "fold_seed": "--fold-seed",
            "parallel": "--parallel", "stage": "--stage", "target": "--target", "preset": "--preset", "space": "--space",
            "data_dir": "--data-dir"}


def _config_error(exc: Any) -> str:
    """One line for a SweepConfig validation error, naming the options: ``--trials 501: Input should be ...``."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else ""
        option = _OPTIONS.get(field, field or "sweep")
        value = err.get("input")
        shown = f" {value}" if isinstance(value, (int, float, str)) and len(str(value)) <= 40 else ""
        parts.append(f"{option}{shown}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "invalid sweep: " + "; ".join(parts)


def check_args(args: argparse.Namespace) -> Any:
    """Check every argument before any work (no job store opened, no trial run); returns the new sweep's config or None.

    Raises:
        NestedAEError: one line naming the option and what to give instead.
    """
    from pydantic import ValidationError

    from ..api import (
        MAX_TRIALS, ConfigError, InputError, SearchSpace, SweepConfig, validate_model_name, validate_study_name,
    )
    from ._common import check_output_file

    check_output_file(args.json, "--json")
    if args.save is not None:
        try:
            name = validate_model_name(args.save)
        except InputError as exc:
            raise InputError(f"--save: {exc}") from None
        from ..api import models_dir

        if (models_dir() / name).exists():
            raise InputError(f"--save: a model named '{name}' exists already in {models_dir()}; choose another name "
                             "(the sweep never replaces a saved model)")
    if args.study is not None:
        validate_study_name(args.study)
    if not str(args.owner or "").strip():
        raise InputError("--owner is empty; give the owner of the trial jobs, e.g. --owner cli")
    if args.trials is not None and args.trials > MAX_TRIALS:
        raise ConfigError(f"--trials {args.trials} is too many: a sweep has at most {MAX_TRIALS} trials")
    if args.storage is not None and "://" not in args.storage:
        raise InputError(f"--storage '{args.storage[:80]}' is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB")
    if not args.preset:
        return None
    space = SearchSpace.from_file(args.space) if args.space else None
    try:
        config = SweepConfig(
            preset=args.preset, n_trials=args.trials or 20, epochs=args.epochs, folds=args.folds, fold_seed=args.fold_seed,
            stage=args.stage, target=args.target, space=space, parallel=args.parallel, data_dir=args.data_dir,
        )
    except ValidationError as exc:
        raise ConfigError(_config_error(exc)) from None
    config.search_space().check(config.base_spec())
    config.objective()
    return config


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..api import ConfigError, InputError, Sweep, SweepConfig, atomic_write_text, job_manager_for_cli

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config: SweepConfig | None = check_args(args)  # everything is checked before the job store is opened
    manager = job_manager_for_cli()
    try:
        sweep: Sweep | None = None
        if args.study:
            try:
                sweep = Sweep.open(args.study, manager, owner=args.owner, storage=args.storage, n_trials=args.trials)
            except InputError as exc:
                if not str(exc).startswith("no sweep named"):
                    raise
            if sweep is not None and args.preset and args.preset != sweep.config.preset:
                raise ConfigError(f"sweep '{args.study}' sweeps preset '{sweep.config.preset}', not '{args.preset}'; drop --preset or choose another --study")
        if sweep is None:
            if config is None:
                raise ConfigError("give --preset NAME for a new sweep (or --study NAME of an existing one)")
            sweep = Sweep.create(config, manager, owner=args.owner, study_name=args.study, storage=args.storage)
        print(f"sweep {sweep.name}: {sweep.config.n_trials} trials of preset '{sweep.config.preset}', minimising {sweep.objective.label(sweep.base)}", file=sys.stderr)
        seen: set[int] = set()

        def report(s: Sweep) -> None:
            for row in s.rows():
                if row["state"] in ("complete", "fail") and row["trial"] not in seen:
                    seen.add(row["trial"])
                    value = f"{row['value']:.5g}" if row["value"] is not None else row["error"] or "failed"
                    print(f"  trial {row['trial']}: {row['state']} {value}", file=sys.stderr)

        try:
            finished = sweep.run(timeout=args.timeout, on_step=report)
        except KeyboardInterrupt:
            n = sweep.cancel()
            print(f"nestedae: interrupted; {n} running trial(s) asked to stop", file=sys.stderr)
            return 130
        rows = sweep.rows()
        best = sweep.best()
        table = [
            [r["trial"], r["state"], "" if r["value"] is None else f"{r['value']:.5g}", "" if r["seed"] is None else r["seed"], _params_text(r["params"])]
            for r in rows
        ]
        print_table(table, ["trial", "state", "value", "seed", "parameters"])
        if best is None:
            print("no trial completed")
        else:
            print(f"best: trial {best['trial']}, {sweep.objective.label(sweep.base)} = {best['value']:.5g} (seed {best['seed']}, folds seed {sweep.config.fold_seed})")
        if not finished:
            print(f"stopped after {args.timeout} s; resume with: nestedae sweep --study {sweep.name}")
        saved = None
        if args.save:
            saved = sweep.save_best(args.save)
            print(f"saved the best trial's model as {saved}")
        if args.json:
            report_obj = {
                "study": sweep.name,
                "storage_default": args.storage is None,
                "config": json.loads(sweep.config.model_dump_json()),
                "objective": {"stage": sweep.objective.stage, "target": sweep.objective.target, "label": sweep.objective.label(sweep.base), "direction": "minimize"},
                "trials": rows,
                "best": best,
                "finished": finished,
                "saved": None if saved is None else str(saved),
            }
            atomic_write_text(args.json, json.dumps(report_obj, indent=2, allow_nan=False, default=str) + "\n")
        sys.stdout.flush()
        return 0 if best is not None else 1
    finally:
        shutdown = getattr(manager, "shutdown", None)
        if shutdown is not None:
            shutdown()
