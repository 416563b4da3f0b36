"""Home: what NestedAE is, which datasets are here, where to start, and the loaded model."""
from __future__ import annotations

from nestedae_core.api import (
    DATA_DIR_ENV, ChainSpec, StageSpec, TargetSpec, column_label as label, dataset_status, gap_name, input_groups,
    target_fidelity,
)

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import figures, navigation, ui

_SCALES = ("atomic scale", "film scale", "device scale")
_STAGE_COLORS = (figures.SITE_COLORS["A"], figures.SITE_COLORS["X"], figures.SITE_COLORS["B"])


def _target_text(stage: StageSpec, target: TargetSpec, *, with_unit: bool = True) -> str:
    """``PCE (%)``, ``band gap, DFT PBE (no SOC) (eV)``: the target's label naming its kind of band gap (and its unit)."""
    fidelity = target_fidelity(stage, target)
    name = gap_name(fidelity) if fidelity else target.label or label(target.column)
    return f"{name} ({target.unit})" if target.unit and with_unit else name


def _inputs_text(spec: ChainSpec, i: int) -> str:
    """The inputs of stage ``i``: upstream latents and its columns by kind, with counts."""
    stage = spec.stages[i]
    parts = [f"latents z{_SUB[i]} of {spec.stages[i - 1].name} ({spec.stages[i - 1].latent_dim})"] if stage.upstream else []
    parts += [f"{name} ({n})" if n > 1 else name for name, n in input_groups(stage.numeric_inputs + stage.categorical_inputs)]
    return "<br>".join(parts)


_SUB = "₀₁₂₃₄₅₆₇₈₉"


def chain_figure(spec: ChainSpec) -> go.Figure:
    """The chain of ``spec`` drawn with shapes and arrows: one row per stage, inputs -> encoder -> latents -> heads,
    a dotted decoder back to the inputs, and an arrow from each stage's latents to the next stage."""
    shapes: list[dict] = []  # collected, then given to the figure at once: one validation, not one per shape
    annotations: list[dict] = []
    n = len(spec.stages)
    row_h, gap = 1.3, 0.9
    top = n * (row_h + gap)
    cols = {"inp": (0.0, 2.6), "enc": (3.1, 4.4), "lat": (4.9, 6.3), "out": (6.8, 9.6)}

    def box(x: tuple[float, float], y0: float, text: str, fill: str, *, dark: bool = False) -> None:
        shapes.append(dict(type="rect", x0=x[0], x1=x[1], y0=y0, y1=y0 + row_h, fillcolor=fill,
                           line=dict(color="#5A6B7B", width=1.2), layer="below"))
        annotations.append(dict(x=sum(x) / 2, y=y0 + row_h / 2, text=text, showarrow=False,
                                font=dict(size=11, color="white" if dark else "#1F2A36")))

    def arrow(x0: float, y0: float, x1: float, y1: float, *, dash: bool = False) -> None:
        annotations.append(dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                                showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=1.6,
                                arrowcolor="#8A97A6" if dash else "#33414F", text=""))

    grey = dict(color="#8A97A6", width=1.4, dash="dot")
    for i, stage in enumerate(spec.stages):
        y0 = top - (i + 1) * (row_h + gap) + 0.1
        mid = y0 + row_h / 2
        color = _STAGE_COLORS[i % len(_STAGE_COLORS)]
        scale = _SCALES[i] if n == 3 else ("atomic scale" if i == 0 else "device scale" if i == n - 1 else "")
        title = f"<b>Stage {i + 1}: {stage.name}</b> · {stage.dataset}" + (f" · {scale}" if scale else "")
        annotations.append(dict(x=-0.05, y=y0 + row_h + 0.3, text=title, showarrow=False, xanchor="left",
                                font=dict(size=12, color=color)))
        box(cols["inp"], y0, f"<b>Inputs</b><br>{_inputs_text(spec, i)}", "#EEF2F7")
        box(cols["enc"], y0, f"<b>Stage-{i + 1}<br>encoder</b>", color, dark=True)
        box(cols["lat"], y0, f"<b>Latents z{_SUB[i + 1]}</b><br>({stage.latent_dim})", "#D5E3F0")
        box(cols["out"], y0, "<b>Predicts</b><br>" + "<br>".join(_target_text(stage, t) for t in stage.targets), "#FBE3D0")
        arrow(cols["inp"][1], mid, cols["enc"][0], mid)
        arrow(cols["enc"][1], mid, cols["lat"][0], mid)
        arrow(cols["lat"][1], mid, cols["out"][0], mid)
        # decoder: a dotted elbow from the latents back to the inputs
        xl, xi = sum(cols["lat"]) / 2, sum(cols["inp"]) / 2
        shapes.append(dict(type="path", path=f"M {xl} {y0} L {xl} {y0 - 0.2} L {xi} {y0 - 0.2}", line=grey))
        arrow(xi, y0 - 0.2, xi, y0, dash=True)
        annotations.append(dict(x=(xl + xi) / 2, y=y0 - 0.2, text="decoder: reconstruct the inputs", showarrow=False,
                                font=dict(size=10, color="#6B7785"), yshift=-8))
        if i + 1 < n:  # this stage's latents feed the next stage's encoder
            nxt = y0 - (row_h + gap) + row_h
            arrow(cols["lat"][1] - 0.2, y0, sum(cols["enc"]) / 2, nxt)
    fig = go.Figure(layout=dict(shapes=shapes, annotations=annotations))
    fig.update_xaxes(visible=False, range=[-0.1, 9.7], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.45, top + 0.1], fixedrange=True)
    figures.style(fig, height=int(150 * n + 60))
    fig.update_layout(margin=dict(l=5, r=5, t=5, b=5), showlegend=False, dragmode=False)
    return fig


