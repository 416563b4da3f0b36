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


def run(args: argparse.Namespace) -> int:
    import optuna

    from ..errors import ConfigError, InputError
    from ..io_safe import atomic_write_text, refuse_special
    from ..sweep import Sweep, SweepConfig, SearchSpace
    from ..sweep.runner import job_manager_for_cli

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.json:
        refuse_special(args.json)
    config: SweepConfig | None = None
    if args.preset:  # check the new sweep's configuration before opening the job store
        space = None
        if args.space:
            try:
                with open(args.space, encoding="utf-8") as fh:
                    space = SearchSpace.from_json(fh.read())
            except OSError as exc:
                raise ConfigError(f"cannot read --space {args.space}: {exc.strerror or exc}") from None
        config = SweepConfig(
            preset=args.preset, n_trials=args.trials or 20, epochs=args.epochs, folds=args.folds, fold_seed=args.fold_seed,
            stage=args.stage, target=args.target, space=space, parallel=args.parallel, data_dir=args.data_dir,
        )
        config.search_space().check(config.base_spec())
        config.objective()
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
