"""Compose: build a halide-perovskite composition and see its descriptors and structural factors.

Three ways in, all kept in sync: a formula box (every notation of
:func:`nestedae_core.chemistry.composition.parse_formula`), presets and formulas picked
from the datasets, and a site builder (choose the ions of each site; sliders
for all but the last ion, the last takes the remainder, so each site total is
exact). The chosen composition is stored with :func:`app.state.set_composition`
(shared with Predict, Explain, Latents) and mirrored to ``?formula=``.
"""
from __future__ import annotations

from nestedae_core.api import (
    BANDGAP_PBE, DESCRIPTORS, DESCRIPTOR_LABELS, DESCRIPTOR_UNITS, FACTOR_COLUMNS, MEASURED_BANDGAP, OCTAHEDRAL_RANGE,
    PAPER_DESCRIPTORS, PCE, SITE_IONS, SITE_TOTALS, TOLERANCE_RANGE, Composition, CompositionError, featurize,
    gap_name, input_groups, octahedral_factor, parse_formula, tolerance_factor,
)

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app import figures, state, ui

DEFAULT_FORMULA = "MAPbI3"

#: Preset label -> formula (any notation parse_formula reads).
PRESETS: dict[str, str] = {
    "MAPbI3 (methylammonium lead iodide)": "MAPbI3",
    "FAPbI3 (formamidinium lead iodide)": "FAPbI3",
    "CsPbI3 (all-inorganic)": "CsPbI3",
    "MAPbBr3 (wide gap)": "MAPbBr3",
    "CsPbBr3 (all-inorganic, wide gap)": "CsPbBr3",
    "FASnI3 (lead-free)": "FASnI3",
    "CsPbI2Br (inorganic, mixed halide)": "CsPbI2Br",
    "Triple cation Cs0.05FA0.79MA0.16PbBr0.51I2.49": "Cs0.05FA0.79MA0.16PbBr0.51I2.49",
    "Triple cation, nested notation": "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3",
    "FA/MA end-member mix (FAPbI3)0.85(MAPbBr3)0.15": "(FAPbI3)0.85(MAPbBr3)0.15",
    "Sn–Pb low gap FA0.6MA0.4Pb0.4Sn0.6I3": "FA0.6MA0.4Pb0.4Sn0.6I3",
    "MAPb(I0.8Br0.2)3 (bromide alloy)": "MAPb(I0.8Br0.2)3",
}
_PICK_SOURCES = {"mhp-pbe-paper": "DFT alloys (mhp-pbe-paper)", "psc-devices": "solar cells (psc-devices)"}

# Session-state keys of this page's widgets and messages.
K_FORMULA = "compose.formula"
K_RENORM = "compose.renormalize"
K_PRESET = "compose.preset"
K_FORMULA_ERROR = "compose.formula_error"
K_PICK = "compose.pick.{}"
K_IONS = "compose.ions.{}"
K_AMOUNT = "compose.amt.{}.{}"
K_SITE_ERROR = "compose.site_error.{}"
SITES = tuple(SITE_IONS)
SITE_NAMES = {"A": "A site (cation)", "B": "B site (metal)", "X": "X site (halide)"}


# ---------------------------------------------------------------------- state <-> widgets
def _site_amounts(comp: Composition, site: str) -> dict[str, float]:
    return dict(getattr(comp, site.lower()))


def _load_site(site: str, comp: Composition) -> None:
    """Set the site builder's widgets of ``site`` from ``comp`` (largest ion last: it takes the remainder)."""
    ss = st.session_state
    amounts = _site_amounts(comp, site)
    order = {ion: i for i, ion in enumerate(SITE_IONS[site])}
    ions = sorted(amounts, key=lambda ion: (amounts[ion], -order[ion]))
    ss[K_IONS.format(site)] = ions
    for ion in ions[:-1]:
        ss[K_AMOUNT.format(site, ion)] = round(float(amounts[ion]), 4)
    ss.pop(K_SITE_ERROR.format(site), None)


