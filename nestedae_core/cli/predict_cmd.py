"""``nestedae predict``: band gaps and PCE for a composition through the chain.

Every band gap is named by its fidelity (measured, DFT PBE (no SOC), DFT HSE06+SOC) and a
DFT gap by its crystal phase (``--phase``; default the model's, cubic), the measured
gap first: ``band gap, DFT HSE06+SOC (cubic)``. The uncertainty
is the prediction interval when the model is calibrated; otherwise the spread
of the fold models, printed as model disagreement (not an error bar).

JSON (``--json``): ``formula``; ``bandgap_eV`` the measured-scale band gap, or
null with ``bandgap_note`` when the model has no measured stage;
``bandgap_pbe_eV`` and ``bandgap_hse_soc_eV`` (null when absent); one key per other
target (``pce_percent``, ``decomposition_eV_per_fu`` ...); each target is ``{mean, std, lower,
upper, level, unit, fidelity, phase, label}`` (``std``: model disagreement; ``lower``/``upper``: the
prediction interval at ``level``, null without calibration; ``phase``: the crystal phase of a
DFT-stage output (DFT gaps, decomposition energy), else null; ``label``: its name). ``decomposition_eV_per_fu`` is null with a
``decomposition_note`` for a model without that head. Then ``in_domain``,
``stage_in_domain``, ``domain_distance``, ``domain_stage``, ``domain_message``,
``etl``/``htl``/``phase`` (the inputs used), ``categorical``, ``defaulted``, ``latents`` and ``model`` (the
model's provenance: ``name``, ``bundle_sha256`` of its manifest.json,
``bundle_path``, ``version``).

Batch (``--csv IN --out OUT``): one row per query, columns described in
:mod:`nestedae_core.batch` (every target as ``<name>_mean``/``_std``/``_lower``/
``_upper`` with its fidelity and unit in the name, the domain flag and stage, an
``error`` column, and the model's provenance in ``model_name``/``model_sha256``/
``nestedae_version``). Exit code 0 when at least one row was predicted (failed
rows are counted in one line on stderr), 1 when every row failed, 2 for an
error that stops the run (missing column, unreadable input, unwritable output).

``--report FILE.html``: a self-contained HTML report of the prediction (chain,
intervals, domain, attributions, provenance; :mod:`nestedae_core.report`).
"""
from __future__ import annotations

import argparse
import sys

from ..api import DECOMPOSITION, DECOMPOSITION_MEANING, column_label as label, column_unit as unit, fidelity_label
from ._common import load_model, named, print_json, print_table, uncertainty_text

def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="predict band gaps -> PCE for a composition",
                       description="Predict every stage of the chain (band gaps in eV, named measured/PBE/HSE, then PCE in %) "
                                   "with the prediction interval (or, without calibration, the fold models' disagreement).")
    p.add_argument("formula", nargs="?", help="composition, e.g. MAPbI3 or Cs0.05FA0.79MA0.16PbBr0.51I2.49 (or use --csv)")
    p.add_argument("--etl", help="ETL stack (default: the most common in the training data)")
    p.add_argument("--htl", help="HTL stack (default: the most common in the training data)")
    p.add_argument("--phase", help="crystal phase of the DFT gaps: Cubic, Tetra, Ortho or Hex (default: the model's, cubic)")
    p.add_argument("--model", help="a saved model's name, a model bundle directory, or a shipped model: measured-default (the default) or paper-default")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--latents", action="store_true", help="also print each stage's latent values (text output; JSON always has them)")
    p.add_argument("--report", metavar="FILE.html", help="also write a self-contained HTML report (chain, intervals, attributions, model)")
    add_batch_arguments(p, "predicted")
    p.set_defaults(func=run)


def add_batch_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """The batch options shared by predict and explain."""
    g = p.add_argument_group("batch (a CSV of queries in, a CSV out)")
    g.add_argument("--csv", metavar="IN", help=f"CSV with one query per row; every row is {what} into --out")
    g.add_argument("--formula-column", metavar="COL", default="formula", help="column of IN holding the formula (default: formula)")
    g.add_argument("--etl-column", metavar="COL", help="column of IN holding the ETL stack (blank cells: the most common stack)")
    g.add_argument("--htl-column", metavar="COL", help="column of IN holding the HTL stack (blank cells: the most common stack)")
    g.add_argument("--out", metavar="OUT", help="output CSV (written only when complete)")


def check_batch_arguments(args: argparse.Namespace, single_only: tuple[str, ...]) -> bool:
    """True for a batch run; raises InputError for a mix of single-query and batch options."""
    from ..api import InputError

    if args.csv is None:
        if args.out is not None:
            raise InputError("--out applies only with --csv; give --csv IN or drop --out")
        if args.formula is None:
            raise InputError("give a formula (e.g. MAPbI3) or --csv IN --out OUT")
        if args.etl_column or args.htl_column:
            raise InputError("--etl-column and --htl-column apply only with --csv; use --etl/--htl for one formula")
        return False
    if args.formula is not None:
        raise InputError("give either a formula or --csv, not both")
    if args.out is None:
        raise InputError("--csv needs --out OUT, the output CSV")
    used = [o for o in single_only if getattr(args, o.lstrip("-").replace("-", "_"), None)]
    if used:
        raise InputError(f"{', '.join(used)} apply only to a single formula; in a batch use --etl-column/--htl-column and the output CSV")
    return True


