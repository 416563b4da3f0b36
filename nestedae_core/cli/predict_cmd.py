"""``nestedae predict``: band gap and PCE for a composition through the chain."""
from __future__ import annotations

import argparse

from ._common import load_model, print_json, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="predict band gap -> PCE for a composition", description="Predict every stage of the chain (e.g. band gap in eV, then PCE in %) with ensemble mean and std.")
    p.add_argument("formula", help="composition, e.g. MAPbI3 or Cs0.05FA0.79MA0.16PbBr0.51I2.49")
    p.add_argument("--etl", help="ETL stack (default: the most common in the training data)")
    p.add_argument("--htl", help="HTL stack (default: the most common in the training data)")
    p.add_argument("--model", help="model bundle directory (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..predict import predict_composition

    model = load_model(args.model)
    res = predict_composition(model, args.formula, etl=args.etl, htl=args.htl)
    if args.json:
        print_json(res.to_json())
        return 0
    print(f"composition: {res.formula}")
    for col, val in res.categorical.items():
        note = " (default: most common in the training data)" if col in res.defaulted else ""
        print(f"{col.split('_')[0]}: {val}{note}")
    rows = [[t["stage"], t["label"], f"{t['mean']:.3f}", f"{t['std']:.3f}", t["unit"]] for t in res.targets.values()]
    print_table(rows, ["stage", "property", "mean", "std (ensemble)", "unit"])
    for stage, ok in res.stage_in_domain.items():
        print(f"{stage}: {'inside' if ok else 'OUTSIDE'} the training domain (distance {res.domain_distance[stage]:.2f})")
    if not res.in_domain:
        print("warning: the query lies outside the training domain; treat the prediction as an extrapolation")
    for stage, z in res.latents.items():
        print(f"{stage} latents: " + " ".join(f"{v:+.3f}" for v in z))
    return 0
