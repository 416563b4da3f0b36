"""app/quantities.py: band gaps named by fidelity, intervals and model disagreement as text."""
from __future__ import annotations

import numpy as np
import pytest

from app import quantities as q
from nestedae_core.model.config import StageSpec, TargetSpec
from nestedae_core.perovskite.presets import preset

pytestmark = pytest.mark.unit


def entry(lower=None, upper=None, **kw):
    base = {"mean": 1.59, "std": 0.022, "disagreement": 0.022, "unit": "eV", "label": "band gap", "stage": "film",
            "lower": lower, "upper": upper, "level": 0.9, "fidelity": "measured"}
    return {**base, **kw}


@pytest.mark.parametrize("label, fidelity, phase, expected", [
    ("band gap", "PBE", None, "band gap, DFT PBE (no SOC)"),
    ("band gap", "measured", None, "band gap, measured"),
    ("band gap", "HSE", None, "band gap, DFT HSE06+SOC"),
    ("band gap (HSE06)", "HSE", "Cubic", "band gap, DFT HSE06+SOC (cubic)"),  # an old bundle's label: named by the vocabulary
    ("band gap", "PBE", "Tetra", "band gap, DFT PBE (no SOC, tetragonal)"),
    ("measured band gap", "measured", "Cubic", "band gap, measured"),  # a measured gap names no phase
    ("PCE", None, None, "PCE"),
    ("decomposition energy", None, "Cubic", "decomposition energy (cubic)"),  # a DFT-stage output at its phase
])
def test_named(label, fidelity, phase, expected):
    assert q.named(label, fidelity, phase) == expected


def test_entry_name_names_the_phase_of_a_dft_gap():
    assert q.entry_name(entry(fidelity="HSE", phase="Cubic", stage="dft")) == "band gap, DFT HSE06+SOC (cubic)"
    assert q.entry_name(entry()) == "band gap, measured"


def _stage(dataset: str, column: str, label: str = "band gap") -> StageSpec:
    return StageSpec(name="s", dataset=dataset, numeric_inputs=["a"], targets=[TargetSpec(column=column, label=label, unit="eV")])


def test_target_name_from_explicit_or_inferred_fidelity():
    paper = preset("paper")
    assert [q.target_name(s, t) for s in paper.stages for t in s.targets] == ["band gap, DFT PBE (no SOC)", "PCE"]
    hse = _stage("mhp-hse", "Gap")
    assert q.target_name(hse, hse.targets[0]) == "band gap, DFT HSE06+SOC"
    assert q.target_name(hse, hse.targets[0], "Ortho") == "band gap, DFT HSE06+SOC"  # the stage takes no phase
    dft = preset("measured").stages[0]
    assert [q.target_name(dft, t, "Ortho") for t in dft.targets] == [
        "band gap, DFT PBE (no SOC, orthorhombic)", "band gap, DFT HSE06+SOC (orthorhombic)", "decomposition energy (orthorhombic)"]
    film = _stage("psc-gaps", "Perovskite_band_gap", label="")
    assert q.target_name(film, film.targets[0]) == "band gap, measured"
    explicit = StageSpec(name="s", dataset="x", numeric_inputs=["a"],
                         targets=[TargetSpec(column="g", label="band gap", unit="eV", fidelity="HSE")])
    assert q.target_name(explicit, explicit.targets[0]) == "band gap, DFT HSE06+SOC"


def test_estimate_is_the_interval_when_calibrated():
    assert q.estimate(entry(1.52, 1.66)) == "1.590 eV (90 % interval 1.520–1.660)"
    assert q.estimate(entry(1.52, 1.66), 2) == "1.59 eV (90 % interval 1.52–1.66)"
    assert q.interval_text(entry(1.52, 1.66, level=0.8)) == "80 % interval 1.520–1.660"
    assert q.has_interval(entry(1.52, 1.66)) and not q.has_interval(entry())


def test_estimate_without_calibration_is_the_disagreement():
    assert q.estimate(entry()) == "1.590 ± 0.022 eV"
    assert q.interval_text(entry()) == ""
    assert q.disagreement(entry(std=0.05, disagreement=0.05)) == "model disagreement ± 0.050 eV"
    assert q.estimate(entry(unit="", mean=0.8, std=0.01)) == "0.800 ± 0.010"
    assert "not an error bar" in q.DISAGREEMENT_NOTE


def test_column_fidelity():
    assert q.column_fidelity("mhp-pbe-paper", "Gap") == "PBE" and q.column_fidelity("mhp-hse", "Gap") == "HSE"
    assert q.column_fidelity("psc-gaps", "Perovskite_band_gap") == "measured"
    assert q.column_fidelity("mhp-dft", "Gap_PBE") == "PBE" and q.column_fidelity("mhp-dft", "Gap_HSE") == "HSE"
    assert q.column_fidelity("psc-devices", "JV_reverse_scan_PCE") is None


def test_interval_columns():
    assert q.interval_columns("PCE", "%", 0.9) == ("PCE 90 % interval lower (%)", "PCE 90 % interval upper (%)")
    assert q.interval_columns("FF", "", 0.8) == ("FF 80 % interval lower", "FF 80 % interval upper")


def test_round_fraction_removes_float_noise():
    xs = np.linspace(0.0, 1.0, 21)
    assert any(len(repr(float(x))) > 6 for x in xs)  # noise there before
    assert [repr(float(x)) for x in q.round_fraction(xs)][:4] == ["0.0", "0.05", "0.1", "0.15"]
    assert q.round_fraction(0.30000000000000004) == 0.3


def test_model_summary_names_the_gap():
    spec = preset("paper")

    class Fake:
        def __init__(self) -> None:
            self.spec = spec

        def summary(self) -> dict[str, str]:
            return {"name": "m", "materials: band gap MAE": "0.150 ± 0.010 eV", "devices: PCE MAE": "2.6 %"}

    assert q.model_summary(Fake()) == {"name": "m", "materials: band gap, DFT PBE (no SOC) MAE": "0.150 ± 0.010 eV", "devices: PCE MAE": "2.6 %"}
