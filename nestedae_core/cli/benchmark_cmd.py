"""``nestedae benchmark``: accuracy against baselines on identical folds, the paper's scoring, calibration, speed."""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from ._common import check_output_file, print_json, print_table, whole_number, write_json_file


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid level '{text}': give a number between 0 and 1, e.g. 0.9") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"invalid level {text}: it must be between 0 and 1 (exclusive), e.g. 0.9")
    return value


def _device(text: str) -> str:
    """``--device``: checked when parsed (one line naming the devices present), not after minutes of baselines."""
    if text.strip().lower() == "auto":
        return "auto"
    from ..api import InputError, resolve_device

    try:
        resolve_device(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _number(minimum: float, strict: bool, what: str) -> Any:
    """An argparse ``type`` accepting finite numbers above (``strict``) or at least ``minimum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} '{text}': give a number") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"invalid {what} {text}: it must be {'above' if strict else 'at least'} {minimum:g}")
        return value

    return parse


_nonnegative = _number(0.0, False, "weight decay")
_positive_float = _number(0.0, True, "bound (eV)")
_folds = whole_number(2, "fold count", "at least 2 folds are needed")
_positive = whole_number(1)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from ..api import MODELS, TASKS

    p = sub.add_parser("benchmark", help="measure accuracy (vs baselines, same folds), interval calibration or speed", description="Benchmarks whose figures are measured, not asserted.")
    bsub = p.add_subparsers(dest="benchmark_kind", metavar="KIND")
    acc = bsub.add_parser("accuracy", help="NestedAE vs baselines on identical folds (grouped split first, random beside it)",
                          description="Every model on identical folds. Without --split both splits run: grouped (the headline: "
                                      "by composition for band gaps, by recipe for devices) and random, in one report.")
    acc.add_argument("--split", choices=["family", "cluster", "grouped", "random"],
                     help="run one split only (default: grouped and random, grouped first). family: each fold holds out whole ion "
                          "families (lead-free, Sn-Pb alloys, Cs lead halides, Br-rich, MA/FA iodides); cluster: compositions "
                          "within 0.05 (largest site-fraction difference) of each other are one group")
    acc.add_argument("--folds", type=_folds, help="folds (default 5)")
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--task", action="append", help=f"task(s) to run: {', '.join(TASKS)} (default all)")
    acc.add_argument("--dataset", help="band-gap dataset: mhp-pbe-paper (task bandgap-paper) or mhp-pbe (task bandgap-pbe); PCE always runs unless --task is given")
    acc.add_argument("--model", action="append", help=f"restrict to model(s): {', '.join(MODELS)}")
    acc.add_argument("--epochs", type=_positive, help="override NestedAE epochs (quick runs)")
    acc.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    acc.add_argument("--data-dir")
    acc.add_argument("--jobs", type=_positive, help="worker processes running NestedAE chains and baseline folds in parallel "
                                                     "(default: the CPU cores, here %d); results are the same for any count" % _cores())
    acc.add_argument("--quick", action="store_true", help="a first look: 3 grouped folds, 150 NestedAE epochs, models nestedae, mean, "
                                                          "ridge, hist_gradient_boosting (options given explicitly win)")
    acc.add_argument("--nested", action="store_true", help="also run nestedae-nested on the measured-gap task: the film stage's weight "
                                                           "decay and correction bound chosen in each outer fold by an inner cluster CV "
                                                           "of its training rows only, then refitted there (the baselines keep their settings)")
    acc.add_argument("--nested-l2", type=_nonnegative, nargs="+", metavar="L2", help="weight decays compared by --nested (default 1e-3 1e-2 1e-1)")
    acc.add_argument("--nested-bound", type=_positive_float, nargs="+", metavar="EV",
                     help="correction bounds (eV) compared by --nested (default 0.25 0.5)")
    acc.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    acc.set_defaults(func=run_accuracy)
    cal = bsub.add_parser("calibration", help="observed coverage and width of the prediction intervals on grouped folds",
                          description="Nested, grouped: for each outer fold the chain is cross-validated on the rest (its CV+ "
                                      "intervals calibrated there) and predicts the held-out fold; coverage counts the held-out "
                                      "values inside their interval, per stage and target.")
    cal.add_argument("--json", metavar="FILE", required=True, help="write the report to FILE (atomically)")
    cal.add_argument("--preset", default="measured", help="chain preset to calibrate (default: measured)")
    cal.add_argument("--folds", type=_folds, default=5, help="outer (and inner) grouped folds (default 5)")
    cal.add_argument("--split", choices=["grouped", "cluster", "family"], default="grouped",
                     help="outer split shared by the film and device stages, keyed on the canonical composition: grouped "
                          "(by composition, default), cluster (compositions within 0.05 in site fractions) or family "
                          "(whole ion families held out)")
    cal.add_argument("--inner-split", choices=["grouped", "cluster", "family"], default="grouped",
                     help="split of each outer fold's cross-validation, whose out-of-fold residuals calibrate the intervals: "
                          "grouped (default), cluster (no composition within 0.05 of a calibration row in its fold model's "
                          "training) or family")
    cal.add_argument("--level", type=_level, default=0.9, help="interval level, between 0 and 1 (default 0.9)")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--epochs", type=_positive, help="override every stage's epochs (quick runs)")
    cal.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    cal.add_argument("--data-dir")
    cal.set_defaults(func=run_calibration)
    pap = bsub.add_parser("paper-score", help="a bundle's out-of-fold PCE scored as the NestedAE paper did, beside our row-weighted MAE",
                          description="The paper averaged last-epoch validation MAEs over batches of 100 rows (a short last batch "
                                      "counts as much as a full one). This scores the same out-of-fold predictions both ways.")
    pap.add_argument("--bundle", default="paper-default", help="bundle directory or shipped bundle name (default paper-default)")
    pap.add_argument("--batch", type=_positive, default=100, help="validation batch size of the paper's scoring (default 100)")
    pap.add_argument("--data-dir")
    pap.add_argument("--json", metavar="FILE", help="write the result to FILE (atomically)")
    pap.set_defaults(func=run_paper_score)
    trd = bsub.add_parser("trends", help="measured-gap orderings a chemist checks, against literature values, with the domain verdict",
                          description="Halide order Cl > Br > I (MA, FA, Cs), FAPbI3 < MAPbI3 < CsPbI3, FA(1-x)Cs(x)PbI3, "
                                      "MAPb(I(1-x)Br(x))3 and MAPb(1-x)Sn(x)I3 scans: each predicted measured gap beside its "
                                      "literature value (checking only, never training), the relation's verdict and the "
                                      "per-stage domain verdict. A silent miss: a miss on a composition inside the domain. "
                                      "Exit status 0 whatever the table shows; 2 on bad arguments.")
    trd.add_argument("--model", help="a saved model's name, a model bundle directory, or a shipped model (default: measured-default)")
    trd.add_argument("--level", type=_level, default=0.9, help="prediction interval level, between 0 and 1 (default 0.9)")
    trd.add_argument("--json", metavar="FILE", help="write the table to FILE (atomically)")
    trd.set_defaults(func=run_trends)
    spd = bsub.add_parser("speed", help="seconds: 5-fold training of both chains, predictions, cold predict/explain vs import torch",
                          description="Speed figures measured on this machine in one run (see nestedae_core.benchmark.speed); "
                                      "cold commands run as fresh processes, alternating with 'import torch'. "
                                      "With --dashboard: the dashboard's speed instead (a cold server's first page, then every "
                                      "page warm, in headless Chromium; needs a checkout's streamlit_app.py and playwright).")
    spd.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    spd.add_argument("--data-dir")
    spd.add_argument("--epochs", type=_positive, help="override every stage's epochs (quick runs; default: the presets')")
    spd.add_argument("--preset", action="append", choices=["paper", "measured"], help="chain(s) to train (default both)")
    spd.add_argument("--repeats", type=_positive, default=3, help="rounds of the cold commands, best-of count of predictions (default 3)")
    spd.add_argument("--no-cold", action="store_true", help="skip the cold predict/explain commands")
    spd.add_argument("--cold-only", action="store_true", help="only the cold commands against import torch (no training)")
    spd.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    dash = spd.add_argument_group("the dashboard (--dashboard)")
    dash.add_argument("--dashboard", action="store_true", help="time the dashboard instead: a cold server's first page (target "
                                                               "<= 5 s), then every page warm (target <= 2 s each)")
    dash.add_argument("--app", metavar="PATH", help="the dashboard's streamlit_app.py or its folder (default: ./streamlit_app.py, "
                                                    "else the checkout holding this package)")
    dash.add_argument("--page", action="append", metavar="TITLE", help="time only this page warm (a menu title, e.g. Data; repeatable; "
                                                                      "default every page)")
    dash.add_argument("--chromium", metavar="PATH", help="Chromium's executable (default /usr/bin/chromium when present, else playwright's own)")
    dash.add_argument("--timeout", type=_positive, default=120, help="seconds the server may take to start, and a page to settle (default 120)")
    spd.set_defaults(func=run_speed)
    des = bsub.add_parser("design", help="optimisers compared on a design problem whose optimum is known (an enumerated grid)",
                          description="Cs/FA/MA-Pb-Br/I at 0.05 steps (4851 compositions) predicted once; each optimiser runs the same "
                                      "problem for several seeds; the table gives the model evaluations each needs to come within 1 %% "
                                      "of the grid optimum, the hypervolume against evaluations on a two-objective problem (PCE, gap "
                                      "close to 1.70 eV) against the grid's Pareto front, and the time of a 14-ion, 500-evaluation design.")
    des.add_argument("--model", help="model bundle or name (default measured-default)")
    des.add_argument("--seeds", type=_positive, default=10, help="seeds per optimiser (default 10)")
    des.add_argument("--max-evals", type=_positive, default=2000, help="budget per run (default 2000)")
    des.add_argument("--optimiser", action="append", help="optimiser(s) to compare (default: auto, tpe, ga, random)")
    des.add_argument("--timing-evals", type=whole_number(0), default=500, help="evaluations of the 14-ion timing run (default 500; 0 skips it)")
    des.add_argument("--hv-evals", type=_positive, nargs="*", default=[20, 50, 100, 200],
                     help="evaluations after which the two-objective hypervolume is reported (default 20 50 100 200; none skips it)")
    des.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    des.set_defaults(func=run_design_benchmark_cmd)
    exp = bsub.add_parser("explainers", help="each explainer's error against the exact Shapley values of the synthetic set, with its time",
                          description="On the synthetic data set the true y1 function is known: its exact Shapley values "
                                      "(interventional and observational, all 2^F coalitions) are the ground truth. Each explainer "
                                      "runs on the true function (its own error) and on a trained model (model + explainer error).")
    exp.add_argument("--task", action="append", choices=["independent", "correlated"], help="task(s) (default both)")
    exp.add_argument("--rows", type=_positive, default=20, help="materials explained (default 20)")
    exp.add_argument("--epochs", type=_positive, default=300, help="training epochs of the model (default 300)")
    exp.add_argument("--folds", type=_folds, default=5)
    exp.add_argument("--draws", type=_positive, default=128, help="ground-truth Gaussian draws per coalition (default 128)")
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--no-train", action="store_true", help="score the explainers on the true function only")
    exp.add_argument("--json", metavar="FILE", help="write the report to FILE (atomically)")
    exp.set_defaults(func=run_explainers)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _cores() -> int:
    """CPU cores this process may use (the default of --jobs)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _StepBar:
    """Progress of a benchmark on stderr: a bar (task, model, fold) on a terminal, else one line per finished step."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tty = sys.stderr.isatty()

    def __call__(self, done: Any) -> None:
        if not self.tty:
            print(f"done {done}", file=sys.stderr, flush=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=done.total, file=sys.stderr, unit="step", dynamic_ncols=True)
        self.bar.set_description_str(done.step.label(), refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _finish(report: dict[str, Any], path: str | None, show: Any) -> int:
    """Write ``report`` to ``path`` (atomically) when given, print it with ``show``, say where it went; exit code 0."""
    if path:
        write_json_file(report, path)
    show(report)
    if path:
        print(f"\nwrote {path}")
    return 0


def _say(msg: str) -> None:
    print(f"running {msg}", file=sys.stderr, flush=True)


def _num(x: Any, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _print_split(report: dict[str, Any]) -> None:
    from ..api import DataError, best_baseline, paired_comparison

    for task, entry in report["tasks"].items():
        print(f"\n{task}: {entry['description']} ({entry['n']} rows, {report['folds']}-fold {report['split']}, seed {report['seed']})")
        for note in entry.get("notes", []):
            print(f"  note: {note}")
        if entry.get("fold_families"):
            print("  held out: " + "; ".join(f"fold {k + 1}: {', '.join(f)}" for k, f in enumerate(entry["fold_families"])))
        rows = []
        for name, m in sorted(entry["models"].items(), key=lambda kv: kv[1]["mae"]):
            rows.append([name, f"{m['mae']:.4f} ± {m['mae_std']:.4f}", _num(m.get("mae_paper_batches"), ".4f"), f"{m['rmse']:.4f}", f"{m['r2']:.3f}",
                         " ".join(f"{f['mae']:.3f}" for f in m["folds"]), f"{m['seconds']:.1f}"])
        if rows:
            print_table(rows, ["model", f"MAE ({entry['unit'] or 'dimensionless'})", "paper-scored MAE", "RMSE", "R²", "fold MAEs", "seconds"])
        if "selection" in entry["models"].get("nestedae-nested", {}):
            _print_selection(entry["models"]["nestedae-nested"])
        for ours, who in (("nestedae", "NestedAE"), ("nestedae-nested", "NestedAE (nested)")):
            if ours not in entry["models"] or len(entry["models"]) < 2:
                continue
            try:  # the best baseline: never NestedAE or a variant of it
                c = paired_comparison(entry["models"], ours=ours, baseline=best_baseline(entry["models"]))
            except DataError:
                continue
            print(f"  {who} vs {c.baseline} on the same folds: mean difference {c.mean_difference:+.4f} "
                  f"({who} lower on {c.wins} of {len(c.folds)} folds, paired t-test p = {_num(c.p_value, '.3g')}): {c.verdict}")
    for task, reason in report.get("skipped", {}).items():
        print(f"\n{task}: skipped: {reason}")


def _nested_grid(args: argparse.Namespace) -> dict[str, tuple[float, ...]] | None:
    """The --nested grid from --nested-l2 / --nested-bound (None: the default grid)."""
    from ..api import NESTED_GRID

    if not args.nested_l2 and not args.nested_bound:
        return None
    return {"l2": tuple(args.nested_l2 or NESTED_GRID["l2"]), "bound": tuple(args.nested_bound or NESTED_GRID["bound"])}


def _print_selection(m: dict[str, Any]) -> None:
    """The setting nested CV chose in each outer fold (and what it held out)."""
    print(f"  nestedae-nested: film setting chosen per outer fold by {m['inner_folds']}-fold inner {m['inner_split']} CV "
          f"among {len(m['grid'])} settings (l2 x correction bound, eV):")
    for sel in m["selection"]:
        held = f" ({', '.join(sel['families'])})" if sel.get("families") else ""
        s = sel["setting"]
        print(f"    fold {sel['fold'] + 1}{held}: l2 {s['l2']:g}, bound {s['bound']:g} eV; inner MAE {min(sel['inner_mae']):.4f}, "
              f"outer MAE {sel['outer_mae']:.4f}")


def run_accuracy(args: argparse.Namespace) -> int:
    from ..api import QUICK, ConfigError, accuracy_benchmark, split_reports

    tasks = args.task
    if args.dataset:
        mapping = {"mhp-pbe-paper": "bandgap-paper", "mhp-pbe": "bandgap-pbe"}
        if args.dataset not in mapping:
            raise ConfigError(f"--dataset must be one of {', '.join(mapping)}")
        tasks = [mapping[args.dataset], "pce-devices"] if not tasks else tasks
    check_output_file(args.json)  # before the run: a bad path fails at once
    quick = QUICK if args.quick else {}
    bar = _StepBar()
    try:
        report = accuracy_benchmark(
            tasks,
            split=args.split or quick.get("split"),
            folds=args.folds or quick.get("folds", 5),
            seed=args.seed,
            models=args.model or (list(quick["models"]) if quick else None),
            data_dir=args.data_dir,
            epochs=args.epochs or quick.get("epochs"),
            device=args.device,
            jobs=args.jobs or _cores(),
            progress=bar,
            nested=args.nested,
            nested_grid=_nested_grid(args),
        )
    finally:
        bar.close()
    if args.json:
        write_json_file(report, args.json)
    for split, sub in split_reports(report).items():
        if len(split_reports(report)) > 1:
            print(f"\n=== {split} folds{' (headline)' if split == 'grouped' else ' (beside it: rows of a group may sit in both training and validation)'} ===")
        _print_split(sub)
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


def run_calibration(args: argparse.Namespace) -> int:
    from ..api import calibration_benchmark

    check_output_file(args.json)  # before the run: a bad path fails at once
    report = calibration_benchmark(args.preset, split=args.split, folds=args.folds, level=args.level, seed=args.seed, epochs=args.epochs,
                                   data_dir=args.data_dir, device=args.device, progress=_say, inner_split=args.inner_split)
    write_json_file(report, args.json)
    level = report["level"]
    print(f"\n{report['preset']}: {100 * level:g} % prediction intervals, {report['folds']} outer {report['split']} folds, "
          f"calibrated on inner {report.get('inner_split', 'grouped')} folds (seed {report['seed']})")
    target = report.get("coverage_target")
    rows = []
    for q in report["quantities"]:
        name = q["label"] if not q.get("fidelity") or q["fidelity"].lower() in q["label"].lower() else f"{q['label']} ({q['fidelity']})"
        ok = "" if not target or not math.isfinite(q["coverage"]) else ("yes" if target[0] <= q["coverage"] <= target[1] else "no")
        parts = []
        for part in ("in_domain", "flagged"):
            p = q.get(part) or {}
            parts.append(f"{_num(100 * p['coverage'], '.1f')} % / {_num(p['mean_width'], '.4g')} (n={p['n']})" if p.get("n") else "-")
        rows.append([q["stage"], name, q["n"], _num(100 * q["coverage"], ".1f"), f"{_num(q['mean_width'], '.4g')} {q['unit']}".rstrip(),
                     *parts, " ".join(_num(100 * f["coverage"], ".0f") for f in q["folds"]), ok])
    header = ["stage", "quantity", "held-out values", "coverage (%)", "mean width", "in domain: coverage / width",
              "flagged: coverage / width", "coverage per fold (%)"]
    header.append(f"in {100 * target[0]:g}-{100 * target[1]:g} %" if target else "")
    print_table(rows, header)
    print(f"\nwrote {args.json}")
    return 0


def run_paper_score(args: argparse.Namespace) -> int:
    from ..api import bundle_paper_scoring

    check_output_file(args.json)  # before the run: a bad path fails at once
    r = bundle_paper_scoring(args.bundle, batch=args.batch, data_dir=args.data_dir)
    if args.json:
        write_json_file(r, args.json)
    print(f"{r['bundle']}: out-of-fold {r['target']} of stage '{r['stage']}' ({r['n']} rows, {r['folds']}-fold {r['split']})")
    rows = [["MAE over rows (ours)", f"{r['mae_rows']:.4f}", " ".join(f"{x:.3f}" for x in r["fold_mae_rows"])],
            [f"paper's scoring (batches of {r['batch']})", f"{r['mae_paper_batches']:.4f}", " ".join(f"{x:.3f}" for x in r["fold_mae_paper_batches"])]]
    print_table(rows, ["scoring", "MAE", "per fold"])
    print("The same predictions, scored two ways: the difference is the scoring (a short last batch counts as much as a full one), not a better model.")
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


def run_trends(args: argparse.Namespace) -> int:
    from ..api import NestedAEModel, trends_benchmark
    from ._common import load_model

    check_output_file(args.json)  # before the run: a bad path fails at once
    report = trends_benchmark(NestedAEModel.from_model(load_model(args.model)), level=args.level)
    if args.json:
        write_json_file(report.to_json(), args.json)
    print_trends(report)
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


def print_trends(report: Any) -> None:
    """The trends report as a table (eV), references below it, then one summary line."""
    from ..api import LITERATURE_TOLERANCE_EV

    refs: dict[str, int] = {}
    rows = []
    level = f"{100 * report.level:g} % interval" if report.level else "interval"
    for r in report.rows.to_dict(orient="records"):
        lit = ""
        if math.isfinite(r["literature_bandgap_eV"]):
            ref = refs.setdefault(r["citation"], len(refs) + 1)
            spread = "" if r["literature_low_eV"] == r["literature_high_eV"] else f" ({r['literature_low_eV']:.2f}-{r['literature_high_eV']:.2f})"
            lit = f"{r['literature_bandgap_eV']:.2f}{spread} [{ref}]"
        pred = f"{r['bandgap_eV_mean']:.3f}"
        if math.isfinite(r["bandgap_eV_lower"]):
            pred += f" [{r['bandgap_eV_lower']:.2f}, {r['bandgap_eV_upper']:.2f}]"
        err = "" if not math.isfinite(r["error_eV"]) else f"{r['error_eV']:+.3f}" + (" MISS" if r["literature_miss"] else "")
        reason = str(r["domain_reason"]).split(";")[0].split("': ", 1)[-1]  # the stage is named already
        domain = "in" if r["in_domain"] else f"OUT ({r['domain_stage']}): {reason}"
        rows.append([r["check"], r["formula"], lit, pred, err, "pass" if r["relation_passed"] else "FAIL", domain,
                     "SILENT MISS" if r["silent_miss"] else ""])
    print(f"measured band gap (eV) of model '{report.model}' against orderings and literature values "
          f"(miss: more than {LITERATURE_TOLERANCE_EV:g} eV outside the literature range)")
    print_table(rows, ["check", "composition", "literature (eV) [ref]", f"predicted ({level})", "error (eV)", "relation",
                       "domain (stage: reason)", "silent miss"])
    print()
    print_table([[c["check"], "pass" if c["passed"] else "FAIL", c["detail"], c["flagged"] or "-", "SILENT MISS" if c["silent_miss"] else ""]
                 for c in report.checks.to_dict(orient="records")],
                ["check", "relation", "found", "flagged out of domain", "silent miss"])
    print("\nReferences (literature values are for checking only, never for training):")
    for citation, k in refs.items():
        print(f"  [{k}] {citation}")
    n_fail = int((~report.checks["passed"]).sum())
    silent = sorted(set(report.rows.loc[report.rows["silent_miss"], "formula"]))
    print(f"\n{len(report.checks) - n_fail} of {len(report.checks)} relations pass; "
          f"{int(report.rows['literature_miss'].sum())} literature misses; {report.silent_misses} silent misses "
          f"(rows missing while inside the domain)" + (f": {', '.join(silent)}" if silent else ""))


def run_speed(args: argparse.Namespace) -> int:
    from ..api import speed_benchmark

    check_output_file(args.json)  # before the run: a bad path fails at once
    if args.dashboard:
        return run_dashboard_speed(args)
    report = speed_benchmark(data_dir=args.data_dir, device=args.device, epochs=args.epochs, repeats=args.repeats,
                             presets=() if args.cold_only else tuple(args.preset or ("paper", "measured")), cold=not args.no_cold,
                             progress=_say)
    return _finish(report, args.json, print_speed)


def print_speed(report: dict[str, Any]) -> None:
    """The speed report as tables (seconds)."""
    load = report.get("load_average")
    print(f"speed on {report['machine']['platform']}, torch {report['machine']['torch']}" + (f", load average {load[0]}" if load else ""))
    rows = []
    for name, t in report.get("training", {}).items():
        stages = ", ".join(f"{s} {v:.1f}" for s, v in t["seconds_per_stage"].items())
        maes = "; ".join(f"{s}/{k} {v:.4g} ± {t['mae_sd'][s][k]:.2g}" for s, m in t["mae"].items() for k, v in m.items())
        rows.append([f"5-fold training, {name} chain", f"{t['seconds']:.1f}", f"{t['cpu_seconds']:.1f}", stages, maes])
    if rows:
        print_table(rows, ["what", "seconds", "CPU seconds", "per stage", "MAE (mean ± sd over folds)"])
    rows = [[f"{p['compositions']} compositions through the {name} chain", f"{p['seconds']:.3f}"] for name, p in report.get("predict_throughput", {}).items()]
    if rows:
        print()
        print_table(rows, ["what", "seconds (best)"])
    cold = report.get("cold")
    if cold:
        print()
        rows = []
        for name, label in (("import_torch", "python -c 'import torch'"), ("predict", "nestedae predict MAPbI3"), ("explain", "nestedae explain MAPbI3")):
            c = cold[name]
            rows.append([label, _num(c.get("median_s"), ".2f"), " ".join(f"{v:.2f}" for v in c["runs"]),
                         _num(c.get("excess_over_import_torch_s"), "+.2f") if name != "import_torch" else "",
                         _num(c.get("ratio_to_import_torch"), ".2f") if name != "import_torch" else "",
                         _num(c.get("cpu_median_s"), ".2f"),
                         _num(c.get("cpu_excess_over_import_torch_s"), "+.2f") if name != "import_torch" else "", c.get("error", "")])
        print_table(rows, ["cold command (fresh process)", "median s", "runs", "over import torch (s)", "ratio to import torch",
                           "median CPU s", "CPU over import torch (s)", "error"])


def run_dashboard_speed(args: argparse.Namespace) -> int:
    """``benchmark speed --dashboard``: the dashboard's cold first page and warm pages (seconds)."""
    from ..api import dashboard_seconds

    report = dashboard_seconds(app=args.app, data_dir=args.data_dir, pages=args.page, chromium=args.chromium,
                               timeout_s=float(args.timeout), progress=_say)
    return _finish(report, args.json, print_dashboard_speed)


def print_dashboard_speed(report: dict[str, Any]) -> None:
    """The dashboard's speed as a table (seconds), with the machine, its load average and the targets."""
    m = report["machine"]
    print(f"dashboard speed on {m.get('cpu') or m['platform']} ({m['cpu_count']} CPUs), torch {m['torch']}")
    if "skipped" in report:
        print(f"skipped: {report['skipped']}")
        return
    before, after = report.get("load_average"), report.get("load_average_after")
    if before:
        print(f"load average (1/5/15 min) before {' '.join(f'{x:g}' for x in before)}"
              + (f", after {' '.join(f'{x:g}' for x in after)}" if after else "") + " (others' work slows every figure)")
    targets = report.get("targets", {})
    first, warm_target = targets.get("first_page_s"), targets.get("warm_page_s")

    def verdict(seconds: float, target: float | None) -> str:
        return "" if target is None else ("yes" if seconds <= target else "no")

    rows = [["server healthy (from its start)", f"{report['server_healthy_s']:.2f}", _num(report.get("server_healthy_cpu_s"), ".2f"), "", ""],
            ["first page, cold (from the request)", f"{report['first_page_from_request_s']:.2f}", "", _num(first, "g"),
             verdict(report["first_page_from_request_s"], first)],
            ["first page, cold (from the server's start)", f"{report['first_page_from_server_start_s']:.2f}",
             _num(report.get("first_page_server_cpu_s"), ".2f"), "", ""]]
    rows += [[f"{title}, warm", f"{s:.2f}", "", _num(warm_target, "g"), verdict(s, warm_target)] for title, s in report["warm_page_s"].items()]
    print_table(rows, ["what", "seconds", "server CPU s (total)", "target (s)", "within"])
    if "first_page_browser_task_s" in report or "first_page_scripts" in report:
        print(f"the browser for the first page: main thread busy {_num(report.get('first_page_browser_task_s'), '.2f')} s "
              f"(JavaScript {_num(report.get('first_page_browser_script_s'), '.2f')} s), "
              f"{report.get('first_page_scripts', '?')} scripts, {report.get('first_page_script_kB', '?')} kB")


def run_design_benchmark_cmd(args: argparse.Namespace) -> int:
    from ..api import SAMPLERS, InputError, design_table, run_design_benchmark
    from ._common import load_model

    samplers = args.optimiser or ["auto", "tpe", "ga", "random"]
    for s in samplers:
        if s not in SAMPLERS:
            raise InputError(f"--optimiser {s}: choose among {', '.join(SAMPLERS)}")
    if 0 < args.timing_evals < 10:
        raise InputError(f"--timing-evals {args.timing_evals}: give 0 (skip) or at least 10 evaluations")
    check_output_file(args.json)
    model = load_model(args.model)
    report = run_design_benchmark(model, samplers=samplers, seeds=args.seeds, max_evals=args.max_evals,
                                  timing_evals=args.timing_evals, hv_checkpoints=args.hv_evals, progress=_say)
    if args.json:
        write_json_file(report, args.json)
    print(design_table(report))
    return 0


# --------------------------------------------------------------------------- explainers (ground truth)
def run_explainers(args: argparse.Namespace) -> int:
    from ..api import explainer_benchmark

    check_output_file(args.json)
    report = explainer_benchmark(tasks=tuple(args.task or ("independent", "correlated")), seed=args.seed, epochs=args.epochs,
                                 folds=args.folds, n_rows=args.rows, n_draws=max(2, args.draws), train=not args.no_train,
                                 progress=_say)
    return _finish(report, args.json, print_explainers)


def print_explainers(report: dict[str, Any]) -> None:
    """The explainer report as one table per task (errors in a.u., the unit of y1)."""
    s = report["settings"]
    print(f"explainers against the exact Shapley values of the synthetic y1 ({s['n_rows']} rows, seed {s['seed']}, "
          f"noise {s['noise']:g} a.u., {s['n_draws']} draws per coalition; {report['machine']['platform']})")
    for task in s["tasks"]:
        m = report["models"].get(task)
        print(f"\n{task}" + (f": trained model y1 validation MAE {m['y1_validation_mae']:.3f} a.u. ({s['folds']} folds, "
                             f"{s['epochs']} epochs, {m['training_seconds']:.1f} s)" if m else ""))
        rows = [[r["subject"], r["explainer"], r["game"], f"{r['mae']:.4f}", f"{r['max']:.4f}", _num(r["relative"], ".2f"),
                 _num(r["rank_agreement"], ".2f"), f"{r['seconds']:.2f}"] for r in report["rows"] if r["task"] == task]
        print_table(rows, ["subject", "explainer", "ground truth", "MAE (a.u.)", "max (a.u.)", "relative", "rank agreement", "seconds"])
