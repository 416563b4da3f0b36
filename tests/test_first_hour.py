"""A scientist's first hour (issue 18): zero amounts read as absent ions, data availability of a preset
answered before a job is queued, batch tables that lead with the formula and the predictions."""
from __future__ import annotations

import pandas as pd
import pytest

from nestedae_core import batch, store
from nestedae_core.batch import BatchColumns
from nestedae_core.chemistry.composition import parse_formula
from nestedae_core.cli import main
from nestedae_core.errors import ConfigError
from nestedae_core.perovskite.availability import NO_DATA_PRESET, missing_data, missing_data_message

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("FA1.00Cs0.00PbI3", "FAPbI3"),
        ("MAPb(I1.0Br0.0)3", "MAPbI3"),
        ("Cs0FA1MA0Pb1Sn0I3", "FAPbI3"),
        ("(FAPbI3)1.0(MAPbBr3)0.0", "FAPbI3"),
        ("Cs0.05FA0.95MA0.00PbBr0.00I3", "Cs0.05FA0.95PbI3"),
    ],
)
def test_a_zero_amount_is_an_absent_ion(text: str, same_as: str) -> None:
    comp = parse_formula(text)
    assert comp == parse_formula(same_as)
    assert all(v > 0 for v in (*comp.a.values(), *comp.b.values(), *comp.x.values()))


def test_cli_featurize_reads_zero_amounts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["featurize", "FA1.00Cs0.00PbI3", "--json"]) == 0
    assert '"formula": "FAPbI3"' in capsys.readouterr().out


def test_batch_predicts_zero_amounts_and_leads_with_formula_and_predictions() -> None:
    model = store.load_default_bundle()
    table = pd.DataFrame({"note": ["a", "b", "c"], "formula": ["FA1.00Cs0.00PbI3", "MAPb(I1.0Br0.0)3", "XxPbI3"]})
    out = batch.predict_rows(model, table, BatchColumns("formula"))
    assert list(out["error"][:2]) == ["", ""] and out["error"][2]
    assert list(out["composition"][:2]) == ["FAPbI3", "MAPbI3"]
    single = batch.predict_rows(model, pd.DataFrame({"formula": ["FAPbI3"]}), BatchColumns("formula"))
    key = next(c for c in out.columns if c.endswith("_mean"))
    assert out.loc[0, key] == pytest.approx(single.loc[0, key])
    cols = list(out.columns)
    assert cols[0] == "formula"
    n_pred = sum(c.endswith(("_mean", "_lower", "_upper", "_std")) for c in cols)
    assert all(c.endswith(("_mean", "_lower", "_upper", "_std")) for c in cols[1:1 + n_pred])  # predictions next
    assert cols.index("note") > cols.index("model_name")  # the other inputs after the bookkeeping
    assert cols.index("row") > cols.index("error") > cols.index(key)


def test_missing_data_names_files_and_the_fix(no_data_env) -> None:
    assert missing_data(NO_DATA_PRESET) == []
    assert missing_data_message(NO_DATA_PRESET) is None
    missing = missing_data("measured")
    assert missing and all(not s.available for s in missing)
    message = missing_data_message("measured")
    assert message is not None and "\n" not in message
    assert "nestedae data fetch" in message and "NESTEDAE_DATA_DIR" in message
    assert "PSC_efficiencies_dataset.csv" in message  # the file, by name
    assert f"'{NO_DATA_PRESET}' preset needs no data" in message
    with pytest.raises(ConfigError):
        missing_data("no-such-preset")


def test_missing_data_is_none_when_the_files_are_there(data_dir) -> None:
    assert missing_data("measured") == [] and missing_data_message("paper") is None