def _load_widgets(comp: Composition, text: str | None = None) -> None:
    ss = st.session_state
    ss[K_FORMULA] = text if text is not None else comp.formula
    ss.pop(K_FORMULA_ERROR, None)
    for site in SITES:
        _load_site(site, comp)


def _ensure_widgets(comp: Composition) -> None:
    """Give every widget of this page a value (widget state is dropped while the page is not shown)."""
    ss = st.session_state
    if K_FORMULA not in ss:
        ss[K_FORMULA] = comp.formula
    for site in SITES:
        if K_IONS.format(site) not in ss:
            _load_site(site, comp)
            continue
        amounts = _site_amounts(comp, site)
        for ion in ss[K_IONS.format(site)][:-1]:
            ss.setdefault(K_AMOUNT.format(site, ion), round(float(amounts.get(ion, 0.0)), 4))


def _choose(comp: Composition, text: str | None = None) -> None:
    state.set_composition(comp)
    _load_widgets(comp, text)


# ---------------------------------------------------------------------- callbacks
def _on_formula() -> None:
    ss = st.session_state
    text = ss.get(K_FORMULA, "")
    try:
        comp = parse_formula(text, renormalize=bool(ss.get(K_RENORM, False)))
    except CompositionError as exc:
        ss[K_FORMULA_ERROR] = exc
        return
    state.set_composition(comp)
    ss.pop(K_FORMULA_ERROR, None)
    for site in SITES:
        _load_site(site, comp)


def _on_preset() -> None:
    ss = st.session_state
    label = ss.get(K_PRESET)
    if label in PRESETS:
        _choose(parse_formula(PRESETS[label]), PRESETS[label])
    ss[K_PRESET] = None  # the box is an action, not a state: ready for the next pick


def _on_pick(name: str) -> None:
    ss = st.session_state
    key = K_PICK.format(name)
    text = ss.get(key)
    if text:
        try:
            _choose(parse_formula(text), text)
        except CompositionError as exc:
            ss[K_FORMULA] = text
            ss[K_FORMULA_ERROR] = exc
    ss[key] = None


def _builder_site(site: str) -> dict[str, float] | None:
    """Amounts of ``site`` from the builder widgets; ``None`` (and a message) when they do not add up."""
    ss = st.session_state
    ions = list(ss.get(K_IONS.format(site)) or [])
    total = SITE_TOTALS[site]
    if not ions:
        ss[K_SITE_ERROR.format(site)] = f"Choose at least one {site}-site ion."
        return None
    amounts = {ion: float(ss.get(K_AMOUNT.format(site, ion), 0.0)) for ion in ions[:-1]}
    used = sum(amounts.values())
    remainder = total - used
    if remainder < -1e-9:
        ss[K_SITE_ERROR.format(site)] = (
            f"The {site}-site sliders add up to {used:.3g}, more than the site total {total:g}: "
            f"lower one of them ({ions[-1]}, the last ion, takes the remainder)."
        )
        return None
    amounts[ions[-1]] = max(remainder, 0.0)
    if sum(amounts.values()) <= 0:  # pragma: no cover - remainder makes the total exact
        ss[K_SITE_ERROR.format(site)] = f"The {site} site is empty."
        return None
    ss.pop(K_SITE_ERROR.format(site), None)
    return amounts


def _on_builder(changed: str, ions_changed: bool = False) -> None:
    ss = st.session_state
    current = state.get_composition() or parse_formula(DEFAULT_FORMULA)
    if ions_changed:  # keep the amounts of the ions that stay
        amounts = _site_amounts(current, changed)
        for ion in (ss.get(K_IONS.format(changed)) or [])[:-1]:
            ss[K_AMOUNT.format(changed, ion)] = round(min(float(amounts.get(ion, 0.0)), SITE_TOTALS[changed]), 4)
    sites = {site: _builder_site(site) for site in SITES}
    if any(v is None for v in sites.values()):
        return
    try:
        comp = Composition(a=sites["A"], b=sites["B"], x=sites["X"])
    except CompositionError as exc:  # pragma: no cover - the builder keeps totals exact
        ss[K_SITE_ERROR.format(changed)] = str(exc)
        return
    state.set_composition(comp)
    ss[K_FORMULA] = comp.formula
    ss.pop(K_FORMULA_ERROR, None)


