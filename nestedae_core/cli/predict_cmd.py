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
from typing import Any

from ..vocabulary import ETL, HTL, JSON_NAMES
from ._common import load_model, named, print_json, print_table, uncertainty_text

#: JSON key of the band gap at each fidelity.
GAP_KEYS: dict[str, str] = {"measured": "bandgap_eV", "PBE": "bandgap_pbe_eV", "HSE": "bandgap_hse_eV"}
#: ``bandgap_note`` of a model without a measured-scale band gap.
NO_MEASURED_GAP_NOTE = "this model has no measured-gap stage; see bandgap_pbe_eV"


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


def _json_key(column: str, unit: str) -> str:
    """JSON name of a target that is not a band gap: conventional (``pce_percent``) or ``<column>_<unit>``."""
    return JSON_NAMES.get(column) or (column if not unit else f"{column}_{unit.replace('/', '_per_').replace('%', 'percent')}")


def _entry(t: dict[str, Any]) -> dict[str, Any]:
    return {"mean": t["mean"], "std": t["std"], "lower": t["lower"], "upper": t["upper"], "level": t["level"],
            "unit": t["unit"], "fidelity": t["fidelity"]}


def prediction_json(res: Any) -> dict[str, Any]:
    """The JSON object of one :class:`~nestedae_core.predict.QueryResult` (keys in the module docstring)."""
    from ..predict import bandgaps

    gaps = bandgaps(res)
    out: dict[str, Any] = {"formula": res.formula}
    for fidelity, key in GAP_KEYS.items():
        out[key] = _entry(gaps[fidelity]) if fidelity in gaps else None
        if fidelity == "measured" and fidelity not in gaps:
            out["bandgap_note"] = NO_MEASURED_GAP_NOTE
    gap_columns = {e["column"] for e in gaps.values()}
    for column, t in res.targets.items():
        if column not in gap_columns:
            out[_json_key(column, t["unit"])] = _entry(t)
    out["in_domain"] = bool(res.in_domain)
    out["stage_in_domain"] = {k: bool(v) for k, v in res.stage_in_domain.items()}
    out["domain_distance"] = res.domain_distance
    out["domain_stage"] = res.domain_stage
    out["domain_message"] = res.domain_message
    if ETL in res.categorical:
        out["etl"] = res.categorical[ETL]
    if HTL in res.categorical:
        out["htl"] = res.categorical[HTL]
    out["categorical"] = res.categorical
    out["defaulted"] = res.defaulted
    out["latents"] = res.latents
    return out


def run(args: argparse.Namespace) -> int:
    from ..predict import bandgaps, predict_composition

    model = load_model(args.model)
    res = predict_composition(model, args.formula, etl=args.etl, htl=args.htl)
    if args.json:
        print_json(prediction_json(res))
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
        print(f"note: {NO_MEASURED_GAP_NOTE.replace('see bandgap_pbe_eV', 'its band gap is ' + ' and '.join(gaps))} "
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