def test_family_and_measured_values_on_a_small_table() -> None:
    from nestedae_core.data.composition_devices import common_stack, composition_family, measured_values
    from nestedae_core.data.lookup import site_fractions
    from nestedae_core.vocabulary import DEVICE_COMPOSITION, ETL, HTL, PCE

    devices = pd.DataFrame({
        DEVICE_COMPOSITION: ["MAPbI3", "MAPbI3", "FASnI3", "MASnI3", "FASnI3", "MAPbI3"],
        ETL: ["TiO2", "TiO2", "C60", "C60", "TiO2", "SnO2"],
        HTL: ["Spiro", "Spiro", "PEDOT", "PEDOT", "Spiro", "PTAA"],
        PCE: [18.0, 20.0, 7.0, 5.0, 3.0, 19.0],
    })
    fractions = site_fractions(devices, DEVICE_COMPOSITION)
    assert composition_family(parse_formula("MAPb0.5Sn0.5I3")) == "Sn-Pb"
    sn = common_stack(devices, fractions, parse_formula("CsSnI3"))
    assert (sn.etl, sn.htl, sn.family, sn.n_stack, sn.n_family) == ("C60", "PEDOT", "Sn", 2, 3)
    assert "Sn perovskites" in sn.describe() and "2 of 3 devices" in sn.describe()
    pb = common_stack(devices, fractions, parse_formula("FAPbI3"))
    assert (pb.etl, pb.htl) == ("TiO2", "Spiro")
    assert common_stack(devices, fractions, parse_formula("FAPbI3"), etls=["SnO2"]).htl == "PTAA"  # only a model's stacks
    assert common_stack(devices, fractions, parse_formula("CsGeI3")) is None
    seen = measured_values(devices, fractions, parse_formula("MAPbI3"), [PCE, "absent"])
    assert list(seen["column"]) == [PCE] and int(seen["n"].iloc[0]) == 3
    assert seen["median"].iloc[0] == pytest.approx(19.0) and seen["min"].iloc[0] == 18.0 and seen["max"].iloc[0] == 20.0
    assert measured_values(devices, fractions, parse_formula("CsPbBr3"), [PCE]).empty
    tin = measured_values(devices, fractions, parse_formula("FASnI3"), [PCE], where={ETL: "C60"})
    assert int(tin["n"].iloc[0]) == 1 and tin["median"].iloc[0] == 7.0


def test_beats_next_probability() -> None:
    import numpy as np

    from nestedae_core.model.ranking import beats_next_probability, sd_from_interval

    p = beats_next_probability(np.array([20.0, 19.99, 10.0, 9.0]), np.array([3.0, 3.0, 0.1, 0.0]))
    assert p[0] == pytest.approx(0.5, abs=0.01)  # 0.01 % apart inside ±6 %: a coin toss
    assert p[1] > 0.99 and p[2] > 0.99 and np.isnan(p[3])
    assert beats_next_probability(np.array([1.0, 1.0]), np.zeros(2))[0] == 0.5
    assert beats_next_probability(np.array([2.0, 1.0]), np.zeros(2))[0] == 1.0
    assert sd_from_interval(np.array([-1.6448536]), np.array([1.6448536]), 0.9)[0] == pytest.approx(1.0, rel=1e-6)


def test_screen_ranks_with_their_confidence() -> None:
    import numpy as np

    from nestedae_core import predict

    model = store.load_default_bundle()
    ranked = predict.screen(model, ["Cs", "FA", "MA"], ["Pb"], ["I", "Br"], 0.25)
    inside = ranked[ranked["in_domain"].astype(bool)]
    p = inside[predict.RANK_CONFIDENCE].to_numpy()
    assert np.isnan(p[-1]) and ((p[:-1] >= 0.5) & (p[:-1] <= 1.0)).all()  # ranked best first: never below a coin toss
    again = predict.rank_confidence(inside.reset_index(drop=True), "pce_percent")
    assert np.allclose(again[:-1], p[:-1])


def test_cli_predict_text_leads_with_the_measured_gap_and_hides_latents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "FA1.00Cs0.00PbI3"]) == 0  # a zero amount, read as an absent ion
    out = capsys.readouterr().out
    assert "composition: FAPbI3" in out and "latents" not in out
    lines = [line for line in out.splitlines() if "band gap, " in line]
    assert lines and "measured" in lines[0]
    assert main(["predict", "FAPbI3", "--latents"]) == 0
    assert "latents: " in capsys.readouterr().out
