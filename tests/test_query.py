"""Queries: a composition + device stack as a model's raw inputs (nestedae_core.query)."""
from __future__ import annotations

import pytest

from nestedae_core.chemistry.composition import Composition, parse_formula
from nestedae_core.errors import CompositionError, InputError
from nestedae_core.query import Query, composition_problem, query_frame, resolve_categorical
from nestedae_core.store import load_bundle, shipped_bundle_path
from nestedae_core.vocabulary import ETL, HTL, PAPER_DESCRIPTORS

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(shipped_bundle_path("paper-default"))  # ETL and HTL are its only categorical inputs


def test_query_of_accepts_formula_composition_fractions_and_query() -> None:
    comp = parse_formula("FA0.8Cs0.2PbI3")
    for value in ("FA0.8Cs0.2PbI3", comp, {"FA": 0.8, "Cs": 0.2, "Pb": 1, "I": 3}, Query(comp)):
        q = Query.of(value)
        assert isinstance(q.composition, Composition) and q.formula == comp.formula
    q = Query.of(Query(comp, etl="SnO2-c", htl="PTAA"), htl="Spiro-MeOTAD")
    assert (q.etl, q.htl) == ("SnO2-c", "Spiro-MeOTAD")
    with pytest.raises(CompositionError):
        Query.of({"FA": 0.5, "Pb": 1, "I": 3})  # the A site does not sum to 1
    with pytest.raises(InputError, match="got list"):
        Query.of(["MAPbI3"])  # type: ignore[arg-type]


def test_query_frame_has_the_models_raw_inputs_and_stacks(shipped) -> None:
    q = Query.of("MAPbI3", etl="SnO2-np")
    frame = q.frame(shipped)
    assert len(frame) == 1 and frame.loc[0, "formula"] == "MAPbI3"
    assert frame.loc[0, ETL] == "SnO2-np" and frame.loc[0, HTL] == shipped.default_category(HTL)
    assert set(PAPER_DESCRIPTORS) <= set(frame.columns)
    assert frame.loc[0, "A_ion_rad"] == pytest.approx(2.17)  # MA's effective radius (Å)
    cats, defaulted = q.resolve(shipped)
    assert cats[ETL] == "SnO2-np" and defaulted == [HTL]
    with pytest.raises(InputError, match="no categorical input Substrate"):
        query_frame(shipped, ["MAPbI3"], categorical={"Substrate": "FTO"})
    with pytest.raises(InputError, match="unknown HTL stack 'CuSCN'"):
        resolve_categorical(shipped, htl="CuSCN")


def test_composition_problem_says_why_a_model_takes_no_composition(shipped, tiny_synthetic) -> None:
    assert composition_problem(shipped) is None
    problem = composition_problem(tiny_synthetic.model)
    assert problem is not None and "not derivable from the composition" in problem and "x0" in problem
