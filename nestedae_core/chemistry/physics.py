"""Small physics helpers: the Shockley–Queisser detailed-balance limit of a single-junction cell.

:func:`sq_limit` gives the radiative (detailed-balance) limit of a single
band-gap absorber, following W. Shockley and H. J. Queisser, "Detailed Balance
Limit of Efficiency of p-n Junction Solar Cells", J. Appl. Phys. 32, 510 (1961):

* every photon above the band gap is absorbed and gives one electron (step
  absorptance, no reflection, no parasitic absorption);
* the only recombination is radiative: the cell (temperature ``T_c``) emits
  blackbody radiation above the gap through its front face into a hemisphere,
  enhanced by ``exp(qV / k T_c)`` under bias ``V``.

With ``phi(E, T) = 2 pi E^2 / (h^3 c^2) / (exp(E / kT) - 1)`` (photons per m^2,
s and J) and ``F(Eg, T) = integral_Eg^inf phi(E, T) dE``::

    Jsc  = q * s * F(Eg, T_sun)          s scales the sun to `irradiance_W_m2`
    J0   = q * F(Eg, T_cell)
    J(V) = Jsc - J0 (exp(qV / k T_c) - 1)
    Voc  = (k T_c / q) ln(Jsc / J0 + 1)
    maximum power point: with w = W(e (Jsc/J0 + 1)) (Lambert W),
        Vmp = (k T_c / q)(w - 1),  Jmp = (Jsc + J0)(1 - 1/w)
    PCE  = Vmp Jmp / irradiance,  FF = Vmp Jmp / (Voc Jsc)

The integral uses the exact series
``integral_x^inf t^2 / (e^t - 1) dt = sum_k e^(-kx) (x^2/k + 2x/k^2 + 2/k^3)``.

The sun spectrum
----------------
The tabulated ASTM G173 AM1.5G spectrum is not shipped (the library must work
offline), so the sun is approximated by a 5778 K blackbody whose total power is
scaled to 1000 W/m^2 (the AM1.5G irradiance). This is the usual textbook
approximation and keeps the shape of the curve, but it is not the reference
value: the blackbody limit peaks at about 30.2 % near 1.27 eV, the tabulated
AM1.5G limit at 33.7 % at 1.34 eV (S. Rühle, Sol. Energy 130, 139 (2016)). The
blackbody puts more of its 1000 W/m^2 into the ultraviolet than the real
spectrum (fewer photons per watt), so its short-circuit current, and with it
the efficiency, is *lower* than the AM1.5G value by roughly 10 % (relative)
near the optimum, while Voc and FF at a given gap change little (at 1.34 eV:
30.1 %, Jsc 31.4 mA/cm^2, Voc 1.08 V, FF 0.889 here, against 33.7 % for
AM1.5G). It also lacks the atmospheric absorption dips of AM1.5G. Treat the
curve as a guide to how far a device is from the radiative limit, not as the
reference value.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "SUN_TEMPERATURE_K",
    "CELL_TEMPERATURE_K",
    "IRRADIANCE_W_M2",
    "sq_limit",
]

#: Blackbody temperature of the approximate sun spectrum (K).
SUN_TEMPERATURE_K: float = 5778.0
#: Cell temperature of the detailed-balance limit (K).
CELL_TEMPERATURE_K: float = 300.0
#: Incident irradiance the sun spectrum is scaled to (W/m^2), that of AM1.5G.
IRRADIANCE_W_M2: float = 1000.0

# CODATA 2018 (exact SI values).
_H = 6.62607015e-34  # Planck constant, J s
_C = 299792458.0  # speed of light, m/s
_K = 1.380649e-23  # Boltzmann constant, J/K
_Q = 1.602176634e-19  # elementary charge, C
_SIGMA = 2.0 * math.pi**5 * _K**4 / (15.0 * _H**3 * _C**2)  # Stefan–Boltzmann, W/(m^2 K^4)


def _log_tail_integral(x: np.ndarray) -> np.ndarray:
    """ln of integral_x^inf t^2 / (e^t - 1) dt for x > 0 (elementwise, no overflow)."""
    out = np.empty_like(x)
    for i, xi in enumerate(x.flat):
        # sum_k e^(-k x) (x^2/k + 2x/k^2 + 2/k^3) = e^(-x) * sum_k e^(-(k-1) x) (...)
        n_terms = int(min(max(60.0, 40.0 / xi), 200_000.0))
        k = np.arange(1, n_terms + 1, dtype=float)
        terms = np.exp(-(k - 1.0) * xi) * (xi * xi / k + 2.0 * xi / k**2 + 2.0 / k**3)
        out.flat[i] = -xi + math.log(float(terms.sum()))
    return out


def _log_photon_flux(bandgap_J: np.ndarray, temperature_K: float) -> np.ndarray:
    """ln of the hemispherical blackbody photon flux above the gap, photons / (m^2 s)."""
    kt = _K * temperature_K
    prefactor = 2.0 * math.pi * kt**3 / (_H**3 * _C**2)
    return math.log(prefactor) + _log_tail_integral(bandgap_J / kt)


def _check_positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} is {value!r}, expected a positive number") from None
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"{name} is {value!r}, expected a positive number")
    return number


def sq_limit(
    bandgap_eV: float | np.ndarray | Any,
    *,
    sun_temperature_K: float = SUN_TEMPERATURE_K,
    cell_temperature_K: float = CELL_TEMPERATURE_K,
    irradiance_W_m2: float = IRRADIANCE_W_M2,
) -> dict[str, Any]:
    """Shockley–Queisser detailed-balance limit of a single-junction cell.

    Args:
        bandgap_eV: band gap(s) in eV, a number or an array-like of numbers > 0.
        sun_temperature_K: blackbody temperature of the sun (default 5778 K).
        cell_temperature_K: cell temperature (default 300 K).
        irradiance_W_m2: total incident power the sun is scaled to (default 1000 W/m^2).

    Returns:
        ``{"pce_percent": ..., "voc_V": ..., "jsc_mA_cm2": ..., "ff": ...}``:
        power conversion efficiency (%), open-circuit voltage (V), short-circuit
        current density (mA/cm^2) and fill factor (dimensionless, 0..1). Floats
        for a scalar input, arrays of the input's shape otherwise. See the
        module docstring for the assumptions (blackbody sun, not tabulated
        AM1.5G: about 30.2 % at best near 1.27 eV instead of 33.7 % at 1.34 eV).

    Raises:
        InputError: a band gap that is not a finite number > 0, or a
            non-positive temperature or irradiance.
    """
    t_sun = _check_positive("sun_temperature_K", sun_temperature_K)
    t_cell = _check_positive("cell_temperature_K", cell_temperature_K)
    power = _check_positive("irradiance_W_m2", irradiance_W_m2)
    try:
        gaps = np.asarray(bandgap_eV, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"band gap {bandgap_eV!r} is not a number: give it in eV, e.g. 1.55") from None
    scalar = gaps.ndim == 0
    flat = np.atleast_1d(gaps).astype(float).ravel()
    bad = ~np.isfinite(flat) | (flat <= 0)
    if bad.any():
        raise InputError(
            f"band gap {flat[bad][0]!r} eV is not a finite number > 0: give band gaps in eV, e.g. 1.55"
        )
    eg = flat * _Q  # J
    scale = power / (_SIGMA * t_sun**4)  # dilution of the blackbody sun to `power`
    log_jsc = math.log(_Q * scale) + _log_photon_flux(eg, t_sun)  # A/m^2
    log_j0 = math.log(_Q) + _log_photon_flux(eg, t_cell)  # A/m^2
    vt = _K * t_cell / _Q  # thermal voltage, V
    log_ratio = log_jsc - log_j0
    ln_a = np.logaddexp(log_ratio, 0.0)  # ln(Jsc/J0 + 1)
    voc = vt * ln_a
    w = _lambert_w_of_exp(ln_a + 1.0)  # W(e * (Jsc/J0 + 1))
    jsc = np.exp(log_jsc)
    j0 = np.exp(log_j0)
    vmp = vt * (w - 1.0)
    jmp = (jsc + j0) * (1.0 - 1.0 / w)
    pmax = np.clip(vmp * jmp, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ff = np.where(voc * jsc > 0, pmax / (voc * jsc), 0.0)
    result = {
        "pce_percent": 100.0 * pmax / power,
        "voc_V": voc,
        "jsc_mA_cm2": jsc * 0.1,  # 1 A/m^2 = 0.1 mA/cm^2
        "ff": ff,
    }
    if scalar:
        return {key: float(value[0]) for key, value in result.items()}
    return {key: value.reshape(gaps.shape) for key, value in result.items()}


def _lambert_w_of_exp(log_z: np.ndarray) -> np.ndarray:
    """Principal Lambert W of z = exp(log_z) for z >= e (w >= 1), from log z, by Newton's method.

    Solves w + ln w = log_z, which stays finite where z itself would overflow.
    """
    w = np.where(log_z > 1.0, log_z - np.log(np.maximum(log_z, 1.0)), 1.0)
    w = np.maximum(w, 1.0)
    for _ in range(50):
        step = (w + np.log(w) - log_z) / (1.0 + 1.0 / w)
        w = np.maximum(w - step, 1e-12)
        if np.all(np.abs(step) <= 1e-14 * np.maximum(w, 1.0)):
            break
    return w
