"""``nestedae benchmark``: accuracy against baselines on identical folds, and speed."""
from __future__ import annotations

import argparse
import sys

from ._common import print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("benchmark", help="measure accuracy (vs baselines, same folds) or speed", description="Benchmarks whose figures are measured, not asserted.")
    bsub = p.add_subparsers(dest="benchmark_kind", metavar="KIND")
    acc = bsub.add_parser("accuracy", help="NestedAE vs scikit-learn baselines on identical folds")
    acc.add_argument("--split", choices=["random", "grouped"], default="random")
    acc.add_argument("--folds", type=int, default=5)
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--task", action="append", help="task(s) to run: bandgap-paper, bandgap-pbe, pce-devices (default all)")
    acc.add_argument("--dataset", help="band-gap dataset: mhp-pbe-paper (task bandgap-paper) or mhp-pbe (task bandgap-pbe); PCE always runs unless --task is given")
    acc.add_argument("--model", action="append", help="restrict to model(s): nestedae, mean, ridge, kernel_ridge, random_forest, hist_gradient_boosting, mlp")
    acc.add_argument("--epochs", type=int, help="override NestedAE epochs (quick runs)")
    acc.add_argument("--device", default="auto")
    acc.add_argument("--data-dir")
    acc.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    acc.set_defaults(func=run_accuracy)
    spd = bsub.add_parser("speed", help="seconds for 5-fold training of both stages and for 1000 chain predictions; peak memory")
    spd.add_argument("--device", default="auto")
    spd.add_argument("--data-dir")
    spd.add_argument("--epochs", type=int, help="override epochs (default: the preset's)")
    spd.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    spd.set_defaults(func=run_speed)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def run_accuracy(args: argparse.Namespace) -> int:
    from ..benchmark import accuracy_benchmark, write_json_atomic
    from ..errors import ConfigError

    tasks = args.task
    if args.dataset:
        mapping = {"mhp-pbe-paper": "bandgap-paper", "mhp-pbe": "bandgap-pbe"}
        if args.dataset not in mapping:
            raise ConfigError(f"--dataset must be one of {', '.join(mapping)}")
        tasks = [mapping[args.dataset], "pce-devices"] if not tasks else tasks
    report = accuracy_benchmark(
        tasks,
        split=args.split,
        folds=args.folds,
        seed=args.seed,
        models=args.model,
        data_dir=args.data_dir,
        epochs=args.epochs,
        device=args.device,
        progress=lambda msg: print(f"running {msg}", file=sys.stderr, flush=True),
    )
    if args.json:
        write_json_atomic(report, args.json)
    for task, entry in report["tasks"].items():
        print(f"\n{task}: {entry['description']} ({entry['n']} rows, {report['folds']}-fold {report['split']}, seed {report['seed']})")
        rows = []
        for name, m in sorted(entry["models"].items(), key=lambda kv: kv[1]["mae"]):
            rows.append([name, f"{m['mae']:.4f} ± {m['mae_std']:.4f}", f"{m['rmse']:.4f}", f"{m['r2']:.3f}", " ".join(f"{f['mae']:.3f}" for f in m["folds"]), f"{m['seconds']:.1f}"])
        print_table(rows, ["model", f"MAE ({entry['unit']})", "RMSE", "R²", "fold MAEs", "seconds"])
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


def run_speed(args: argparse.Namespace) -> int:
    from ..benchmark import speed_benchmark, write_json_atomic

    report = speed_benchmark(data_dir=args.data_dir, device=args.device, epochs=args.epochs)
    if args.json:
        write_json_atomic(report, args.json)
    print_json(report)
    return 0
