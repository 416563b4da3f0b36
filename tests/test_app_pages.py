"""Tests of the dashboard's Home, Data and Compose pages with streamlit.testing.v1.AppTest.

The whole app runs from ``streamlit_app.py`` (so navigation, page config and the
URL sync are part of every test); ``at.switch_page("pages/<page>.py")`` moves to
a page (streamlit 1.67 supports this with ``st.navigation``).
"""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app import navigation, ui
from app_driver import exceptions, n_plots, open_app, open_data_section, texts
from nestedae_core.chemistry.composition import parse_formula

pytestmark = pytest.mark.app

TRIPLE = "Cs0.05FA0.79MA0.16PbBr0.51I2.49"


# --------------------------------------------------------------------------- navigation (no Streamlit run)


def test_page_list_order_and_sections():
    titles = [p.title for p in navigation.PAGES]
    assert titles == ["Home", "Data", "Compose", "Train", "Sweep", "Latents", "Explain", "Predict", "Screen", "Design", "Compare", "Learn"]
    assert {p.section for p in navigation.PAGES} == {"Start", "Model", "Use", "Teach"}
    assert [p.title for p in navigation.PAGES if p.default] == ["Home"]
    assert all(p.file == f"pages/{p.title.lower()}.py" for p in navigation.PAGES)


def test_missing_page_files_are_skipped(tmp_path):
    (tmp_path / "pages").mkdir()
    for name in ("home", "compose", "learn"):
        (tmp_path / "pages" / f"{name}.py").write_text("")
    assert [p.title for p in navigation.available_pages(tmp_path)] == ["Home", "Compose", "Learn"]
    assert list(navigation.sections(tmp_path)) == ["Start", "Teach"]
    assert navigation.is_available("Compose", tmp_path) and not navigation.is_available("Train", tmp_path)
    assert navigation.page_spec("pages/data.py").title == "Data"
    assert navigation.page_spec("nope") is None


def test_own_pages_exist():
    assert {p.title for p in navigation.available_pages()} >= {"Home", "Data", "Compose"}


# --------------------------------------------------------------------------- ui helpers (pure)


def test_apply_filters():
    df = pd.DataFrame({
        "Formula": ["MAPbI3", "FAPbI3", "CsPbBr3", "MAPbBr3"],
        "gap": [1.6, 1.5, None, 2.3],
        "etl": ["a", "b", "a", "c"],
    })
    full = {"gap": (1.5, 2.3)}
    assert len(ui.apply_filters(df)) == 4
    assert list(ui.apply_filters(df, text_column="Formula", text="mapb")["Formula"]) == ["MAPbI3", "MAPbBr3"]
    # untouched slider keeps the row with a missing value; a narrowed one drops it
    assert len(ui.apply_filters(df, ranges={"gap": (1.5, 2.3)}, full_ranges=full)) == 4
    assert list(ui.apply_filters(df, ranges={"gap": (1.55, 2.3)}, full_ranges=full)["Formula"]) == ["MAPbI3", "MAPbBr3"]
    assert list(ui.apply_filters(df, categories={"etl": ["a"]})["Formula"]) == ["MAPbI3", "CsPbBr3"]
    assert len(ui.apply_filters(df, categories={"etl": []})) == 4
    out = ui.apply_filters(df, text_column="Formula", text="Pb", ranges={"gap": (2.0, 3.0)}, full_ranges=full,
                           categories={"etl": ["c"]})
    assert list(out["Formula"]) == ["MAPbBr3"]
    assert len(df) == 4  # input untouched


def test_error_hints_by_class():
    from nestedae_core.errors import CompositionError, DataMissingError

    assert "MAPbI3" in ui.error_hint(CompositionError("x"))
    assert "nestedae data fetch" in ui.error_hint(DataMissingError("x"))
    assert ui.error_hint(ValueError("x")) is None


# --------------------------------------------------------------------------- Home


def test_home_with_data(data_dir):
    at = open_app()
    assert at.title[0].value == "NestedAE Studio"
    status = at.table[0].value
    assert set(status["status"]) == {"present"}
    assert "psc-devices" in set(status["dataset"])
    assert "All datasets are present" in texts(at)
    assert n_plots(at) == 0 and not at.dataframe  # Home loads neither plotly.js nor the data grid
    assert len(at.get("download_button")) >= 1


