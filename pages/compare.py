"""Compare: NestedAE against standard regressors on identical cross-validation folds.

Reads the benchmark reports shipped with nestedae_core
(:func:`nestedae_core.benchmark.shipped_benchmark_paths`: one report holding both
splits, or one per split) or reports uploaded here (written by ``nestedae
benchmark accuracy --json FILE``). The grouped split, the honest estimate for a
new composition or recipe, comes first. For each task: a table, MAE bars with
fold error bars, the MAE of every model on each fold, a paired per-fold
comparison of NestedAE with the best baseline (whose verdict follows
:data:`nestedae_core.benchmark.VERDICT_RULE`), and, when both splits are present,
how much a random split flatters each model (leakage).
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from app import figures_model as fm
from app import quantities, ui
from app.ui import escape_markdown as esc
# the front door looks each name up on every run of the page: tests patch nestedae_core.benchmark
from nestedae_core.api import (
    VERDICT_RULE, NestedAEError, is_dft, load_benchmark, paired_comparison, parse_benchmark, shipped_benchmark_paths,
    split_reports,
)

K_UPLOAD = "compare.upload"
SPLIT_NAMES = {"grouped": "grouped folds", "random": "random folds"}

st.title("Compare")
st.caption("NestedAE against standard regressors, every model trained and validated on the identical folds.")


def shipped_reports() -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Shipped benchmark reports by split (the first file holding a split wins), and messages for unreadable ones."""
    reports: dict[str, dict[str, Any]] = {}
    problems = []
    for path in shipped_benchmark_paths().values():
        try:
            for split, rep in split_reports(dict(load_benchmark(path))).items():
                reports.setdefault(split, rep)
        except NestedAEError as exc:
            problems.append(str(exc))
    return reports, problems


def read_upload(raw: bytes, name: str = "the uploaded file") -> dict[str, Any]:
    """A benchmark report from uploaded JSON bytes (DataError naming the file and the field when it is not one)."""
    return parse_benchmark(raw, f"the uploaded file {name!r}")


def split_label(split: str) -> str:
    """How a split is named on this page (a split name from an uploaded report is shown as plain text)."""
    return SPLIT_NAMES.get(split, esc(split))


def _splits_coincide(grouped: dict[str, Any], random: dict[str, Any]) -> bool:
    """True when every model of a task has the same fold-by-fold MAEs under both splits (to rounding).

    That happens when no group repeats in the task's rows: the grouped folds are then the random folds.
    """
    shared = set(grouped) & set(random)
    if not shared:
        return False
    for name in shared:
        a = [fold.get("mae") for fold in grouped[name].get("folds") or []]
        b = [fold.get("mae") for fold in random[name].get("folds") or []]
        if not a or len(a) != len(b) or not all(
                x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b)):
            return False
    return True


def _num(x: float, fmt: str) -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


reports, problems = shipped_reports()
for msg in problems:
    st.warning(esc(msg), icon=":material/warning:")
with st.expander("Load a benchmark report of your own", expanded=not reports):
    st.markdown("Run `nestedae benchmark accuracy --json report.json` (both splits in one report; `--split grouped` or "
                "`--split random` for one) and upload the file. Each split it holds replaces the shipped one for this session.")
    uploads = st.file_uploader("Benchmark reports (JSON)", type=["json"], key=K_UPLOAD, accept_multiple_files=True)
    for upload in uploads or []:
        with ui.user_errors("Upload the JSON file written by `nestedae benchmark accuracy --json FILE`."):
            held = split_reports(read_upload(upload.getvalue(), upload.name))
            reports.update(held)
            st.success(esc(f"Loaded {upload.name}: {' and '.join(f'a {s}-split report' for s in held)} with "
                           f"{len(next(iter(held.values()))['tasks'])} task(s)."))

if not reports:
    st.info("No benchmark report is available: the package ships none yet. Run "
            "`nestedae benchmark accuracy --json report.json` (grouped and random folds) and upload it above.",
            icon=":material/compare_arrows:")
    st.stop()

splits = [s for s in ("grouped", "random") if s in reports] + [s for s in reports if s not in ("grouped", "random")]
c1, c2 = st.columns([1, 2])
split = c1.radio("Split", splits, horizontal=True, key="compare.split", format_func=split_label,
                 help="Grouped folds keep every row of a formula, composition or recipe in one fold: the honest estimate "
                      "for a new one, and the headline figure. Random folds are shown beside them.")
report = reports[split]
summary, per_fold = fm.benchmark_frames(report)
if summary.empty:
    st.info("This report holds no results.")
    st.stop()
