"""Tests of nestedae_core.chemistry.physics: the Shockley–Queisser detailed-balance limit."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nestedae_core.errors import InputError, NestedAEError
from nestedae_core.chemistry.physics import sq_limit

H, C, K, Q = 6.62607015e-34, 299792458.0, 1.380649e-23, 1.602176634e-19
SIGMA = 2 * math.pi**5 * K**4 / (15 * H**3 * C**2)


def brute_force(eg_ev: float, t_sun: float = 5778.0, t_cell: float = 300.0, power: float = 1000.0) -> dict[str, float]:
    """Independent check: integrate the photon fluxes on a grid and scan J(V) for the maximum power."""
    def flux(temp: float) -> float:
        e = np.linspace(eg_ev, eg_ev + 60 * K * temp / Q, 400_001) * Q
        spectrum = 2 * math.pi * e**2 / (H**3 * C**2) / np.expm1(e / (K * temp))
        return float(np.trapezoid(spectrum, e))

    jsc = Q * power / (SIGMA * t_sun**4) * flux(t_sun)
    j0 = Q * flux(t_cell)
    vt = K * t_cell / Q
    voc = vt * math.log(jsc / j0 + 1)
    v = np.linspace(0, voc, 200_001)
    p = v * (jsc - j0 * np.expm1(v / vt))
    pmax = float(p.max())
    return {"pce_percent": 100 * pmax / power, "voc_V": voc, "jsc_mA_cm2": jsc / 10, "ff": pmax / (voc * jsc)}


@pytest.mark.parametrize("eg", [0.7, 1.12, 1.55, 2.3])
def test_matches_brute_force(eg):
    got = sq_limit(eg)
    want = brute_force(eg)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=2e-4), key


def test_keys_units_and_scalar_floats():
    out = sq_limit(1.55)
    assert set(out) == {"pce_percent", "voc_V", "jsc_mA_cm2", "ff"}
    assert all(isinstance(v, float) for v in out.values())
    assert 0 < out["voc_V"] < 1.55
    assert 0 < out["ff"] < 1
    assert 20 < out["jsc_mA_cm2"] < 30  # mA/cm2, not A/m2
    assert out["pce_percent"] == pytest.approx(out["voc_V"] * out["jsc_mA_cm2"] * out["ff"], rel=1e-9)  # mW/cm2 = %


def test_peak_position_and_height():
    gaps = np.linspace(0.5, 3.0, 251)
    pce = sq_limit(gaps)["pce_percent"]
    peak = gaps[int(np.argmax(pce))]
    assert 1.1 <= peak <= 1.45
    assert 29.0 < pce.max() < 34.0


def test_monotone_above_2_ev_and_vanishes_at_small_gap():
    gaps = np.linspace(2.0, 4.0, 101)
    out = sq_limit(gaps)
    assert np.all(np.diff(out["pce_percent"]) < 0)
    assert np.all(np.diff(out["jsc_mA_cm2"]) < 0)
    assert np.all(np.diff(out["voc_V"]) > 0)
    small = sq_limit(np.array([0.02, 0.05, 0.1]))["pce_percent"]
    assert np.all(np.diff(small) > 0) and small[0] < 0.5


def test_array_shape_preserved():
    gaps = np.array([[1.2, 1.5], [1.8, 2.1]])
    out = sq_limit(gaps)
    assert all(v.shape == (2, 2) for v in out.values())
    assert out["pce_percent"][0, 1] == pytest.approx(sq_limit(1.5)["pce_percent"])
    assert sq_limit([1.5])["pce_percent"].shape == (1,)


def test_huge_gap_does_not_overflow():
    out = sq_limit(np.array([6.0, 10.0]))
    assert np.all(np.isfinite(out["pce_percent"])) and np.all(out["pce_percent"] >= 0)


def test_hotter_sun_gives_more():
    assert sq_limit(1.34, sun_temperature_K=6000)["pce_percent"] > sq_limit(1.34)["pce_percent"]
    # irradiance cancels in the efficiency only through Voc: more light, slightly higher PCE
    assert sq_limit(1.34, irradiance_W_m2=2000)["pce_percent"] > sq_limit(1.34)["pce_percent"]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "abc", [1.2, 0.0]])
def test_invalid_band_gap(bad):
    with pytest.raises(InputError, match="band gap"):
        sq_limit(bad)


def test_invalid_temperature():
    with pytest.raises(NestedAEError, match="cell_temperature_K"):
        sq_limit(1.5, cell_temperature_K=0)