def test_home_without_data(no_data_env):
    at = open_app()
    status = at.table[0].value
    assert set(status["status"]) == {"missing"}
    warning = " ".join(w.value for w in at.warning)
    assert "nestedae data fetch" in warning and "NESTEDAE_DATA_DIR" in warning
    assert "missing" in warning


def test_home_shows_the_active_model_and_its_metrics(no_data_env, monkeypatch):
    from nestedae_core import store

    paper = store.shipped_bundle_path("paper-default") if hasattr(store, "shipped_bundle_path") else store.default_bundle_path()
    monkeypatch.setenv("NESTEDAE_DEFAULT_MODEL", str(paper))  # the paper chain: materials -> devices
    at = open_app()
    assert not at.exception
    table = at.table[-1].value
    items = dict(zip(table["item"], table["value"]))
    assert items["preset"] == "paper" and items["ensemble members"] == "5"
    assert items["materials: band gap, DFT PBE (no SOC) MAE"].endswith("eV")  # the paper's band gap is DFT-PBE
    assert items["devices: PCE MAE"].endswith("%")


def _chain_texts(at: AppTest) -> str:
    """The texts of Home's chain diagram (inline SVG): one ``<text>`` per ``|``, its lines joined by `` / ``."""
    import xml.etree.ElementTree as ET

    svgs = [m.value for m in at.markdown if m.value.lstrip().startswith("<svg")]
    assert len(svgs) == 1, "Home shows one chain diagram"
    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svgs[0])  # well-formed: every text escaped
    return " | ".join(" / ".join("".join(span.itertext()) for span in text.iter(f"{ns}tspan") if span in list(text))
                      for text in root.iter(f"{ns}text"))


def test_home_chain_diagram_follows_the_measured_default_model(no_data_env):
    at = open_app()
    assert not at.exception
    diagram = _chain_texts(at)
    for word in ("Stage 1: dft", "Stage 2: film", "Stage 3: device", "Inputs / site descriptors (15) / site fractions (14)",
                 "crystal phase", "Latents z₁ / (16)", "Inputs / latents z₁ of dft (16)", "Latents z₂ / (8)",
                 "Inputs / latents z₂ of film (8)", "Predicts / band gap, DFT PBE (no SOC) (eV) / band gap, DFT HSE06+SOC (eV)",
                 "Predicts / band gap, measured (eV)", "Predicts / PCE (%) / Voc (V)", "ETL stack", "HTL stack",
                 "psc-gaps · film scale", "Stage-3 / encoder", "decoder: reconstruct the inputs"):
        assert word in diagram, word
    assert "Latents z₁ / (12)" not in diagram and "Band gap / (eV)" not in diagram and "Stage 4" not in diagram
    assert diagram.count("decoder: reconstruct the inputs") == 3
    assert "predicts the DFT **band gap**" not in texts(at)
    assert "3 stage(s)" in texts(at) and "band gap, measured" in texts(at)


def test_home_chain_diagram_follows_the_paper_model(no_data_env, monkeypatch):
    from nestedae_core import store

    monkeypatch.setenv("NESTEDAE_DEFAULT_MODEL", str(store.shipped_bundle_path("paper-default")))
    at = open_app()
    assert not at.exception
    diagram = _chain_texts(at)
    for word in ("Stage 1: materials", "Stage 2: devices", "site descriptors (15)", "Latents z₁ / (12)",
                 "band gap, DFT PBE (no SOC) (eV)", "latents z₁ of materials (12)", "PCE (%)", "ETL stack"):
        assert word in diagram, word
    assert "site fractions" not in diagram and "Stage 3" not in diagram


def test_home_names_every_band_gap_of_the_default_model(no_data_env):
    at = open_app()
    assert not at.exception
    table = at.table[-1].value
    gaps = [k for k in table["item"] if "band gap" in k]
    assert gaps and all(k.split(": ", 1)[1].startswith("band gap, ") for k in gaps)


