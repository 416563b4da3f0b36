"""The coverage rule of the applicability domain: each numeric input against the range its weighted training rows cover,
and what the shipped model's film stage says about compositions our measured films do not reach."""
from __future__ import annotations

import numpy as np
import pytest

from cli_checks import run
from nestedae_core import NestedAEModel
from nestedae_core.model.domain import COVERAGE_SLACK, COVERAGE_SUPPORT, DomainModel, Uncovered
from nestedae_core.perovskite.domain_wording import coverage_wording

pytestmark = pytest.mark.unit

COLS = ["Cs", "Cl", "z"]


def _rows() -> tuple[np.ndarray, np.ndarray]:
    """Cs held by many rows up to 0.4 and by two lone rows at 0.95 and 1.0; Cl 0 everywhere; a row of weight 0 at Cs 0.9."""
    rng = np.random.default_rng(0)
    cs = np.concatenate([np.linspace(0.0, 0.4, 20), [0.95, 1.0, 0.9]])
    z = rng.normal(size=len(cs))
    z[-3:-1] = [5.0, 5.1]
    values = np.column_stack([cs, np.zeros_like(cs), z])
    weights = np.ones(len(cs))
    weights[-1] = 0.0
    return values, weights


def _domain() -> DomainModel:
    values, weights = _rows()
    return DomainModel.fit(COLS, values, [f"r{i}" for i in range(len(values))], coverage_columns=["Cs", "Cl"], weights=weights)


def test_an_input_value_held_by_fewer_than_the_support_rows_is_not_covered() -> None:
    assert COVERAGE_SUPPORT == 3
    dom = _domain()
    assert dom.coverage_columns == ["Cs", "Cl"]
    # two rows at Cs 0.95 and 1.0 (and one of weight 0 at 0.9) do not cover Cs above 0.4: the third-highest weighted row is 0.4
    assert dom.reach_high.tolist() == [pytest.approx(0.4), 0.0]
    assert dom.reach_low.tolist() == [pytest.approx(0.4 * 2 / 19), 0.0]  # and from the third-lowest: 0.042
    assert dom.slack.tolist() == [pytest.approx(COVERAGE_SLACK * 1.0), 0.0]
    q = np.array([[0.3, 0.0, 0.0], [0.44, 0.0, 0.0], [0.46, 0.0, 0.0], [1.0, 0.0, 5.0], [0.3, 0.2, 0.0], [1.0, 1.0, 5.0]])
    unc = dom.uncovered(q)
    assert [[u.column for u in row] for row in unc] == [[], [], ["Cs"], ["Cs"], ["Cl"], ["Cs", "Cl"]]
    # a lone training row is near itself (distance 0) yet outside: the coverage rule alone flags it
    dist, _ = dom.nearest(q)
    assert dist[3] <= dom.threshold and dom.inside(q).tolist() == [True, True, False, False, False, False]


def test_every_row_counts_without_weights_and_without_coverage_nothing_is_checked() -> None:
    values, _ = _rows()
    unweighted = DomainModel.fit(COLS, values, coverage_columns=["Cs"])
    assert unweighted.reach_high.tolist() == [pytest.approx(0.9)]  # the rows at 1.0, 0.95, 0.9: the third is 0.9
    plain = DomainModel.fit(COLS, values)
    assert plain.coverage_columns == [] and plain.uncovered(np.array([[9.0, 9.0, 0.0]])) == [[]]
    with pytest.raises(ValueError, match="coverage columns not among"):
        DomainModel.fit(COLS, values, coverage_columns=["Br"])


