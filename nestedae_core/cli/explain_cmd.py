"""``nestedae explain``: why the model predicts this band gap and this PCE.

For one composition (and device stack) it prints, for the band gap of the first
stage (w.r.t. its inputs, e.g. the 15 site descriptors; named by its fidelity,
e.g. "band gap (PBE)"), for the measured-scale band gap when the model has a
measured stage after the first (end to end), and for the PCE (end to end:
descriptors + ETL + HTL), the base value (expected output over the model's
stored background), the prediction and the largest SHAP attributions, each in
the output's unit. ``base + sum(attributions) = prediction``.

JSON: one entry per explained output, keyed exactly as ``nestedae predict --json``
keys the same quantity (:mod:`nestedae_core.schema`): the first stage's band gap
(``bandgap_pbe_eV`` for the shipped chains), the measured-scale gap ``bandgap_eV``
(null without a measured stage after the first) and the last stage's output
(``pce_percent``); each with the attribution's keys plus ``fidelity`` (measured,
PBE, HSE or null), ``phase`` (the crystal phase of a DFT gap, else null) and a ``label`` that names it
(``band gap, DFT PBE (no SOC, cubic)``); ``etl``/``htl``, ``categorical``,
``defaulted``; ``model``: the model's provenance (``name``, ``bundle_sha256`` of
its manifest.json, ``bundle_path``, ``version``).

Batch (``--csv IN --out OUT``): the attributions of every row, ``--format long``
(one line per row, output and feature) or ``wide`` (one line per row); columns
in :func:`nestedae_core.batch.explain_rows`. Exit codes as ``nestedae predict
--csv``. ``--report FILE.html``: a self-contained HTML report of the prediction
and its attributions.
"""
from __future__ import annotations

import argparse
from typing import Any

from ._common import load_model, named, print_json, print_table, whole_number
from .predict_cmd import add_batch_arguments, check_batch_arguments, finish_batch

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
    p.add_argument("formula", nargs="?", help="composition, e.g. MAPbI3 or Cs0.05FA0.79MA0.16PbBr0.51I2.49 (or use --csv)")
    p.add_argument("--etl", help="ETL stack (default: the most common in the training data)")
    p.add_argument("--htl", help="HTL stack (default: the most common in the training data)")
    p.add_argument("--model", help="a saved model's name, a model bundle directory, or a shipped model: measured-default (the default) or paper-default")
    p.add_argument("--json", action="store_true", help="print JSON (all attributions)")
    p.add_argument("--top", type=whole_number(1, "attribution count", "give a positive integer"), default=8, metavar="K", help="attributions to list per output (default 8)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="auto", help="explainer (default auto: see nestedae_core.explain)")
    p.add_argument("--report", metavar="FILE.html", help="also write a self-contained HTML report (prediction, attributions, model)")
    add_batch_arguments(p, "explained")
    p.add_argument("--format", choices=("long", "wide"), default="long",
                   help="batch output: long (a line per row, output and feature; the default) or wide (a line per row)")
    p.set_defaults(func=run)


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else f"{float(v):.4g}"


def _fidelity(model: Any, stage: str, output: str) -> str | None:
    """Band-gap fidelity of a stage's target (None for other outputs)."""
    from ..api import target_fidelity

    st = next(s for s in model.spec.stages if s.name == stage)
    return next((target_fidelity(st, t) for t in st.targets if t.column == output), None)


def run(args: argparse.Namespace) -> int:
    from ..api import (
        explain_outputs, is_dft, model_provenance, parse_formula, query_frame, query_phase, resolve_categorical,
    )

    batch = check_batch_arguments(args, ("--etl", "--htl", "--json", "--report"))
    model = load_model(args.model)
    if batch:
        from ..api import BatchColumns, explain_csv

        cols = BatchColumns(args.formula_column, args.etl_column, args.htl_column)
        return finish_batch(explain_csv(model, args.csv, args.out, cols, fmt=args.format, method=args.method), args.out, "explained")
    comp = parse_formula(args.formula)
    cats, defaulted = resolve_categorical(model, args.etl, args.htl, None)
    frame = query_frame(model, [comp], categorical=cats)
    results = explain_outputs(model, frame, method=args.method)
    if args.report:
        from ..api import predict_composition
        from .predict_cmd import write_prediction_report

        write_prediction_report(model, predict_composition(model, comp, etl=args.etl, htl=args.htl), args.report, attributions=results)
    fidelity = {key: _fidelity(model, att.stage, att.output) for key, att in results.items()}
    phase = query_phase(model, cats)  # the crystal phase of the DFT gaps
    if args.json:
        from ..api import GAP_KEYS, input_key

        out: dict[str, Any] = {"formula": comp.formula}
        for key, att in results.items():
            out[key] = {**att.to_json(0), "label": named(att.label, fidelity[key], phase), "fidelity": fidelity[key],
                        "phase": phase if is_dft(fidelity[key]) else None}
        out.setdefault(GAP_KEYS["measured"], None)
        out.update({input_key(c): v for c, v in cats.items()})
        out["categorical"] = cats
        out["defaulted"] = defaulted
        out["model"] = model_provenance(model)
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
        print(f"{named(att.label, fidelity[key], phase)} ({att.output}), {scope}; explainer: {att.explainer}")
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