def test_home_with_a_broken_default_model_shows_a_message(no_data_env, monkeypatch, tmp_path):
    monkeypatch.setenv("NESTEDAE_DEFAULT_MODEL", str(tmp_path / "no-such-model"))
    at = open_app()
    assert not at.exception
    assert any("no model bundle at" in e.value for e in at.error)


# --------------------------------------------------------------------------- Data


def test_data_page_shows_row_counts(data_dir):
    at = open_app("pages/data.py")
    assert "Showing 2,018 of 2,018 rows" in texts(at)
    assert "Jacobsson" in texts(at)  # citation
    assert n_plots(at) <= 8
    assert len(at.get("download_button")) >= len(at.dataframe)
    at.selectbox(key="data.dataset").set_value("mhp-pbe-paper").run()
    assert not at.exception
    assert "Showing 494 of 494 rows" in texts(at)
    assert "Mannodi-Kanakkithodi" in texts(at)


def test_data_page_filters(data_dir):
    at = open_app("pages/data.py")
    at.text_input(key="data.psc-devices.text").input("MAPbI3").run()
    assert not at.exception
    import re

    shown = at.dataframe[0].value  # the first page of the filtered rows
    matched = int(re.search(r"Showing ([\d,]+) of 2,018 rows", texts(at)).group(1).replace(",", ""))
    assert 900 < matched < 2018 and len(shown) == 50
    assert shown["Perovskite_composition_long_form"].str.contains("MAPbI3").all()
    at.multiselect(key="data.psc-devices.cat.ETL_stack_sequence").set_value(["SnO2-np"]).run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert set(shown["ETL_stack_sequence"]) == {"SnO2-np"}
    matched = int(re.search(r"Showing ([\d,]+) of 2,018 rows", texts(at)).group(1).replace(",", ""))
    assert len(shown) == min(matched, 50) and f"of {matched:,}" in texts(at)


def test_data_page_every_dataset_renders(data_dir):
    """Every section of every dataset runs (a section runs only when it is open)."""
    at = open_app("pages/data.py")
    for name in at.selectbox(key="data.dataset").options:
        key = name.split(":")[0]
        at.selectbox(key="data.dataset").set_value(key).run()
        assert not at.exception, (key, exceptions(at))
        sections = [t.label for t in at.tabs]
        assert sections[0] == "Table" and len(at.dataframe) == 1 and n_plots(at) == 0, key  # the table alone
        for section in sections[1:]:
            open_data_section(at, section, key)
            assert 0 < n_plots(at) + len(at.dataframe) and n_plots(at) <= 4, (key, section)


def test_data_page_draws_only_the_open_section(data_dir):
    """Only the open section's figures and tables are sent to the browser; the section names stay, Table first."""
    at = open_app("pages/data.py")
    assert [t.label for t in at.tabs] == ["Table", "Distributions", "Composition coverage", "Devices", "Data quality"]
    assert n_plots(at) == 0 and len(at.dataframe) == 1 and len(at.dataframe[0].value) == 50  # one page of the table
    assert "Shockley–Queisser detailed-balance limit" not in texts(at)
    open_data_section(at, "Devices")
    assert n_plots(at) == 3 and not at.dataframe  # gap vs results, ETL, HTL
    assert "Shockley–Queisser detailed-balance limit" in texts(at)
    assert "Showing 2,018 of 2,018 rows" in texts(at) and at.text_input(key="data.psc-devices.text")  # filters stay
    open_data_section(at, "Composition coverage")
    assert n_plots(at) == 3 and len(at.dataframe) == 1  # ternary, A and B sites; the mixing table
    at.text_input(key="data.psc-devices.text").input("Sn").run()  # a filter keeps the open section
    assert not at.exception, exceptions(at)
    assert at.session_state["data.psc-devices.section"] == "Composition coverage" and n_plots(at) == 3
    assert "Showing 122 of 2,018 rows" in texts(at)
    open_data_section(at, "Table")
    assert n_plots(at) == 0 and len(at.dataframe) == 1