def test_the_reason_names_the_input_its_value_and_what_the_training_rows_reach() -> None:
    dom = _domain()
    q = np.array([[1.0, 1.0, 5.0]])
    dist, idx = dom.nearest(q)
    reason = dom.reason("film", float(dist[0]), int(idx[0]), dom.uncovered(q)[0])
    assert reason == ("outside the training data of stage 'film': Cs on the A site 1.00 (its training rows reach 0.40), "
                      "Cl on the X site 1.00 (its training rows have none)")
    # a column no registered wording knows reads as its name
    assert Uncovered("x7", 2.0, 0.0, 1.0).phrase("some-table") == "x7 2.00 (its training rows reach 1.00)"
    assert Uncovered("x7", 2.0, 0.5, 0.5).phrase() == "x7 2.00 (its training rows all have 0.50)"
    # registered words for a perovskite dataset; a far query names the distance and the nearest row after the inputs
    worded = dom.reason("film", dom.threshold + 1.0, 3, dom.uncovered(q)[0], "psc-gaps")
    assert worded.startswith("outside the training data of stage 'film': Cs on the A site 1.00 (the measured films reach 0.40), "
                             "Cl on the X site 1.00 (the measured films have none); distance ")
    assert worded.endswith("nearest training row: r3")
    assert Uncovered("Pb", 0.0, 0.3, 1.0).phrase("psc-gaps") == "Pb on the B site 0.00 (the measured films go down to 0.30)"
    assert coverage_wording("mhp-dft", "Sn") == ("Sn on the B site", "the DFT alloys")
    assert coverage_wording("some-table", "x7") is None
    assert dom.reason("film", 0.0, 0, []) == ""


def test_coverage_survives_json_and_old_domains_have_none() -> None:
    dom = _domain()
    again = DomainModel.from_json(dom.to_json())
    assert again.coverage_columns == dom.coverage_columns
    assert np.array_equal(again.reach_high, dom.reach_high) and np.array_equal(again.slack, dom.slack)
    q = np.array([[0.3, 0.0, 0.0], [1.0, 0.0, 5.0]])
    assert again.inside(q).tolist() == dom.inside(q).tolist() == [True, False]
    old = dom.to_json()
    del old["coverage"]
    assert DomainModel.from_json(old).inside(q).tolist() == [True, True]
    bad = dom.to_json()
    bad["coverage"]["columns"] = ["Br", "Cl"]
    with pytest.raises(ValueError, match="coverage names a column"):
        DomainModel.from_json(bad)


@pytest.fixture(scope="module")
def shipped() -> NestedAEModel:
    return NestedAEModel.load()


@pytest.mark.parametrize("formula, needle", [
    ("CsPbI3", "Cs on the A site 1.00 (the measured films reach 0.40)"),
    ("FA0.25Cs0.75PbI3", "Cs on the A site 0.75 (the measured films reach 0.40)"),
    ("MAPbCl3", "Cl on the X site 1.00 (the measured films have none)"),
    ("MAPb(I0.5Cl0.5)3", "Cl on the X site 0.50 (the measured films have none)"),
])
def test_the_shipped_film_stage_flags_what_the_measured_films_do_not_reach(shipped: NestedAEModel, formula: str, needle: str) -> None:
    row = shipped.predict(formula).iloc[0]
    assert row["dft_in_domain"] and not row["film_in_domain"] and not row["in_domain"]
    assert row["domain_stage"] == "film"
    assert row["domain_message"].startswith("outside the training data of stage 'film': ") and needle in row["domain_message"]


@pytest.mark.parametrize("formula", ["MAPbI3", "FAPbI3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "Cs0.25FA0.75PbI3", "MAPbBr3"])
def test_the_shipped_film_stage_keeps_what_the_measured_films_cover(shipped: NestedAEModel, formula: str) -> None:
    row = shipped.predict(formula, etl="SnO2-np", htl="Spiro-MeOTAD").iloc[0]
    assert row["film_in_domain"] and row["in_domain"] and row["domain_message"] == ""


def test_the_cli_says_per_stage_which_input_the_films_do_not_reach(capsys: pytest.CaptureFixture[str]) -> None:
    rc, stdout, err = run(capsys, "predict", "CsPbI3")
    assert rc == 0, err
    assert "dft: inside the training domain" in stdout
    assert "film: OUTSIDE the training domain (distance 0.00): Cs on the A site 1.00 (the measured films reach 0.40)" in stdout
    rc, stdout, err = run(capsys, "predict", "MAPbI3")
    assert rc == 0, err
    assert "film: inside the training domain" in stdout and "OUTSIDE" not in stdout
