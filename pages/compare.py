"""Compare: NestedAE against standard regressors on identical cross-validation folds.

Reads the benchmark reports shipped with nestedae_core
(:func:`nestedae_core.benchmark.shipped_benchmark_paths`, one per split) or a
report uploaded here (written by ``nestedae benchmark accuracy --json FILE``).
For each task: a table, MAE bars with fold error bars, the MAE of every model
on each fold, and, when both splits are present, how much a random split
flatters each model (leakage).
"""
from __future__ import annotations

import importlib
import json
from typing import Any

import streamlit as st

from app import figures_model as fm
from app import ui
from nestedae_core.errors import DataError, NestedAEError

K_UPLOAD = "compare.upload"

st.title("Compare")
st.caption("NestedAE against standard regressors, every model trained and validated on the identical folds.")


def shipped_reports() -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Shipped benchmark reports by split, and messages for those that could not be read."""
    bench = importlib.import_module("nestedae_core.benchmark")  # looked up on every run: tests substitute it
    reports, problems = {}, []
    for split, path in bench.shipped_benchmark_paths().items():
        try:
            reports[split] = dict(bench.load_benchmark(path))
        except NestedAEError as exc:
            problems.append(str(exc))
    return reports, problems


def read_upload(raw: bytes) -> dict[str, Any]:
    """A benchmark report from uploaded JSON bytes (DataError when it is not one)."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"the uploaded file is not JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("tasks"), dict):
        raise DataError("the uploaded file is not an accuracy benchmark report (it has no 'tasks')")
    return obj


reports, problems = shipped_reports()
for msg in problems:
    st.warning(msg, icon=":material/warning:")
with st.expander("Load a benchmark report of your own", expanded=not reports):
    st.markdown("Run `nestedae benchmark accuracy --split grouped --json report.json` (and `--split random`) and upload the files. "
                "Each replaces the shipped report of its split for this session.")
    uploads = st.file_uploader("Benchmark reports (JSON; one per split)", type=["json"], key=K_UPLOAD, accept_multiple_files=True)
    for upload in uploads or []:
        with ui.user_errors("Upload the JSON file written by `nestedae benchmark accuracy --json FILE`."):
            rep = read_upload(upload.getvalue())
            reports[str(rep.get("split", "uploaded"))] = rep
            st.success(f"Loaded {upload.name}: a {rep.get('split', '?')}-split report with {len(rep['tasks'])} task(s).")

if not reports:
    st.info("No benchmark report is available: the package ships none yet. Run "
            "`nestedae benchmark accuracy --json report.json` (add `--split grouped` for grouped folds) and upload it above.",
            icon=":material/compare_arrows:")
    st.stop()

splits = [s for s in ("random", "grouped") if s in reports] + [s for s in reports if s not in ("random", "grouped")]
c1, c2 = st.columns([1, 2])
split = c1.radio("Split", splits, horizontal=True, key="compare.split",
                 format_func=lambda s: {"random": "random folds", "grouped": "grouped folds"}.get(s, s))
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
    f"**{split.capitalize()} split, {report.get('folds', '?')} folds, seed {report.get('seed', '?')}** · dataset `{info.get('dataset', '?')}` "
    f"({info.get('n', '?')} rows) · target {info.get('target', '?')} ({u}) · report created {report.get('created', '?')}.  \n"
    f"The folds are **identical for every model**: the same fold ids (from the same splitter and seed) for NestedAE and "
    f"each baseline, so the differences below come from the models, not from luckier folds."
)

s = summary[summary["task"] == task].sort_values("MAE")
f = per_fold[per_fold["task"] == task]
table = s[["model", "MAE", "MAE sd", "RMSE", "R²", "seconds", "folds"]].rename(columns={
    "MAE": f"MAE ({u})", "MAE sd": f"MAE sd over folds ({u})", "RMSE": f"RMSE ({u})", "R²": "R² (dimensionless)",
    "seconds": "training time (s)", "folds": "folds (count)"})