def test_data_page_titles_gaps_by_kind_and_never_says_au(data_dir):
    import json

    at = open_app("pages/data.py")
    at.selectbox(key="data.dataset").set_value("psc-gaps").run()
    assert not at.exception
    sliders = [s.label for s in at.slider]
    assert "measured band gap spread (eV)" in sliders and "devices (count)" in sliders
    assert not any("a.u." in s for s in sliders)
    open_data_section(at, "Distributions", "psc-gaps")
    summaries = [d.value for d in at.dataframe if "quantity" in d.value.columns]
    assert summaries and set(summaries[0]["quantity"]) == {"measured band gap", "measured band gap spread", "devices"}
    at.selectbox(key="data.dataset").set_value("mhp-dft").run()
    assert not at.exception
    headers = {k: v.get("label") for k, v in json.loads(at.dataframe[0].proto.columns).items()}
    assert headers["Gap_PBE"] == "band gap, DFT PBE (no SOC) (eV)" and headers["Gap_HSE"] == "band gap, DFT HSE06+SOC (eV)"
    open_data_section(at, "Distributions", "mhp-dft")
    summary = next(d.value for d in at.dataframe if "quantity" in d.value.columns)
    assert list(summary["quantity"]) == ["band gap, DFT PBE (no SOC)", "band gap, DFT HSE06+SOC"] and "Gap_PBE" not in summary.to_string()
    at.selectbox(key="data.dataset").set_value("psc-devices").run()
    open_data_section(at, "Distributions")
    summary = next(d.value for d in at.dataframe if "quantity" in d.value.columns)
    assert "PCE" in set(summary["quantity"]) and "JV_reverse_scan_PCE" not in summary.to_string()


def test_data_page_without_data(no_data_env):
    at = open_app("pages/data.py")
    info = " ".join(i.value for i in at.info)
    assert "No dataset is available" in info
    assert "nestedae data fetch" in info and "NESTEDAE_DATA_DIR" in info
    assert not at.error


# --------------------------------------------------------------------------- Compose


def descriptor_values(at: AppTest) -> dict[str, float]:
    table = at.dataframe[0].value
    return dict(zip(table["descriptor"], table["value"]))


def test_compose_default_is_mapbi3(data_dir):
    at = open_app("pages/compose.py")
    assert at.header[0].value == "MAPbI3"
    assert at.query_params.get("formula") == "MAPbI3"
    values = descriptor_values(at)
    assert values["A_IE"] == pytest.approx(926.3)
    assert "984" in texts(at)  # MAPbI3 devices in psc-devices
    # both band gaps of the data, each named: DFT-PBE and measured on devices
    assert "band gap, DFT PBE (no SOC) in mhp-pbe-paper" in texts(at) and "median measured band gap **1.6" in texts(at)
    assert n_plots(at) <= 8


def test_compose_formula_shows_descriptors(no_data_env):
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input(TRIPLE).run()
    assert not at.exception
    assert at.header[0].value == TRIPLE
    values = descriptor_values(at)
    # composition-weighted A-site ionization energy: 0.05*375.7 + 0.79*849.1 + 0.16*926.3 kJ/mol
    assert values["A_IE"] == pytest.approx(0.05 * 375.7 + 0.79 * 849.1 + 0.16 * 926.3, rel=1e-6)
    assert values["X_ion_rad"] == pytest.approx(0.17 * 1.96 + 0.83 * 2.2, rel=1e-6)
    table = at.dataframe[0].value
    assert dict(zip(table["descriptor"], table["unit"]))["A_IE"] == "kJ/mol"
    assert "A-site ionization energy" in set(table["meaning"])
    assert "Tolerance factor" in texts(at) and "inside" in texts(at)
    assert at.query_params.get("formula") == TRIPLE


def test_compose_all_descriptors_toggle(no_data_env):
    at = open_app("pages/compose.py")
    assert len(at.dataframe[0].value) == 17
    at.toggle(key="compose.all_descriptors").set_value(True).run()
    assert len(at.dataframe[0].value) == 38


