"""``nestedae design``: from a target to compositions (a gap window, the highest PCE, Pb-free ...), ranked with intervals."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import check_output_file, print_table, whole_number, write_json_file

#: Short names the command accepts for schema keys.
SHORT_NAMES = {"pce": "pce_percent", "voc": "voc_V", "jsc": "jsc_mA_per_cm2", "ff": "ff", "gap": "bandgap_eV",
               "decomposition": "decomposition_eV_per_fu"}

_evals = whole_number(10, "evaluation budget", "a design needs at least 10 model evaluations")
_count = whole_number(1)


def _number(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return v


def _ions(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("design", help="inverse design: compositions that reach a target (gap window, best PCE, Pb-free ...)",
                       description="Search compositions for the best predicted ones under constraints that hold exactly "
                                   "(site fractions on a lattice, summing to one), with a maintained optimiser (BoTorch, Optuna, pymoo). Every "
                                   "proposal carries its intervals, its domain verdict per stage and the nearest measured "
                                   "composition. Proposals outside the model's domain are listed apart, never ranked.")
    p.add_argument("--gap", nargs=2, type=_number, metavar=("LO", "HI"), help="keep the predicted measured band gap in [LO, HI] eV")
    p.add_argument("--target-gap", type=_number, metavar="EV", help="objective: measured band gap as close as possible to EV")
    p.add_argument("--maximize", action="append", metavar="Q", help=f"objective to maximise: {', '.join(SHORT_NAMES)} or a schema key (default pce)")
    p.add_argument("--minimize", action="append", metavar="Q", help="objective to minimise (e.g. decomposition)")
    p.add_argument("--pessimistic", action="store_true", help="maximise the lower end of the interval instead of the mean")
    p.add_argument("--a-ions", type=_ions, default=["Cs", "FA", "MA"], help="allowed A-site ions, comma separated (default Cs,FA,MA)")
    p.add_argument("--b-ions", type=_ions, default=["Pb", "Sn"], help="allowed B-site ions (default Pb,Sn)")
    p.add_argument("--x-ions", type=_ions, default=["Br", "I"], help="allowed X-site ions (default Br,I)")
    p.add_argument("--max-ions", type=_count, default=3, help="at most this many ions per site (default 3)")
    p.add_argument("--pb-free", action="store_true", help="no Pb at all")
    p.add_argument("--max-pb", type=_number, metavar="F", help="at most this Pb fraction of the B site")
    p.add_argument("--resolution", type=_number, default=0.01, help="fraction step, 1/m (default 0.01; e.g. 0.015625 for 1/64)")
    p.add_argument("--tolerance-factor", nargs=2, type=_number, metavar=("LO", "HI"), help="keep the Goldschmidt tolerance factor in [LO, HI]")
    p.add_argument("--octahedral-factor", nargs=2, type=_number, metavar=("LO", "HI"), help="keep the octahedral factor in [LO, HI]")
    p.add_argument("--allow-out-of-domain", action="store_true", help="let the optimiser pursue candidates a stage flags (still shown apart)")
    p.add_argument("--etl", help="fixed electron-transport stack (default: the model's most common)")
    p.add_argument("--htl", help="fixed hole-transport stack (default: the model's most common)")
    p.add_argument("--max-evals", type=_evals, default=500, help="model evaluations (distinct candidates; default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimiser", default="auto", help="auto (default: BoTorch Gaussian processes on the lattice, then TPE, on small problems; TPE on large ones), tpe, "
                   "bo (as auto on one objective), gp (Optuna's Gaussian process), ga (pymoo genetic algorithm) or random")
    p.add_argument("--problem", metavar="FILE", help="a DesignProblem as JSON (the options above then refine nothing: use one or the other)")
    p.add_argument("--model", help="a saved model's name, a model bundle directory, or a shipped model (default measured-default)")
    p.add_argument("--top", type=_count, default=10, help="proposals to print (default 10)")
    p.add_argument("--json", metavar="FILE", help="write the summary and every proposal as JSON (atomically)")
    p.add_argument("--csv", metavar="FILE", help="write the proposals as CSV, best first (atomically)")
    p.add_argument("--report", metavar="FILE", help="write a self-contained HTML report")
    p.add_argument("--data-dir", help="folder with the dataset files (for the nearest measured compositions)")
    p.set_defaults(func=run)


def _quantity(name: str) -> str:
    return SHORT_NAMES.get(name, name)


def problem_from_args(args: argparse.Namespace) -> Any:
    """The :class:`DesignProblem` the options describe (or the ``--problem`` file's)."""
    from pydantic import ValidationError

    from ..api import DesignProblem, InputError

    if args.problem:
        return DesignProblem.from_file(args.problem)
    try:
        return _problem(args)
    except ValidationError as exc:
        raise InputError(_first_error(exc)) from None


def _problem(args: argparse.Namespace) -> Any:
    from ..api import DesignProblem, Objective, QuantityRange

    objectives: list[Objective] = []
    stat = "lower" if args.pessimistic else "mean"
    for q in args.maximize or ([] if (args.minimize or args.target_gap is not None) else ["pce"]):
        objectives.append(Objective(quantity=_quantity(q), goal="maximize", statistic=stat))
    for q in args.minimize or []:
        objectives.append(Objective(quantity=_quantity(q), goal="minimize"))
    if args.target_gap is not None:
        objectives.append(Objective(quantity="bandgap_eV", goal="target", target=args.target_gap))
    constraints = []
    for flag, quantity in ((args.gap, "bandgap_eV"), (args.tolerance_factor, "tolerance_factor"), (args.octahedral_factor, "octahedral_factor")):
        if flag is not None:
            constraints.append(QuantityRange(quantity=quantity, minimum=flag[0], maximum=flag[1]))
    return DesignProblem(objectives=objectives, constraints=constraints, a_ions=args.a_ions, b_ions=args.b_ions, x_ions=args.x_ions,
                         max_ions=args.max_ions, pb_free=args.pb_free, max_pb=args.max_pb, resolution=args.resolution,
                         in_domain=not args.allow_out_of_domain, etl=args.etl, htl=args.htl, max_evals=args.max_evals, seed=args.seed)


def _first_error(exc: Any) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def run(args: argparse.Namespace) -> int:
    from ..api import SAMPLERS, InputError, measured_reference, model_provenance, proposal_table, run_design
    from ._common import load_model

    if args.optimiser not in SAMPLERS:
        raise InputError(f"--optimiser {args.optimiser}: choose one of {', '.join(SAMPLERS)}")
    problem = problem_from_args(args)
    for path, flag in ((args.json, "--json"), (args.csv, "--csv"), (args.report, "--report")):
        check_output_file(path, flag)
    model = load_model(args.model)
    bar = _Progress()
    result = run_design(model, problem, sampler=args.optimiser, progress=bar)
    bar.close()
    table = proposal_table(result, measured=measured_reference(args.data_dir))
    provenance = model_provenance(model)
    if args.csv:
        from ..api import atomic_open, write_csv

        with atomic_open(args.csv, "w", newline="") as fh:
            write_csv(table, fh, index=False)
    if args.json:
        write_json_file({**result.summary(), "model": provenance,
                         "proposals": table.astype(object).where(table.notna(), None).to_dict("records")}, args.json)
    if args.report:
        from ..api import design_report, write_report

        write_report(args.report, design_report(result, table, provenance=provenance))
    _print(result, table, args.top)
    return 0


class _Progress:
    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=None, desc="design", unit="eval", file=sys.stderr, leave=False, disable=not sys.stderr.isatty())

    def __call__(self, done: int, total: int, best: float | None) -> None:
        self.bar.total = total
        self.bar.n = done
        if best is not None:
            self.bar.set_postfix(best=f"{best:.3g}")
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _print(result: Any, table: Any, top: int) -> None:
    import pandas as pd

    s = result.summary()
    print(f"design: {'; '.join(o.label for o in result.problem.objectives)}"
          + (f" subject to {'; '.join(c.label for c in result.problem.constraints)}" if result.problem.constraints else ""))
    print(f"{result.evaluations} model evaluations ({result.sampler}, seed {result.problem.seed}, {result.elapsed_s:.1f} s): "
          f"{s['ranked']} proposals in domain, {s['out_of_domain']} out of domain (listed apart)")
    for note in result.notes:
        print(f"note: {note}")
    shown = table.head(top)
    qs = [c[:-5] for c in shown.columns if c.endswith("_mean")]
    head = ["rank", "formula", *[f"{q} (interval)" for q in qs if q in ("bandgap_eV", "pce_percent")], "domain", "P(beats next)", "nearest measured"]
    rows = []
    for _, r in shown.iterrows():
        cells: list[Any] = ["—" if pd.isna(r["rank"]) else int(r["rank"]), r["formula"]]
        for q in ("bandgap_eV", "pce_percent"):
            if q in qs:
                lo, hi = r.get(f"{q}_lower"), r.get(f"{q}_upper")
                interval = f" ({lo:.3g}–{hi:.3g})" if lo is not None and hi is not None and lo == lo else ""
                cells.append(f"{r[f'{q}_mean']:.3g}{interval}")
        cells.append("in" if r["in_domain"] else f"out ({r['domain_stage']})")
        cells.append("" if r["p_beats_next"] != r["p_beats_next"] else f"{r['p_beats_next']:.2f}")
        cells.append("" if not r["nearest_formula"] else f"{r['nearest_formula']} (gap {r['nearest_bandgap_eV']:.3g} eV)"
                     if r["nearest_bandgap_eV"] == r["nearest_bandgap_eV"] and r["nearest_bandgap_eV"] is not None else str(r["nearest_formula"]))
        rows.append(cells)
    print_table(rows, head)