tasks = list(dict.fromkeys(summary["task"]))
task_info = report["tasks"]
task = c2.selectbox("Task", tasks, key="compare.task",
                    format_func=lambda t: f"{t}: {task_info[t].get('description', '')}")
info = task_info[task]
unit = info.get("unit", "")
u = unit or "dimensionless"
groups = info.get("groups") or []
st.markdown(
    f"**{esc(split.capitalize())} split, {esc(report.get('folds', '?'))} folds, seed {esc(report.get('seed', '?'))}** · "
    f"dataset {esc(info.get('dataset', '?'))} ({esc(info.get('n', '?'))} rows) · target {esc(info.get('target', '?'))}"
    + (f", {quantities.named('band gap', fid)}" + (", for the crystal phases of its rows" if is_dft(fid) else "")
       if (fid := quantities.column_fidelity(info.get("dataset", ""), info.get("target", ""))) else "")
    + f" ({esc(u)}) · report created {esc(report.get('created', '?'))}.  \n"
    f"The folds are **identical for every model**: the same fold ids (from the same splitter and seed) for NestedAE and "
    f"each baseline, so the differences below come from the models, not from luckier folds."
)
for note in info.get("notes", []):
    st.caption(f"Note: {esc(note)}")

s = summary[summary["task"] == task].sort_values("MAE")
f = per_fold[per_fold["task"] == task]
columns = ["model", "MAE", "MAE sd", "RMSE", "R²", "seconds", "folds"]
paper_scored = s["MAE paper batches"].notna().any()
if paper_scored:
    columns.insert(3, "MAE paper batches")
table = s[columns].rename(columns={
    "MAE": f"MAE ({u})", "MAE sd": f"MAE sd over folds ({u})", "RMSE": f"RMSE ({u})", "R²": "R² (dimensionless)",
    "seconds": "training time (s)", "folds": "folds (count)", "MAE paper batches": f"MAE, paper's batch scoring ({u})"})
ui.table_with_download(table, f"benchmark-{split}-{task}", key="compare.dl",
                       column_config={c: st.column_config.NumberColumn(c, format="%.4g") for c in table.columns if "(" in c and "count" not in c})
if paper_scored:
    st.caption("MAE is the mean over folds of each fold's MAE over its rows. The NestedAE paper scored differently: the MAE "
               "of each validation batch of 100 rows, averaged, so a short last batch of 3 rows counts as much as a full "
               "one. Its column scores the very same predictions that way; compare figures only within one column.")
left, right = st.columns(2)
with left:
    ui.plot(fm.benchmark_bars_figure(s, unit=unit, title="MAE, mean ± sd over folds"), key="compare.bars")
with right:
    ui.plot(fm.benchmark_folds_figure(f, unit=unit, title="MAE on each fold"), key="compare.folds")
with st.expander("Per-fold table"):
    fold_table = f.drop(columns=["task", "unit"]).rename(columns={"MAE": f"MAE ({u})", "RMSE": f"RMSE ({u})", "R²": "R² (dimensionless)", "n": "rows (count)"})
    ui.table_with_download(fold_table, f"benchmark-{split}-{task}-folds", key="compare.dl-folds")

# ---------------------------------------------------------------------- paired verdict
st.subheader("NestedAE against the best baseline, fold by fold")
models = info.get("models") or {}
comparison = None
if "nestedae" not in models:
    st.caption("This task has no NestedAE result, so there is nothing to compare.")
else:
    with ui.user_errors():
        comparison = paired_comparison(models)