# ---------------------------------------------------------------------- rendering
def _verdicts(t: float, mu: float) -> list[tuple[bool, str]]:
    lo_t, hi_t = TOLERANCE_RANGE
    lo_mu, hi_mu = OCTAHEDRAL_RANGE
    out = []
    if t > hi_t:
        out.append((False, f"Tolerance factor {t:.3f} is above {hi_t:g}: the A cation is large for the "
                           "corner-sharing cage; hexagonal or layered (2D) phases become likely."))
    elif t < lo_t:
        out.append((False, f"Tolerance factor {t:.3f} is below {lo_t:g}: the A cation is small for the "
                           "cage; strongly tilted or non-perovskite phases become likely."))
    else:
        out.append((True, f"Tolerance factor {t:.3f} is inside the usual 3D-perovskite window "
                          f"{lo_t:g}–{hi_t:g}."))
    if mu < lo_mu:
        out.append((False, f"Octahedral factor {mu:.3f} is below {lo_mu:g}: the B cation is too small for "
                           "a stable BX₆ octahedron."))
    elif mu > hi_mu:
        out.append((False, f"Octahedral factor {mu:.3f} is above {hi_mu:g}: the B cation is large for "
                           "the BX₆ octahedron."))
    else:
        out.append((True, f"Octahedral factor {mu:.3f} is inside the window {lo_mu:g}–{hi_mu:g}: "
                          "the B cation fits the BX₆ octahedron."))
    return out


def _first_stage_inputs() -> tuple[str, list[str]]:
    """Name and input columns of the active model's first stage (the paper's 15 descriptors when no model loads)."""
    from app import model_state

    try:
        stage = model_state.active_model().spec.stages[0]
    except Exception:  # noqa: BLE001 - Home and Train say why the model does not load
        return "NestedAE stage 1", list(PAPER_DESCRIPTORS)
    return f"stage '{stage.name}' of the active model", stage.numeric_inputs + stage.categorical_inputs


def descriptor_table(comp: Composition, model_inputs: Sequence[str] = PAPER_DESCRIPTORS) -> pd.DataFrame:
    """Descriptors and factors of ``comp`` with labels and units (from nestedae_core.chemistry.features);
    ``model input`` marks those among ``model_inputs``."""
    values = featurize(comp)
    inputs = set(model_inputs)
    return pd.DataFrame({
        "descriptor": list(values),
        "meaning": [DESCRIPTOR_LABELS[k] for k in values],
        "value": [round(v, 6) for v in values.values()],
        "unit": [DESCRIPTOR_UNITS[k] or "dimensionless" for k in values],
        "model input": [k in inputs for k in values],
    })


def x_site_example(comp: Composition) -> str:
    """How the X site of ``comp`` is weighted, e.g. ``Br0.51I2.49 → 0.17 Br + 0.83 I`` or ``I3 → 1 I``."""
    fractions = comp.fractions()
    ions = sorted(comp.x)
    amounts = "".join(f"{ion}{comp.x[ion]:.4g}" for ion in ions)
    weights = " + ".join(f"{fractions[ion]:.2g} {ion}" for ion in ions)
    return f"{amounts} → {weights}"


