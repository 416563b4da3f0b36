"""``nestedae predict``: band gaps and PCE for a composition through the chain.

Every band gap is named by its fidelity (measured, PBE, HSE). The uncertainty
is the prediction interval when the model is calibrated; otherwise the spread
of the fold models, printed as model disagreement (not an error bar).

JSON (``--json``): ``formula``; ``bandgap_eV`` the measured-scale band gap, or
null with ``bandgap_note`` when the model has no measured stage;
``bandgap_pbe_eV`` and ``bandgap_hse_eV`` (null when absent); one key per other
target (``pce_percent`` ...); each target is ``{mean, std, lower, upper, level,
unit, fidelity}`` (``std``: model disagreement; ``lower``/``upper``: the
prediction interval at ``level``, null without calibration). Then ``in_domain``,
``stage_in_domain``, ``domain_distance``, ``domain_stage``, ``domain_message``,
``etl``/``htl``, ``categorical``, ``defaulted`` and ``latents``.
"""
from __future__ import annotations

import argparse

from .. import predict
from ._common import load_model, named, print_json, print_table, uncertainty_text

def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="predict band gaps -> PCE for a composition",
                       description="Predict every stage of the chain (band gaps in eV, named measured/PBE/HSE, then PCE in %) "
                                   "with the prediction interval (or, without calibration, the fold models' disagreement).")
    p.add_argument("formula", help="composition, e.g. MAPbI3 or Cs0.05FA0.79MA0.16PbBr0.51I2.49")
    p.add_argument("--etl", help="ETL stack (default: the most common in the training data)")
    p.add_argument("--htl", help="HTL stack (default: the most common in the training data)")
    p.add_argument("--model", help="model bundle directory, or a shipped model: measured-default (the default) or paper-default")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..predict import bandgaps, predict_composition

    model = load_model(args.model)
    res = predict_composition(model, args.formula, etl=args.etl, htl=args.htl)
    if args.json:
        print_json(res.to_json())
        return 0
    print(f"composition: {res.formula}")
    for col, val in res.categorical.items():
        note = " (default: most common in the training data)" if col in res.defaulted else ""
        print(f"{col.split('_')[0]}: {val}{note}")
    rows = []
    for t in res.targets.values():
        digits = 2 if t["unit"] == "%" else 3
        rows.append([t["stage"], named(t["label"], t["fidelity"]), f"{t['mean']:.{digits}f}", uncertainty_text(t, digits),
                     f"{t['disagreement']:.{digits}f}", t["unit"]])
    print_table(rows, ["stage", "property", "mean", "uncertainty", "model disagreement (sd)", "unit"])
    gaps = bandgaps(res)
    if gaps and "measured" not in gaps:
        print(f"note: {predict.NO_MEASURED_GAP_NOTE.replace('see bandgap_pbe_eV', 'its band gap is ' + ' and '.join(gaps))} "
              "(a DFT gap, not what a film or device shows)")
    if not any(t["lower"] is not None for t in res.targets.values()):
        print(f"note: this model has no calibrated prediction interval; ± is the disagreement of its {model.members} "
              "fold models, not an error bar")
    for stage, ok in res.stage_in_domain.items():
        print(f"{stage}: {'inside' if ok else 'OUTSIDE'} the training domain (distance {res.domain_distance[stage]:.2f})")
    if not res.in_domain:
        print("warning: the query lies outside the training domain; treat the prediction as an extrapolation")
        print(f"  {res.domain_message}")
    for stage, z in res.latents.items():
        print(f"{stage} latents: " + " ".join(f"{v:+.3f}" for v in z))
    return 0
