"""Home: what NestedAE is, which datasets are here, where to start, and the loaded model."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import figures, navigation, ui
from nestedae_core import data

st.title("NestedAE Studio")
st.markdown(
    "**NestedAE** links length scales with a chain of autoencoders "
    "(Thota, Sharma Priyadarshini & Hernandez, *Mater. Horiz.* 11, 700, 2024, "
    "[doi:10.1039/D3MH01484C](https://doi.org/10.1039/D3MH01484C)). "
    "Stage 1 reads the **composition** of a halide perovskite ABX₃ as composition-weighted "
    "A/B/X-site descriptors, compresses them into a few **latents** and predicts the DFT **band gap**. "
    "Stage 2 takes the latents of a device's absorber together with its **transport layers** "
    "(ETL, HTL) and predicts the device's **power conversion efficiency**. Decoders rebuild the "
    "inputs from the latents, and Shapley values show which atomic descriptors and device "
    "choices drive each prediction."
)
ui.plot(figures.chain_diagram_figure(), key="home-chain")

# ---------------------------------------------------------------------- where to start
st.subheader("Where to start")
_START = [
    ("Compose", "Build a composition and see its descriptors, tolerance and octahedral factors."),
    ("Data", "Browse the DFT alloys and the 2018 solar cells behind the model."),
    ("Train", "Configure and train both stages, watch the losses, save the model."),
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
statuses = [s for s in data.dataset_status() if s.name != "synthetic"]
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
        f"(needs internet), or copy the files into a folder and set `{data.DATA_DIR_ENV}` to it, "
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
        model = model_state.active_model()
        summary = quantities.model_summary(model)
        frame = pd.DataFrame({"item": [str(k) for k in summary], "value": [str(v) for v in summary.values()]})
        ui.table_with_download(frame, "model_summary")
        st.caption(
            "Metrics are k-fold cross-validation errors of the fold models; their ensemble makes the predictions. "
            "Change the active model on the Train page."
        )


render_model_summary()