def _active_spec() -> ChainSpec | None:
    """The active model's chain spec; None when it cannot be read (the summary below says why).

    Read from the bundle's files (:func:`app.model_state.active_overview`): Home never loads the
    model's weights (nor torch), so that a cold server's first page does not wait for them."""
    from app import model_state

    try:
        return model_state.active_overview().spec
    except Exception:  # noqa: BLE001 - the model summary shows the error
        return None


st.title("NestedAE Studio")
chain_spec = _active_spec()
intro = (
    "**NestedAE** links length scales with a chain of autoencoders "
    "(Thota, Sharma Priyadarshini & Hernandez, *Mater. Horiz.* 11, 700, 2024, "
    "[doi:10.1039/D3MH01484C](https://doi.org/10.1039/D3MH01484C)). "
    "Each stage compresses its inputs into a few **latents** and predicts its targets from them; "
    "the next stage reads those latents with its own inputs. Decoders rebuild the inputs from the "
    "latents, and Shapley values show which atomic descriptors and device choices drive each prediction."
)
if chain_spec is not None:
    steps = "; ".join(
        f"**{s.name}** ({s.dataset}) predicts " + ", ".join(_target_text(s, t, with_unit=False) for t in s.targets)
        for s in chain_spec.stages
    )
    intro += f"\n\nThe active model (preset *{chain_spec.name}*) has {len(chain_spec.stages)} stage(s): {steps}."
st.markdown(intro)
if chain_spec is not None:
    ui.plot(chain_figure(chain_spec), key="home-chain")

# ---------------------------------------------------------------------- where to start
st.subheader("Where to start")
_START = [
    ("Compose", "Build a composition and see its descriptors, tolerance and octahedral factors."),
    ("Data", "Browse the DFT alloys and the 2018 solar cells behind the model."),
    ("Train", "Configure and train every stage of a chain, watch the losses, save the model."),
    ("Predict", "Composition + device stack → band gap → efficiency, with uncertainty."),
    ("Explain", "Which descriptors and device choices drive the predictions (SHAP)."),
    ("Learn", "A synthetic data set with known truth: what the method can and cannot recover."),
]
columns = st.columns(3)
shown = 0
for title, blurb in _START:
    spec = navigation.page_spec(title)
    if spec is None or not spec.exists():
        continue
    with columns[shown % 3]:
        with st.container(border=True):
            st.page_link(str(navigation.ROOT / spec.file), label=title, icon=spec.icon)
            st.caption(blurb)
    shown += 1

# ---------------------------------------------------------------------- datasets
st.subheader("Datasets on this machine")
statuses = [s for s in dataset_status() if s.name != "synthetic"]
table = pd.DataFrame(
    {
        "dataset": [s.name for s in statuses],
        "status": ["present" if s.available else "missing" for s in statuses],
        "rows": [s.rows for s in statuses],
        "what": [s.title for s in statuses],
        "where / fix": [s.message for s in statuses],
    }
)
ui.table_with_download(
    table, "datasets",
    column_config={
        "status": st.column_config.TextColumn("status", width="small"),
        "rows": st.column_config.NumberColumn("rows", format="%d", width="small"),
        "what": st.column_config.TextColumn("what", width="large"),
        "where / fix": st.column_config.TextColumn("where / fix", width="large"),
    },
)
missing = [s for s in statuses if not s.available]
if missing:
    lines = "\n".join(f"- `{s.name}`: {s.message}" for s in missing)
    st.warning(
        f"**{len(missing)} dataset(s) missing.** Fetch each with `nestedae data fetch NAME` "
        f"(needs internet), or copy the files into a folder and set `{DATA_DIR_ENV}` to it, "
        f"then reload.\n\n{lines}",
        icon=":material/cloud_download:",
    )
else:
    st.success("All datasets are present.", icon=":material/check_circle:")
with st.expander("How to cite the data"):
    for s in statuses:
        st.markdown(f"**{s.name}**")
        ui.citation(s.name)


# ---------------------------------------------------------------------- model summary
def render_model_summary() -> None:
    """The active model (the shipped default unless another was chosen on Train) and its CV metrics."""
    from app import model_state, quantities

    st.subheader("Active model")
    with ui.user_errors("Choose another model on the Train page, or reinstall to restore the shipped default."):
        overview = model_state.active_overview()
        summary = quantities.summary_named(overview.spec, overview.summary)
        frame = pd.DataFrame({"item": [str(k) for k in summary], "value": [str(v) for v in summary.values()]})
        ui.table_with_download(frame, "model_summary")
        st.caption(
            "Metrics are k-fold cross-validation errors of the fold models; their ensemble makes the predictions. "
            "Change the active model on the Train page."
        )


render_model_summary()