ui.table_with_download(table, f"benchmark-{split}-{task}", key="compare.dl",
                       column_config={c: st.column_config.NumberColumn(c, format="%.4g") for c in table.columns if "(" in c and "count" not in c})
if "nestedae" in set(s["model"]):
    ours = s[s["model"] == "nestedae"].iloc[0]
    others = s[s["model"] != "nestedae"]
    if len(others):
        best = others.iloc[0]
        verdict = "better than" if ours["MAE"] < best["MAE"] else "worse than"
        st.caption(f"NestedAE: MAE {ours['MAE']:.4g} ± {ours['MAE sd']:.2g} {unit}, {verdict} the best baseline "
                   f"({best['model']}, {best['MAE']:.4g} ± {best['MAE sd']:.2g} {unit}).")
left, right = st.columns(2)
with left:
    ui.plot(fm.benchmark_bars_figure(s, unit=unit, title="MAE, mean ± sd over folds"), key="compare.bars")
with right:
    ui.plot(fm.benchmark_folds_figure(f, unit=unit, title="MAE on each fold"), key="compare.folds")
with st.expander("Per-fold table"):
    fold_table = f.drop(columns=["task", "unit"]).rename(columns={"MAE": f"MAE ({u})", "RMSE": f"RMSE ({u})", "R²": "R² (dimensionless)", "n": "rows (count)"})
    ui.table_with_download(fold_table, f"benchmark-{split}-{task}-folds", key="compare.dl-folds")

# ---------------------------------------------------------------------- leakage
st.subheader("Random or grouped folds: leakage")
device_groups = any("ETL" in g or "HTL" in g for g in groups)
if device_groups:
    same = ("devices that share a **recipe** (the same composition, ETL and HTL): the data hold many cells of "
            "popular recipes, which end up in both the training and the validation folds")
    new_thing = "a new recipe"
else:
    same = (f"rows that share {' + '.join(f'`{g}`' for g in groups) or 'a formula'} (e.g. one formula computed in "
            "several phases), which end up in both the training and the validation folds")
    new_thing = "a new composition"
st.markdown(
    f"A **random** split deals rows into folds at random. Here that separates {same}. A model can then score well by "
    f"*remembering* those rows rather than by generalising: this is **leakage**, and it makes the error look smaller "
    f"than it will be for {new_thing}.  \n"
    f"A **grouped** split keeps every row of a group in a single fold, so each validation fold holds only groups the "
    f"model has never seen: its error is the honest estimate for {new_thing}. The gap between the two splits shows "
    f"how much each model relies on memorising; when every group holds a single row, the two splits are equally honest."
)
other = "grouped" if split == "random" else "random"
if other in reports and task in reports[other].get("tasks", {}):
    both = {sp: fm.benchmark_frames(reports[sp])[0] for sp in ("random", "grouped")}
    both = {sp: d[d["task"] == task] for sp, d in both.items()}
    ui.plot(fm.split_comparison_figure(both, unit=unit, title=f"{task}: MAE under random vs grouped folds"), key="compare.splits")
    gap = both["random"][["model", "MAE"]].merge(both["grouped"][["model", "MAE"]], on="model", suffixes=(" random", " grouped"))
    gap["increase (%)"] = 100.0 * (gap["MAE grouped"] / gap["MAE random"] - 1.0)
    gap = gap.rename(columns={"MAE random": f"MAE random ({u})", "MAE grouped": f"MAE grouped ({u})"}).sort_values(f"MAE grouped ({u})")
    gap_config = {c: st.column_config.NumberColumn(c, format="%.4g") for c in gap.columns if "(" in c}
    gap_config["increase (%)"] = st.column_config.NumberColumn("MAE increase, grouped vs random (%)", format="%+.1f")
    ui.table_with_download(gap, f"benchmark-{task}-random-vs-grouped", key="compare.dl-gap", column_config=gap_config)
else:
    st.caption(f"No {other}-split report for this task is available, so the two splits cannot be compared here.")