def finish_batch(summary, out: str, verb: str) -> int:  # type: ignore[no-untyped-def]
    """Report a batch run: stdout one line, stderr one line when rows failed; the exit code (0, or 1 when every row failed)."""
    print(f"{verb} {summary.succeeded} of {summary.rows} rows into {out}")
    if summary.failed:
        print(f"nestedae: {summary.message()}", file=sys.stderr)
    return 1 if summary.rows and summary.succeeded == 0 else 0


def run(args: argparse.Namespace) -> int:
    from ..api import DECOMPOSITION_KEY, NO_DECOMPOSITION_NOTE, NO_MEASURED_GAP_NOTE, bandgaps, predict_composition

    batch = check_batch_arguments(args, ("--etl", "--htl", "--phase", "--json", "--report"))
    model = load_model(args.model)
    if batch:
        from ..api import BatchColumns, predict_csv

        cols = BatchColumns(args.formula_column, args.etl_column, args.htl_column)
        return finish_batch(predict_csv(model, args.csv, args.out, cols), args.out, "predicted")
    res = predict_composition(model, args.formula, etl=args.etl, htl=args.htl, categorical=phase_input(model, args.phase))
    if args.report:
        write_prediction_report(model, res, args.report)
    if args.json:
        print_json(res.to_json())
        return 0
    print(f"composition: {res.formula}")
    for col, val in res.categorical.items():
        note = " (default: most common in the training data)" if col in res.defaulted else ""
        print(f"{col.split('_')[0]}: {val}{note}")
    rows = []
    for t in lead_with_measured_gap(res.targets.values()):
        digits = 2 if t["unit"] == "%" else 3
        rows.append([t["stage"], named(t["label"], t["fidelity"], t.get("phase")), f"{t['mean']:.{digits}f}", uncertainty_text(t, digits),
                     f"{t['disagreement']:.{digits}f}", t["unit"]])
    if bandgaps(res) and not any(t["key"] == DECOMPOSITION_KEY for t in res.targets.values()):
        rows.append(["dft", label(DECOMPOSITION), NO_DECOMPOSITION_NOTE.split(":")[0], "", "", unit(DECOMPOSITION)])
    print_table(rows, ["stage", "property", "mean", "uncertainty", "model disagreement (sd)", "unit"])
    if any(t["key"] == DECOMPOSITION_KEY for t in res.targets.values()):
        print(f"note: decomposition energy = {DECOMPOSITION_MEANING}")
    gaps = bandgaps(res)
    if gaps and "measured" not in gaps:
        print(f"note: {NO_MEASURED_GAP_NOTE.replace('see bandgap_pbe_eV', 'its band gap is ' + ' and '.join(fidelity_label(g) for g in gaps))} "
              "(a DFT gap, not what a film or device shows)")
    if not any(t["lower"] is not None for t in res.targets.values()):
        print(f"note: this model has no calibrated prediction interval; ± is the disagreement of its {model.members} "
              "fold models, not an error bar")
    explained = []  # stages whose reason is already printed on their own line
    for stage, ok in res.stage_in_domain.items():
        why = res.domain_reasons.get(stage, "").partition(": ")[2]  # the reason after "outside the training data of stage 'x'"
        print(f"{stage}: {'inside' if ok else 'OUTSIDE'} the training domain (distance {res.domain_distance[stage]:.2f})"
              + (f": {why}" if not ok and why else ""))
        if not ok and why:
            explained.append(stage)
    if not res.in_domain:
        where = f" (stage {', '.join(explained)}: reasons above)" if explained else ""
        print(f"warning: the query lies outside the training domain{where}; treat the prediction as an extrapolation")
        if not explained:
            print(f"  {res.domain_message}")
    if getattr(args, "latents", False):
        for stage, z in res.latents.items():
            print(f"{stage} latents: " + " ".join(f"{v:+.3f}" for v in z))
    return 0


def phase_input(model, phase: str | None) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
    """``--phase`` as a categorical input of ``model`` (``{"phase": "Tetra"}``; None when not given). Accepts a
    phase value or its name in any case (``tetra``, ``tetragonal``); an unknown one, or a model without a phase
    input, raises :class:`~nestedae_core.errors.InputError` naming what it takes."""
    from ..api import PHASE, PHASE_NAMES, InputError

    if phase is None:
        return None
    names = [c for p in model.prep for c in p.categorical_columns]
    if PHASE not in names:
        raise InputError("--phase: this model takes no crystal phase (its DFT data has none); drop --phase")
    known = model.categories(PHASE)
    wanted = phase.strip().lower()
    for value in known:
        if wanted in (value.lower(), PHASE_NAMES.get(value, value).lower()):
            return {PHASE: value}
    raise InputError(f"--phase {phase!r} is not a phase of this model; give one of: {', '.join(known)}")


def lead_with_measured_gap(targets):  # type: ignore[no-untyped-def]
    """The targets of a prediction with the measured-scale band gap first, then the others in chain order."""
    items = list(targets)
    return [t for t in items if t.get("fidelity") == "measured"] + [t for t in items if t.get("fidelity") != "measured"]


def write_prediction_report(model, res, path: str, attributions=None) -> None:  # type: ignore[no-untyped-def]
    """Write the HTML report of a prediction (with the attributions of the band gaps and PCE unless given)."""
    from ..api import explain_outputs, prediction_report, query_frame, write_report

    if attributions is None:
        frame = query_frame(model, [res.formula], categorical=res.categorical)
        attributions = explain_outputs(model, frame)
    write_report(path, prediction_report(res, attributions=attributions))
    print(f"report written to {path}", file=sys.stderr)
