"""Data: browse the datasets behind the model, with filters, target distributions and composition coverage."""
from __future__ import annotations

from nestedae_core.api import (
    dataset_stamp,
    BANDGAP_HSE, BANDGAP_PBE, BANDGAP_PBE_DFT, DATA_DIR_ENV, DECOMPOSITION, DEVICE_COMPOSITION,
    DEVICE_OCTAHEDRAL_FACTOR, DEVICE_TARGETS, DEVICE_TOLERANCE_FACTOR, ETL, FF, FF_ABOVE_1, FLAG_COLUMNS, GAP_BASIS,
    GAP_DEVICES, GAP_FIT, GAP_NEIGHBOURS, GAP_SPREAD, HTL, JSC, LABEL_QUALITY, LABEL_REASON, LABEL_WEIGHT,
    MEASURED_BANDGAP, N_NEIGHBOURS, PCE, PCE_ABOVE_SQ, QUALITY_RULE, REASON, SITE_IONS, SLME, SUBSTRATE,
    TRAINING_RULE, VOC, WEIGHT_RULE, column_display as display, column_label as label, column_unit as unit,
    dataset_info, dataset_status, device_flags, flag_counts, gap_name, label_quality_counts, sq_pce_limit,
)

import math

import pandas as pd
import streamlit as st

from app import figures, state, ui

# What to show per dataset: formula column, target columns (COLUMN_INFO gives labels/units),
# categorical filters.
_ALLOY_TARGETS = (BANDGAP_PBE, DECOMPOSITION, SLME)
_DEVICE_TARGETS = (*DEVICE_TARGETS, MEASURED_BANDGAP)
_STACKS = {ETL: label(ETL), HTL: label(HTL)}
# Columns of the device table shown in the browser (the file has 71; all are in the CSV download).
_DEVICE_COLUMNS = (
    DEVICE_COMPOSITION, ETL, HTL, MEASURED_BANDGAP, *DEVICE_TARGETS,
    DEVICE_TOLERANCE_FACTOR, DEVICE_OCTAHEDRAL_FACTOR, SUBSTRATE,
)
_COLUMN_LABELS = {DEVICE_COMPOSITION: label(DEVICE_COMPOSITION), ETL: label(ETL), HTL: label(HTL), SUBSTRATE: "substrate"}


def _targets(name: str) -> tuple[str, ...]:
    if name == "psc-devices":
        return _DEVICE_TARGETS
    if name == "psc-gaps":
        return (MEASURED_BANDGAP, GAP_SPREAD, GAP_DEVICES)
    if name == "mhp-dft":
        return (BANDGAP_PBE_DFT, BANDGAP_HSE)
    if name.startswith("mhp-"):
        return _ALLOY_TARGETS
    return ()


def _column_info(name: str) -> dict[str, tuple[str, str]]:
    """Label and unit of each column of dataset ``name`` the page titles: every band gap names its kind
    (DFT PBE (no SOC), DFT HSE06+SOC, measured: the vocabulary's words); columns the charts do not know take the vocabulary's label and unit."""
    info = {**figures.COLUMN_INFO, GAP_SPREAD: (label(GAP_SPREAD), unit(GAP_SPREAD)),
            GAP_DEVICES: (label(GAP_DEVICES), "count")}
    info[BANDGAP_PBE_DFT] = (gap_name("PBE"), unit(BANDGAP_PBE_DFT))
    info[BANDGAP_HSE] = (gap_name("HSE"), unit(BANDGAP_HSE))
    if name.startswith("mhp-"):  # the alloy tables' Gap is PBE, except in mhp-hse
        info[BANDGAP_PBE] = (gap_name("HSE" if name.startswith("mhp-hse") else "PBE"), unit(BANDGAP_PBE))
    return info


