"""``nestedae explain``: why the model predicts this band gap and this PCE.

For one composition (and device stack) it prints, for the band gap of the first
stage (w.r.t. its inputs, e.g. the 15 site descriptors; named by its fidelity,
e.g. "band gap (PBE)"), for the measured-scale band gap when the model has a
measured stage after the first (end to end), and for the PCE (end to end:
descriptors + ETL + HTL), the base value (expected output over the model's
stored background), the prediction and the largest SHAP attributions, each in
the output's unit. ``base + sum(attributions) = prediction``.

JSON: ``bandgap`` (first stage), ``bandgap_measured`` (null without a measured
stage after the first) and ``pce`` (null for a one-stage model); each with the
attribution's keys plus ``fidelity`` (measured, PBE, HSE or null) and a
``label`` that names it.
"""
from __future__ import annotations

import argparse
from typing import Any

from ._common import load_model, named, print_json, print_table, whole_number

METHOD_CHOICES = ("auto", "exact", "permutation", "kernel", "gradient")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "explain",
        help="SHAP attributions of the band gap and PCE for a composition",
        description=(
            "Explain the band gap (w.r.t. the site descriptors) and the PCE (end to end: descriptors + ETL + HTL) "
            "of a composition with SHAP values of the ensemble-mean prediction. base + sum(attributions) = prediction."
        ),
    )
    p.add_argument("formula", help="composition, e.g. MAPbI3 or Cs0.05FA0.79MA0.16PbBr0.51I2.49")
    p.add_argument("--etl", help="ETL stack (default: the most common in the training data)")
    p.add_argument("--htl", help="HTL stack (default: the most common in the training data)")
    p.add_argument("--model", help="model bundle directory, or a shipped model: measured-default (the default) or paper-default")
    p.add_argument("--json", action="store_true", help="print JSON (all attributions)")
    p.add_argument("--top", type=whole_number(1, "attribution count", "give a positive integer"), default=8, metavar="K", help="attributions to list per output (default 8)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="auto", help="explainer (default auto: see nestedae_core.explain)")
    p.set_defaults(func=run)


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else f"{float(v):.4g}"


def _fidelity(model: Any, stage: str, output: str) -> str | None:
    """Band-gap fidelity of a stage's target (None for other outputs)."""
    from ..model.config import target_fidelity

    st = next(s for s in model.spec.stages if s.name == stage)
    return next((target_fidelity(st, t) for t in st.targets if t.column == output), None)


def _measured_gap(model: Any) -> tuple[int, str] | None:
    """(stage index, column) of a measured-scale band gap after the first stage, else None."""
    from ..model.config import target_fidelity

    for i, st in enumerate(model.spec.stages[1:], start=1):
        for t in st.targets:
            if target_fidelity(st, t) == "measured":
                return i, t.column
    return None


def run(args: argparse.Namespace) -> int:
    from ..chemistry.composition import parse_formula
    from ..explain import explain_bandgap, explain_chain, explain_stage_output
    from ..query import query_frame, resolve_categorical

    model = load_model(args.model)
    comp = parse_formula(args.formula)
    cats, defaulted = resolve_categorical(model, args.etl, args.htl, None)
    frame = query_frame(model, [comp], categorical=cats)
    results = {"bandgap": explain_bandgap(model, frame, method=args.method)}
    if (measured := _measured_gap(model)) is not None:
        results["bandgap_measured"] = explain_stage_output(model, measured[0], measured[1], frame, inputs="chain", method=args.method)
    if len(model.spec.stages) > 1:
        results["pce"] = explain_chain(model, frame, method=args.method)
    fidelity = {key: _fidelity(model, att.stage, att.output) for key, att in results.items()}
    if args.json:
        out: dict[str, Any] = {"formula": comp.formula, "categorical": cats, "defaulted": defaulted}
        for key, att in results.items():
            out[key] = {**att.to_json(0), "label": named(att.label, fidelity[key]), "fidelity": fidelity[key]}
        for key in ("bandgap_measured", "pce"):
            out.setdefault(key, None)
        print_json(out)
        return 0
    print(f"composition: {comp.formula}")
    for col, val in cats.items():
        note = " (default: most common in the training data)" if col in defaulted else ""
        print(f"{col.split('_')[0]}: {val}{note}")
    for key, att in results.items():
        unit = f" {att.unit}" if att.unit else ""
        scope = f"w.r.t. its {len(att.feature_names)} inputs" if att.inputs == "stage" else f"end to end ({len(att.feature_names)} chain inputs)"
        print()
        print(f"{named(att.label, fidelity[key])} ({att.output}), {scope}; explainer: {att.explainer}")
        print(f"  base value (background mean): {att.base_values[0]:.4f}{unit}")
        print(f"  prediction (ensemble mean):   {att.predictions[0]:.4f}{unit}")
        top = att.top(args.top, row=0)
        rows = [[r.feature, _fmt(r.data), f"{r.value:+.4f}", att.unit] for r in top.itertuples(index=False)]
        print_table(rows, ["feature", "input value", "attribution", "unit"])
        rest = len(att.feature_names) - len(top)
        if rest > 0:
            shown = float(top["value"].sum())
            total = float(att.values[0].sum())
            print(f"  ... {rest} more feature(s), together {total - shown:+.4f}{unit}")
    return 0
