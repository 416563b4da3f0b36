"""``nestedae train``: cross-validate a chain and save it as a model bundle."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import ProgressBar, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a chain with k-fold CV and save it as a model bundle", description="Train a NestedAE chain with k-fold cross-validation; the fold models form the saved ensemble.")
    p.add_argument("--preset", default="paper", help="named configuration (measured, paper, paper-exact, paper-jv, pbe-extended, synthetic); default paper")
    p.add_argument("--config", metavar="FILE", help="JSON or TOML file with a full or partial chain spec (merged over the preset)")
    p.add_argument("--folds", type=int, help="number of folds (= ensemble members)")
    p.add_argument("--split", choices=["random", "grouped"], help="random k-fold or grouped (materials by formula, devices by composition+ETL+HTL)")
    p.add_argument("--epochs", type=int, help="epochs for every stage")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $NESTEDAE_DATA_DIR, then the cache)")
    p.add_argument("--out", required=True, help="directory to write the model bundle to: a new or empty folder, or an existing bundle with --overwrite (any other folder is refused)")
    p.add_argument("--overwrite", action="store_true", help="replace the model bundle at --out (never a folder that is not a bundle)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import ConfigError, check_save_target, cross_validate, load_chain_spec, preset, save_bundle

    if args.epochs is not None and args.epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    spec = preset(args.preset, epochs=args.epochs, folds=args.folds, split=args.split, seed=args.seed)
    if args.config:
        spec = load_chain_spec(args.config, base=spec)
    out = Path(args.out)
    check_save_target(out, overwrite=args.overwrite)  # before training: refuse at once, not after minutes
    bar = ProgressBar(disable=args.no_progress)
    try:
        result = cross_validate(spec, data_dir=args.data_dir, device=args.device, callback=bar)
    finally:
        bar.close()
    save_bundle(result, out, overwrite=args.overwrite)
    rows = []
    for st in spec.stages:
        for t in st.targets:
            m = result.metrics[st.name][t.column]
            folds = " ".join(f"{f['mae']:.3f}" for f in m["folds"])
            rows.append([st.name, t.display, f"{m['mae']:.4f} ± {m['mae_std']:.4f}", f"{m['rmse']:.4f}", f"{m['r2']:.3f}", folds, f"{result.seconds[st.name]:.1f}"])
    print(f"{spec.folds}-fold {spec.split} cross-validation, seed {spec.seed}, device {result.model.record['device']}")
    print_table(rows, ["stage", "target", "MAE (mean ± sd over folds)", "RMSE", "R²", "fold MAEs", "seconds"])
    print(f"saved model bundle to {out}")
    sys.stdout.flush()
    return 0