@st.fragment
def descriptors_section(comp: Composition) -> None:
    """The descriptor table; its toggle reruns only this part."""
    st.subheader("Site descriptors")
    stage, inputs = _first_stage_inputs()
    groups = input_groups(inputs)
    n_desc = dict(groups).get("site descriptors", 0)
    all_rows = st.toggle(f"Show all {len(DESCRIPTORS)} descriptors (off: the {n_desc} descriptors {stage} reads, "
                         "and the two factors)", key="compose.all_descriptors")
    table = descriptor_table(comp, inputs)
    if not all_rows:
        table = table[table["model input"] | table["descriptor"].isin(FACTOR_COLUMNS)]
    st.caption(f"Inputs of {stage}: " + ", ".join(f"{n} {name}" if n > 1 else name for name, n in groups)
               + ". *model input* marks the descriptors among them. "
               "Composition-weighted ion properties: A and B sites weighted by amount per formula unit, "
               f"the X site by its fraction ({x_site_example(comp)}).")
    ui.table_with_download(
        table, f"descriptors-{comp.formula}",
        key="compose.descriptors-download",
        height=35 * (len(table) + 1) + 3,
        column_config={"value": st.column_config.NumberColumn("value", format="%.5g")},
    )


def _site_builder() -> None:
    ss = st.session_state
    st.subheader("Site builder")
    st.caption("Choose the ions of each site. Sliders set all but the last ion; the last one takes the "
               "remainder, so every site total is exact (A = 1, B = 1, X = 3 per formula unit).")
    columns = st.columns(3, border=True)
    for site, column in zip(SITES, columns):
        with column:
            total = SITE_TOTALS[site]
            st.markdown(f"**{SITE_NAMES[site]}** · total {total:g}")
            ions = st.multiselect(
                f"{site}-site ions", list(SITE_IONS[site]), key=K_IONS.format(site),
                on_change=_on_builder, args=(site, True),
                placeholder=f"choose {site}-site ions",
            )
            for ion in ions[:-1]:
                key = K_AMOUNT.format(site, ion)
                ss[key] = min(max(float(ss.get(key, 0.0)), 0.0), total)
                st.slider(f"{ion} (per formula unit)", min_value=0.0, max_value=float(total), step=0.01,
                          key=key, on_change=_on_builder, args=(site,), format="%.3f")
            if ions:
                used = sum(float(ss.get(K_AMOUNT.format(site, ion), 0.0)) for ion in ions[:-1])
                remainder = total - used
                if remainder >= -1e-9:
                    st.markdown(f"{ions[-1]} (remainder): **{max(remainder, 0.0):.4g}**")
                else:
                    st.markdown(f"{ions[-1]} (remainder): :red[**{remainder:.3g}**]")
            message = ss.get(K_SITE_ERROR.format(site))
            if message:
                st.error(message, icon=":material/error:")


def _in_the_data(comp: Composition) -> None:
    notes = []
    available = set(state.available_datasets(("mhp-pbe-paper", "psc-devices")))
    with ui.user_errors():
        if "mhp-pbe-paper" in available:
            rows = state.dataset_matches("mhp-pbe-paper", comp)
            if len(rows):
                gaps = ", ".join(f"{g:.2f}" for g in rows[BANDGAP_PBE].head(4))
                notes.append(f"{gap_name('PBE')} in mhp-pbe-paper: **{gaps} eV**")
            else:
                notes.append("not among the 494 DFT alloys of mhp-pbe-paper")
        if "psc-devices" in available:
            rows = state.dataset_matches("psc-devices", comp)
            if len(rows):
                pce = rows[PCE].median()
                gap = pd.to_numeric(rows[MEASURED_BANDGAP], errors="coerce").median()
                notes.append(f"**{len(rows)}** solar cells in psc-devices with this absorber (every site "
                             f"fraction within ±0.005), median PCE **{pce:.1f} %**"
                             + (f", median measured band gap **{gap:.2f} eV**" if pd.notna(gap) else ""))
            else:
                notes.append("no solar cell of psc-devices has exactly this absorber")
    if notes:
        st.markdown("**In the data:** " + "; ".join(notes) + ".")
        st.caption("Data: Mannodi-Kanakkithodi & Chan, Energy Environ. Sci. 15, 1930 (2022); Jacobsson et al., "
                   "Nat. Energy 7, 107 (2022); curated by Thota et al., Mater. Horiz. 11, 700 (2024). "
                   "Full citations under 'Data sources' below.")