if comparison is not None:
    c = comparison
    k = len(c.folds)
    st.markdown(f"**Rule.** {VERDICT_RULE} Each fold's difference is NestedAE's MAE minus that of the best baseline "
                f"(lowest mean MAE: **{esc(c.baseline)}**) on the same fold; negative means NestedAE is better there.")
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Mean difference ({esc(u)})", _num(c.mean_difference, "+.4g"), help=f"sd over folds {_num(c.sd_difference, '.3g')} {esc(unit)}")
    m2.metric("Folds where NestedAE is lower", f"{c.wins} of {k}")
    m3.metric("Paired t-test p (two-sided)", _num(c.p_value, ".3g"))
    size = esc(f"{abs(c.mean_difference):.3g} {unit}".rstrip())
    baseline = esc(c.baseline)
    if c.verdict == "better":
        st.success(f"NestedAE is better than {baseline} on these {split_label(split)}: {size} lower MAE on average, "
                   f"lower on {c.wins} of {k} folds (p = {_num(c.p_value, '.3g')}).", icon=":material/check_circle:")
    elif c.verdict == "worse":
        st.warning(f"NestedAE is worse than {baseline} on these {split_label(split)}: {size} higher MAE on average, "
                   f"higher on {c.losses} of {k} folds (p = {_num(c.p_value, '.3g')}).", icon=":material/trending_down:")
    else:
        lead = "lower" if c.mean_difference < 0 else "higher"
        st.info(f"No winner: NestedAE's mean MAE is {size} {lead} than {baseline}'s, but it is lower on only {c.wins} of "
                f"{k} folds and the paired t-test gives p = {_num(c.p_value, '.3g')}; the difference does not hold across folds.",
                icon=":material/balance:")
    pl, pr = st.columns([3, 2])
    with pl:
        ui.plot(fm.paired_differences_figure(c.as_dict(), unit=unit, title=f"nestedae − {c.baseline}, per fold"), key="compare.paired")
    with pr:
        pairs = pd.DataFrame({"fold": [x + 1 for x in c.folds], f"nestedae MAE ({u})": c.model_mae,
                              f"{c.baseline} MAE ({u})": c.baseline_mae, f"difference ({u})": c.differences})
        ui.table_with_download(pairs, f"benchmark-{split}-{task}-paired", key="compare.dl-paired",
                               column_config={col: st.column_config.NumberColumn(col, format="%.4g") for col in pairs.columns if "(" in col})

# ---------------------------------------------------------------------- leakage
st.subheader("Random or grouped folds: leakage")
device_groups = any("ETL" in g or "HTL" in g for g in groups)
if device_groups:
    same = ("devices that share a **recipe** (the same composition, ETL and HTL): the data hold many cells of "
            "popular recipes, which end up in both the training and the validation folds")
    new_thing = "a new recipe"
else:
    same = (f"rows that share {' + '.join(f'*{esc(g)}*' for g in groups) or 'a formula'} (e.g. one formula computed in "
            "several phases), which end up in both the training and the validation folds")
    new_thing = "a new composition"
other = "grouped" if split == "random" else "random"
has_other = other in reports and task in reports[other].get("tasks", {})
coincide = (has_other and {"grouped", "random"} <= set(reports)
            and _splits_coincide(reports["grouped"]["tasks"][task].get("models") or {},
                                 reports["random"]["tasks"][task].get("models") or {}))
group_names = " + ".join(f"*{esc(g)}*" for g in groups) or "group"
if coincide:
    st.markdown(
        f"Here the two splits **coincide**: every model has the same MAE on every fold under grouped and random folds, "
        f"because no {group_names} value repeats in this task's rows (each group holds a single row). A random split "
        f"then separates nothing that belongs together, so there is no leakage to measure and both figures are the "
        f"honest estimate for {new_thing}.")
else:
    st.markdown(
        f"A **random** split deals rows into folds at random. Here that separates {same}. A model can then score well by "
        f"*remembering* those rows rather than by generalising: this is **leakage**, and it makes the error look smaller "
        f"than it will be for {new_thing}.  \n"
        f"A **grouped** split keeps every row of a group in a single fold, so each validation fold holds only groups the "
        f"model has never seen: its error is the honest estimate for {new_thing}. The gap between the two splits shows "
        f"how much each model relies on memorising; when every group holds a single row, the two splits are equally honest."
    )
if has_other:
    both = {sp: fm.benchmark_frames(reports[sp])[0] for sp in ("grouped", "random")}
    both = {sp: d[d["task"] == task] for sp, d in both.items()}
    ui.plot(fm.split_comparison_figure(both, unit=unit, title=f"{task}: MAE under grouped vs random folds"), key="compare.splits")
    gap = both["random"][["model", "MAE"]].merge(both["grouped"][["model", "MAE"]], on="model", suffixes=(" random", " grouped"))
    gap["increase (%)"] = 100.0 * (gap["MAE grouped"] / gap["MAE random"] - 1.0)
    gap = gap.rename(columns={"MAE random": f"MAE random ({u})", "MAE grouped": f"MAE grouped ({u})"}).sort_values(f"MAE grouped ({u})")
    gap_config = {c: st.column_config.NumberColumn(c, format="%.4g") for c in gap.columns if "(" in c}
    gap_config["increase (%)"] = st.column_config.NumberColumn("MAE increase, grouped vs random (%)", format="%+.1f")
    ui.table_with_download(gap, f"benchmark-{task}-random-vs-grouped", key="compare.dl-gap", column_config=gap_config)
else:
    st.caption(f"No {other}-split report for this task is available, so the two splits cannot be compared here.")