def _gap_as_text(values: pd.Series) -> pd.Series:
    """Measured band gaps as text for display: 4 significant digits, blank where none is reported (not "None")."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.map(lambda v: "" if pd.isna(v) else f"{v:.4g}").astype(str)


def _gap_column_config(config: dict, column: str = MEASURED_BANDGAP) -> dict:
    """``config`` with the band-gap column shown as text (see :func:`_gap_as_text`)."""
    return {**config, column: st.column_config.TextColumn(display(column))}


_FLAGGED_COLUMNS = (DEVICE_COMPOSITION, ETL, HTL, MEASURED_BANDGAP, PCE, VOC, JSC, FF)
_SQ_LIMIT_COLUMN = "Shockley–Queisser PCE limit (%)"


@st.cache_data(max_entries=8, show_spinner=False)
def _flagged_devices(name: str, stamp: str) -> tuple[dict[str, int], int, pd.DataFrame]:
    """(flag counts, devices that report a gap, the flagged devices with their SQ limit and reason) of dataset
    ``name``, computed once per dataset file (``stamp``) per server: every rerun of the page shows them."""
    devices = state.load_dataset(name)
    flags = device_flags(devices)
    counts = flag_counts(flags)
    n_gap = int(pd.to_numeric(devices[MEASURED_BANDGAP], errors="coerce").notna().sum())
    hit = flags[list(FLAG_COLUMNS)].any(axis=1)
    shown = devices.loc[hit, [c for c in _FLAGGED_COLUMNS if c in devices.columns]].copy()
    shown.insert(4, _SQ_LIMIT_COLUMN, sq_pce_limit(devices).loc[hit].round(1))
    shown[MEASURED_BANDGAP] = _gap_as_text(shown[MEASURED_BANDGAP])
    shown["reason"] = flags.loc[hit, REASON]
    return {k: int(v) for k, v in counts.items()}, n_gap, shown


def data_quality_section(devices: pd.DataFrame, name: str = "psc-devices") -> None:
    """Devices whose values cannot be physical (over the whole table, not the filtered view) and the training rule."""
    counts, n_gap, shown = _flagged_devices(name, dataset_stamp(name))
    st.markdown(
        f"**Data quality.** Of all {len(devices):,} devices, **{counts['any']} devices** have values that cannot "
        f"be physical: {counts[FF_ABOVE_1]} report a fill factor above 1, and "
        f"{counts[PCE_ABOVE_SQ]} a PCE above the Shockley–Queisser limit at their measured band gap "
        f"(checked for the {n_gap:,} devices that report a gap; the limit is computed for the AM1.5G spectrum, "
        "cell at 300 K)."
    )
    if not shown.empty:
        config = _gap_column_config(ui.unit_column_config(shown.columns, _COLUMN_LABELS))
        ui.table_with_download(shown, "psc-devices-flagged", column_config=config,
                               caption=f"{len(shown)} flagged devices with the reason")
    else:
        st.success("No device is flagged.", icon=":material/check_circle:")
    st.info(f"**Rule applied in training.** {TRAINING_RULE}", icon=":material/rule:")


_LABEL_COLUMNS = ("composition_key", MEASURED_BANDGAP, GAP_FIT, GAP_NEIGHBOURS, N_NEIGHBOURS,
                  GAP_DEVICES, GAP_BASIS, LABEL_QUALITY, LABEL_WEIGHT, LABEL_REASON)
_LABEL_TITLES = {MEASURED_BANDGAP: "measured gap (eV)", GAP_FIT: "Vegard-plus-bowing fit (eV, leave-one-out)",
                 GAP_NEIGHBOURS: "neighbours (eV)", N_NEIGHBOURS: "neighbours", GAP_DEVICES: "devices",
                 GAP_BASIS: "gap basis (devices)", LABEL_QUALITY: "quality",
                 LABEL_WEIGHT: "training weight", LABEL_REASON: "reason"}


def label_quality_section(gaps: pd.DataFrame) -> None:
    """The measured-gap labels that disagree with their neighbours or the Vegard-plus-bowing fit, the rule and the weights."""
    counts = label_quality_counts(gaps)
    st.markdown(
        f"**Label quality.** Of {len(gaps)} compositions, **{counts['outlier']} labels are outliers** and "
        f"{counts['suspect']} suspect; {counts['single_device']} labels rest on one device. Each label is compared "
        "with a robust Vegard-plus-bowing fit made without it and with its neighbouring compositions; the gap basis "
        "is how the Perovskite Database says each device's gap was obtained (`Perovskite_band_gap_estimation_basis`)."
    )
    flagged = gaps.loc[gaps[LABEL_QUALITY] != "ok", [c for c in _LABEL_COLUMNS if c in gaps.columns]]
    flagged = flagged.sort_values([LABEL_QUALITY, LABEL_WEIGHT], ascending=[True, True])
    if flagged.empty:
        st.success("No label is flagged.", icon=":material/check_circle:")
    else:
        shown = flagged.rename(columns=_LABEL_TITLES).round(3)
        ui.table_with_download(shown, "psc-gaps-label-quality", caption=f"{len(shown)} flagged labels with the reason")
    st.info(f"**Rule.** {QUALITY_RULE}\n\n**Applied in training.** {WEIGHT_RULE} "
            "No row is dropped: every label stays in this table.", icon=":material/rule:")


st.title("Data")
st.caption(
    "The public datasets behind NestedAE: DFT band gaps of halide-perovskite alloys (stage 1) and "
    "measured solar cells (stage 2). Files are read from the data folder or the download cache, "
    "never from the internet while you browse."
)

available = state.available_datasets()
if not available:
    st.info(
        "**No dataset is available on this machine yet.**  \n"
        f"Fetch one with `nestedae data fetch NAME` (needs internet), e.g. `nestedae data fetch psc-devices`, "
        f"or copy the dataset files into a folder and set `{DATA_DIR_ENV}` to it, then reload. "
        "The Home page lists every dataset with its status.",
        icon=":material/cloud_download:",
    )
    with st.expander("Missing datasets and how to get them"):
        for status in dataset_status():
            if status.name != "synthetic":
                ui.missing_dataset(status.name, status.message)
    st.stop()

labels = {name: f"{name}: {dataset_info(name).title}" for name in available}
default = "psc-devices" if "psc-devices" in available else available[0]
name = st.selectbox(
    "Dataset", available, index=available.index(default), format_func=labels.get, key="data.dataset",
)
info = dataset_info(name)
st.markdown(info.description)
ui.citation(name)
missing_now = [s for s in dataset_status() if not s.available and s.name in ("mhp-pbe-paper", "mhp-pbe", "mhp-hse", "psc-devices")]
if missing_now:
    st.caption("Not on this machine: " + ", ".join(f"`{s.name}`" for s in missing_now)
               + " (see Home for how to fetch them).")


def _range_slider(df: pd.DataFrame, column: str, key: str, title: str) -> tuple[tuple[float, float], tuple[float, float]] | None:
    values = pd.to_numeric(df[column], errors="coerce").dropna()
    if values.empty or values.min() == values.max():
        return None
    lo, hi = float(values.min()), float(values.max())
    step = 10.0 ** (math.floor(math.log10(hi - lo)) - 2)
    chosen = st.slider(title, min_value=lo, max_value=hi, value=(lo, hi),
                       step=step, key=key)
    return (float(chosen[0]), float(chosen[1])), (lo, hi)


def _mixing_summary(fractions: pd.DataFrame) -> pd.DataFrame:
    """Rows and distinct compositions, and how many rows mix ions on each site."""
    valid = fractions.dropna()
    rows = [("rows", len(valid)), ("distinct compositions", len(valid.round(4).drop_duplicates()))]
    for site in SITE_IONS:
        mixed = int(((valid.loc[:, list(SITE_IONS[site])] > 1e-9).sum(axis=1) > 1).sum())
        rows.append((f"rows with a mixed {site} site", mixed))
    return pd.DataFrame(rows, columns=["what", "count"])


Filters = tuple  # (text, ((column, (low, high)), ...), ((column, (min, max)), ...), ((column, (value, ...)), ...))


def _filtered(name: str, filters: Filters) -> pd.DataFrame:
    """The rows of dataset ``name`` that pass ``filters`` (see :func:`dataset_view`)."""
    text, ranges, full, categories = filters
    return ui.apply_filters(state.load_dataset(name), text_column=state.formula_column(name), text=text,
                            ranges=dict(ranges), full_ranges=dict(full), categories={c: list(v) for c, v in categories})


@st.cache_resource(max_entries=96, show_spinner=False)
def _figure(kind: str, name: str, stamp: str, filters: Filters, column: str = ""):  # type: ignore[no-untyped-def]
    """One chart of the Data page, built once per (dataset file, filters) per server and shared by sessions
    (read-only: Streamlit serialises a figure without changing it)."""
    view = _filtered(name, filters)
    if kind == "hist":
        return figures.target_histograms_figure(view, [c for c in _targets(name) if c in view.columns], info=_column_info(name))
    if kind == "devices":
        return figures.device_vs_bandgap_figure(view)
    if kind == "stack":
        return figures.stack_breakdown_figure(view, column, label=_STACKS[column])
    fractions = state.dataset_site_fractions(name).loc[view.index]
    if kind == "ternary":
        return figures.x_site_ternary_figure(fractions)
    return figures.site_occupancy_figure(fractions, column)


def _opened(tabs: dict, title: str) -> bool:
    """Whether section ``title`` exists for this dataset and is the open tab (only that one is drawn)."""
    return title in tabs and bool(tabs[title].open)


@st.fragment
def dataset_view(name: str) -> None:
    """Filters, table and charts of one dataset; reruns on its own when a filter changes."""
    with ui.user_errors():
        df = state.load_dataset(name)
        targets = [c for c in _targets(name) if c in df.columns]
        info = _column_info(name)
        formula_col = state.formula_column(name)

        with st.expander("Filters", expanded=True, icon=":material/filter_alt:"):
            text = ""
            if formula_col:
                text = st.text_input("Formula contains", key=f"data.{name}.text",
                                     placeholder="e.g. FA, Br, Sn, MAPbI3")
            ranges, full = {}, {}
            slider_cols = st.columns(min(len(targets), 3) or 1)
            for i, column in enumerate(targets):
                with slider_cols[i % len(slider_cols)]:
                    picked = _range_slider(df, column, key=f"data.{name}.range.{column}",
                                           title=figures.axis_title(column, info))
                if picked is not None:
                    ranges[column], full[column] = picked
            categories = {}
            if name == "psc-devices":
                cat_cols = st.columns(len(_STACKS))
                for col, (column, title) in zip(cat_cols, _STACKS.items()):
                    with col:
                        options = sorted(df[column].dropna().astype(str).unique())
                        categories[column] = st.multiselect(title, options, key=f"data.{name}.cat.{column}",
                                                            placeholder="all stacks")
        filters: Filters = (text, tuple(sorted(ranges.items())), tuple(sorted(full.items())),
                            tuple(sorted((c, tuple(v)) for c, v in categories.items())))
        stamp = dataset_stamp(name)
        view = _filtered(name, filters)
        st.markdown(f"**Showing {len(view):,} of {len(df):,} rows**")
        if view.empty:
            st.warning("No row matches these filters. Widen a range or clear the formula filter.")
            return

        tab_names = ["Table"]
        if targets:
            tab_names.append("Distributions")
        if formula_col:
            tab_names.append("Composition coverage")
        if name == "psc-devices":
            tab_names += ["Devices", "Data quality"]
        if LABEL_QUALITY in df.columns:
            tab_names.append("Label quality")
        # Stateful tabs: only the open section runs and is sent, so the browser draws one section's figures and
        # tables, not all six (a switch reruns this fragment alone).
        tabs = dict(zip(tab_names, st.tabs(tab_names, default="Table", key=f"data.{name}.section", on_change="rerun")))

        if _opened(tabs, "Table"):
            with tabs["Table"]:
                sortable = {**({"composition": formula_col} if formula_col else {}),
                            **({_STACKS[c]: c for c in (ETL, HTL)} if name == "psc-devices" else {}),
                            **{figures.axis_title(c, info): c for c in targets}}
                page_rows, which = ui.paged_table(view, sortable, key=f"data.{name}.table", filters=filters)
                shown = page_rows
                config = ui.unit_column_config(shown.columns, _COLUMN_LABELS, info)
                if name == "psc-devices":
                    shown = page_rows.loc[:, [c for c in _DEVICE_COLUMNS if c in page_rows.columns]].copy()
                    shown[MEASURED_BANDGAP] = _gap_as_text(shown[MEASURED_BANDGAP])
                    config = _gap_column_config(ui.unit_column_config(shown.columns, _COLUMN_LABELS))
                    st.caption("The table shows the main columns; the CSV download below holds all columns.")
                ui.table_with_download(shown, f"{name}-filtered", download=view, height=(min(len(shown), 50) + 1) * ui.ROW_PX + 3,
                                       column_config=config,
                                       caption=f"Showing {which}; the CSV holds all {len(view):,} filtered rows and "
                                               f"all {view.shape[1]} columns")

        if _opened(tabs, "Distributions"):
            with tabs["Distributions"]:
                ui.plot(_figure("hist", name, stamp, filters), key=f"data-{name}-hist")
                summary = view[targets].describe().T.reset_index(drop=True)
                summary.insert(0, "quantity", [info.get(c, (label(c), ""))[0] for c in targets])
                summary.insert(1, "unit", [info.get(c, ("", unit(c)))[1] or "dimensionless" for c in targets])
                ui.table_with_download(summary, f"{name}-summary")

        if _opened(tabs, "Composition coverage"):
            with tabs["Composition coverage"]:
                fractions = state.dataset_site_fractions(name).loc[view.index]
                left, right = st.columns(2)
                with left:
                    st.markdown("**X site: I / Br / Cl** (marker size: number of rows)")
                    ui.plot(_figure("ternary", name, stamp, filters), key=f"data-{name}-ternary")
                with right:
                    st.markdown("**A-site mixing**")
                    ui.plot(_figure("sites", name, stamp, filters, "A"), key=f"data-{name}-a")
                left, right = st.columns(2)
                with left:
                    st.markdown("**B-site ions**")
                    ui.plot(_figure("sites", name, stamp, filters, "B"), key=f"data-{name}-b")
                with right:
                    st.markdown("**Mixing at a glance**")
                    ui.table_with_download(_mixing_summary(fractions), f"{name}-mixing", key=f"data.{name}.mixing")
                    st.caption("A site is mixed when it holds more than one ion; same for B and X.")

        if _opened(tabs, "Devices"):
            with tabs["Devices"]:
                n_gap = int(pd.to_numeric(view[MEASURED_BANDGAP], errors="coerce").notna().sum())
                st.markdown(
                    f"**Device results against the measured band gap** ({n_gap:,} of {len(view):,} devices "
                    "report one). The red line is the Shockley–Queisser detailed-balance limit for the "
                    "AM1.5G reference spectrum (ASTM G-173, 1000 W/m²), cell at 300 K: at most 33.7 % at "
                    "1.34 eV. A PCE above its line would not be physical at the reported gap (see Data quality)."
                )
                ui.plot(_figure("devices", name, stamp, filters), key=f"data-{name}-sq")
                left, right = st.columns(2)
                with left:
                    st.markdown("**Electron transport layers (ETL)**")
                    ui.plot(_figure("stack", name, stamp, filters, ETL), key=f"data-{name}-etl")
                with right:
                    st.markdown("**Hole transport layers (HTL)**")
                    ui.plot(_figure("stack", name, stamp, filters, HTL), key=f"data-{name}-htl")

        if _opened(tabs, "Data quality"):
            with tabs["Data quality"]:
                data_quality_section(df, name)
        if _opened(tabs, "Label quality"):
            with tabs["Label quality"]:
                label_quality_section(df)


dataset_view(name)