def test_compose_descriptors_describe_the_active_models_first_stage(no_data_env):
    at = open_app("pages/compose.py")
    toggle = at.toggle(key="compose.all_descriptors").label
    assert "36 descriptors" in toggle and "stage 'dft' of the active model" in toggle and "NestedAE stage-1" not in toggle
    assert "15 site descriptors, 14 site fractions, crystal phase" in texts(at)
    table = at.dataframe[0].value
    assert "model input" in table.columns and int(table["model input"].sum()) == 15


@pytest.mark.parametrize(
    "bad, message",
    [
        ("FA0.5PbI3", "A-site amounts sum to 0.5"),
        ("MAPbI3-DAP", "additives are not supported: remove '-DAP'"),
        ("MAPbX3", "unknown species"),
        ("Cs0.05(FA0.83MA0.17PbI3", "unbalanced parentheses"),
    ],
)
def test_compose_invalid_formula_is_a_specific_error(no_data_env, bad, message):
    at = open_app("pages/compose.py")
    at.text_input(key="compose.formula").input(bad).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(message in e for e in errors), errors
    assert at.header[0].value == "MAPbI3"  # the last valid composition stays
    assert "Still showing the last valid composition" in texts(at)
    assert at.query_params.get("formula") == "MAPbI3"
    at.text_input(key="compose.formula").input("CsPbBr3").run()
    assert not at.error and at.header[0].value == "CsPbBr3"


def test_compose_renormalize_accepts_off_totals(no_data_env):
    at = open_app("pages/compose.py")
    at.checkbox(key="compose.renormalize").check().run()
    at.text_input(key="compose.formula").input("FA0.5PbI3").run()
    assert not at.error
    assert at.header[0].value == "FAPbI3"


def test_compose_preset_sets_everything(no_data_env):
    at = open_app("pages/compose.py")
    label = next(k for k in at.selectbox(key="compose.preset").options if "nested notation" in k)
    at.selectbox(key="compose.preset").set_value(label).run()
    assert not at.exception
    comp = parse_formula("Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3")
    assert at.header[0].value == comp.formula
    assert at.text_input(key="compose.formula").value == "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3"
    assert at.multiselect(key="compose.ions.A").value == ["Cs", "MA", "FA"]  # largest last: the remainder
    assert at.slider(key="compose.amt.A.Cs").value == pytest.approx(0.05)
    assert at.selectbox(key="compose.preset").value is None  # ready for the next pick


def test_compose_pick_from_dataset(data_dir):
    at = open_app("pages/compose.py")
    box = at.selectbox(key="compose.pick.mhp-pbe-paper")
    assert "MAGeCl_3" in box.options
    box.set_value("MAGeCl_3").run()
    assert not at.exception
    assert at.header[0].value == "MAGeCl3"
    assert "band gap, DFT PBE (no SOC) in mhp-pbe-paper: **1.95 eV**" in texts(at)
    devices = at.selectbox(key="compose.pick.psc-devices")
    assert devices.options[0] == "MAPbI3  (984 devices)"  # most frequent first


def test_compose_site_builder_keeps_totals(no_data_env):
    at = open_app("pages/compose.py")
    at.multiselect(key="compose.ions.X").set_value(["I", "Br"]).run()  # Br added last: takes the remainder
    assert at.header[0].value == "MAPbI3"
    at.multiselect(key="compose.ions.X").set_value(["Br", "I"]).run()
    at.slider(key="compose.amt.X.Br").set_value(0.6).run()
    assert not at.exception
    assert at.header[0].value == "MAPbBr0.6I2.4"
    assert at.text_input(key="compose.formula").value == "MAPbBr0.6I2.4"
    assert at.query_params.get("formula") == "MAPbBr0.6I2.4"
    assert "I (remainder): **2.4**" in texts(at)