# ---------------------------------------------------------------------- page
st.title("Compose")
st.caption("Pick or build a halide perovskite ABX₃; the composition you choose here is used by the "
           "Predict, Explain and Latents pages and is kept in the page address (share the link).")

ss = st.session_state
composition = state.get_composition()
url_error = state.url_formula_error()
if composition is None and url_error is not None:
    # The link's formula could not be read: choose nothing (no results for another formula) and let
    # the user correct what the link said; the URL keeps it as given (app.state.sync_url).
    ss.setdefault(K_FORMULA, state.url_formula_text())
elif composition is None:
    composition = parse_formula(DEFAULT_FORMULA)
    state.set_composition(composition)
if composition is not None:
    _ensure_widgets(composition)

top = st.columns([3, 2, 2])
with top[0]:
    st.text_input(
        "Formula",
        key=K_FORMULA,
        on_change=_on_formula,
        help="Plain (MAPbI3, CsPbI2Br), underscores (RbCaCl_2.25_I_0.75), decimals "
             "(Cs0.05FA0.79MA0.16PbBr0.51I2.49), nested groups (Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3) "
             "or weighted end members ((FAPbI3)0.85(MAPbBr3)0.15). Press Enter to apply.",
    )
    st.checkbox(state.SCALE_SITES_LABEL, key=K_RENORM, on_change=_on_formula,
                help="Accept formulas whose site totals are off (e.g. FA0.5PbI3) and scale each site "
                     "to A = 1, B = 1, X = 3.")
with top[1]:
    st.selectbox("Preset", list(PRESETS), index=None, key=K_PRESET, on_change=_on_preset,
                 placeholder="Choose a preset…")
with top[2]:
    for name in state.available_datasets(tuple(_PICK_SOURCES)):
        with ui.user_errors():
            counts = state.dataset_formula_counts(name)
            if name == "psc-devices":  # most used absorbers first, with their device count
                options, fmt = list(counts), (lambda f, c=counts: f"{f}  ({c[f]} devices)")
            else:  # one row per formula: alphabetical
                options, fmt = sorted(counts), str
            st.selectbox(
                f"From the {_PICK_SOURCES[name]}", options, index=None, key=K_PICK.format(name),
                on_change=_on_pick, args=(name,), placeholder=f"{len(counts)} formulas…", format_func=fmt,
            )

formula_error = ss.get(K_FORMULA_ERROR)
if isinstance(formula_error, CompositionError):  # the formula box holds text that does not parse
    message, hint = state.composition_error_text(formula_error, here=True)
    ui.show_error(CompositionError(message), hint=hint)
elif composition is None:
    state.show_url_formula_error(here=True)
if composition is None:
    st.stop()  # nothing chosen yet: no results for some other composition
if formula_error:
    st.caption(f"Still showing the last valid composition, {composition.formula}.")

_site_builder()

st.divider()
st.header(composition.formula)
_in_the_data(composition)
left, right = st.columns([1, 1])
with left:
    st.subheader("Site fractions")
    ui.plot(figures.site_fractions_figure(composition), key="compose-fractions")
with right:
    st.subheader("Structural factors")
    t = tolerance_factor(composition)
    mu = octahedral_factor(composition)
    ui.plot(figures.factor_bullet_figure(t, mu, tolerance_range=TOLERANCE_RANGE,
                                         octahedral_range=OCTAHEDRAL_RANGE), key="compose-factors")
    for ok, text in _verdicts(t, mu):
        st.markdown(f"{':green[✔]' if ok else ':orange[⚠]'} {text}")
    st.caption("Windows are rules of thumb (Goldschmidt t from site-averaged Shannon radii; "
               "μ = r_B / r_X); mixed-ion compositions outside them can still form perovskites.")

descriptors_section(composition)
with st.expander("Data sources"):
    for _name in ("elem-prop", "mhp-pbe-paper", "psc-devices"):
        ui.citation(_name)
