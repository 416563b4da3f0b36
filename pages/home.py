"""Home: what NestedAE is, which datasets are here, where to start, and the loaded model.

The first page of a cold server, kept light in the browser too: the chain diagram is inline SVG
(:mod:`app.chain_diagram`, no plotly.js) and the two short tables are plain `st.table`s (no data grid).
"""
from __future__ import annotations

from nestedae_core.api import DATA_DIR_ENV, ChainSpec, dataset_status

import pandas as pd
import streamlit as st

from app import navigation, ui
from app.chain_diagram import chain_svg, target_text as _target_text


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
if chain_spec is not None:  # inline SVG, every text escaped (app.chain_diagram): the first page loads no plotly.js
    st.markdown(chain_svg(chain_spec), unsafe_allow_html=True)

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
# plain tables on Home (st.table): the first page never loads the data grid's JavaScript
shown_table = table.assign(rows=["" if pd.isna(r) else f"{int(r):,}" for r in table["rows"]])
ui.table_with_download(shown_table, "datasets", download=table, static=True)
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
        ui.table_with_download(frame, "model_summary", static=True)
        st.caption(
            "Metrics are k-fold cross-validation errors of the fold models; their ensemble makes the predictions. "
            "Change the active model on the Train page."
        )


render_model_summary()