def test_compose_site_builder_overshoot_message(no_data_env):
    at = open_app("pages/compose.py")
    at.multiselect(key="compose.ions.A").set_value(["MA", "Cs"]).run()  # Cs added: remainder 0
    assert at.header[0].value == "MAPbI3" and at.slider(key="compose.amt.A.MA").value == 1.0
    at.slider(key="compose.amt.A.MA").set_value(0.8).run()
    assert at.header[0].value == "Cs0.2MA0.8PbI3"
    at.multiselect(key="compose.ions.A").set_value(["MA", "Cs", "FA"]).run()  # Cs keeps its 0.2
    assert at.slider(key="compose.amt.A.Cs").value == pytest.approx(0.2)
    assert at.header[0].value == "Cs0.2MA0.8PbI3"
    at.slider(key="compose.amt.A.Cs").set_value(0.5).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "add up to 1.3, more than the site total 1" in errors and "FA, the last ion" in errors
    assert at.header[0].value == "Cs0.2MA0.8PbI3"  # the last valid composition stays
    assert ":red[**-0.3**]" in texts(at)  # negative remainder shown in red
    at.slider(key="compose.amt.A.MA").set_value(0.3).run()
    assert not at.error
    assert at.header[0].value == "Cs0.5FA0.2MA0.3PbI3"


def test_compose_empty_site_message(no_data_env):
    at = open_app("pages/compose.py")
    at.multiselect(key="compose.ions.B").set_value([]).run()
    assert not at.exception
    assert any("Choose at least one B-site ion" in e.value for e in at.error)
    assert at.header[0].value == "MAPbI3"


# --------------------------------------------------------------------------- URL round trip


def test_formula_query_param_round_trip(no_data_env):
    nested = "Cs0.05(FA0.83MA0.17)0.95Pb(I0.83Br0.17)3"
    canonical = parse_formula(nested).formula
    at = open_app("pages/compose.py", query={"formula": nested})
    assert at.header[0].value == canonical
    assert at.text_input(key="compose.formula").value == canonical
    # the choice is written back to the URL ...
    at.text_input(key="compose.formula").input("FASnI3").run()
    assert at.query_params.get("formula") == "FASnI3"
    # ... survives a page switch (query params are rewritten) ...
    at.switch_page("pages/home.py").run()
    assert at.query_params.get("formula") == "FASnI3"
    # ... and a new session opened with that URL shows the same composition
    again = open_app("pages/compose.py", query={"formula": at.query_params["formula"]})
    assert again.header[0].value == "FASnI3"
    assert descriptor_values(again) == descriptor_values(at.switch_page("pages/compose.py").run())


def test_bad_formula_in_url_is_a_message_and_no_results(no_data_env):
    at = open_app("pages/compose.py", query={"formula": "MAPbI3-DAP"})
    assert not at.exception
    error = " ".join(e.value for e in at.error)
    assert "could not be read" in error and "additives are not supported" in error
    assert not at.header  # no results for MAPbI3 in its place
    assert at.query_params.get("formula") == "MAPbI3-DAP"



def test_a_link_inside_the_app_brings_its_formula(monkeypatch):
    """Design's "Predict it" and "Explain it" are page links carrying ``?formula=``: the page they open shows that
    formula, also in a session that chose another composition before (it kept the old one); otherwise the URL
    follows the session's choice. (``sync_url`` on a stand-in for ``st``: AppTest does not rerun the entry script.)"""
    from types import SimpleNamespace

    from app import state

    fake = SimpleNamespace(session_state={}, query_params={})
    monkeypatch.setattr(state, "st", fake)
    state.sync_url()  # a session opened without ?formula=
    assert state.get_composition() is None and fake.query_params == {}
    state.set_composition(parse_formula("FASnI3"))  # chosen on Compose
    assert fake.query_params["formula"] == "FASnI3"
    state.sync_url()
    assert state.get_composition().formula == "FASnI3"
    fake.query_params["formula"] = "CsPbBr3"  # a click on st.page_link(..., query_params={"formula": ...})
    state.sync_url()
    assert state.get_composition().formula == "CsPbBr3"
    fake.query_params["formula"] = "Cs1.0PbBr3"  # a link's notation, read once ...
    state.sync_url()
    assert state.get_composition().formula == "CsPbBr3" and fake.query_params["formula"] == "Cs1.0PbBr3"
    state.sync_url()  # ... then the URL follows the composition's canonical formula
    assert fake.query_params["formula"] == "CsPbBr3"
    fake.query_params.pop("formula")  # a page switch without the parameter keeps the session's choice
    state.sync_url()
    assert fake.query_params["formula"] == "CsPbBr3" and state.get_composition().formula == "CsPbBr3"
